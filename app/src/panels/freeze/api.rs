//! Server functions of the Freeze panel. Reading needs `ViewConsole` (the top bar of every
//! page shows the freeze); turning it on and lifting it `CommandIncident` and a recent
//! second factor.

use super::{Freeze, FreezeState};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// The freeze on now, if any: what the top bar shows.
#[server]
pub async fn current_freeze() -> Result<Option<Freeze>, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    Ok(crate::domain::freeze::active(actor.reader()).await?)
}

/// The freeze on now and the last ones.
#[server]
pub async fn freeze_overview() -> Result<FreezeState, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let history = super::queries::history(actor.reader()).await?;
    let on = history
        .iter()
        .find(|past| {
            past.lifted_at.is_none()
                && past
                    .freeze
                    .expires_at
                    .is_none_or(|at| at > time::OffsetDateTime::now_utc())
        })
        .map(|past| past.freeze.clone());
    Ok(FreezeState { on, history })
}

/// Turns a freeze on.
#[server]
pub async fn start_freeze(reason: String, expires_minutes: String) -> Result<Freeze, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    super::ops::start(&actor, &reason, &expires_minutes).await
}

/// Lifts the freeze.
#[server]
pub async fn lift_freeze(reason: String, confirmation: String) -> Result<(), AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    super::ops::lift(&actor, &reason, &confirmation).await
}
