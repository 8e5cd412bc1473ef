//! Changing one's own password: one audited change, shared by the server function and
//! the tests.

use super::{queries, PasswordChange};
use crate::auth::{password, Actor};
use crate::error::AppError;

/// What a finished change leaves: the epoch the person's sessions now need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The new session epoch: every other session (older epoch) has ended.
    pub epoch: i32,
}

/// Replaces the signed-in person's password with one they chose.
///
/// The current password is required, so a session left open is not enough to take the
/// account over: a wrong one counts towards the account's lockout and the address's
/// throttle like a failed sign-in, and is recorded; while the account is locked nothing is
/// checked (the caller ends the session on [`AppError::Locked`]). The new one is checked
/// against the policy (length, common passwords, the email) only after the current one,
/// so an unverified session cannot make the server score passwords. On success the
/// must-change flag is cleared and every session of the person ends (the caller moves its
/// own to the new epoch).
pub async fn change_own_password(
    actor: &Actor,
    input: &PasswordChange,
    epoch: i32,
    lockout: crate::auth::api::SignInPolicy,
) -> Result<Changed, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    let (current, new) = (input.current.expose(), input.new.expose());
    if current.is_empty() {
        return Err(AppError::validation(
            "current",
            "Enter your current password.",
        ));
    }
    if current.chars().count() > password::MAX_LEN {
        return Err(AppError::validation(
            "current",
            "That is not your current password.",
        ));
    }
    password::check_length(new, "new")?;
    if input.confirm.expose() != new {
        return Err(AppError::validation(
            "confirm",
            "The two new passwords differ: type the same one twice.",
        ));
    }
    if new == current {
        return Err(AppError::validation(
            "new",
            "Choose a password different from the current one.",
        ));
    }

    let account = queries::current(actor.reader(), staff.id, epoch)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if let Some(until) = account
        .locked_until
        .filter(|until| *until > time::OffsetDateTime::now_utc())
    {
        return Err(AppError::Locked {
            until: crate::components::time::utc_minutes(until),
        });
    }
    if !password::verify(current, Some(&account.password_hash)).await? {
        let mut change = actor.change().await?;
        if let Some(ip) = actor.meta().ip {
            let subject = crate::auth::api::throttle_subject(ip);
            crate::auth::queries::record_ip_failure(&mut change, &subject).await?;
        }
        let locked = crate::auth::queries::record_failure(
            &mut change,
            staff.id,
            lockout.max_failures,
            lockout.window_secs,
            lockout.lock_secs,
        )
        .await?;
        change
            .commit(
                actor
                    .event("staff.password_change")
                    .target(format!("staff:{}", staff.id))
                    .denied("INVALID_CREDENTIALS")
                    .details(serde_json::json!({
                        "locked_until": locked.map(|t| t.unix_timestamp()),
                    })),
            )
            .await?;
        return Err(match locked {
            Some(until) => AppError::Locked {
                until: crate::components::time::utc_minutes(until),
            },
            None => AppError::validation("current", "That is not your current password."),
        });
    }
    password::validate_new(new, &staff.email, "new")?;

    // Hash before opening the change: no row stays locked while the hash waits its turn.
    let new_hash = password::hash(new).await?;
    let mut change = actor.change().await?;
    let locked = queries::lock(&mut change, staff.id, epoch)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if locked != account.password_hash {
        return Err(AppError::Conflict {
            field: None,
            message: "Your password was changed meanwhile: sign in again.".into(),
        });
    }
    let epoch = queries::set_own_password(&mut change, staff.id, &new_hash).await?;
    change
        .commit(
            actor
                .event("staff.password_changed")
                .target(format!("staff:{}", staff.id))
                .details(serde_json::json!({
                    "required": staff.must_change_password,
                    "other_sessions_ended": true,
                })),
        )
        .await?;
    Ok(Changed { epoch })
}
