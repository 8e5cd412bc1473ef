//! Server functions of the keys panel. Reading needs `ViewConsole`; staging and previews
//! `CommandIncident`; activating and revoking are dangerous: `CommandIncident` with a
//! second factor used in the last minutes.

use super::{KeyChanged, KeysPage, RevokePreview};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// The key timings this server runs with (read before the first await: the context is
/// gone after it).
#[cfg(feature = "ssr")]
fn policy() -> crate::domain::keys::KeyPolicy {
    use_context::<crate::domain::keys::KeyPolicy>().unwrap_or_default()
}

/// After a change to keys or to what tenants' tokens are checked against: this instance
/// signs, verifies and publishes with the new key set before it answers (the others reload
/// on the notification the change sent), so the next request anyone makes here sees it.
#[cfg(feature = "ssr")]
pub(crate) async fn reload_keys_here(actor: &crate::auth::Actor) {
    if let Ok(verifier) = actor.verifier() {
        if let Err(err) = verifier.keys().reload().await {
            tracing::error!(error = %err, "reloading the key set after a key change failed");
        }
    }
}

/// [`reload_keys_here`] after a key change that went through.
#[cfg(feature = "ssr")]
async fn changed_here(
    actor: &crate::auth::Actor,
    changed: Result<KeyChanged, AppError>,
) -> Result<KeyChanged, AppError> {
    if changed.is_ok() {
        reload_keys_here(actor).await;
    }
    changed
}

/// A tenant's keys.
#[server]
pub async fn signing_keys(tenant: String) -> Result<KeysPage, AppError> {
    let policy = policy();
    let actor = require(Permission::ViewConsole).await?;
    let found = crate::domain::tenants::queries::find(actor.reader(), tenant.trim()).await?;
    let algorithm = crate::panels::tenants::queries::settings(actor.reader(), &found.slug)
        .await?
        .map(|s| s.signing_algorithm)
        .unwrap_or(crate::domain::status::SigningAlgorithm::Es256);
    Ok(KeysPage {
        keys: super::queries::list(actor.reader(), found.id).await?,
        usage: super::queries::usage(actor.reader(), found.id).await?,
        slug: found.slug,
        name: found.name,
        algorithm,
        jwks_max_age_secs: policy.jwks_max_age_secs,
        now: time::OffsetDateTime::now_utc(),
    })
}

/// Stages a new key for the tenant.
#[server]
pub async fn stage_signing_key(tenant: String, reason: String) -> Result<KeyChanged, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let changed = super::ops::stage(&actor, verifier.master_key(), &tenant, &reason).await;
    changed_here(&actor, changed).await
}

/// Activates a staged key (`emergency`: before the JWKS max-age has passed, with the
/// tenant's slug typed as `confirmation`).
#[server]
pub async fn activate_signing_key(
    tenant: String,
    kid: String,
    reason: String,
    emergency: Option<String>,
    confirmation: Option<String>,
) -> Result<KeyChanged, AppError> {
    let policy = policy();
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let emergency = emergency.is_some_and(|v| matches!(v.as_str(), "on" | "true"));
    let changed = super::ops::activate(
        &actor,
        policy,
        &tenant,
        &kid,
        &reason,
        emergency,
        confirmation.as_deref().unwrap_or_default(),
    )
    .await;
    changed_here(&actor, changed).await
}

/// What revoking `kid` (or every published key, with none) would revoke.
#[server]
pub async fn preview_key_revocation(
    tenant: String,
    kid: Option<String>,
) -> Result<RevokePreview, AppError> {
    let policy = policy();
    let actor = require(Permission::CommandIncident).await?;
    super::ops::preview(
        &actor,
        policy,
        &tenant,
        kid.as_deref().filter(|k| !k.trim().is_empty()),
    )
    .await
}

/// Revokes the key `kid` (typed again as `confirmation`).
#[server]
pub async fn revoke_signing_key(
    tenant: String,
    kid: String,
    reason: String,
    confirmation: String,
) -> Result<KeyChanged, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let changed = super::ops::revoke(
        &actor,
        verifier.master_key(),
        &tenant,
        &kid,
        &reason,
        &confirmation,
    )
    .await;
    changed_here(&actor, changed).await
}

/// Revokes every published key of the tenant and activates a fresh one.
#[server]
pub async fn revoke_all_signing_keys(
    tenant: String,
    reason: String,
    confirmation: String,
    expected: i64,
) -> Result<KeyChanged, AppError> {
    let actor = require_stepped_up(Permission::CommandIncident).await?;
    let verifier = actor.verifier()?;
    let changed = super::ops::revoke_all(
        &actor,
        verifier.master_key(),
        &tenant,
        &reason,
        &confirmation,
        expected,
    )
    .await;
    changed_here(&actor, changed).await
}

/// The live instances, the key epoch, and the tenant's latest request to them.
#[server]
pub async fn key_instances(tenant: String) -> Result<super::InstancesView, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    super::ops::instances(&actor, &tenant).await
}

/// Asks every live instance to refresh its key set (`refresh`) or verify it (`verify`):
/// the request's id.
#[server]
pub async fn ask_instances(tenant: String, kind: String) -> Result<String, AppError> {
    let actor = require(Permission::CommandIncident).await?;
    let kind = super::InstanceRequestKind::parse(kind.trim()).ok_or_else(|| {
        AppError::validation("kind", "Ask the instances to refresh or to verify.")
    })?;
    super::ops::ask_instances(&actor, &tenant, kind).await
}

/// A request to the instances and their answers so far.
#[server]
pub async fn instance_request(
    tenant: String,
    id: String,
) -> Result<super::InstanceRequest, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    super::ops::request(&actor, &tenant, &id).await
}
