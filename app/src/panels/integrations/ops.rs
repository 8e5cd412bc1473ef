//! The token changes themselves: mint, revoke one, revoke all. Each is one audited change:
//! validate, lock, change, record, commit.

use super::{
    normalize_reason, normalize_scopes, normalize_token_name, parse_lifetime, queries, MintForm,
    MintedToken, Owner, RevokeOutcome, RevokePreview, RevokeScope,
};
use crate::auth::Actor;
use crate::domain::tenants::Tenant;
use crate::domain::tokens::pepper::{self, MasterKey};
use crate::domain::tokens::token;
use crate::error::AppError;

fn target(id: &str) -> String {
    format!("pat:{id}")
}

/// Mints a token: the plaintext is returned here and nowhere else.
pub async fn mint(
    actor: &Actor,
    tenant: &Tenant,
    form: &MintForm,
    master: &MasterKey,
) -> Result<MintedToken, AppError> {
    let name = normalize_token_name(&form.name)?;
    let scopes = normalize_scopes(&form.scopes)?;
    let owner = Owner::decode(&form.owner)
        .ok_or_else(|| AppError::validation("owner", "Choose who owns the token."))?;
    let max_days = queries::max_lifetime_days(actor.reader(), tenant.id).await?;
    let lifetime_days = parse_lifetime(&form.lifetime_days, max_days)?;

    // A token owned by a staff member speaks for them at the agent API: operators mint for
    // themselves or for the tenant's clients; only incident commanders (and up) for others.
    if let (Owner::Staff(id), Some(me)) = (owner, actor.staff()) {
        if id != me.id && !me.can(crate::auth::Permission::CommandIncident) {
            return Err(AppError::validation(
                "owner",
                "You can mint tokens for yourself or for an API client of this tenant.",
            ));
        }
    }
    let mut change = crate::domain::freeze::guard(
        actor,
        actor.change().await?,
        crate::domain::freeze::FrozenOp::MintToken,
    )
    .await?;
    let owner_state = queries::lock_owner(&mut change, tenant.id, owner)
        .await?
        .ok_or_else(|| {
            AppError::validation("owner", "That owner does not exist in this tenant.")
        })?;
    if owner_state
        .role
        .is_some_and(|role| role < super::STAFF_TOKEN_MIN_ROLE)
    {
        return Err(AppError::validation(
            "owner",
            format!(
                "{} is not an operator or above, and a token acts with its owner's role: it would be refused at the gateway.",
                owner_state.label
            ),
        ));
    }
    if !owner_state.active {
        return Err(AppError::validation(
            "owner",
            format!(
                "{} is not active and cannot own a new token.",
                owner_state.label
            ),
        ));
    }
    // A rotation committing while this waited for the current row makes the row read
    // no longer current; the second read sees the new one.
    let sealed = match queries::lock_current_pepper(&mut change).await? {
        Some(sealed) => sealed,
        None => queries::lock_current_pepper(&mut change)
            .await?
            .ok_or_else(|| AppError::internal(&"no current token pepper"))?,
    };
    let current = pepper::open(master, sealed.version, &sealed.nonce, &sealed.sealed)
        .ok_or_else(|| AppError::internal(&"the current token pepper does not open"))?;
    let minted = token::mint();
    let hash = token::hash(current.key(), minted.secret());
    let expires_at = queries::insert(
        &mut change,
        &queries::NewToken {
            id: &minted.id,
            tenant_id: tenant.id,
            owner,
            name: &name,
            scopes: &scopes,
            secret_hash: &hash,
            pepper_version: current.version,
            lifetime_days,
            created_by: actor.staff().map(|s| s.id),
        },
    )
    .await?;
    let event = actor
        .event("token.created")
        .target(target(&minted.id))
        .details(serde_json::json!({
            "name": name,
            "owner": owner.encode(),
            "owner_label": owner_state.label,
            "scopes": scopes,
            "lifetime_days": lifetime_days,
            "pepper_version": current.version,
        }))
        .tenant(tenant.id);
    change.commit(event).await?;
    Ok(MintedToken {
        id: minted.id.clone(),
        plaintext: minted.plaintext.to_string(),
        expires_at,
    })
}

/// Revokes one token. A token already revoked is reported, not revoked twice: two people
/// revoking at once queue on the row lock, and the second is told who was first.
pub async fn revoke(
    actor: &Actor,
    tenant: &Tenant,
    id: &str,
    reason: &str,
) -> Result<(), AppError> {
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let locked = queries::lock_token(&mut change, tenant.id, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Token {id}")))?;
    if locked.status == crate::domain::status::TokenStatus::Revoked {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "Token “{}” was already revoked{}{}. Nothing changed.",
                locked.name,
                locked
                    .revoked_by
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default(),
                locked
                    .revoked_at
                    .map(|at| format!(" at {}", crate::components::time::utc_minutes(at)))
                    .unwrap_or_default(),
            ),
        });
    }
    queries::revoke(&mut change, id, &actor.label(), &reason).await?;
    let event = actor
        .event("token.revoked")
        .target(target(id))
        .reason(reason)
        .details(serde_json::json!({ "name": locked.name }))
        .tenant(tenant.id);
    change.commit(event).await?;
    Ok(())
}

/// Revokes every active token `staff_id` owns, in every tenant, inside `change` (one
/// `token.revoked` event each, with `reason`): the step of an audited staff change such as
/// a password reset. Returns how many it revoked. After the change commits, call
/// [`Actor::forget_cached_tokens_of`] so this instance refuses them at once.
pub async fn revoke_owned_by_staff(
    change: &mut crate::auth::Change,
    actor: &Actor,
    staff_id: uuid::Uuid,
    reason: &str,
) -> Result<usize, AppError> {
    let matching = queries::Matching {
        tenant: None,
        client: None,
        staff: Some(staff_id),
        pepper_version: None,
    };
    let revoked = queries::revoke_matching(change, matching, &actor.label(), reason).await?;
    let per_token = actor
        .event("token.revoked")
        .reason(reason.to_owned())
        .details(serde_json::json!({ "owner": Owner::Staff(staff_id).encode() }));
    queries::record_revocations(change, &per_token, &revoked).await?;
    Ok(revoked.len())
}

/// Says what a mass revoke would touch and what to type to confirm it.
pub async fn preview(
    actor: &Actor,
    tenant: &Tenant,
    scope: RevokeScope,
) -> Result<RevokePreview, AppError> {
    let (description, confirm_with) = match scope {
        RevokeScope::Tenant => (
            format!("every active token of {}", tenant.name),
            tenant.slug.clone(),
        ),
        RevokeScope::Client(id) => {
            let name = queries::client_name(actor.reader(), tenant.id, id)
                .await?
                .ok_or_else(|| {
                    AppError::validation("scope", "That client is not in this tenant.")
                })?;
            (format!("every active token of client {name}"), name)
        }
        RevokeScope::Owner(id) => {
            let email = crate::panels::staff::queries::email_of(actor.reader(), id)
                .await?
                .ok_or_else(|| {
                    AppError::validation("scope", "That staff member does not exist.")
                })?;
            (format!("every active token owned by {email}"), email)
        }
    };
    let active_tokens = queries::count_active(actor.reader(), tenant.id, scope).await?;
    Ok(RevokePreview {
        scope,
        description,
        active_tokens,
        confirm_with,
    })
}

/// Revokes every active token in `scope` after a typed confirmation. `expected` is the
/// count the preview showed: if more tokens are active now, nothing is revoked and the
/// person is asked to look again (fewer is fine: someone else revoked some meanwhile).
pub async fn revoke_all(
    actor: &Actor,
    tenant: &Tenant,
    scope: RevokeScope,
    reason: &str,
    confirmation: &str,
    expected: i64,
) -> Result<RevokeOutcome, AppError> {
    let reason = normalize_reason(reason)?;
    let shown = preview(actor, tenant, scope).await?;
    if confirmation.trim() != shown.confirm_with {
        return Err(AppError::validation(
            "confirmation",
            format!("Type {} exactly to confirm.", shown.confirm_with),
        ));
    }
    let mut change = actor.change().await?;
    let revoked_tokens = queries::revoke_matching(
        &mut change,
        queries::Matching::scope(tenant.id, scope),
        &actor.label(),
        &reason,
    )
    .await?;
    let revoked = revoked_tokens.len() as i64;
    if revoked > expected {
        // Dropping the change rolls the revocations back.
        return Err(AppError::Conflict {
 field: None,
            message: format!(
                "{revoked} tokens are active now, more than the {expected} the preview showed. Nothing was revoked: review the preview again."
            ),
        });
    }
    let per_token = actor
        .event("token.revoked")
        .reason(reason.clone())
        .details(serde_json::json!({ "mass_revoke": scope.encode() }));
    queries::record_revocations(&mut change, &per_token, &revoked_tokens).await?;
    let summary = actor
        .event("tokens.revoked_all")
        .target(format!("tenant:{}", tenant.slug))
        .reason(reason)
        .details(serde_json::json!({
            "scope": scope.encode(),
            "description": shown.description,
            "revoked": revoked,
            "previewed": expected,
        }))
        .tenant(tenant.id);
    change.commit(summary).await?;
    Ok(RevokeOutcome { revoked })
}
