//! Pepper rotations and the retirement of a previous version whose grace period ended.
//! Each is one transaction with its audit events; the pepper table's trigger notifies every
//! instance to reload its ring when it commits.

use super::{queries, Rotated, MAX_GRACE_HOURS};
use crate::auth::Actor;
use crate::auth::Change;
use crate::domain::audit::{NewEvent, Source};
use crate::domain::status::PepperState;
use crate::domain::tokens::pepper::{seal, MasterKey};
use crate::error::AppError;
use crate::panels::integrations::queries::{record_revocations, revoke_matching, Matching};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

async fn insert_current(
    change: &mut Change,
    master: &MasterKey,
    version: i32,
    created_by: &str,
) -> sqlx::Result<()> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::fill(&mut key[..]);
    let (nonce, sealed) = seal(master.expose(), version, &key);
    queries::insert_current(change, version, &nonce[..], &sealed, created_by).await?;
    Ok(())
}

/// Revokes the active tokens on `version` (or all, with `None`); returns (id, tenant).
async fn revoke_tokens(
    change: &mut Change,
    version: Option<i32>,
    by: &str,
    reason: &str,
) -> sqlx::Result<Vec<(String, Uuid)>> {
    let matching = Matching {
        pepper_version: version,
        ..Matching::default()
    };
    revoke_matching(change, matching, by, reason).await
}

/// Retires the previous version `version` inside `conn`'s transaction and revokes the tokens
/// still on it; returns how many were revoked.
async fn retire_previous(
    change: &mut crate::auth::Change,
    version: i32,
    by: &str,
) -> Result<i64, AppError> {
    queries::retire(change, version).await?;
    let reason = format!(
        "pepper version {version} retired: the token was not used during the rotation's grace period"
    );
    let revoked = revoke_tokens(change, Some(version), by, &reason).await?;
    let template = NewEvent::new(Source::System, "system", "token.revoked").reason(reason.clone());
    record_revocations(change, &template, &revoked).await?;
    // Admin tokens are not re-hashed on use: those on the retired version are revoked too.
    crate::domain::admin::tokens::revoke_in(
        change,
        crate::domain::admin::tokens::Revoking::OnPepper(version),
        by,
        &NewEvent::new(Source::System, "system", "admin_token.revoked").reason(reason),
    )
    .await?;
    Ok(revoked.len() as i64)
}

/// Housekeeping: retires a previous version whose grace period has ended. Safe from every
/// instance at once (the table lock serialises them; the second finds nothing to do).
pub async fn retire_expired(system: &Actor) -> Result<Option<(i32, i64)>, AppError> {
    let due = queries::retirement_due(system.reader()).await?;
    if !due {
        return Ok(None);
    }
    let mut change = system.change().await?;
    let (live, _) = queries::lock_live(&mut change).await?;
    let now = OffsetDateTime::now_utc();
    let Some(expired) = live
        .iter()
        .find(|l| l.state == PepperState::Previous && l.grace_until.is_some_and(|g| g <= now))
    else {
        return Ok(None);
    };
    let version = expired.version;
    let revoked = retire_previous(&mut change, version, &system.label()).await?;
    let event = system
        .event("pepper.retired")
        .target(format!("pepper:v{version}"))
        .details(serde_json::json!({ "version": version, "revoked_tokens": revoked, "why": "grace period ended" }));
    change.commit(event).await?;
    Ok(Some((version, revoked)))
}

/// Parses the grace period in hours.
pub fn parse_grace(raw: &str) -> Result<i64, AppError> {
    let field = "grace_hours";
    let hours: i64 = raw.trim().parse().map_err(|_| {
        AppError::validation(field, "Enter the grace period as a whole number of hours.")
    })?;
    if !(1..=MAX_GRACE_HOURS).contains(&hours) {
        return Err(AppError::validation(
            field,
            format!("The grace period is between 1 and {MAX_GRACE_HOURS} hours."),
        ));
    }
    Ok(hours)
}

fn check_confirmation(given: &str, wanted: &str) -> Result<(), AppError> {
    if given.trim() != wanted {
        return Err(AppError::validation(
            "confirmation",
            format!("Type “{wanted}” exactly to confirm."),
        ));
    }
    Ok(())
}

/// Staged rotation: a new current version; the old one verifies until `grace_hours` pass.
pub async fn rotate_staged(
    actor: &Actor,
    master: &MasterKey,
    grace_hours: &str,
    reason: &str,
    confirmation: &str,
) -> Result<Rotated, AppError> {
    let hours = parse_grace(grace_hours)?;
    let reason = crate::domain::input::normalize_reason(reason)?;
    check_confirmation(confirmation, super::CONFIRM_STAGED)?;
    let mut change = crate::domain::freeze::guard(
        actor,
        actor.change().await?,
        crate::domain::freeze::FrozenOp::StagePepperRotation,
    )
    .await?;
    let (live, max) = queries::lock_live(&mut change).await?;
    let now = OffsetDateTime::now_utc();
    let mut retired_previous = None;
    if let Some(previous) = live.iter().find(|l| l.state == PepperState::Previous) {
        let waiting =
            crate::panels::integrations::queries::active_on_pepper(change.db(), previous.version)
                .await?;
        let in_grace = previous.grace_until.is_some_and(|g| g > now);
        if waiting > 0 && in_grace {
            return Err(AppError::Conflict {
 field: None,
                message: format!(
                    "The last staged rotation is still in its grace period ({waiting} token(s) on version {} until {}). Wait for it to end, or do a compromise rotation.",
                    previous.version,
                    previous.grace_until.map(crate::components::time::utc_minutes).unwrap_or_default()
                ),
            });
        }
        let revoked = retire_previous(&mut change, previous.version, &actor.label()).await?;
        retired_previous = Some((previous.version, revoked));
    }
    let from = live
        .iter()
        .find(|l| l.state == PepperState::Current)
        .map(|l| l.version)
        .ok_or_else(|| AppError::internal(&"no current pepper to rotate from"))?;
    let to = max + 1;
    let grace_until = now + time::Duration::hours(hours);
    queries::set_previous(&mut change, from, grace_until).await?;
    insert_current(&mut change, master, to, &actor.label()).await?;
    let on_previous =
        crate::panels::integrations::queries::active_on_pepper(change.db(), from).await?;
    change
        .commit(
            actor
                .event("pepper.rotated")
                .target(format!("pepper:v{to}"))
                .reason(reason)
                .details(serde_json::json!({
                    "mode": "staged",
                    "from_version": from,
                    "to_version": to,
                    "grace_hours": hours,
                    "tokens_on_previous": on_previous,
                    "retired_previous": retired_previous.map(|(v, n)| serde_json::json!({ "version": v, "revoked_tokens": n })),
                })),
        )
        .await?;
    Ok(Rotated {
        version: to,
        revoked: 0,
    })
}

/// Compromise rotation: a new version, every other version retired, every active token of
/// every tenant revoked. Refused when more tokens are active than the preview showed.
pub async fn rotate_compromised(
    actor: &Actor,
    master: &MasterKey,
    reason: &str,
    confirmation: &str,
    expected: i64,
) -> Result<Rotated, AppError> {
    let reason = crate::domain::input::normalize_reason(reason)?;
    check_confirmation(confirmation, super::CONFIRM_COMPROMISE)?;
    let mut change = actor.change().await?;
    let (live, max) = queries::lock_live(&mut change).await?;
    for old in &live {
        queries::retire(&mut change, old.version).await?;
    }
    let to = max + 1;
    insert_current(&mut change, master, to, &actor.label()).await?;
    let revoked = revoke_tokens(&mut change, None, &actor.label(), &reason).await?;
    let count = revoked.len() as i64;
    if count > expected {
        return Err(AppError::Conflict {
 field: None,
            message: format!(
                "{count} tokens are active now, more than the {expected} the preview showed. Nothing was changed: review the preview again."
            ),
        });
    }
    let template = actor
        .event("token.revoked")
        .reason(reason.clone())
        .details(serde_json::json!({ "pepper_compromise_rotation": to }));
    record_revocations(&mut change, &template, &revoked).await?;
    for old in &live {
        crate::domain::admin::tokens::revoke_in(
            &mut change,
            crate::domain::admin::tokens::Revoking::OnPepper(old.version),
            &actor.label(),
            &actor.event("admin_token.revoked").reason(reason.clone()),
        )
        .await?;
    }
    let mut per_tenant: std::collections::BTreeMap<String, i64> = Default::default();
    for (_, tenant) in &revoked {
        *per_tenant.entry(tenant.to_string()).or_default() += 1;
    }
    change
        .commit(
            actor
                .event("pepper.rotated")
                .target(format!("pepper:v{to}"))
                .reason(reason)
                .details(serde_json::json!({
                    "mode": "compromise",
                    "retired_versions": live.iter().map(|l| l.version).collect::<Vec<_>>(),
                    "to_version": to,
                    "revoked_tokens": count,
                    "revoked_per_tenant": per_tenant,
                })),
        )
        .await?;
    Ok(Rotated {
        version: to,
        revoked: count,
    })
}
