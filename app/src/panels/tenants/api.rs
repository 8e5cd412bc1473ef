//! Server functions of tenant management. Reading a tenant's settings needs
//! `ViewConsole`; creating, renaming and changing settings `ManageTenants` (admin).

use super::{NewTenantForm, TenantSettings};
#[cfg(feature = "ssr")]
use crate::auth::{require, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// One tenant's settings.
#[server]
pub async fn get_tenant_settings(tenant: String) -> Result<TenantSettings, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let slug = tenant.trim();
    crate::domain::tenants::validate_slug(slug)?;
    super::queries::settings(actor.reader(), slug)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Tenant “{slug}”")))
}

/// Creates a tenant with its first active signing key: its slug.
#[server]
pub async fn create_tenant(form: NewTenantForm) -> Result<String, AppError> {
    let actor = require(Permission::ManageTenants).await?;
    let verifier = actor.verifier()?;
    let (tenant, _kid) = super::ops::create(&actor, verifier.master_key(), &form).await?;
    crate::panels::keys::api::reload_keys_here(&actor).await;
    Ok(tenant.slug)
}

/// Renames a tenant.
#[server]
pub async fn rename_tenant(tenant: String, name: String) -> Result<(), AppError> {
    let actor = require(Permission::ManageTenants).await?;
    super::ops::rename(&actor, &tenant, &name).await
}

/// Sets a tenant's token lifetime, audiences and key algorithm.
#[server]
pub async fn update_tenant_settings(
    tenant: String,
    max_token_days: String,
    audiences: String,
    algorithm: String,
) -> Result<TenantSettings, AppError> {
    let actor = require(Permission::ManageTenants).await?;
    let saved =
        super::ops::update_settings(&actor, &tenant, &max_token_days, &audiences, &algorithm)
            .await?;
    crate::panels::keys::api::reload_keys_here(&actor).await;
    Ok(saved)
}
