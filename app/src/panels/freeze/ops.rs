//! Turning the freeze on and lifting it: each one audited change. Both need a recent
//! second factor (the server functions check it); the command line may do both.

use super::{queries, Freeze, CONFIRM_LIFT};
use crate::auth::Actor;
use crate::domain::input::normalize_reason;
use crate::error::AppError;
use crate::panels::switches::parse_expiry_minutes;

fn target(freeze: &Freeze) -> String {
    format!("freeze:{}", freeze.id)
}

/// Turns a freeze on, with `reason` and, unless `expires_minutes` is empty, an expiry.
/// Waits for the frozen operations already under way; refused while one is on. A freeze
/// whose expiry passed but which the timer has not lifted yet is lifted here, as the timer
/// would (the new freeze's event says so).
pub async fn start(actor: &Actor, reason: &str, expires_minutes: &str) -> Result<Freeze, AppError> {
    let reason = normalize_reason(reason)?;
    let minutes = parse_expiry_minutes(expires_minutes)?;
    let mut change = actor.change().await?;
    queries::lock_out_frozen_operations(&mut change).await?;
    let mut replaced = None;
    if let Some((on, expired)) = queries::lock_unlifted(&mut change).await? {
        if !expired {
            return Err(AppError::Conflict {
                field: None,
                message: format!(
                    "A freeze is already on (since {}, by {}). Lift it first to change its reason or expiry.",
                    crate::components::time::utc_minutes(on.started_at),
                    on.started_by
                ),
            });
        }
        queries::lift(&mut change, on.id, "system", "expired", true).await?;
        replaced = Some(on.id);
    }
    let freeze = queries::insert(&mut change, &reason, &actor.label(), minutes).await?;
    let expires_at = freeze.expires_at;
    change
        .commit(
            actor
                .event("freeze.started")
                .target(target(&freeze))
                .reason(reason)
                .details(serde_json::json!({
                    "expires_at": expires_at.map(|t| t.unix_timestamp()),
                    "expired_freeze_lifted": replaced,
                })),
        )
        .await?;
    Ok(freeze)
}

/// Lifts the freeze that is on, with `reason`; `confirmation` must be [`CONFIRM_LIFT`].
pub async fn lift(actor: &Actor, reason: &str, confirmation: &str) -> Result<(), AppError> {
    let reason = normalize_reason(reason)?;
    if confirmation.trim() != CONFIRM_LIFT {
        return Err(AppError::validation(
            "confirmation",
            format!("Type “{CONFIRM_LIFT}” to lift the freeze."),
        ));
    }
    let mut change = actor.change().await?;
    let (on, _) = queries::lock_unlifted(&mut change)
        .await?
        .filter(|(_, expired)| !expired)
        .ok_or_else(|| AppError::Conflict {
            field: None,
            message: "No freeze is on.".into(),
        })?;
    queries::lift(&mut change, on.id, &actor.label(), &reason, false).await?;
    change
        .commit(
            actor
                .event("freeze.lifted")
                .target(target(&on))
                .reason(reason)
                .details(serde_json::json!({
                    "started_by": on.started_by,
                    "started_at": on.started_at.unix_timestamp(),
                    "freeze_reason": on.reason,
                })),
        )
        .await?;
    Ok(())
}

/// Lifts, as the system, every freeze whose expiry passed: the timer's job. Returns how
/// many it lifted.
pub async fn lift_expired(system: &Actor) -> Result<usize, AppError> {
    let mut change = system.change().await?;
    let due = queries::lock_expired(&mut change).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut events = Vec::with_capacity(due.len());
    for on in &due {
        queries::lift(&mut change, on.id, "system", "expired", true).await?;
        events.push(
            system
                .event("freeze.lifted")
                .target(target(on))
                .reason(format!("the expiry set by {} passed", on.started_by))
                .details(serde_json::json!({
                    "started_by": on.started_by,
                    "started_at": on.started_at.unix_timestamp(),
                    "expires_at": on.expires_at.map(|t| t.unix_timestamp()),
                    "freeze_reason": on.reason,
                })),
        );
    }
    change.commit_all(&events).await?;
    Ok(events.len())
}
