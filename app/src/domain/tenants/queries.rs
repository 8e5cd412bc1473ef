//! SQL for tenants. Server-only; every function takes an executor so callers choose the
//! connection or transaction.

use super::Tenant;
use sqlx::PgExecutor;

/// Most tenants the switcher lists; past this, the filter box narrows the list.
pub const SWITCHER_LIMIT: i64 = 500;

/// Tenants ordered by name, at most `limit`.
pub async fn list(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<Tenant>> {
    sqlx::query_as!(
        Tenant,
        "SELECT id, slug, name, created_at FROM tenants ORDER BY name, slug LIMIT $1",
        limit
    )
    .fetch_all(db)
    .await
}

/// The tenant with this slug, if any.
pub async fn by_slug(db: impl PgExecutor<'_>, slug: &str) -> sqlx::Result<Option<Tenant>> {
    sqlx::query_as!(
        Tenant,
        "SELECT id, slug, name, created_at FROM tenants WHERE slug = $1",
        slug
    )
    .fetch_optional(db)
    .await
}

/// Creates the demo tenant when no tenant exists at all, so a first start shows something.
///
/// One statement, so two instances starting at once cannot both insert. Returns the new
/// tenant, or `None` when tenants already existed. Recorded as `tenant.created` by `system`.
pub async fn create_demo_if_empty(
    system: &crate::auth::Actor,
) -> Result<Option<Tenant>, crate::error::AppError> {
    let mut change = system.change().await?;
    let created = sqlx::query_as!(
        Tenant,
        r#"INSERT INTO tenants (slug, name)
           SELECT 'demo', 'Demo Tenant'
           WHERE NOT EXISTS (SELECT 1 FROM tenants)
           ON CONFLICT (slug) DO NOTHING
           RETURNING id, slug, name, created_at"#
    )
    .fetch_optional(change.db())
    .await?;
    let Some(tenant) = created else {
        // Nothing written: dropping the change ends its transaction.
        return Ok(None);
    };
    let event = system
        .event("tenant.created")
        .tenant(tenant.id)
        .target(format!("tenant:{}", tenant.slug))
        .reason("development: the database had no tenant")
        .details(serde_json::json!({ "slug": tenant.slug, "name": tenant.name, "demo": true }));
    change.commit(event).await?;
    Ok(Some(tenant))
}

/// The tenant a form field names (trimmed), for a change or a filter: a validation error
/// on the `tenant` field when the slug is malformed or names no tenant. Every panel looks
/// tenants up through this or [`find`].
pub async fn named(db: impl PgExecutor<'_>, slug: &str) -> Result<Tenant, crate::error::AppError> {
    let slug = slug.trim();
    super::validate_slug(slug)?;
    by_slug(db, slug).await?.ok_or_else(|| {
        crate::error::AppError::validation("tenant", format!("No tenant has the slug “{slug}”."))
    })
}

/// The tenant with this slug, or a clear validation or not-found error for the page.
pub async fn find(db: impl PgExecutor<'_>, slug: &str) -> Result<Tenant, crate::error::AppError> {
    super::validate_slug(slug)?;
    by_slug(db, slug)
        .await?
        .ok_or_else(|| crate::error::AppError::not_found(format!("Tenant “{slug}”")))
}
