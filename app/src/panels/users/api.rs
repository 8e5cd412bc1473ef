//! Server functions of the users panel. Reading needs `ViewConsole`; creating accounts,
//! revoking an account's sessions, locking it, forcing a reset, deleting it, sending
//! recovery and dropping queued mail need `CommandIncident`; what gives access back
//! (unlocking, restoring, widening the email domains) and revoking every session of the
//! tenant or of every tenant are dangerous: `CommandIncident` with a recent second factor
//! (the last two with the words typed).

use super::{ImportReport, LockDone, MailPage, PlatformPreview, UserDetail, UsersPage};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
fn user_id(raw: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| AppError::not_found("That user"))
}

/// A page of the tenant's accounts.
#[server]
pub async fn list_end_users(
    tenant: String,
    q: Option<String>,
    state: Option<String>,
    after: Option<String>,
) -> Result<UsersPage, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let found = crate::domain::tenants::queries::find(actor.reader(), tenant.trim()).await?;
    let q = q.unwrap_or_default().trim().to_lowercase();
    if q.chars().count() > 254 {
        return Err(AppError::validation(
            "q",
            "Search with at most 254 characters.",
        ));
    }
    let state = state.filter(|s| !s.is_empty());
    if let Some(state) = &state {
        if !super::STATES.contains(&state.as_str()) {
            return Err(AppError::validation(
                "state",
                "Choose a state from the list.",
            ));
        }
    }
    let id = uuid::Uuid::parse_str(&q).ok();
    let mut rows = super::queries::list(
        actor.reader(),
        found.id,
        &q,
        id,
        state.as_deref(),
        after.as_deref().filter(|a| !a.is_empty()),
    )
    .await?;
    let next = (rows.len() as i64 > super::PAGE_SIZE).then(|| {
        rows.truncate(super::PAGE_SIZE as usize);
        rows.last().map(|r| r.email.clone()).unwrap_or_default()
    });
    Ok(UsersPage {
        live_sessions: super::queries::live_sessions(actor.reader(), found.id).await?,
        slug: found.slug,
        rows,
        next,
    })
}

/// One account: its sessions and recent events.
#[server]
pub async fn end_user_detail(tenant: String, id: String) -> Result<UserDetail, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let found = crate::domain::tenants::queries::find(actor.reader(), tenant.trim()).await?;
    let id = user_id(&id)?;
    let mut user = super::queries::user(actor.reader(), found.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("That user"))?;
    let verifier = actor.verifier()?;
    user.locked_until = crate::domain::endusers::sessions::lockout_until(
        verifier.pool(),
        verifier.master_key(),
        found.id,
        &user.email,
    )
    .await?;
    let domains = super::queries::email_domains(actor.reader(), found.id).await?;
    Ok(UserDetail {
        sessions: super::queries::sessions(actor.reader(), id).await?,
        live_refresh: super::queries::live_refresh(actor.reader(), id).await?,
        events: super::queries::events(actor.reader(), found.id, id).await?,
        sources: super::queries::sources(actor.reader(), found.id, id).await?,
        mail: super::queries::mail_of_user(actor.reader(), id).await?,
        mail_allowed: crate::domain::endusers::mail::domain_allowed(&domains, &user.email),
        slug: found.slug,
        user,
    })
}

/// Creates an account: its id.
#[server]
pub async fn create_end_user(
    tenant: String,
    email: String,
    password: String,
) -> Result<String, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::create_user(&actor, &tenant, &email, &password)
        .await
        .map(|id| id.to_string())
}

/// Revokes every session of the account: how many were live.
#[server]
pub async fn revoke_end_user_sessions(
    tenant: String,
    id: String,
    reason: String,
) -> Result<i64, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::revoke_user_sessions(&actor, &tenant, user_id(&id)?, &reason)
        .await
}

/// Locks the account (runbook 004): every session revoked, sign-in refused; optionally a
/// recovery mail and a block of addresses seen on it.
#[server]
pub async fn lock_end_user(
    tenant: String,
    id: String,
    reason: String,
    #[server(default)] send_recovery: bool,
    #[server(default)] block: Vec<String>,
) -> Result<LockDone, AppError> {
    use crate::domain::endusers::ops::{lock, LockOptions};
    let actor = require(Permission::CommandIncident).await?;
    let controls = actor.controls()?;
    let options = LockOptions {
        send_recovery,
        block,
        block_for: time::Duration::days(super::LOCK_BLOCK_DAYS),
    };
    let locked = lock(&actor, &tenant, user_id(&id)?, &reason, &options).await?;
    if !locked.blocked.is_empty() {
        // This instance applies the blocks at once; the others on the notification.
        crate::domain::gateway::controls::state::reload_after_change(
            controls.reload_limits().await,
        );
    }
    Ok(LockDone {
        after: locked.after.to_owned(),
        live_sessions: locked.live_sessions,
        recovery_queued: locked.recovery_mail.is_some(),
        blocked: locked.blocked,
    })
}

#[cfg(feature = "ssr")]
async fn change_state(
    actor: crate::auth::Actor,
    tenant: &str,
    id: &str,
    what: crate::domain::endusers::ops::StateChange,
    reason: &str,
    send_recovery: bool,
) -> Result<String, AppError> {
    let done = crate::domain::endusers::ops::change_state(
        &actor,
        tenant,
        user_id(id)?,
        what,
        reason,
        send_recovery,
    )
    .await?;
    let mut said = format!("The account is now {}.", done.after);
    if done.revoked_sessions > 0 {
        said.push_str(&format!(" {} session(s) revoked.", done.revoked_sessions));
    }
    if done.recovery_mail.is_some() {
        said.push_str(" A recovery mail is queued.");
    }
    Ok(said)
}

/// Forces a password reset (`needs_password_reset`): every session revoked; optionally a
/// recovery mail.
#[server]
pub async fn force_end_user_password_reset(
    tenant: String,
    id: String,
    reason: String,
    #[server(default)] send_recovery: bool,
) -> Result<String, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    change_state(
        actor,
        &tenant,
        &id,
        crate::domain::endusers::ops::StateChange::ForcePasswordReset,
        &reason,
        send_recovery,
    )
    .await
}

/// Marks the account deleted (recoverable): every session revoked, no sign-in, no mail.
#[server]
pub async fn delete_end_user(
    tenant: String,
    id: String,
    reason: String,
) -> Result<String, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    change_state(
        actor,
        &tenant,
        &id,
        crate::domain::endusers::ops::StateChange::Delete,
        &reason,
        false,
    )
    .await
}

/// Unlocks a locked account (it signs in again): gives access back.
#[server]
pub async fn unlock_end_user(
    tenant: String,
    id: String,
    reason: String,
) -> Result<String, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    change_state(
        actor,
        &tenant,
        &id,
        crate::domain::endusers::ops::StateChange::Unlock,
        &reason,
        false,
    )
    .await
}

/// Restores a deleted account as `needs_password_reset`; optionally a recovery mail.
#[server]
pub async fn restore_end_user(
    tenant: String,
    id: String,
    reason: String,
    #[server(default)] send_recovery: bool,
) -> Result<String, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    change_state(
        actor,
        &tenant,
        &id,
        crate::domain::endusers::ops::StateChange::Restore,
        &reason,
        send_recovery,
    )
    .await
}

/// Queues a recovery mail to the account's email.
#[server]
pub async fn send_end_user_recovery(
    tenant: String,
    id: String,
    reason: String,
) -> Result<(), AppError> {
    let actor = require(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::send_recovery(&actor, &tenant, user_id(&id)?, &reason).await?;
    Ok(())
}

/// The tenant's mail: the queue, recent mail, the switches that hold it, the domains.
#[server]
pub async fn tenant_mail(tenant: String) -> Result<MailPage, AppError> {
    use crate::domain::gateway::controls::SwitchKey;
    let actor = require(Permission::ViewConsole).await?;
    let found = crate::domain::tenants::queries::find(actor.reader(), tenant.trim()).await?;
    let controls = actor.controls()?;
    let transport =
        leptos::prelude::use_context::<std::sync::Arc<crate::domain::endusers::Policy>>()
            .map(|p| p.mailer.describe())
            .unwrap_or("none");
    Ok(MailPage {
        transport: transport.to_owned(),
        sending_enabled: controls.switch(SwitchKey::EmailSendingEnabled, found.id),
        magic_links_enabled: controls.switch(SwitchKey::MagicLinkEnabled, found.id),
        queued: super::queries::mail_of_tenant(actor.reader(), found.id, true).await?,
        recent: super::queries::mail_of_tenant(actor.reader(), found.id, false).await?,
        domains: super::queries::email_domains(actor.reader(), found.id).await?,
        slug: found.slug,
    })
}

/// Drops queued mail with a reason: one mail (`mail`), or all of the tenant's. How many.
#[server]
pub async fn drop_end_user_mail(
    tenant: String,
    #[server(default)] mail: String,
    reason: String,
) -> Result<u64, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let mail = match mail.trim() {
        "" => None,
        raw => Some(uuid::Uuid::parse_str(raw).map_err(|_| AppError::not_found("That mail"))?),
    };
    crate::domain::endusers::ops::drop_mail(&actor, &tenant, mail, &reason).await
}

/// A development outbox file, as sent (it holds a live link: `CommandIncident`).
#[server]
pub async fn outbox_mail(tenant: String, id: String) -> Result<String, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let found = crate::domain::tenants::queries::find(actor.reader(), tenant.trim()).await?;
    let id = uuid::Uuid::parse_str(id.trim()).map_err(|_| AppError::not_found("That mail"))?;
    let row = super::queries::mail(actor.reader(), found.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("That mail"))?;
    let policy = leptos::prelude::use_context::<std::sync::Arc<crate::domain::endusers::Policy>>()
        .ok_or_else(|| AppError::internal(&"end-user policy missing from Leptos context"))?;
    let (Some(dir), Some("outbox"), Some(message_id)) = (
        policy.mailer.outbox_dir(),
        row.transport.as_deref(),
        row.message_id.as_deref(),
    ) else {
        return Err(AppError::not_found("That mail's outbox file"));
    };
    crate::domain::endusers::mail::outbox_message(dir, message_id)
        .await
        .ok_or_else(|| AppError::not_found("That mail's outbox file"))
}

/// Sets the tenant's email domains for magic links and recovery mail (empty: any).
#[server]
pub async fn set_tenant_email_domains(
    tenant: String,
    #[server(default)] domains: String,
    reason: String,
) -> Result<Vec<String>, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::set_email_domains(&actor, &tenant, &domains, &reason).await
}

/// What a platform-wide revocation would reach.
#[server]
pub async fn platform_sessions_preview() -> Result<PlatformPreview, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let (live_sessions, tenants) =
        crate::domain::endusers::ops::platform_preview(actor.reader()).await?;
    Ok(PlatformPreview {
        live_sessions,
        tenants,
        confirmation: crate::domain::endusers::ops::PLATFORM_CONFIRMATION.to_owned(),
    })
}

/// Revokes every session and refresh token of every tenant (runbook 004, systemic
/// compromise).
#[server]
pub async fn revoke_platform_end_user_sessions(
    reason: String,
    confirmation: String,
) -> Result<i64, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::revoke_platform_sessions(&actor, &reason, &confirmation)
        .await
        .map(|(live, _)| live)
}

/// Revokes every session and refresh token of the tenant (runbook 000 §1).
#[server]
pub async fn revoke_tenant_end_user_sessions(
    tenant: String,
    reason: String,
    confirmation: String,
) -> Result<i64, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::revoke_tenant_sessions(&actor, &tenant, &reason, &confirmation)
        .await
}

/// Imports end users from a CSV (one `email` column): `dry_run` only checks every line;
/// otherwise all are created (as `needs_password_reset`, optionally with a recovery mail)
/// or, when a line is wrong, none.
#[server]
pub async fn import_end_users(
    tenant: String,
    csv: String,
    #[server(default)] dry_run: bool,
    #[server(default)] send_recovery: bool,
    #[server(default)] reason: String,
) -> Result<ImportReport, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let done = crate::domain::endusers::ops::import_users(
        &actor,
        &tenant,
        &csv,
        dry_run,
        send_recovery,
        &reason,
    )
    .await?;
    Ok(ImportReport {
        dry_run,
        lines: done
            .lines
            .into_iter()
            .map(|l| super::ImportRow {
                line: l.line,
                email: l.email,
                problem: l.problem,
            })
            .collect(),
        created: done.created,
        mailed: done.mailed,
    })
}
