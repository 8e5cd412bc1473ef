//! Server functions of the users panel. Reading needs `ViewConsole`; creating accounts,
//! revoking an account's sessions and locking it `CommandIncident`; revoking every session
//! of the tenant is dangerous: `CommandIncident` with a recent second factor, the slug
//! typed.

use super::{UserDetail, UsersPage};
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
    Ok(UserDetail {
        sessions: super::queries::sessions(actor.reader(), id).await?,
        events: super::queries::events(actor.reader(), found.id, id).await?,
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

/// Locks the account (runbook 004): every session revoked, sign-in refused.
#[server]
pub async fn lock_end_user(tenant: String, id: String, reason: String) -> Result<i64, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    crate::domain::endusers::ops::lock(&actor, &tenant, user_id(&id)?, &reason).await
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
