//! API client changes, each one transaction with its audit event. Status and allowlist
//! changes notify every gateway instance through the `api_clients` triggers.

use super::{
    normalize_name, parse_grace_hours, ClientDetail, ClientRow, KeyRow, MintedKey, RevokePreview,
};
use crate::audit::NewEvent;
use crate::auth::Actor;
use crate::auth::Reader;
use crate::error::AppError;
use crate::panels::integrations::queries::{record_revocations, revoke_matching, Matching};
use crate::panels::integrations::{normalize_reason, TokenEvent};
use crate::secret::SecretString;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgExecutor, PgPool};
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

/// The tenant's clients, optionally of one status or the one with `id`, by name.
async fn query(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    status: Option<&str>,
    id: Option<Uuid>,
) -> sqlx::Result<Vec<ClientRow>> {
    sqlx::query_as!(
        ClientRow,
        r#"SELECT c.id, c.name, c.status::text AS "status!", c.allowlisted, c.status_reason,
                  c.created_at,
                  (SELECT count(*) FROM personal_access_tokens p
                   WHERE p.owner_client_id = c.id AND p.status = 'active'
                     AND p.expires_at > now()) AS "live_tokens!",
                  (SELECT k.version FROM client_keys k
                   WHERE k.client_id = c.id AND k.state = 'active') AS key_version
           FROM api_clients c
           WHERE c.tenant_id = $1 AND ($2::text IS NULL OR c.status::text = $2)
             AND ($3::uuid IS NULL OR c.id = $3)
           ORDER BY c.name
           LIMIT 500"#,
        tenant,
        status,
        id
    )
    .fetch_all(db)
    .await
}

/// The tenant's clients, optionally of one status, by name.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    status: Option<&str>,
) -> sqlx::Result<Vec<ClientRow>> {
    query(db, tenant, status, None).await
}

async fn row(db: impl PgExecutor<'_>, tenant: Uuid, id: Uuid) -> Result<ClientRow, AppError> {
    query(db, tenant, None, Some(id))
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found("This API client"))
}

/// A client with its keys, its history and the recent refusals of its tokens.
pub async fn detail(pool: &Reader, tenant: Uuid, id: Uuid) -> Result<ClientDetail, AppError> {
    let client = row(pool, tenant, id).await?;
    let keys = sqlx::query_as!(
        KeyRow,
        "SELECT version, state, created_at, created_by, retire_after, retired_at
         FROM client_keys WHERE client_id = $1 ORDER BY version DESC",
        id
    )
    .fetch_all(pool)
    .await?;
    let history = sqlx::query_as!(
        TokenEvent,
        r#"SELECT seq, ts, action AS "kind!", outcome::text AS "outcome!", code,
                  coalesce(actor_name, actor) AS "actor!", host(ip) AS ip,
                  coalesce((details ->> 'count')::bigint, 1) AS "count!", reason
           FROM audit_events WHERE target = 'client:' || $1::uuid::text
           ORDER BY seq DESC LIMIT 50"#,
        id
    )
    .fetch_all(pool)
    .await?;
    let denials = sqlx::query_as!(
        TokenEvent,
        r#"SELECT e.seq, e.ts, e.action AS "kind!", e.outcome::text AS "outcome!", e.code,
                  coalesce(e.actor_name, e.actor) AS "actor!", host(e.ip) AS ip,
                  coalesce((e.details ->> 'count')::bigint, 1) AS "count!", e.reason
           FROM personal_access_tokens p
           CROSS JOIN LATERAL (
               SELECT * FROM audit_events a
               WHERE a.target = 'pat:' || p.id AND a.outcome <> 'success'
               ORDER BY a.seq DESC LIMIT 20
           ) e
           WHERE p.owner_client_id = $1
           ORDER BY e.seq DESC LIMIT 20"#,
        id
    )
    .fetch_all(pool)
    .await?;
    Ok(ClientDetail {
        client,
        keys,
        history,
        denials,
    })
}

async fn insert_key(
    conn: &mut PgConnection,
    client: Uuid,
    version: i32,
    by: &str,
) -> sqlx::Result<SecretString> {
    let secret = new_key();
    sqlx::query!(
        "INSERT INTO client_keys (client_id, version, secret_hash, state, created_by)
         VALUES ($1, $2, $3, 'active', $4)",
        client,
        version,
        &key_hash(secret.expose())[..],
        by
    )
    .execute(conn)
    .await?;
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
    let mut change = actor.change().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO api_clients (tenant_id, name, allowlisted, created_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
        tenant,
        name,
        allowlisted,
        actor.label()
    )
    .fetch_optional(change.db())
    .await?
    .ok_or_else(|| {
        AppError::validation(
            "name",
            format!("This tenant already has a client named “{name}”."),
        )
    })?;
    let secret = insert_key(change.db(), id, 1, &actor.label()).await?;
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

struct Locked {
    name: String,
    status: String,
    allowlisted: bool,
}

async fn lock(conn: &mut PgConnection, tenant: Uuid, id: Uuid) -> Result<Locked, AppError> {
    sqlx::query_as!(
        Locked,
        r#"SELECT name, status::text AS "status!", allowlisted FROM api_clients
           WHERE id = $1 AND tenant_id = $2 FOR UPDATE"#,
        id,
        tenant
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::not_found("This API client"))
}

fn revoked_is_final(name: &str) -> AppError {
    AppError::Conflict {
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
    let client = lock(change.db(), tenant, id).await?;
    let (from, to, action) = match (client.status.as_str(), active) {
        ("revoked", _) => return Err(revoked_is_final(&client.name)),
        ("active", true) | ("suspended", false) => {
            return Err(AppError::Conflict {
                message: format!("“{}” is already {}.", client.name, client.status),
            })
        }
        (from, true) => (from.to_owned(), "active", "client.reactivated"),
        (from, false) => (from.to_owned(), "suspended", "client.suspended"),
    };
    sqlx::query!(
        "UPDATE api_clients SET status = $2::text::client_status, status_reason = $3,
                status_changed_at = now(), status_changed_by = $4, updated_at = now()
         WHERE id = $1",
        id,
        to,
        reason,
        actor.label()
    )
    .execute(change.db())
    .await?;
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
    let client = lock(change.db(), tenant, id).await?;
    if client.status == "revoked" {
        return Err(revoked_is_final(&client.name));
    }
    if client.allowlisted == allowlisted {
        return Err(AppError::Conflict {
            message: format!(
                "“{}” is already {} the allowlist.",
                client.name,
                if allowlisted { "on" } else { "off" }
            ),
        });
    }
    sqlx::query!(
        "UPDATE api_clients SET allowlisted = $2, updated_at = now() WHERE id = $1",
        id,
        allowlisted
    )
    .execute(change.db())
    .await?;
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
    let client = lock(change.db(), tenant, id).await?;
    if client.status == "revoked" {
        return Err(revoked_is_final(&client.name));
    }
    let old = sqlx::query_scalar!(
        "SELECT version FROM client_keys WHERE client_id = $1 AND state = 'active'",
        id
    )
    .fetch_optional(change.db())
    .await?;
    let next = sqlx::query_scalar!(
        r#"SELECT coalesce(max(version), 0) + 1 AS "v!" FROM client_keys WHERE client_id = $1"#,
        id
    )
    .fetch_one(change.db())
    .await?;
    let retire_after = (grace > 0).then(|| OffsetDateTime::now_utc() + Duration::hours(grace));
    if let Some(old) = old {
        sqlx::query!(
            "UPDATE client_keys
             SET state = CASE WHEN $3::timestamptz IS NULL THEN 'retired' ELSE 'retiring' END,
                 retire_after = $3,
                 retired_at = CASE WHEN $3::timestamptz IS NULL THEN now() END
             WHERE client_id = $1 AND version = $2",
            id,
            old,
            retire_after
        )
        .execute(change.db())
        .await?;
    }
    let secret = insert_key(change.db(), id, next, &actor.label()).await?;
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

/// What revoking the client would take.
pub async fn preview_revoke(
    pool: &Reader,
    tenant: Uuid,
    id: Uuid,
) -> Result<RevokePreview, AppError> {
    let client = row(pool, tenant, id).await?;
    let live_keys = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM client_keys
           WHERE client_id = $1 AND state IN ('active', 'retiring')"#,
        id
    )
    .fetch_one(pool)
    .await?;
    let live_tokens = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM personal_access_tokens
           WHERE owner_client_id = $1 AND status = 'active'"#,
        id
    )
    .fetch_one(pool)
    .await?;
    Ok(RevokePreview {
        name: client.name,
        live_tokens,
        live_keys,
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
    let client = lock(change.db(), tenant, id).await?;
    if client.status == "revoked" {
        return Err(AppError::Conflict {
            message: format!("“{}” is already revoked.", client.name),
        });
    }
    if confirmation.trim() != client.name {
        return Err(AppError::validation(
            "confirmation",
            format!("Type the client's name, {}, to confirm.", client.name),
        ));
    }
    sqlx::query!(
        "UPDATE api_clients SET status = 'revoked', status_reason = $2, status_changed_at = now(),
                status_changed_by = $3, updated_at = now()
         WHERE id = $1",
        id,
        reason,
        actor.label()
    )
    .execute(change.db())
    .await?;
    let keys = sqlx::query_scalar!(
        "UPDATE client_keys SET state = 'revoked', retired_at = now(), retire_after = NULL
         WHERE client_id = $1 AND state IN ('active', 'retiring') RETURNING version",
        id
    )
    .fetch_all(change.db())
    .await?;
    let token_reason = format!("API client “{}” revoked: {reason}", client.name);
    let matching = Matching {
        tenant: Some(tenant),
        client: Some(id),
        ..Matching::default()
    };
    let revoked = revoke_matching(change.db(), matching, &actor.label(), &token_reason).await?;
    if revoked.len() as i64 > expected {
        return Err(AppError::Conflict {
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
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM client_keys k JOIN api_clients c ON c.id = k.client_id
               WHERE k.client_id = $1 AND k.secret_hash = $2 AND c.status = 'active'
                 AND (k.state = 'active' OR (k.state = 'retiring' AND k.retire_after > now()))
           ) AS "works!""#,
        client,
        &key_hash(secret)[..]
    )
    .fetch_one(pool)
    .await
}

/// Retires old keys whose grace period ended, each with a `client.key_retired` event by the
/// system. Rows another instance is handling are skipped.
pub async fn retire_due_keys(system: &Actor) -> Result<usize, AppError> {
    let mut change = system.change().await?;
    let due = sqlx::query!(
        "UPDATE client_keys k SET state = 'retired', retired_at = now(), retire_after = NULL
         FROM (SELECT client_id, version FROM client_keys
               WHERE state = 'retiring' AND retire_after <= now()
               FOR UPDATE SKIP LOCKED) d, api_clients c
         WHERE k.client_id = d.client_id AND k.version = d.version AND c.id = k.client_id
         RETURNING k.client_id, k.version, c.tenant_id, c.name"
    )
    .fetch_all(change.db())
    .await?;
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
