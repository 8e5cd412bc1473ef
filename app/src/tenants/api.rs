//! Server functions for tenants.
//!
//! Until staff sign-in lands (Foundation 2/2), these read-only functions are open to anyone
//! who can reach the console; that issue puts `require(Permission::..)` on their first line.

use super::Tenant;
use crate::error::AppError;
use leptos::prelude::*;

/// Tenants for the switcher, ordered by name.
#[server]
pub async fn list_tenants() -> Result<Vec<Tenant>, AppError> {
    let pool = crate::db::pool()?;
    Ok(super::queries::list(&pool, super::queries::SWITCHER_LIMIT).await?)
}

/// One tenant by slug; a clear not-found when it does not exist.
#[server]
pub async fn get_tenant(slug: String) -> Result<Tenant, AppError> {
    super::validate_slug(&slug)?;
    let pool = crate::db::pool()?;
    super::queries::by_slug(&pool, &slug)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Tenant “{slug}”")))
}
