//! SQL of the Agent Ops panel. Reads take any executor (or the reader); changes take the
//! `Change`.

use super::{ClientDetail, ClientRow, KeyRow, RevokePreview};
use crate::auth::Change;
use crate::auth::Reader;
use crate::domain::audit::Outcome;
use crate::domain::status::{ClientStatus, KeyState};
use crate::error::AppError;
use crate::panels::integrations::TokenEvent;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// The tenant's clients, optionally of one status or the one with `id`, by name.
async fn clients(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    status: Option<&str>,
    id: Option<Uuid>,
) -> sqlx::Result<Vec<ClientRow>> {
    sqlx::query_as!(
        ClientRow,
        r#"SELECT c.id, c.name, c.status::text AS "status!: ClientStatus", c.allowlisted, c.status_reason,
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
    clients(db, tenant, status, None).await
}

async fn row(db: impl PgExecutor<'_>, tenant: Uuid, id: Uuid) -> Result<ClientRow, AppError> {
    clients(db, tenant, None, Some(id))
        .await?
        .pop()
        .ok_or_else(|| AppError::not_found("This API client"))
}

/// A client with its keys, its history and the recent refusals of its tokens.
pub async fn detail(pool: &Reader, tenant: Uuid, id: Uuid) -> Result<ClientDetail, AppError> {
    let client = row(pool, tenant, id).await?;
    let keys = sqlx::query_as!(
        KeyRow,
        r#"SELECT version, state AS "state: KeyState", created_at, created_by, retire_after, retired_at
         FROM client_keys WHERE client_id = $1 ORDER BY version DESC"#,
        id
    )
    .fetch_all(pool)
    .await?;
    let history = sqlx::query_as!(
        TokenEvent,
        r#"SELECT seq, ts, action AS "kind!", outcome::text AS "outcome!: Outcome", code,
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
        r#"SELECT e.seq, e.ts, e.action AS "kind!", e.outcome::text AS "outcome!: Outcome", e.code,
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

/// Inserts a client; `None` when the tenant already has one of that name.
pub async fn insert_client(
    change: &mut Change,
    tenant: Uuid,
    name: &str,
    allowlisted: bool,
    by: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "INSERT INTO api_clients (tenant_id, name, allowlisted, created_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING id",
        tenant,
        name,
        allowlisted,
        by
    )
    .fetch_optional(change.db())
    .await
}

/// Stores an active key of `client` by its hash.
pub async fn insert_key(
    change: &mut Change,
    client: Uuid,
    version: i32,
    secret_hash: &[u8],
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO client_keys (client_id, version, secret_hash, state, created_by)
         VALUES ($1, $2, $3, 'active', $4)",
        client,
        version,
        secret_hash,
        by
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// A client about to be changed, locked.
pub struct LockedClient {
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: ClientStatus,
    /// On the allowlist.
    pub allowlisted: bool,
}

/// Locks one client of the tenant.
pub async fn lock(
    change: &mut Change,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<LockedClient>> {
    sqlx::query_as!(
        LockedClient,
        r#"SELECT name, status::text AS "status!: ClientStatus", allowlisted FROM api_clients
           WHERE id = $1 AND tenant_id = $2 FOR UPDATE"#,
        id,
        tenant
    )
    .fetch_optional(change.db())
    .await
}

/// Sets a client's status (`active` or `suspended`), with why and by whom.
pub async fn set_status(
    change: &mut Change,
    id: Uuid,
    status: &str,
    reason: &str,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_clients SET status = $2::text::client_status, status_reason = $3,
                status_changed_at = now(), status_changed_by = $4, updated_at = now()
         WHERE id = $1",
        id,
        status,
        reason,
        by
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Puts a client on the allowlist or takes it off.
pub async fn set_allowlisted(change: &mut Change, id: Uuid, allowlisted: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_clients SET allowlisted = $2, updated_at = now() WHERE id = $1",
        id,
        allowlisted
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// The version of the client's active key.
pub async fn active_key_version(change: &mut Change, id: Uuid) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!(
        "SELECT version FROM client_keys WHERE client_id = $1 AND state = 'active'",
        id
    )
    .fetch_optional(change.db())
    .await
}

/// The version a new key of the client takes.
pub async fn next_key_version(change: &mut Change, id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(max(version), 0) + 1 AS "v!" FROM client_keys WHERE client_id = $1"#,
        id
    )
    .fetch_one(change.db())
    .await
}

/// Retires key `version` of the client at once (`retire_after` `None`) or puts it in its
/// grace period until `retire_after`.
pub async fn retire_key(
    change: &mut Change,
    id: Uuid,
    version: i32,
    retire_after: Option<OffsetDateTime>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE client_keys
             SET state = CASE WHEN $3::timestamptz IS NULL THEN 'retired' ELSE 'retiring' END,
                 retire_after = $3,
                 retired_at = CASE WHEN $3::timestamptz IS NULL THEN now() END
             WHERE client_id = $1 AND version = $2",
        id,
        version,
        retire_after
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Marks a client revoked, with why and by whom.
pub async fn set_revoked(
    change: &mut Change,
    id: Uuid,
    reason: &str,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_clients SET status = 'revoked', status_reason = $2, status_changed_at = now(),
                status_changed_by = $3, updated_at = now()
         WHERE id = $1",
        id,
        reason,
        by
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Revokes the client's working keys; returns their versions.
pub async fn revoke_keys(change: &mut Change, id: Uuid) -> sqlx::Result<Vec<i32>> {
    sqlx::query_scalar!(
        "UPDATE client_keys SET state = 'revoked', retired_at = now(), retire_after = NULL
         WHERE client_id = $1 AND state IN ('active', 'retiring') RETURNING version",
        id
    )
    .fetch_all(change.db())
    .await
}

/// Whether a key of the client with `secret_hash` works: active, or retiring within its
/// grace period, of an active client.
pub async fn key_works(
    db: impl PgExecutor<'_>,
    client: Uuid,
    secret_hash: &[u8],
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
               SELECT 1 FROM client_keys k JOIN api_clients c ON c.id = k.client_id
               WHERE k.client_id = $1 AND k.secret_hash = $2 AND c.status = 'active'
                 AND (k.state = 'active' OR (k.state = 'retiring' AND k.retire_after > now()))
           ) AS "works!""#,
        client,
        secret_hash
    )
    .fetch_one(db)
    .await
}

/// A key [`retire_due_keys`] retired.
pub struct RetiredKey {
    /// Its client.
    pub client_id: Uuid,
    /// Its version.
    pub version: i32,
    /// The client's tenant.
    pub tenant_id: Uuid,
    /// The client's name.
    pub name: String,
}

/// Retires the old keys whose grace period ended, skipping rows another instance holds.
pub async fn retire_due_keys(change: &mut Change) -> sqlx::Result<Vec<RetiredKey>> {
    sqlx::query_as!(
        RetiredKey,
        "UPDATE client_keys k SET state = 'retired', retired_at = now(), retire_after = NULL
         FROM (SELECT client_id, version FROM client_keys
               WHERE state = 'retiring' AND retire_after <= now()
               FOR UPDATE SKIP LOCKED) d, api_clients c
         WHERE k.client_id = d.client_id AND k.version = d.version AND c.id = k.client_id
         RETURNING k.client_id, k.version, c.tenant_id, c.name"
    )
    .fetch_all(change.db())
    .await
}
