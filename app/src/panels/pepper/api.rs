//! Server functions of the pepper panel. Reading needs `ViewConsole`; rotating
//! `CommandIncident`.

use super::{CompromisePreview, PepperVersion, Rotated};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// After a rotation: this instance uses the new ring and forgets cached tokens at once (the
/// others reload on the notification the change sent).
#[cfg(feature = "ssr")]
async fn rotated_here(verifier: &crate::domain::gateway::verify::Verifier) {
    verifier.invalidate_all();
    if let Err(err) = verifier.reload_ring().await {
        tracing::error!(error = %err, "reloading token peppers after a rotation failed");
    }
}

/// Every pepper version with the active tokens still on it.
#[server]
pub async fn pepper_versions() -> Result<Vec<PepperVersion>, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    Ok(super::queries::versions(actor.reader()).await?)
}

/// Staged rotation: a new current version, the old one verifying for `grace_hours` more.
#[server]
pub async fn rotate_pepper(
    grace_hours: String,
    reason: String,
    confirmation: String,
) -> Result<Rotated, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let rotated = super::ops::rotate_staged(
        &actor,
        verifier.master_key(),
        &grace_hours,
        &reason,
        &confirmation,
    )
    .await?;
    rotated_here(&verifier).await;
    Ok(rotated)
}

/// What a compromise rotation would revoke, per tenant.
#[server]
pub async fn preview_pepper_compromise() -> Result<CompromisePreview, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    Ok(super::queries::preview(actor.reader()).await?)
}

/// Compromise rotation: new version, every active token revoked.
#[server]
pub async fn rotate_pepper_compromised(
    reason: String,
    confirmation: String,
    expected: i64,
) -> Result<Rotated, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let rotated = super::ops::rotate_compromised(
        &actor,
        verifier.master_key(),
        &reason,
        &confirmation,
        expected,
    )
    .await?;
    rotated_here(&verifier).await;
    Ok(rotated)
}
