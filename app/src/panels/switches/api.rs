//! Server functions of the kill-switch panel. Reading needs `ViewConsole`; changing
//! `CommandIncident`.

#[cfg(feature = "ssr")]
use crate::auth::{require, Permission};
use crate::domain::gateway::controls::SwitchRow;
use crate::error::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::domain::gateway::controls::state::reload_after_change;

/// Every stored switch value: the global ones and the tenants' overrides.
#[server]
pub async fn list_switches() -> Result<Vec<SwitchRow>, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let controls = actor.controls()?;
    // Read fresh: a flip made on another instance a moment ago must show here too.
    controls.reload_switches().await?;
    Ok(controls.switches().rows.clone())
}

/// Sets a switch globally (`tenant` empty) or for one tenant, with a reason and an optional
/// expiry in minutes.
#[server]
pub async fn flip_switch(
    key: String,
    #[server(default)] tenant: String,
    value: String,
    reason: String,
    #[server(default)] expires_minutes: String,
    #[server(default)] confirmation: String,
) -> Result<(), AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let controls = actor.controls()?;
    super::ops::flip(
        &actor,
        super::ops::FlipRequest {
            key: &key,
            tenant: &tenant,
            value: &value,
            reason: &reason,
            expires_minutes: &expires_minutes,
            confirmation: &confirmation,
        },
    )
    .await?;
    // This instance applies it at once; the others on the notification.
    reload_after_change(controls.reload_switches().await.map(|_| ()));
    Ok(())
}

/// Removes a tenant's override of a switch.
#[server]
pub async fn remove_switch_override(
    key: String,
    tenant: String,
    reason: String,
    #[server(default)] confirmation: String,
) -> Result<(), AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let controls = actor.controls()?;
    super::ops::remove_override(&actor, &key, &tenant, &reason, &confirmation).await?;
    reload_after_change(controls.reload_switches().await.map(|_| ()));
    Ok(())
}
