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
    let policy = use_context::<crate::auth::api::SignInPolicy>().unwrap_or_default();
    let actor = require(Permission::OwnAccount).await?;
    let Some(session) = session::from_context().await else {
        return Err(AppError::internal(&"session layer missing"));
    };
    let Some(signed_in) = session::signed_in(&session).await? else {
        return Err(AppError::Unauthenticated);
    };
    let input = super::PasswordChange {
        current,
        new,
        confirm,
    };
    match super::ops::change_own_password(&actor, &input, signed_in.epoch, policy).await {
        Ok(changed) => {
            session::renew(&session, signed_in, changed.epoch).await?;
            leptos_axum::redirect(&crate::auth::api::safe_next(next.as_deref()));
            Ok(())
        }
        // Guessing the current password from a session stops where sign-in would: the
        // account locks and this session ends with it.
        Err(locked @ AppError::Locked { .. }) => {
            session::end(&session).await?;
            Err(locked)
        }
        Err(other) => Err(other),
    }
}
