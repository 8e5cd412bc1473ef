//! Server functions of the Freeze panel. Reading needs `ViewConsole`; turning it on and
//! lifting it `CommandIncident` and a recent second factor. (The top bar learns of the
//! freeze from `whoami`.)

use super::{Freeze, FreezeState};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// The freeze on now and the last ones.
#[server]
pub async fn freeze_overview() -> Result<FreezeState, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let history = super::queries::history(actor.reader()).await?;
    let on = crate::domain::freeze::active(actor.reader()).await?;
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
