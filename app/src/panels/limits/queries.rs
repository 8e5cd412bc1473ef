//! SQL of the rate-limit and block-list panel. Reads take the reader; changes take the
//! `Change`.

use super::{BlockRow, OverrideRow};
use crate::auth::Change;
use crate::auth::Reader;
use crate::domain::status::LimitScope;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// The overrides and blocks in force.
pub async fn in_force(db: &Reader) -> sqlx::Result<(Vec<OverrideRow>, Vec<BlockRow>)> {
    let overrides = sqlx::query_as!(
        OverrideRow,
        r#"SELECT o.id, o.scope AS "scope: LimitScope",
                  CASE o.scope WHEN 'ip' THEN o.network::text
                               WHEN 'client' THEN t.slug || '/' || c.name
                               ELSE t.slug END AS "subject!",
                  o.limit_per_minute, o.burst, o.reason, o.expires_at, o.created_by, o.created_at
           FROM rate_limit_overrides o
           LEFT JOIN tenants t ON t.id = o.tenant_id
           LEFT JOIN api_clients c ON c.id = o.client_id
           WHERE o.expires_at IS NULL OR o.expires_at > now()
           ORDER BY o.scope, 3"#
    )
    .fetch_all(db)
    .await?;
    let blocks = blocks(db).await?;
    Ok((overrides, blocks))
}

async fn blocks(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<BlockRow>> {
    sqlx::query_as!(
        BlockRow,
        r#"SELECT network::text AS "network!", reason, expires_at, created_by, created_at
           FROM ip_blocks WHERE expires_at IS NULL OR expires_at > now()
           ORDER BY network"#
    )
    .fetch_all(db)
    .await
}

/// The id of the tenant's API client named `name`.
pub async fn client_id(
    change: &mut Change,
    tenant: Uuid,
    name: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM api_clients WHERE tenant_id = $1 AND name = $2",
        tenant,
        name
    )
    .fetch_optional(change.db())
    .await
}

/// An override as stored.
pub struct StoredOverride {
    /// Requests per minute.
    pub limit_per_minute: i32,
    /// Burst.
    pub burst: i32,
    /// Why.
    pub reason: String,
    /// When it stops applying.
    pub expires_at: Option<OffsetDateTime>,
}

/// Locks the override of a subject (expired or not), if there is one.
pub async fn lock_override(
    change: &mut Change,
    scope: &str,
    tenant: Option<Uuid>,
    client: Option<Uuid>,
    network: Option<&str>,
) -> sqlx::Result<Option<StoredOverride>> {
    sqlx::query_as!(
        StoredOverride,
        r#"SELECT limit_per_minute, burst, reason, expires_at FROM rate_limit_overrides
           WHERE scope = $1 AND tenant_id IS NOT DISTINCT FROM $2
             AND client_id IS NOT DISTINCT FROM $3
             AND network IS NOT DISTINCT FROM $4::text::cidr
           FOR UPDATE"#,
        scope,
        tenant,
        client,
        network
    )
    .fetch_optional(change.db())
    .await
}

/// An override still in force, locked, by id: its scope and limit.
pub struct HeldOverride {
    /// `tenant`, `client` or `ip`.
    pub scope: String,
    /// Requests per minute.
    pub limit_per_minute: i32,
    /// Burst.
    pub burst: i32,
}

/// The override `id` if it is still in force, locked until the change ends.
pub async fn lock_live_override(
    change: &mut Change,
    id: Uuid,
) -> sqlx::Result<Option<HeldOverride>> {
    sqlx::query_as!(
        HeldOverride,
        r#"SELECT scope, limit_per_minute, burst FROM rate_limit_overrides
           WHERE id = $1 AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE"#,
        id
    )
    .fetch_optional(change.db())
    .await
}

/// What setting an override stores.
pub struct NewOverride<'a> {
    /// `tenant`, `client` or `ip`.
    pub scope: &'a str,
    /// The tenant (of a tenant or client override).
    pub tenant: Option<Uuid>,
    /// The client (of a client override).
    pub client: Option<Uuid>,
    /// The network (of an ip override), in CIDR notation.
    pub network: Option<&'a str>,
    /// Requests per minute.
    pub limit_per_minute: i32,
    /// Burst.
    pub burst: i32,
    /// Why.
    pub reason: &'a str,
    /// When it stops applying; `None` for never.
    pub expires_at: Option<OffsetDateTime>,
    /// Who set it.
    pub created_by: &'a str,
}

/// Inserts the override of a subject, or replaces the one it has.
pub async fn upsert_override(change: &mut Change, new: &NewOverride<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO rate_limit_overrides
             (scope, tenant_id, client_id, network, limit_per_minute, burst, reason, expires_at, created_by)
         VALUES ($1, $2, $3, $4::text::cidr, $5, $6, $7, $8, $9)
         ON CONFLICT (scope, tenant_id, client_id, network) DO UPDATE
         SET limit_per_minute = EXCLUDED.limit_per_minute, burst = EXCLUDED.burst,
             reason = EXCLUDED.reason, expires_at = EXCLUDED.expires_at,
             created_by = EXCLUDED.created_by, created_at = now()",
        new.scope,
        new.tenant,
        new.client,
        new.network,
        new.limit_per_minute,
        new.burst,
        new.reason,
        new.expires_at,
        new.created_by
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// An override as it was when removed.
pub struct RemovedOverride {
    /// `tenant`, `client` or `ip`.
    pub scope: String,
    /// Its tenant, if any.
    pub tenant_id: Option<Uuid>,
    /// The network, or the tenant's slug.
    pub subject: Option<String>,
    /// Requests per minute.
    pub limit_per_minute: i32,
    /// Burst.
    pub burst: i32,
}

/// Deletes an override by id; `None` when there is none.
pub async fn delete_override(
    change: &mut Change,
    id: Uuid,
) -> sqlx::Result<Option<RemovedOverride>> {
    sqlx::query_as!(
        RemovedOverride,
        r#"DELETE FROM rate_limit_overrides o WHERE id = $1
           RETURNING scope, tenant_id,
                     coalesce(host(network) || '/' || masklen(network),
                              (SELECT slug FROM tenants t WHERE t.id = o.tenant_id)) AS subject,
                     limit_per_minute, burst"#,
        id
    )
    .fetch_optional(change.db())
    .await
}

pub use crate::domain::gateway::controls::blocks::upsert as upsert_block;

/// The expiry of the block in force on `network`, locked: `None` when there is none,
/// `Some(None)` for a block without an expiry.
pub async fn lock_live_block(
    change: &mut Change,
    network: &str,
) -> sqlx::Result<Option<Option<OffsetDateTime>>> {
    Ok(sqlx::query!(
        r#"SELECT expires_at FROM ip_blocks
           WHERE network = $1::text::cidr AND (expires_at IS NULL OR expires_at > now())
           FOR UPDATE"#,
        network
    )
    .fetch_optional(change.db())
    .await?
    .map(|r| r.expires_at))
}

/// Lifts the block of `network`; returns its reason, `None` when it was not blocked.
pub async fn delete_block(change: &mut Change, network: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "DELETE FROM ip_blocks WHERE network = $1::text::cidr RETURNING reason",
        network
    )
    .fetch_optional(change.db())
    .await
}
