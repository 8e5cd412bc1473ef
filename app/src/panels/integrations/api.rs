//! Server functions of the Integrations panel. Reading needs `ViewConsole`; minting and
//! revoking one token `Operate`; mass revocation `CommandIncident`.

use super::{
    MintForm, MintedToken, PanelContext, RevokeOutcome, RevokePreview, TokenDetail, TokenFilter,
    TokenPage,
};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Actor, Permission};
#[cfg(feature = "ssr")]
use crate::domain::tenants::Tenant;
use crate::error::AppError;
use leptos::prelude::*;

#[cfg(feature = "ssr")]
async fn tenant(actor: &Actor, slug: &str) -> Result<Tenant, AppError> {
    crate::domain::tenants::queries::find(actor.reader(), slug).await
}

#[cfg(feature = "ssr")]
fn token_id(raw: &str) -> Result<String, AppError> {
    let id = raw.trim();
    if !super::is_token_id_text(id) {
        return Err(AppError::validation("token_id", "That is not a token id."));
    }
    Ok(id.to_owned())
}

/// Owners to choose from and the tenant's lifetime policy.
#[server]
pub async fn integrations_context(tenant: String) -> Result<PanelContext, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let tenant = self::tenant(&actor, &tenant).await?;
    let me = actor
        .staff()
        .map(|s| s.id)
        .ok_or_else(|| AppError::internal(&"request actor without staff identity"))?;
    Ok(PanelContext {
        tenant_name: tenant.name.clone(),
        owners: super::queries::owners(actor.reader(), tenant.id).await?,
        max_lifetime_days: super::queries::max_lifetime_days(actor.reader(), tenant.id).await?,
        me,
    })
}

/// One page of the tenant's tokens matching `filter`, after the cursor `after`.
#[server]
pub async fn list_tokens(
    tenant: String,
    #[server(default)] filter: TokenFilter,
    #[server(default)] after: Option<String>,
) -> Result<TokenPage, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let tenant = self::tenant(&actor, &tenant).await?;
    let checked = filter.check()?;
    let after = match after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(super::decode_cursor(raw)?),
    };
    let mut rows = super::queries::list(
        actor.reader(),
        tenant.id,
        &checked,
        after,
        super::PAGE_SIZE + 1,
    )
    .await?;
    let next = if rows.len() as i64 > super::PAGE_SIZE {
        rows.truncate(super::PAGE_SIZE as usize);
        rows.last()
            .map(|last| super::encode_cursor(last.created_at, &last.id))
    } else {
        None
    };
    Ok(TokenPage { rows, next })
}

/// One token with its event history.
#[server]
pub async fn get_token(tenant: String, token_id: String) -> Result<TokenDetail, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let tenant = self::tenant(&actor, &tenant).await?;
    let id = self::token_id(&token_id)?;
    let token = super::queries::get(actor.reader(), tenant.id, &id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Token {id}")))?;
    let events = super::queries::history(actor.reader(), &id, super::HISTORY_LIMIT).await?;
    Ok(TokenDetail { token, events })
}

/// Mints a token. The answer carries the plaintext, the only time it leaves the server.
#[server]
pub async fn mint_token(
    tenant: String,
    #[server(default)] form: MintForm,
) -> Result<MintedToken, AppError> {
    let actor = require(Permission::Operate).await?;
    let verifier = actor.verifier()?;
    let tenant = self::tenant(&actor, &tenant).await?;
    super::ops::mint(&actor, &tenant, &form, verifier.master_key()).await
}

/// Revokes one token, with a reason.
#[server]
pub async fn revoke_token(
    tenant: String,
    token_id: String,
    reason: String,
) -> Result<(), AppError> {
    let actor = require(Permission::Operate).await?;
    let verifier = actor.verifier()?;
    let tenant = self::tenant(&actor, &tenant).await?;
    let id = self::token_id(&token_id)?;
    super::ops::revoke(&actor, &tenant, &id, &reason).await?;
    // This instance refuses the token from its very next call; the others hear of it
    // through the notification the change sent.
    verifier.invalidate(&id);
    Ok(())
}

/// How many tokens revoking all of the tenant, a client or an owner would touch.
#[server]
pub async fn preview_revoke_all(tenant: String, scope: String) -> Result<RevokePreview, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let tenant = self::tenant(&actor, &tenant).await?;
    let scope = super::RevokeScope::decode(&scope)?;
    super::ops::preview(&actor, &tenant, scope).await
}

/// Revokes every active token of the tenant, a client or an owner.
#[server]
pub async fn revoke_all_tokens(
    tenant: String,
    scope: String,
    reason: String,
    confirmation: String,
    expected: i64,
) -> Result<RevokeOutcome, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let tenant = self::tenant(&actor, &tenant).await?;
    let scope = super::RevokeScope::decode(&scope)?;
    let outcome =
        super::ops::revoke_all(&actor, &tenant, scope, &reason, &confirmation, expected).await?;
    verifier.invalidate_all();
    Ok(outcome)
}
