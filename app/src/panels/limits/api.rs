//! Server functions of the rate-limit and block-list panel. Reading needs `ViewConsole`;
//! changing `Operate` (runbook 000 has operators clamp limits; runbook 004 has them block an
//! abusive address).

use super::{LimitsOverview, RateLimitForm};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
use crate::domain::gateway::controls::state::reload_after_change;

/// Defaults, overrides and blocks in force.
#[server]
pub async fn get_limits() -> Result<LimitsOverview, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let controls = actor.controls()?;
    let (overrides, blocks) = super::queries::in_force(actor.reader()).await?;
    let defaults = controls.defaults();
    Ok(LimitsOverview {
        owner_default: defaults.owner,
        ip_default: defaults.ip,
        limiting: controls.limiting(),
        overrides,
        blocks,
    })
}

/// Sets the override of a tenant, a client or an address/network.
#[server]
pub async fn set_rate_limit(#[server(default)] form: RateLimitForm) -> Result<(), AppError> {
    let actor = require(Permission::Operate).await?;
    let controls = actor.controls()?;
    super::ops::set_override(
        &actor,
        super::ops::OverrideRequest {
            scope: &form.scope,
            tenant: &form.tenant,
            client: &form.client,
            network: &form.network,
            limit_per_minute: &form.limit_per_minute,
            burst: &form.burst,
            reason: &form.reason,
            expires_minutes: &form.expires_minutes,
        },
    )
    .await?;
    // This instance applies it at once; the others on the notification.
    reload_after_change(controls.reload_limits().await);
    Ok(())
}

/// Removes an override.
#[server]
pub async fn remove_rate_limit(id: String, reason: String) -> Result<(), AppError> {
    let actor = require(Permission::Operate).await?;
    let controls = actor.controls()?;
    super::ops::remove_override(&actor, &id, &reason).await?;
    // This instance applies it at once; the others on the notification.
    reload_after_change(controls.reload_limits().await);
    Ok(())
}

/// Blocks an address or network.
#[server]
pub async fn block_ip(
    network: String,
    reason: String,
    #[server(default)] expires_minutes: String,
) -> Result<(), AppError> {
    let actor = require(Permission::Operate).await?;
    let controls = actor.controls()?;
    super::ops::add_block(&actor, &network, &reason, &expires_minutes).await?;
    // This instance applies it at once; the others on the notification.
    reload_after_change(controls.reload_limits().await);
    Ok(())
}

/// Lifts a block.
#[server]
pub async fn unblock_ip(network: String, reason: String) -> Result<(), AppError> {
    let actor = require_stepped_up(Permission::Operate).await?;
    let controls = actor.controls()?;
    super::ops::remove_block(&actor, &network, &reason).await?;
    // This instance applies it at once; the others on the notification.
    reload_after_change(controls.reload_limits().await);
    Ok(())
}
