//! Server functions for tenants.

use super::Tenant;
#[cfg(feature = "ssr")]
use crate::auth::{require, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// Tenants for the switcher, ordered by name.
#[server]
pub async fn list_tenants() -> Result<Vec<Tenant>, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    Ok(super::queries::list(actor.reader(), super::queries::SWITCHER_LIMIT).await?)
}

/// One tenant by slug; a clear not-found when it does not exist.
#[server]
pub async fn get_tenant(slug: String) -> Result<Tenant, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    super::queries::find(actor.reader(), &slug).await
}
