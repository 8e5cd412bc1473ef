//! Flipping kill switches, removing overrides, and the timed revert. Each is one
//! transaction with its audit event; the table's trigger notifies every instance.

use super::{needs_step_up, parse_expiry_minutes, queries, removes_protection, target};
use crate::auth::Actor;
use crate::auth::Change;
use crate::domain::freeze::{guard, FrozenOp};
use crate::domain::gateway::controls::SwitchKey;
use crate::domain::input::normalize_reason;
use crate::error::AppError;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A flip as asked for, unchecked.
#[derive(Debug, Clone, Default)]
pub struct FlipRequest<'a> {
    /// The switch key.
    pub key: &'a str,
    /// A tenant slug for an override; empty for the global value.
    pub tenant: &'a str,
    /// `true`/`on` or `false`/`off`.
    pub value: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Minutes until it reverts; empty for never.
    pub expires_minutes: &'a str,
    /// For a flip that removes a protection: the key, typed.
    pub confirmation: &'a str,
}

/// What a flip did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flipped {
    /// The switch.
    pub key: SwitchKey,
    /// The new value.
    pub value: bool,
    /// When it reverts.
    pub expires_at: Option<OffsetDateTime>,
}

fn parse_key(raw: &str) -> Result<SwitchKey, AppError> {
    SwitchKey::parse(raw.trim())
        .ok_or_else(|| AppError::validation("key", "Choose one of the listed switches."))
}

fn parse_value(raw: &str) -> Result<bool, AppError> {
    match raw.trim() {
        "true" | "on" => Ok(true),
        "false" | "off" => Ok(false),
        _ => Err(AppError::validation("value", "Choose on or off.")),
    }
}

async fn tenant_id(change: &mut Change, slug: &str) -> Result<Option<(Uuid, String)>, AppError> {
    let slug = slug.trim();
    if slug.is_empty() {
        return Ok(None);
    }
    let tenant = crate::domain::tenants::queries::named(change.db(), slug).await?;
    Ok(Some((tenant.id, tenant.slug)))
}

/// Sets a switch globally or for one tenant. Validates everything before changing anything.
pub async fn flip(actor: &Actor, req: FlipRequest<'_>) -> Result<Flipped, AppError> {
    let key = parse_key(req.key)?;
    let value = parse_value(req.value)?;
    let reason = normalize_reason(req.reason)?;
    let minutes = parse_expiry_minutes(req.expires_minutes)?;
    if needs_step_up(key, value) {
        actor.require_step_up()?;
    }
    if removes_protection(key, value) && req.confirmation.trim() != key.as_str() {
        return Err(AppError::validation(
            "confirmation",
            format!(
                "This removes a protection: type {} to confirm.",
                key.as_str()
            ),
        ));
    }
    let mut change = actor.change().await?;
    if removes_protection(key, value) {
        change = guard(actor, change, FrozenOp::RemoveSwitchProtection).await?;
    }
    let tenant = tenant_id(&mut change, req.tenant).await?;
    let tenant_uuid = tenant.as_ref().map(|(id, _)| *id);
    let slug = tenant.as_ref().map(|(_, slug)| slug.as_str());
    // The global row always exists (the migration seeds it); locking it also serialises
    // flips of the same switch's overrides.
    let global = queries::lock_row(&mut change, key, None).await?;
    // What a tenant's override falls back to when its timer ends and it is removed.
    let global_value = global
        .as_ref()
        .map(|g| g.value)
        .unwrap_or(key.default_value());
    let stored = match tenant_uuid {
        None => global,
        Some(id) => queries::lock_row(&mut change, key, Some(id)).await?,
    };
    let current = stored.as_ref().map(|s| s.value);
    if current == Some(value)
        && minutes.is_none()
        && stored.as_ref().is_some_and(|s| s.expires_at.is_none())
    {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "{} is already {} {}.",
                key.as_str(),
                key.value_label(value),
                slug.map(|s| format!("for {s}"))
                    .unwrap_or_else(|| "globally".into())
            ),
        });
    }
    let expires_at = minutes.map(|m| OffsetDateTime::now_utc() + Duration::minutes(m));
    // What the timer reverts to: the value under any earlier timed flip, so extending a
    // timed flip still ends where the first one would have.
    let revert_to = match (&stored, expires_at) {
        (_, None) => None,
        (Some(s), Some(_)) if s.expires_at.is_some() => s.revert_to,
        (Some(s), Some(_)) => Some(s.value),
        (None, Some(_)) => None,
    };
    let revert_to = match (tenant_uuid, expires_at, revert_to) {
        // A global row always has a value to revert to.
        (None, Some(_), None) => Some(key.default_value()),
        (_, _, r) => r,
    };
    // Keeping a protection on a shorter timer (to a value without it) removes it sooner:
    // as dangerous as removing it, and frozen like it.
    let ends_sooner = value == key.protective_value()
        && removes_protection(key, revert_to.unwrap_or(global_value))
        && match (stored.as_ref().and_then(|s| s.expires_at), expires_at) {
            (Some(old), Some(new)) => new < old,
            _ => false,
        };
    if ends_sooner {
        actor.require_step_up()?;
        change = guard(actor, change, FrozenOp::RemoveSwitchProtection).await?;
    }
    let set_by = actor.label();
    queries::upsert(
        &mut change,
        &queries::NewValue {
            key,
            tenant: tenant_uuid,
            value,
            reason: &reason,
            set_by: &set_by,
            expires_at,
            revert_to,
        },
    )
    .await?;
    let event = actor
        .event("switch.flipped")
        .target(target(key, slug))
        .reason(reason)
        .details(serde_json::json!({
            "key": key.as_str(),
            "scope": slug.unwrap_or("global"),
            "from": current,
            "to": value,
            "expires_at": expires_at.map(|t| t.unix_timestamp()),
            "reverts_to": revert_to,
            "removes_protection": removes_protection(key, value),
        }))
        .tenant(tenant_uuid);
    change.commit(event).await?;
    Ok(Flipped {
        key,
        value,
        expires_at,
    })
}

/// Removes a tenant's override: the tenant follows the global value again.
///
/// When the override protects the tenant and the global value does not (the tenant would
/// lose a protection), `confirmation` must be the key, as for a flip that removes one.
pub async fn remove_override(
    actor: &Actor,
    key: &str,
    tenant: &str,
    reason: &str,
    confirmation: &str,
) -> Result<(), AppError> {
    let key = parse_key(key)?;
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let Some((tenant_uuid, slug)) = tenant_id(&mut change, tenant).await? else {
        return Err(AppError::validation(
            "tenant",
            "Choose the tenant whose override to remove.",
        ));
    };
    let global = queries::lock_row(&mut change, key, None).await?;
    let stored = queries::lock_row(&mut change, key, Some(tenant_uuid)).await?;
    let falls_back_to = global.map(|g| g.value).unwrap_or(key.default_value());
    let loses_protection = stored.as_ref().is_some_and(|o| {
        o.value == key.protective_value() && removes_protection(key, falls_back_to)
    });
    // Falling back is a flip of the tenant's value: as dangerous as flipping it by hand
    // (losing a protection, or the agent API or payments going off for the tenant).
    let dangerous = stored
        .as_ref()
        .is_some_and(|o| o.value != falls_back_to && needs_step_up(key, falls_back_to));
    if dangerous {
        // Checked under the rows' locks, so the step-up is asked before anything changes.
        actor.require_step_up()?;
    }
    if loses_protection {
        change = guard(actor, change, FrozenOp::RemoveSwitchProtection).await?;
    }
    if loses_protection && confirmation.trim() != key.as_str() {
        return Err(AppError::validation(
            "confirmation",
            format!(
                "{slug} would fall back to {} {}, losing a protection: type {} to confirm.",
                key.as_str(),
                key.value_label(falls_back_to),
                key.as_str()
            ),
        ));
    }
    let removed = queries::delete_override(&mut change, key, tenant_uuid).await?;
    let Some(was) = removed else {
        return Err(AppError::Conflict {
            field: None,
            message: format!("{slug} has no override of {}.", key.as_str()),
        });
    };
    let event = actor
        .event("switch.override_removed")
        .target(target(key, Some(&slug)))
        .reason(reason)
        .details(serde_json::json!({ "key": key.as_str(), "scope": slug, "was": was }))
        .tenant(tenant_uuid);
    change.commit(event).await?;
    Ok(())
}

/// Reverts every timed flip whose expiry passed, each with a `switch.reverted` event by the
/// system. Returns how many were reverted. Rows another instance is reverting are skipped.
pub async fn revert_expired(system: &Actor) -> Result<usize, AppError> {
    let mut change = system.change().await?;
    let due = queries::lock_due(&mut change).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let mut events = Vec::with_capacity(due.len());
    for row in &due {
        let Some(key) = SwitchKey::parse(&row.key) else {
            continue;
        };
        let to = match (row.tenant_id, row.revert_to) {
            (Some(tenant), None) => {
                queries::delete_expired_override(&mut change, &row.key, tenant).await?;
                None
            }
            (tenant, revert_to) => {
                let to = revert_to.unwrap_or(key.default_value());
                queries::revert(&mut change, &row.key, tenant, to).await?;
                Some(to)
            }
        };
        let event = system
            .event("switch.reverted")
            .target(target(key, row.slug.as_deref()))
            .reason(format!("timer of the flip by {} ran out", row.set_by))
            .details(serde_json::json!({
                "key": key.as_str(),
                "scope": row.slug.as_deref().unwrap_or("global"),
                "from": row.value,
                "to": to,
                "override_removed": to.is_none(),
                "flipped_by": row.set_by,
                "flipped_at": row.set_at.unix_timestamp(),
                "flip_reason": row.reason,
            }))
            .tenant(row.tenant_id);
        events.push(event);
    }
    change.commit_all(&events).await?;
    Ok(events.len())
}
