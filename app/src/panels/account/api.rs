//! Server functions of the account page. Each starts with `require(Permission::OwnAccount)`.

use crate::error::AppError;
use crate::secret::SecretString;
use leptos::prelude::*;

/// Changes the signed-in person's password, keeps this session (under a new id) and ends
/// every other, then goes to `next` (a console path) or home.
#[server]
pub async fn change_password(
    current: SecretString,
    new: SecretString,
    confirm: SecretString,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::auth::{require, session, Permission};
    let actor = require(Permission::OwnAccount).await?;
    let policy = use_context::<crate::auth::api::SignInPolicy>().unwrap_or_default();
    let Some(session) = session::from_context().await else {
        return Err(AppError::internal(&"session layer missing"));
    };
    let input = super::PasswordChange {
        current,
        new,
        confirm,
    };
    let changed = super::ops::change_own_password(&actor, &input, policy).await?;
    if let Some(staff) = actor.staff() {
        session::start(&session, staff.id, changed.epoch).await?;
    }
    leptos_axum::redirect(&crate::auth::api::safe_next(next.as_deref()));
    Ok(())
}
