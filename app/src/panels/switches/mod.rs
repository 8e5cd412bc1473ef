//! The kill-switch panel (platform-wide): every switch's global value and tenant overrides,
//! flipped by an incident commander with a reason and an optional expiry after which the
//! flip reverts by itself. Everyone signed in can see them.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::domain::gateway::controls::SwitchKey;
use crate::error::AppError;

/// Longest timed flip: a week, in minutes.
pub const MAX_EXPIRY_MINUTES: i64 = 7 * 24 * 60;

/// Reads the optional expiry field: empty for none, else whole minutes in
/// 1..=[`MAX_EXPIRY_MINUTES`].
pub fn parse_expiry_minutes(raw: &str) -> Result<Option<i64>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(m) if (1..=MAX_EXPIRY_MINUTES).contains(&m) => Ok(Some(m)),
        Ok(m) if m <= 0 => Err(AppError::validation(
            "expires_minutes",
            "An expiry must be in the future: give at least 1 minute, or leave it empty for none.",
        )),
        _ => Err(AppError::validation(
            "expires_minutes",
            format!(
                "Give whole minutes from 1 to {MAX_EXPIRY_MINUTES} (a week), or leave it empty."
            ),
        )),
    }
}

/// Whether setting `key` to `value` removes a protection (and so needs the key typed).
pub fn removes_protection(key: SwitchKey, value: bool) -> bool {
    value != key.protective_value()
}

/// Whether setting `key` to `value` is a dangerous action, which needs a recent second
/// factor: removing a protection, or turning the agent API or its payments off (every
/// agent of every tenant stops).
pub fn needs_step_up(key: SwitchKey, value: bool) -> bool {
    removes_protection(key, value)
        || (!value
            && matches!(
                key,
                SwitchKey::AgentApiEnabled | SwitchKey::AgentPaymentsEnabled
            ))
}

/// The label of a switch at a scope, as audit targets name it: `switch:agentApiEnabled` or
/// `switch:agentApiEnabled@demo`.
pub fn target(key: SwitchKey, tenant: Option<&str>) -> String {
    match tenant {
        Some(slug) => format!("switch:{}@{slug}", key.as_str()),
        None => format!("switch:{}", key.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_future_and_bounded() {
        assert_eq!(parse_expiry_minutes(" "), Ok(None));
        assert_eq!(parse_expiry_minutes("60"), Ok(Some(60)));
        for bad in ["0", "-5", "10081", "soon", "1.5"] {
            assert!(parse_expiry_minutes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn removing_protection_depends_on_the_switch() {
        assert!(removes_protection(SwitchKey::TurnstileDisabled, true));
        assert!(!removes_protection(SwitchKey::TurnstileDisabled, false));
        assert!(removes_protection(SwitchKey::AgentApiEnabled, true));
        assert!(!removes_protection(SwitchKey::AgentApiEnabled, false));
        assert!(removes_protection(SwitchKey::StrictAllowlist, false));
        assert!(!removes_protection(SwitchKey::StrictAllowlist, true));
    }
}
