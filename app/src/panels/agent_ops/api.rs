//! Server functions of Agent Ops. Reading needs `ViewConsole`; creating, suspending,
//! reactivating, allowlisting and rotating keys `Operate`; revoking a client (final, takes
//! its tokens) `CommandIncident`.

use super::{ClientDetail, ClientRow, MintedKey, RevokePreview};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Actor, Permission};
use crate::error::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
async fn tenant_id(actor: &Actor, slug: &str) -> Result<uuid::Uuid, AppError> {
    Ok(crate::domain::tenants::queries::find(actor.reader(), slug)
        .await?
        .id)
}

/// The tenant's API clients, optionally of one status.
#[server]
pub async fn list_clients(
    tenant: String,
    #[server(default)] status: String,
) -> Result<Vec<ClientRow>, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let status = super::parse_status_filter(&status)?;
    Ok(super::queries::list(actor.reader(), tenant, status.as_deref()).await?)
}

/// One client with its keys, history and recent refusals.
#[server]
pub async fn get_client(tenant: String, id: String) -> Result<ClientDetail, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let id = super::parse_client_id(&id)?;
    super::queries::detail(actor.reader(), tenant, id).await
}

/// Creates a client and its first key (shown once).
#[server]
pub async fn create_client(
    tenant: String,
    name: String,
    #[server(default)] allowlisted: Option<String>,
) -> Result<MintedKey, AppError> {
    let actor = require(Permission::Operate).await?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let allowlisted = matches!(allowlisted.as_deref(), Some("on" | "true"));
    super::ops::create(&actor, tenant, &name, allowlisted).await
}

/// Suspends (`status` = `suspended`) or reactivates (`active`) a client.
#[server]
pub async fn set_client_status(
    tenant: String,
    id: String,
    status: String,
    reason: String,
) -> Result<(), AppError> {
    let actor = require(Permission::Operate).await?;
    let verifier = actor.verifier()?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let id = super::parse_client_id(&id)?;
    let active = match status.as_str() {
        "active" => true,
        "suspended" => false,
        _ => {
            return Err(AppError::validation(
                "status",
                "Choose suspended or active. To revoke for good, use Revoke.",
            ))
        }
    };
    super::ops::set_active(&actor, tenant, id, active, &reason).await?;
    verifier.invalidate_owner(id);
    Ok(())
}

/// Puts a client on the allowlist (`allowlisted` = `true`) or takes it off.
#[server]
pub async fn set_client_allowlisted(
    tenant: String,
    id: String,
    allowlisted: String,
    reason: String,
) -> Result<(), AppError> {
    let actor = require(Permission::Operate).await?;
    let verifier = actor.verifier()?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let id = super::parse_client_id(&id)?;
    let allowlisted = match allowlisted.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(AppError::validation(
                "allowlisted",
                "Say whether the client goes on the allowlist (true) or off it (false).",
            ))
        }
    };
    super::ops::set_allowlisted(&actor, tenant, id, allowlisted, &reason).await?;
    verifier.invalidate_owner(id);
    Ok(())
}

/// Rotates the client's key; the new one is shown once.
#[server]
pub async fn rotate_client_key(
    tenant: String,
    id: String,
    grace_hours: String,
    reason: String,
) -> Result<MintedKey, AppError> {
    let actor = require(Permission::Operate).await?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let id = super::parse_client_id(&id)?;
    super::ops::rotate_key(&actor, tenant, id, &grace_hours, &reason).await
}

/// What revoking the client would take with it.
#[server]
pub async fn preview_client_revoke(tenant: String, id: String) -> Result<RevokePreview, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let id = super::parse_client_id(&id)?;
    super::queries::preview_revoke(actor.reader(), tenant, id).await
}

/// Revokes the client for good, with its tokens and keys. Returns the tokens revoked.
#[server]
pub async fn revoke_client(
    tenant: String,
    id: String,
    reason: String,
    confirmation: String,
    expected: i64,
) -> Result<i64, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let tenant = tenant_id(&actor, &tenant).await?;
    let id = super::parse_client_id(&id)?;
    let revoked = super::ops::revoke(&actor, tenant, id, &reason, &confirmation, expected).await?;
    // This instance forgets the client's tokens at once; others on the notification.
    verifier.invalidate_owner(id);
    Ok(revoked)
}
