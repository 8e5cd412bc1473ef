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

/// The signed-in person's second factors.
#[server]
pub async fn security() -> Result<super::Security, AppError> {
    use crate::auth::{require, Permission};
    let policy = use_context::<crate::auth::api::SignInPolicy>().unwrap_or_default();
    // Before the first await: after one, this page's server render may no longer see the
    // context, and would say passkeys are off while the browser's copy says they are on.
    let rp = crate::domain::factors::passkey::RelyingParty::from_context();
    let actor = require(Permission::OwnAccount).await?;
    let staff = actor.staff().ok_or(AppError::Forbidden)?;
    let mut snapshot = actor.reader().snapshot().await?;
    let factors = super::queries::factors(&mut snapshot, staff.id).await?;
    Ok(super::Security {
        factors,
        required: policy.mfa_required,
        passkeys_unavailable: (!rp.available())
            .then(|| crate::domain::factors::passkey::UNAVAILABLE_ON_IP.to_owned()),
    })
}

/// Starts setting up an authenticator app: the QR code and secret to show.
#[server]
pub async fn start_totp_enrolment() -> Result<super::TotpEnrolment, AppError> {
    use crate::auth::{require, Permission};
    let actor = require(Permission::OwnAccount).await?;
    let verifier = actor.verifier()?;
    super::ops::start_totp(&actor, verifier.master_key()).await
}

/// Confirms the authenticator app with a code it shows; answers the recovery codes, once.
#[server]
pub async fn confirm_totp_enrolment(code: SecretString) -> Result<super::RecoveryCodes, AppError> {
    use crate::auth::{require, Permission};
    let actor = require(Permission::OwnAccount).await?;
    let verifier = actor.verifier()?;
    super::ops::confirm_totp(&actor, verifier.master_key(), code.expose()).await
}

/// A new set of recovery codes (the old ones stop working). Needs a recent second factor.
#[server]
pub async fn new_recovery_codes() -> Result<super::RecoveryCodes, AppError> {
    use crate::auth::{require_stepped_up, Permission};
    let actor = require_stepped_up(Permission::OwnAccount).await?;
    let verifier = actor.verifier()?;
    super::ops::new_recovery_codes(&actor, verifier.master_key()).await
}

/// Removes the authenticator app, unless it is the last second factor. Needs a recent
/// second factor.
#[server]
pub async fn remove_totp() -> Result<(), AppError> {
    use crate::auth::{require_stepped_up, Permission};
    let actor = require_stepped_up(Permission::OwnAccount).await?;
    super::ops::remove_totp(&actor).await
}

/// Starts adding a passkey named `name`: the options for the browser's
/// `navigator.credentials.create`. Beside another factor it needs a recent one.
#[server]
pub async fn start_passkey_registration(
    name: String,
) -> Result<crate::domain::factors::PasskeyChallenge, AppError> {
    use crate::auth::{require, Permission};
    // Read from context before the first await: after one, a server render's resource
    // may no longer see it.
    let rp = crate::domain::factors::passkey::RelyingParty::from_context();
    let actor = require(Permission::OwnAccount).await?;
    super::ops::start_passkey(&actor, &rp, &name).await
}

/// Adds the passkey the browser made (`credential`, its `toJSON()`) for `ceremony`; the first
/// second factor answers the recovery codes, once (otherwise none).
#[server]
pub async fn finish_passkey_registration(
    ceremony: String,
    credential: String,
) -> Result<super::RecoveryCodes, AppError> {
    use crate::auth::{require, Permission};
    let rp = crate::domain::factors::passkey::RelyingParty::from_context();
    let actor = require(Permission::OwnAccount).await?;
    let verifier = actor.verifier()?;
    super::ops::finish_passkey(&actor, &rp, verifier.master_key(), &ceremony, &credential).await
}

/// Removes one of the person's passkeys, unless it is the last second factor. Needs a
/// recent second factor.
#[server]
pub async fn remove_passkey(passkey_id: String) -> Result<(), AppError> {
    use crate::auth::{require_stepped_up, Permission};
    let actor = require_stepped_up(Permission::OwnAccount).await?;
    let id = uuid::Uuid::parse_str(passkey_id.trim())
        .map_err(|_| AppError::validation("passkey", "That is not a passkey id."))?;
    super::ops::remove_passkey(&actor, id).await
}

/// The signed-in person's live sessions, this one marked.
#[server]
pub async fn my_sessions() -> Result<Vec<crate::auth::StaffSession>, AppError> {
    use crate::auth::{require, Permission};
    // A fully signed-in session (not one confined to replacing a handed-over password
    // or enrolling a factor): that one must not read or end the owner's sessions.
    let actor = require(Permission::ViewConsole).await?;
    let staff = actor.staff().ok_or(AppError::Forbidden)?;
    let mut sessions = crate::auth::queries::live_sessions(actor.reader(), Some(staff.id)).await?;
    for s in &mut sessions {
        s.current = actor.session_row() == Some(s.id);
    }
    Ok(sessions)
}

/// Ends one of the person's other sessions.
#[server]
pub async fn end_my_session(session_id: String) -> Result<(), AppError> {
    use crate::auth::{require, Permission};
    // A fully signed-in session (not one confined to replacing a handed-over password
    // or enrolling a factor): that one must not read or end the owner's sessions.
    let actor = require(Permission::ViewConsole).await?;
    let id = uuid::Uuid::parse_str(session_id.trim())
        .map_err(|_| AppError::validation("session_id", "That is not a session id."))?;
    super::ops::end_own_session(&actor, id).await
}

/// Ends every session of the person but this one; answers how many ended.
#[server]
pub async fn end_my_other_sessions() -> Result<usize, AppError> {
    use crate::auth::{require, Permission};
    // A fully signed-in session (not one confined to replacing a handed-over password
    // or enrolling a factor): that one must not read or end the owner's sessions.
    let actor = require(Permission::ViewConsole).await?;
    super::ops::end_other_sessions(&actor).await
}

/// The signed-in person's admin API tokens.
#[server]
pub async fn my_admin_tokens() -> Result<Vec<super::AdminTokenRow>, AppError> {
    let actor = crate::auth::require(crate::auth::Permission::ViewConsole).await?;
    let Some(me) = actor.staff().cloned() else {
        return Err(AppError::Forbidden);
    };
    let now = time::OffsetDateTime::now_utc();
    Ok(crate::domain::admin::tokens::list(&actor, me.id)
        .await?
        .into_iter()
        .map(|t| super::AdminTokenRow {
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "live"
            }
            .to_owned(),
            id: t.id,
            name: t.name,
            scopes: t.scopes,
            tenant: t.tenant,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            last_used_ip: t.last_used_ip,
        })
        .collect())
}

/// Mints an admin API token for the signed-in person (step-up; refused during a freeze).
/// The answer carries the plaintext, the only time it leaves the server.
#[server]
pub async fn mint_admin_token(
    name: String,
    #[server(default)] scopes: Vec<String>,
    #[server(default)] tenant: String,
    days: String,
) -> Result<super::MintedAdminToken, AppError> {
    let actor = crate::auth::require_stepped_up(crate::auth::Permission::ViewConsole).await?;
    let ring = actor
        .verifier()?
        .pepper_ring()
        .await
        .map_err(|e| AppError::internal(&e))?;
    let minted = crate::domain::admin::tokens::mint(
        &actor,
        &ring,
        &crate::domain::admin::tokens::MintRequest {
            name,
            scopes,
            tenant,
            days,
        },
        None,
    )
    .await?;
    Ok(super::MintedAdminToken {
        id: minted.id,
        plaintext: minted.plaintext.to_string(),
        expires_at: minted.expires_at,
    })
}

/// Revokes one of the person's admin tokens (an admin: anyone's). Refused at once.
#[server]
pub async fn revoke_admin_token(id: String) -> Result<(), AppError> {
    let actor = crate::auth::require(crate::auth::Permission::ViewConsole).await?;
    crate::domain::admin::tokens::revoke(&actor, &id).await
}
