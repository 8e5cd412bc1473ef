//! Agent Ops: a tenant's API clients — list, detail, create, suspend and reactivate,
//! allowlist, key rotation, and the final revoke that takes the client's tokens and keys
//! with it (runbook 003, sections A and B).

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::domain::status::{ClientStatus, KeyState};
use crate::error::AppError;
use crate::panels::integrations::TokenEvent;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest client name.
pub const NAME_MAX: usize = 100;
/// Longest grace period for an old key, in hours (30 days).
pub const MAX_KEY_GRACE_HOURS: i64 = 720;

/// One API client in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRow {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the tenant.
    pub name: String,
    /// Its status.
    pub status: ClientStatus,
    /// On the allowlist (passes strict allowlist posture).
    pub allowlisted: bool,
    /// Its active tokens.
    pub live_tokens: i64,
    /// The version of its active key.
    pub key_version: Option<i32>,
    /// Why its status was last changed.
    pub status_reason: Option<String>,
    /// Created (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One version of a client's key. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    /// Version.
    pub version: i32,
    /// Its state (`retiring`: an old key in its grace period).
    pub state: KeyState,
    /// Created (UTC), and by whom.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// For `retiring`: when it stops working.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retire_after: Option<OffsetDateTime>,
    /// When it stopped working.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
}

/// A client with its keys and history, for the detail view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientDetail {
    /// The client.
    pub client: ClientRow,
    /// Its keys, newest first.
    pub keys: Vec<KeyRow>,
    /// Its status history and other changes (`client.*` events), newest first.
    pub history: Vec<TokenEvent>,
    /// Recent deny and error events of its tokens, newest first.
    pub denials: Vec<TokenEvent>,
}

/// A key shown once, at creation or rotation. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MintedKey {
    /// The client.
    pub client_id: Uuid,
    /// Its new key version.
    pub version: i32,
    /// The key itself. Not stored anywhere; gone when the page is left.
    pub secret: String,
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedKey")
            .field("client_id", &self.client_id)
            .field("version", &self.version)
            .field("secret", &format_args!("[redacted]"))
            .finish()
    }
}

/// What revoking a client takes with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokePreview {
    /// The client's name (to type as confirmation).
    pub name: String,
    /// Active tokens that will be revoked.
    pub live_tokens: i64,
    /// Keys still working that will be revoked.
    pub live_keys: i64,
}

/// Checks a client name: 1 to [`NAME_MAX`] characters, no control characters.
pub fn normalize_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::validation("name", "Give the client a name."));
    }
    if name.chars().count() > NAME_MAX {
        return Err(AppError::validation(
            "name",
            format!("A client name has at most {NAME_MAX} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "name",
            "A client name cannot hold control characters.",
        ));
    }
    Ok(name.to_owned())
}

/// Reads the old key's grace period: 0 (retire at once) to [`MAX_KEY_GRACE_HOURS`].
pub fn parse_grace_hours(raw: &str) -> Result<i64, AppError> {
    match raw.trim().parse::<i64>() {
        Ok(h) if (0..=MAX_KEY_GRACE_HOURS).contains(&h) => Ok(h),
        _ => Err(AppError::validation(
            "grace_hours",
            format!(
                "Give whole hours from 0 (retire the old key at once) to {MAX_KEY_GRACE_HOURS}."
            ),
        )),
    }
}

/// Reads a client id from a form or path.
pub fn parse_client_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim()).map_err(|_| AppError::not_found("This API client"))
}

/// Reads the list's status filter: empty for all.
pub fn parse_status_filter(raw: &str) -> Result<Option<String>, AppError> {
    match raw.trim() {
        "" => Ok(None),
        s @ ("active" | "suspended" | "revoked") => Ok(Some(s.to_owned())),
        _ => Err(AppError::validation(
            "status",
            "Filter by active, suspended or revoked.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(normalize_name("  billing-bot "), Ok("billing-bot".into()));
        assert!(normalize_name(" ").is_err());
        assert!(normalize_name(&"n".repeat(NAME_MAX + 1)).is_err());
        assert!(normalize_name("a\u{7}b").is_err());
    }

    #[test]
    fn grace_is_bounded() {
        assert_eq!(parse_grace_hours("0"), Ok(0));
        assert_eq!(parse_grace_hours("24"), Ok(24));
        for bad in ["-1", "721", "", "a day"] {
            assert!(parse_grace_hours(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_filter_takes_the_three_statuses() {
        assert_eq!(parse_status_filter(""), Ok(None));
        assert_eq!(parse_status_filter("revoked"), Ok(Some("revoked".into())));
        assert!(parse_status_filter("deleted").is_err());
    }
}
