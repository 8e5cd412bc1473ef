//! Server functions of the landing pages and the shell: the tenants (for the switcher and a
//! tenant's overview) and the newest events across the platform.

use crate::domain::audit::ActivityRow;
use crate::domain::tenants::Tenant;
#[cfg(feature = "ssr")]
use crate::domain::{audit, tenants};
use crate::error::AppError;
use leptos::prelude::*;

/// How many events the home page's recent-activity list shows.
pub const RECENT_LIMIT: i64 = 20;

/// The newest events across the platform, for the home page.
#[server]
pub async fn recent_activity() -> Result<Vec<ActivityRow>, AppError> {
    let actor = crate::auth::require(crate::auth::Permission::ViewConsole).await?;
    Ok(audit::queries::recent(actor.reader(), RECENT_LIMIT).await?)
}

/// Tenants for the switcher, ordered by name.
#[server]
pub async fn list_tenants() -> Result<Vec<Tenant>, AppError> {
    let actor = crate::auth::require(crate::auth::Permission::ViewConsole).await?;
    Ok(tenants::queries::list(actor.reader(), tenants::queries::SWITCHER_LIMIT).await?)
}

/// One tenant by slug; a clear not-found when it does not exist.
#[server]
pub async fn get_tenant(slug: String) -> Result<Tenant, AppError> {
    let actor = crate::auth::require(crate::auth::Permission::ViewConsole).await?;
    tenants::queries::find(actor.reader(), &slug).await
}
