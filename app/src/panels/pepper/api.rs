//! Server functions of the pepper panel. Reading needs `ViewConsole`; rotating
//! `CommandIncident`.

use super::{CompromisePreview, PepperVersion, Rotated};
#[cfg(feature = "ssr")]
use crate::auth::{require, Permission};
use crate::error::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn master() -> Result<crate::integrations::pepper::MasterKey, AppError> {
    use_context::<std::sync::Arc<crate::integrations::verify::Verifier>>()
        .map(|v| v.master_key().clone())
        .ok_or_else(|| AppError::internal(&"token verifier missing from Leptos context"))
}

/// Every pepper version with the active tokens still on it.
#[server]
pub async fn pepper_versions() -> Result<Vec<PepperVersion>, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    Ok(super::ops::versions(actor.pool()).await?)
}

/// Staged rotation: a new current version, the old one verifying for `grace_hours` more.
#[server]
pub async fn rotate_pepper(
    grace_hours: String,
    reason: String,
    confirmation: String,
) -> Result<Rotated, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    super::ops::rotate_staged(&actor, &master()?, &grace_hours, &reason, &confirmation).await
}

/// What a compromise rotation would revoke, per tenant.
#[server]
pub async fn preview_pepper_compromise() -> Result<CompromisePreview, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    Ok(super::ops::preview(actor.pool()).await?)
}

/// Compromise rotation: new version, every active token revoked.
#[server]
pub async fn rotate_pepper_compromised(
    reason: String,
    confirmation: String,
    expected: i64,
) -> Result<Rotated, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    super::ops::rotate_compromised(&actor, &master()?, &reason, &confirmation, expected).await
}
