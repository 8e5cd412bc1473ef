//! API client changes, each one transaction with its audit event. Status and allowlist
//! changes notify every gateway instance through the `api_clients` triggers.

use super::{normalize_name, parse_grace_hours, queries, MintedKey};
use crate::auth::Actor;
use crate::auth::Change;
use crate::domain::audit::NewEvent;
use crate::domain::input::normalize_reason;
use crate::domain::status::ClientStatus;
use crate::error::AppError;
use crate::panels::integrations::queries::{record_revocations, revoke_matching, Matching};
use crate::secret::SecretString;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

/// How a client key starts.
pub const KEY_PREFIX: &str = "mf_ck_v1.";

/// The stored form of a client key: SHA-256 of its text (the key is 32 random bytes, so a
/// fast hash is enough).
pub fn key_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn new_key() -> SecretString {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::fill(&mut bytes[..]);
    SecretString::new(format!(
        "{KEY_PREFIX}{}",
        bs58::encode(&bytes[..]).into_string()
    ))
}

fn target(id: Uuid) -> String {
    format!("client:{id}")
}

async fn insert_key(
    change: &mut Change,
    client: Uuid,
    version: i32,
    by: &str,
) -> sqlx::Result<SecretString> {
    let secret = new_key();
    queries::insert_key(change, client, version, &key_hash(secret.expose())[..], by).await?;
    Ok(secret)
}

/// Creates a client with its first key, shown once.
pub async fn create(
    actor: &Actor,
    tenant: Uuid,
    name: &str,
    allowlisted: bool,
) -> Result<MintedKey, AppError> {
    let name = normalize_name(name)?;
    let mut change = crate::domain::freeze::guard(
        actor,
        actor.change().await?,
        crate::domain::freeze::FrozenOp::CreateClient,
    )
    .await?;
    let id = queries::insert_client(&mut change, tenant, &name, allowlisted, &actor.label())
        .await?
        .ok_or_else(|| {
            AppError::taken(
                "name",
                format!("This tenant already has a client named “{name}”."),
            )
        })?;
    let secret = insert_key(&mut change, id, 1, &actor.label()).await?;
    let event = actor
        .event("client.created")
        .target(target(id))
        .details(serde_json::json!({ "name": name, "allowlisted": allowlisted, "key_version": 1 }))
        .tenant(tenant);
    change.commit(event).await?;
    Ok(MintedKey {
        client_id: id,
        version: 1,
        secret: secret.expose().to_owned(),
    })
}

async fn lock(
    change: &mut Change,
    tenant: Uuid,
    id: Uuid,
) -> Result<queries::LockedClient, AppError> {
    queries::lock(change, tenant, id)
        .await?
        .ok_or_else(|| AppError::not_found("This API client"))
}

fn revoked_is_final(name: &str) -> AppError {
    AppError::Conflict {
        field: None,
        message: format!(
            "“{name}” was revoked, and revocation is final. Create a new client instead."
        ),
    }
}

/// Suspends (`active = false`) or reactivates (`active = true`) a client.
pub async fn set_active(
    actor: &Actor,
    tenant: Uuid,
    id: Uuid,
    active: bool,
    reason: &str,
) -> Result<(), AppError> {
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    if active {
        change = crate::domain::freeze::guard(
            actor,
            change,
            crate::domain::freeze::FrozenOp::ReactivateClient,
        )
        .await?;
    }
    let client = lock(&mut change, tenant, id).await?;
    let (from, to, action) = match (client.status.as_str(), active) {
        ("revoked", _) => return Err(revoked_is_final(&client.name)),
        ("active", true) | ("suspended", false) => {
            return Err(AppError::Conflict {
                field: None,
                message: format!("“{}” is already {}.", client.name, client.status),
            })
        }
        (from, true) => (from.to_owned(), "active", "client.reactivated"),
        (from, false) => (from.to_owned(), "suspended", "client.suspended"),
    };
    queries::set_status(&mut change, id, to, &reason, &actor.label()).await?;
    let event = actor
        .event(action)
        .target(target(id))
        .reason(reason)
        .details(serde_json::json!({ "name": client.name, "from": from, "to": to }))
        .tenant(tenant);
    change.commit(event).await?;
    Ok(())
}

/// Puts a client on the allowlist or takes it off.
pub async fn set_allowlisted(
    actor: &Actor,
    tenant: Uuid,
    id: Uuid,
    allowlisted: bool,
    reason: &str,
) -> Result<(), AppError> {
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    if allowlisted {
        change = crate::domain::freeze::guard(
            actor,
            change,
            crate::domain::freeze::FrozenOp::AllowlistClient,
        )
        .await?;
    }
    let client = lock(&mut change, tenant, id).await?;
    if client.status == ClientStatus::Revoked {
        return Err(revoked_is_final(&client.name));
    }
    if client.allowlisted == allowlisted {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "“{}” is already {} the allowlist.",
                client.name,
                if allowlisted { "on" } else { "off" }
            ),
        });
    }
    queries::set_allowlisted(&mut change, id, allowlisted).await?;
    let action = if allowlisted {
        "client.allowlisted"
    } else {
        "client.unallowlisted"
    };
    let event = actor
        .event(action)
        .target(target(id))
        .reason(reason)
        .details(serde_json::json!({ "name": client.name }))
        .tenant(tenant);
    change.commit(event).await?;
    Ok(())
}

/// Rotates a client's key: a new version, shown once; the old one retired at once
/// (`grace_hours` 0) or after the grace period.
pub async fn rotate_key(
    actor: &Actor,
    tenant: Uuid,
    id: Uuid,
    grace_hours: &str,
    reason: &str,
) -> Result<MintedKey, AppError> {
    let grace = parse_grace_hours(grace_hours)?;
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    // Retiring the old key at once answers a leaked key, and stays allowed; a rotation
    // that keeps the old key working is not a response to a leak.
    if grace > 0 {
        change = crate::domain::freeze::guard(
            actor,
            change,
            crate::domain::freeze::FrozenOp::RotateClientKey,
        )
        .await?;
    }
    let client = lock(&mut change, tenant, id).await?;
    if client.status == ClientStatus::Revoked {
        return Err(revoked_is_final(&client.name));
    }
    let old = queries::active_key_version(&mut change, id).await?;
    let next = queries::next_key_version(&mut change, id).await?;
    let retire_after = (grace > 0).then(|| OffsetDateTime::now_utc() + Duration::hours(grace));
    if let Some(old) = old {
        queries::retire_key(&mut change, id, old, retire_after).await?;
    }
    let secret = insert_key(&mut change, id, next, &actor.label()).await?;
    let event = actor
        .event("client.key_rotated")
        .target(target(id))
        .reason(reason)
        .details(serde_json::json!({
            "name": client.name,
            "new_version": next,
            "old_version": old,
            "old_retires_at": retire_after.map(|t| t.unix_timestamp()),
        }))
        .tenant(tenant);
    change.commit(event).await?;
    Ok(MintedKey {
        client_id: id,
        version: next,
        secret: secret.expose().to_owned(),
    })
}

/// Revokes a client for good, with its tokens and keys. `confirmation` must be the client's
/// name; `expected` the token count of the preview (more since: refused, preview again).
pub async fn revoke(
    actor: &Actor,
    tenant: Uuid,
    id: Uuid,
    reason: &str,
    confirmation: &str,
    expected: i64,
) -> Result<i64, AppError> {
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let client = lock(&mut change, tenant, id).await?;
    if client.status == ClientStatus::Revoked {
        return Err(AppError::Conflict {
            field: None,
            message: format!("“{}” is already revoked.", client.name),
        });
    }
    if confirmation.trim() != client.name {
        return Err(AppError::validation(
            "confirmation",
            format!("Type the client's name, {}, to confirm.", client.name),
        ));
    }
    queries::set_revoked(&mut change, id, &reason, &actor.label()).await?;
    let keys = queries::revoke_keys(&mut change, id).await?;
    let token_reason = format!("API client “{}” revoked: {reason}", client.name);
    let matching = Matching {
        tenant: Some(tenant),
        client: Some(id),
        ..Matching::default()
    };
    let revoked = revoke_matching(&mut change, matching, &actor.label(), &token_reason).await?;
    if revoked.len() as i64 > expected {
        return Err(AppError::Conflict {
 field: None,
            message: format!(
                "The client has {} active token(s) now, more than the {expected} previewed. Preview again.",
                revoked.len()
            ),
        });
    }
    let template = actor.event("token.revoked").reason(token_reason);
    record_revocations(&mut change, &template, &revoked).await?;
    let event = actor
        .event("client.revoked")
        .target(target(id))
        .reason(reason)
        .details(serde_json::json!({
            "name": client.name,
            "tokens_revoked": revoked.len(),
            "keys_revoked": keys,
        }))
        .tenant(tenant);
    change.commit(event).await?;
    Ok(revoked.len() as i64)
}

/// Whether `secret` is a working key (active, or retiring within its grace period) of the
/// client. Compares hashes, so the secret itself is never looked up.
pub async fn key_works(pool: &PgPool, client: Uuid, secret: &str) -> sqlx::Result<bool> {
    queries::key_works(pool, client, &key_hash(secret)[..]).await
}

/// Retires old keys whose grace period ended, each with a `client.key_retired` event by the
/// system. Rows another instance is handling are skipped.
pub async fn retire_due_keys(system: &Actor) -> Result<usize, AppError> {
    let mut change = system.change().await?;
    let due = queries::retire_due_keys(&mut change).await?;
    let events: Vec<NewEvent> = due
        .iter()
        .map(|row| {
            system
                .event("client.key_retired")
                .tenant(row.tenant_id)
                .target(target(row.client_id))
                .reason("the old key's grace period after a rotation ended")
                .details(serde_json::json!({ "name": row.name, "version": row.version }))
        })
        .collect();
    change.commit_all(&events).await?;
    Ok(events.len())
}
