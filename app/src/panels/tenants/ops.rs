//! Tenant changes, each one transaction with its audit event. Creating a tenant gives it
//! its first active signing key in the same change.

use super::{check_algorithm, check_audiences, check_max_token_days, check_name, queries};
use super::{NewTenantForm, TenantSettings};
use crate::auth::Actor;
use crate::domain::freeze::{self, FrozenOp};
use crate::domain::status::SigningKeyState;
use crate::domain::tenants::Tenant;
use crate::domain::tokens::pepper::MasterKey;
use crate::error::AppError;

/// Most tenants `tenant list` prints.
pub const LIST_LIMIT: i64 = 10_000;

/// Creates a tenant from `form` with its first active signing key. Refused during a
/// freeze (a new tenant is new access).
pub async fn create(
    actor: &Actor,
    master: &MasterKey,
    form: &NewTenantForm,
) -> Result<(Tenant, String), AppError> {
    let new = form.check()?;
    let change = actor.change().await?;
    let mut change = freeze::guard(actor, change, FrozenOp::CreateTenant).await?;
    let tenant = queries::insert(&mut change, &new).await?;
    let kid = crate::panels::keys::ops::insert_new(
        &mut change,
        master,
        tenant.id,
        new.algorithm,
        SigningKeyState::Active,
        &actor.label(),
    )
    .await?;
    let key_event = actor
        .event("signing_key.activated")
        .tenant(tenant.id)
        .target(format!("signing_key:{kid}"))
        .details(serde_json::json!({
            "kid": kid, "algorithm": new.algorithm.as_str(), "before": null, "after": "active",
            "why": "the tenant's first key",
        }));
    change.record_each(&[key_event]).await?;
    let event = actor
        .event("tenant.created")
        .tenant(tenant.id)
        .target(format!("tenant:{}", tenant.slug))
        .details(serde_json::json!({
            "slug": new.slug,
            "name": new.name,
            "audit_retention_months": new.retention_months,
            "max_token_lifetime_days": new.max_token_days,
            "allowed_audiences": new.audiences,
            "signing_algorithm": new.algorithm.as_str(),
            "first_kid": kid,
        }));
    change.commit(event).await?;
    Ok((tenant, kid))
}

/// Every tenant with its settings.
pub async fn list(actor: &Actor) -> Result<Vec<TenantSettings>, AppError> {
    Ok(queries::list(actor.reader(), LIST_LIMIT).await?)
}

async fn locked(
    change: &mut crate::auth::Change,
    slug: &str,
) -> Result<(uuid::Uuid, TenantSettings), AppError> {
    let slug = slug.trim();
    crate::domain::tenants::validate_slug(slug)?;
    queries::lock(change, slug)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Tenant “{slug}”")))
}

/// Renames the tenant `slug` (its slug, in paths and tokens, stays).
pub async fn rename(actor: &Actor, slug: &str, name: &str) -> Result<(), AppError> {
    let name = check_name(name)?;
    let mut change = actor.change().await?;
    let (id, before) = locked(&mut change, slug).await?;
    if before.name == name {
        return Err(AppError::validation(
            "name",
            "This is the tenant's name already.",
        ));
    }
    queries::rename(&mut change, id, &name).await?;
    let event = actor
        .event("tenant.renamed")
        .tenant(id)
        .target(format!("tenant:{}", before.slug))
        .details(serde_json::json!({ "before": before.name, "after": name }));
    change.commit(event).await?;
    Ok(())
}

/// Sets the tenant's longest token lifetime, allowed audiences and the algorithm of its
/// new keys. Raising the lifetime or allowing a new audience is refused during a freeze.
pub async fn update_settings(
    actor: &Actor,
    slug: &str,
    max_token_days: &str,
    audiences: &str,
    algorithm: &str,
) -> Result<TenantSettings, AppError> {
    let days = check_max_token_days(max_token_days)?;
    let audiences = check_audiences(audiences)?;
    let algorithm = check_algorithm(algorithm)?;
    let mut change = actor.change().await?;
    let (id, before) = locked(&mut change, slug).await?;
    let unchanged = before.max_token_lifetime_days == days
        && before.allowed_audiences == audiences
        && before.signing_algorithm == algorithm;
    if unchanged {
        return Err(AppError::validation(
            "max_token_days",
            "Nothing to save: these are the tenant's settings already.",
        ));
    }
    let widens = days > before.max_token_lifetime_days
        || audiences
            .iter()
            .any(|a| !before.allowed_audiences.contains(a));
    if widens {
        // The guard must run before anything is written; the row lock taken above is kept
        // by the same transaction.
        change = freeze::guard(actor, change, FrozenOp::WidenTenantSettings).await?;
    }
    queries::set_settings(&mut change, id, days, &audiences, algorithm).await?;
    let event = actor
        .event("tenant.settings_changed")
        .tenant(id)
        .target(format!("tenant:{}", before.slug))
        .details(serde_json::json!({
            "before": {
                "max_token_lifetime_days": before.max_token_lifetime_days,
                "allowed_audiences": before.allowed_audiences,
                "signing_algorithm": before.signing_algorithm.as_str(),
            },
            "after": {
                "max_token_lifetime_days": days,
                "allowed_audiences": audiences,
                "signing_algorithm": algorithm.as_str(),
            },
        }));
    change.commit(event).await?;
    Ok(TenantSettings {
        max_token_lifetime_days: days,
        allowed_audiences: audiences,
        signing_algorithm: algorithm,
        ..before
    })
}
