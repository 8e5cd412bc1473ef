//! The staff changes themselves, shared by the panel's server functions and the operators'
//! command line. Each is one audited change: lock, check, change, record, commit.

use super::{normalize_email, normalize_name, queries, OneTimePassword};
use crate::auth::{password, Actor, Role};
use crate::domain::freeze::{guard, FrozenOp};
use crate::error::AppError;
use uuid::Uuid;

/// Creates a staff member. With `password` `None`, a one-time password is generated and
/// returned for the admin to hand over.
pub async fn create(
    actor: &Actor,
    email: &str,
    display_name: &str,
    role: Role,
    password: Option<&str>,
) -> Result<(Uuid, OneTimePassword), AppError> {
    let email = normalize_email(email)?;
    let display_name = normalize_name(display_name)?;
    let secret = match password {
        Some(given) => {
            password::validate_new(given, &email, "password")?;
            given.to_owned()
        }
        None => password::generate_one_time_password(),
    };
    let hash = password::hash(&secret).await?;

    let mut change = guard(actor, actor.change().await?, FrozenOp::CreateStaff).await?;
    let created_by = actor.staff().map(|s| s.id);
    // A taken email fails on `staff_email_key`, which reads as the email field's message
    // (crate::error::UNIQUE_MEANINGS).
    let id = queries::insert(&mut change, &email, &display_name, role, &hash, created_by).await?;
    change
        .commit(
            actor
                .event("staff.created")
                .target(format!("staff:{id}"))
                .details(serde_json::json!({ "email": email, "role": role.as_str() })),
        )
        .await?;
    Ok((
        id,
        OneTimePassword {
            email,
            password: secret,
        },
    ))
}

/// Locks the staff member a change is about, or says they do not exist.
async fn lock_target(
    change: &mut crate::auth::Change,
    id: Uuid,
) -> Result<queries::Locked, AppError> {
    queries::lock(change, id)
        .await?
        .ok_or_else(|| AppError::not_found("That staff member"))
}

/// Refuses a change that would leave no active admin.
async fn keep_an_admin(
    change: &mut crate::auth::Change,
    target: Uuid,
    message: &str,
) -> Result<(), AppError> {
    let admins = queries::lock_active_admins(change).await?;
    if admins.len() <= 1 && admins.contains(&target) {
        return Err(AppError::Conflict {
            field: None,
            message: message.to_owned(),
        });
    }
    Ok(())
}

/// Changes someone's role.
pub async fn change_role(actor: &Actor, id: Uuid, role: Role) -> Result<(), AppError> {
    let mut change = actor.change().await?;
    if role != Role::Admin {
        keep_an_admin(
            &mut change,
            id,
            "This is the last active admin: make someone else an admin first.",
        )
        .await?;
    }
    let current = lock_target(&mut change, id).await?;
    if current.role == role {
        return Err(AppError::Conflict {
            field: None,
            message: format!("{} already has the role {}.", current.email, role.label()),
        });
    }
    // Raising a role adds access; lowering it (a suspected compromise) stays allowed.
    if role > current.role {
        change = guard(actor, change, FrozenOp::ChangeStaffRole).await?;
    }
    queries::set_role(&mut change, id, role).await?;
    change
        .commit(
            actor
                .event("staff.role_changed")
                .target(format!("staff:{id}"))
                .details(serde_json::json!({
                    "email": current.email,
                    "from": current.role.as_str(),
                    "to": role.as_str(),
                })),
        )
        .await?;
    // Their tokens act with their role: the gateway re-reads it (a trigger notifies every
    // instance; this one drops them now).
    actor.forget_cached_tokens_of(id);
    Ok(())
}

/// Disables (ending their sessions at once: every request re-reads the status) or
/// re-enables someone.
pub async fn set_active(actor: &Actor, id: Uuid, active: bool) -> Result<(), AppError> {
    if !active && actor.staff().is_some_and(|s| s.id == id) {
        return Err(AppError::Conflict {
            field: None,
            message: "You cannot disable your own account.".into(),
        });
    }
    let mut change = actor.change().await?;
    if active {
        change = guard(actor, change, FrozenOp::EnableStaff).await?;
    } else {
        keep_an_admin(
            &mut change,
            id,
            "This is the last active admin and cannot be disabled.",
        )
        .await?;
    }
    let current = lock_target(&mut change, id).await?;
    if current.active == active {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "{} is already {}.",
                current.email,
                if active { "active" } else { "disabled" }
            ),
        });
    }
    queries::set_active(&mut change, id, active).await?;
    if !active {
        crate::auth::queries::end_sessions(&mut change, id, &actor.label(), "disabled").await?;
        // Re-enabling them later must not bring back a token minted meanwhile by whoever
        // made them suspect.
        crate::domain::admin::tokens::revoke_in(
            &mut change,
            crate::domain::admin::tokens::Revoking::OwnedBy(id),
            &actor.label(),
            &actor.event("admin_token.revoked").reason("disabled"),
        )
        .await?;
    }
    change
        .commit(
            actor
                .event(if active {
                    "staff.enabled"
                } else {
                    "staff.disabled"
                })
                .target(format!("staff:{id}"))
                .details(serde_json::json!({ "email": current.email })),
        )
        .await?;
    actor.forget_cached_tokens_of(id);
    Ok(())
}

/// Replaces someone's password (generated when `password` is `None`) and clears any lock.
/// It answers a suspected compromise, so it also ends their sessions and revokes every
/// token they own (reason "password reset"): a stolen token must not outlive the reset.
pub async fn reset_password(
    actor: &Actor,
    id: Uuid,
    password: Option<&str>,
) -> Result<OneTimePassword, AppError> {
    // Hash before opening the change: no row stays locked while the hash waits its turn.
    let email = queries::email_of(actor.reader(), id)
        .await?
        .ok_or_else(|| AppError::not_found("That staff member"))?;
    let secret = match password {
        Some(given) => {
            password::validate_new(given, &email, "password")?;
            given.to_owned()
        }
        None => password::generate_one_time_password(),
    };
    let hash = password::hash(&secret).await?;
    let mut change = guard(actor, actor.change().await?, FrozenOp::ResetStaffPassword).await?;
    let current = lock_target(&mut change, id).await?;
    queries::set_password(&mut change, id, &hash).await?;
    // A reset answers a suspected compromise: whoever holds a session now loses it, and
    // whoever holds one of their tokens too (revoked, each audited).
    crate::auth::queries::end_sessions(&mut change, id, &actor.label(), "password reset").await?;
    crate::panels::integrations::ops::revoke_owned_by_staff(
        &mut change,
        actor,
        id,
        "password reset",
    )
    .await?;
    crate::domain::admin::tokens::revoke_in(
        &mut change,
        crate::domain::admin::tokens::Revoking::OwnedBy(id),
        &actor.label(),
        &actor.event("admin_token.revoked").reason("password reset"),
    )
    .await?;
    change
        .commit(
            actor
                .event("staff.password_reset")
                .target(format!("staff:{id}"))
                .details(serde_json::json!({ "email": current.email })),
        )
        .await?;
    actor.forget_cached_tokens_of(id);
    Ok(OneTimePassword {
        email: current.email,
        password: secret,
    })
}

/// Finds a staff id by email, for the command line.
pub async fn id_by_email(actor: &Actor, email: &str) -> Result<Uuid, AppError> {
    let email = normalize_email(email)?;
    queries::id_by_email(actor.reader(), &email)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Staff member {email}")))
}

/// Resets someone's second factors (a lost phone): their authenticator app and recovery
/// codes are deleted, their sessions end, and their password is replaced by a one-time
/// password (returned, for the admin to hand over in person or by another channel). So
/// whoever else knows the old password cannot sign in and enrol a factor of their own
/// before the owner does: the next sign-in needs the new password, then a new password of
/// the owner's choosing, then a new factor. Never one's own: a person changes their own
/// factors with a factor, on their security page.
pub async fn reset_factors(
    actor: &Actor,
    id: Uuid,
    reason: &str,
) -> Result<OneTimePassword, AppError> {
    let reason = crate::domain::input::normalize_reason(reason)?;
    if actor.staff().is_some_and(|s| s.id == id) {
        return Err(AppError::Conflict {
            field: None,
            message: "You cannot reset your own second factors: manage them on your Security page."
                .into(),
        });
    }
    // Hash before opening the change: no row stays locked while the hash waits its turn.
    let secret = password::generate_one_time_password();
    let hash = password::hash(&secret).await?;
    let mut change = guard(actor, actor.change().await?, FrozenOp::ResetStaffFactors).await?;
    let current = lock_target(&mut change, id).await?;
    let removed = queries::delete_factors(&mut change, id).await?;
    if removed.passkeys == 0 && removed.totp == 0 && removed.recovery_codes == 0 {
        return Err(AppError::Conflict {
            field: None,
            message: format!("{} has no second factor to reset.", current.email),
        });
    }
    queries::set_password(&mut change, id, &hash).await?;
    crate::auth::queries::end_sessions(&mut change, id, &actor.label(), "second factors reset")
        .await?;
    // Like a password reset, it answers a suspected compromise: their tokens go too.
    crate::panels::integrations::ops::revoke_owned_by_staff(
        &mut change,
        actor,
        id,
        "second factors reset",
    )
    .await?;
    crate::domain::admin::tokens::revoke_in(
        &mut change,
        crate::domain::admin::tokens::Revoking::OwnedBy(id),
        &actor.label(),
        &actor
            .event("admin_token.revoked")
            .reason("second factors reset"),
    )
    .await?;
    change
        .commit(
            actor
                .event("staff.factors_reset")
                .target(format!("staff:{id}"))
                .reason(reason)
                .details(serde_json::json!({
                    "email": current.email,
                    "passkeys": removed.passkeys,
                    "authenticator_apps": removed.totp,
                    "recovery_codes": removed.recovery_codes,
                    "sessions_ended": true,
                    "one_time_password": true,
                })),
        )
        .await?;
    actor.forget_cached_tokens_of(id);
    Ok(OneTimePassword {
        email: current.email,
        password: secret,
    })
}

/// Ends one staff session (the runbook's deny-list: a session believed stolen), with a
/// reason: its next request, on any instance, is signed out.
pub async fn end_session(actor: &Actor, session: Uuid, reason: &str) -> Result<(), AppError> {
    let reason = crate::domain::input::normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let (owner, email) = crate::auth::queries::lock_session_owner(&mut change, session)
        .await?
        .ok_or_else(|| AppError::not_found("That session (it may have ended already)"))?;
    crate::auth::queries::end_session_row(&mut change, session, &actor.label(), &reason).await?;
    change
        .commit(
            actor
                .event("staff.session_ended")
                .target(format!("staff:{owner}"))
                .reason(reason)
                .details(serde_json::json!({ "session": session, "email": email })),
        )
        .await?;
    Ok(())
}

/// Ends every session of staff member `id`, in one action, with a reason. Returns how many
/// were live.
pub async fn end_all_sessions(actor: &Actor, id: Uuid, reason: &str) -> Result<usize, AppError> {
    let reason = crate::domain::input::normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let current = lock_target(&mut change, id).await?;
    let ended =
        crate::auth::queries::end_sessions(&mut change, id, &actor.label(), &reason).await?;
    change
        .commit(
            actor
                .event("staff.sessions_ended")
                .target(format!("staff:{id}"))
                .reason(reason)
                .details(serde_json::json!({ "email": current.email, "sessions": ended })),
        )
        .await?;
    Ok(ended)
}

/// Ends every staff session, everyone's, in one action (runbook 004's emergency: sessions
/// believed stolen in bulk, or a signing key believed known), with a reason: each one is
/// refused at its next request, on every instance, whatever key signed it. Returns how many
/// people and how many live sessions.
pub async fn end_everyones_sessions(actor: &Actor, reason: &str) -> Result<(u64, u64), AppError> {
    let reason = crate::domain::input::normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let (people, sessions) =
        crate::auth::queries::end_everyones_sessions(&mut change, &actor.label(), &reason).await?;
    change
        .commit(
            actor
                .event("staff.all_sessions_ended")
                .target("staff:*".to_owned())
                .reason(reason)
                .details(serde_json::json!({ "people": people, "sessions": sessions })),
        )
        .await?;
    Ok((people, sessions))
}
