//! Server functions of the audit log.

use super::ActivityRow;
use crate::error::AppError;
use leptos::prelude::*;

/// How many events the home page's recent-activity list shows.
pub const RECENT_LIMIT: i64 = 20;

/// The newest events across the platform, for the home page.
#[server]
pub async fn recent_activity() -> Result<Vec<ActivityRow>, AppError> {
    let actor = crate::auth::require(crate::auth::Permission::ViewConsole).await?;
    Ok(super::queries::recent(actor.reader(), RECENT_LIMIT).await?)
}
