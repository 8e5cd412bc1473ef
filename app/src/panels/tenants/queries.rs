//! SQL of tenant management. Mutations take the [`Change`] they are part of.

use super::{NewTenant, TenantSettings};
use crate::auth::Change;
use crate::domain::status::SigningAlgorithm;
use crate::domain::tenants::Tenant;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Inserts a tenant; a taken slug is the unique violation `tenants_slug_key` (a message at
/// the slug field).
pub async fn insert(change: &mut Change, new: &NewTenant) -> sqlx::Result<Tenant> {
    sqlx::query_as!(
        Tenant,
        r#"INSERT INTO tenants (slug, name, audit_retention_months, max_token_lifetime_days,
                                allowed_audiences, signing_algorithm)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, slug, name, created_at"#,
        new.slug,
        new.name,
        new.retention_months,
        new.max_token_days,
        &new.audiences,
        new.algorithm.as_str()
    )
    .fetch_one(change.db())
    .await
}

/// Every tenant with its settings, by slug, at most `limit`.
pub async fn list(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<TenantSettings>> {
    sqlx::query_as!(
        TenantSettings,
        r#"SELECT t.slug, t.name, t.audit_retention_months, t.max_token_lifetime_days,
                  t.allowed_audiences, t.signing_algorithm AS "signing_algorithm: SigningAlgorithm",
                  k.kid AS "active_kid?", t.created_at
           FROM tenants t
           LEFT JOIN signing_keys k ON k.tenant_id = t.id AND k.state = 'active'
           ORDER BY t.slug LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await
}

/// One tenant's settings.
pub async fn settings(db: impl PgExecutor<'_>, slug: &str) -> sqlx::Result<Option<TenantSettings>> {
    sqlx::query_as!(
        TenantSettings,
        r#"SELECT t.slug, t.name, t.audit_retention_months, t.max_token_lifetime_days,
                  t.allowed_audiences, t.signing_algorithm AS "signing_algorithm: SigningAlgorithm",
                  k.kid AS "active_kid?", t.created_at
           FROM tenants t
           LEFT JOIN signing_keys k ON k.tenant_id = t.id AND k.state = 'active'
           WHERE t.slug = $1"#,
        slug
    )
    .fetch_optional(db)
    .await
}

/// A tenant's settings as they are, locked for a change: (id, settings). `NO KEY UPDATE`,
/// so audit events of the tenant written meanwhile (their foreign key takes a key-share
/// lock) do not deadlock with this change waiting for the audit chain.
pub async fn lock(change: &mut Change, slug: &str) -> sqlx::Result<Option<(Uuid, TenantSettings)>> {
    let row = sqlx::query!(
        r#"SELECT t.id, t.slug, t.name, t.audit_retention_months, t.max_token_lifetime_days,
                  t.allowed_audiences, t.signing_algorithm AS "signing_algorithm: SigningAlgorithm",
                  t.created_at
           FROM tenants t WHERE t.slug = $1 FOR NO KEY UPDATE"#,
        slug
    )
    .fetch_optional(change.db())
    .await?;
    Ok(row.map(|r| {
        (
            r.id,
            TenantSettings {
                slug: r.slug,
                name: r.name,
                audit_retention_months: r.audit_retention_months,
                max_token_lifetime_days: r.max_token_lifetime_days,
                allowed_audiences: r.allowed_audiences,
                signing_algorithm: r.signing_algorithm,
                active_kid: None,
                created_at: r.created_at,
            },
        )
    }))
}

/// Renames a tenant.
pub async fn rename(change: &mut Change, id: Uuid, name: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE tenants SET name = $2 WHERE id = $1", id, name)
        .execute(change.db())
        .await?;
    Ok(())
}

/// Sets a tenant's token and key settings.
pub async fn set_settings(
    change: &mut Change,
    id: Uuid,
    max_token_days: i32,
    audiences: &[String],
    algorithm: SigningAlgorithm,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE tenants SET max_token_lifetime_days = $2, allowed_audiences = $3, signing_algorithm = $4
         WHERE id = $1",
        id,
        max_token_days,
        audiences,
        algorithm.as_str()
    )
    .execute(change.db())
    .await?;
    Ok(())
}
