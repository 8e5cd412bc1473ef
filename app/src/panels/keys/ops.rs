//! Signing key changes, each one transaction with its audit events (before and after
//! states in the details). The tenant's row is locked first, so the changes of one tenant's
//! keys run one after the other and the tenant always has exactly one active key.
//!
//! Every change notifies every instance (`keys`, by the table's trigger) when it commits.

use super::queries::{self, LockedTenant, NewKey};
use super::{check_kid, KeyChanged, RevokePreview, SigningKey, MAX_STAGED};
use crate::auth::{Actor, Change};
use crate::domain::audit::NewEvent;
use crate::domain::freeze::{self, FrozenOp};
use crate::domain::input::normalize_reason;
use crate::domain::keys::{self, KeyPolicy, PrivateKey};
use crate::domain::status::{SigningAlgorithm, SigningKeyState};
use crate::domain::tokens::pepper::MasterKey;
use crate::error::AppError;
use time::OffsetDateTime;
use uuid::Uuid;

/// Generates a key of `algorithm` for `tenant`, seals it and inserts it as `state`
/// (`staged` or `active`): its kid.
pub(crate) async fn insert_new(
    change: &mut Change,
    master: &MasterKey,
    tenant: Uuid,
    algorithm: SigningAlgorithm,
    state: SigningKeyState,
    by: &str,
) -> Result<String, AppError> {
    let key = PrivateKey::generate(algorithm);
    let public = key.public();
    let kid = public.thumbprint();
    let (nonce, sealed) = keys::seal(master.expose(), tenant, &kid, &key);
    queries::insert(
        change,
        NewKey {
            kid: &kid,
            tenant,
            algorithm,
            jwk: public.jwk(),
            nonce: &nonce,
            sealed: &sealed,
            state,
            created_by: by,
        },
    )
    .await?;
    Ok(kid)
}

/// The audit event of a key's change.
fn key_event(actor: &Actor, action: &str, tenant: &LockedTenant, kid: &str) -> NewEvent {
    actor
        .event(action)
        .tenant(tenant.id)
        .target(format!("signing_key:{kid}"))
}

async fn locked(change: &mut Change, slug: &str) -> Result<LockedTenant, AppError> {
    let slug = slug.trim();
    crate::domain::tenants::validate_slug(slug)?;
    queries::lock_tenant(change, slug)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Tenant “{slug}”")))
}

/// The published key `kid` of the locked tenant: a message at the `kid` field when the
/// tenant has no such key.
fn find<'a>(keys: &'a [SigningKey], kid: &str, tenant: &str) -> Result<&'a SigningKey, AppError> {
    keys.iter().find(|k| k.kid == kid).ok_or_else(|| {
        AppError::validation(
            "kid",
            format!("Tenant “{tenant}” has no published key with this kid."),
        )
    })
}

const PUBLISHED: [SigningKeyState; 3] = [
    SigningKeyState::Staged,
    SigningKeyState::Active,
    SigningKeyState::Retired,
];

/// Stages a new key (published, not signing) for the tenant `slug`, in its algorithm.
pub async fn stage(
    actor: &Actor,
    master: &MasterKey,
    slug: &str,
    reason: &str,
) -> Result<KeyChanged, AppError> {
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let tenant = locked(&mut change, slug).await?;
    let staged = queries::lock_keys(&mut change, tenant.id, &[SigningKeyState::Staged]).await?;
    if staged.len() as i64 >= MAX_STAGED {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "Tenant “{}” has {MAX_STAGED} staged keys already: activate or revoke one first.",
                tenant.slug
            ),
        });
    }
    let kid = insert_new(
        &mut change,
        master,
        tenant.id,
        tenant.algorithm,
        SigningKeyState::Staged,
        &actor.label(),
    )
    .await?;
    let event = key_event(actor, "signing_key.staged", &tenant, &kid)
        .reason(reason)
        .details(serde_json::json!({
            "kid": kid, "algorithm": tenant.algorithm.as_str(), "before": null, "after": "staged",
        }));
    change.commit(event).await?;
    Ok(KeyChanged {
        staged: Some(kid),
        activated: None,
        retired: None,
        revoked: Vec::new(),
    })
}

/// Makes the staged key `kid` the tenant's active key; the key active until now is retired
/// and verifies until its derived `verify_until`.
///
/// Refused while the key has been published for less than the JWKS max-age, unless this is
/// an `emergency` activation, which needs the tenant's slug typed as `confirmation`.
/// Refused during a freeze either way: it puts a new key to signing.
pub async fn activate(
    actor: &Actor,
    policy: KeyPolicy,
    slug: &str,
    kid: &str,
    reason: &str,
    emergency: bool,
    confirmation: &str,
) -> Result<KeyChanged, AppError> {
    let kid = check_kid(kid)?;
    let reason = normalize_reason(reason)?;
    if emergency && confirmation.trim() != slug.trim() {
        return Err(AppError::validation(
            "confirmation",
            format!(
                "Type the tenant's slug “{}” exactly to activate at once.",
                slug.trim()
            ),
        ));
    }
    let change = actor.change().await?;
    let mut change = freeze::guard(actor, change, FrozenOp::ActivateSigningKey).await?;
    let tenant = locked(&mut change, slug).await?;
    let keys = queries::lock_keys(&mut change, tenant.id, &PUBLISHED).await?;
    let key = find(&keys, &kid, &tenant.slug)?;
    if !key.state.may_become(SigningKeyState::Active) {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "This key is {}: only a staged key can be activated.",
                key.state
            ),
        });
    }
    let now = OffsetDateTime::now_utc();
    let ready_at = key.activatable_at(policy.jwks_max_age_secs);
    if !emergency && now < ready_at {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "This key was published at {}; relying services may hold a JWKS without it until {} (JWKS max-age {} s). Activate it then, or use an emergency activation.",
                crate::components::time::utc_seconds(key.staged_at),
                crate::components::time::utc_seconds(ready_at),
                policy.jwks_max_age_secs
            ),
        });
    }
    let previous = keys.iter().find(|k| k.state == SigningKeyState::Active);
    let mut events = Vec::new();
    let mut retired = None;
    if let Some(previous) = previous {
        let until = queries::retire(&mut change, &previous.kid, policy.retired_grace()).await?;
        events.push(
            key_event(actor, "signing_key.retired", &tenant, &previous.kid)
                .reason(reason.clone())
                .details(serde_json::json!({
                    "kid": previous.kid, "before": "active", "after": "retired",
                    "verify_until": until.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    "replaced_by": kid,
                })),
        );
        retired = Some(previous.kid.clone());
    }
    queries::activate(&mut change, &kid).await?;
    change.record_each(&events).await?;
    let event = key_event(actor, "signing_key.activated", &tenant, &kid)
        .reason(reason)
        .details(serde_json::json!({
            "kid": kid, "before": "staged", "after": "active",
            "emergency": emergency,
            "published_seconds": (now - key.staged_at).whole_seconds(),
            "retired": retired,
        }));
    change.commit(event).await?;
    Ok(KeyChanged {
        activated: Some(kid),
        staged: None,
        retired,
        revoked: Vec::new(),
    })
}

/// What revoking `kid` (or, with `None`, every published key) would do: the keys, and the
/// delegated tokens they signed that may still be live.
pub async fn preview(
    actor: &Actor,
    policy: KeyPolicy,
    slug: &str,
    kid: Option<&str>,
) -> Result<RevokePreview, AppError> {
    let kid = kid.map(check_kid).transpose()?;
    let tenant = crate::domain::tenants::queries::find(actor.reader(), slug.trim()).await?;
    let keys = queries::list(actor.reader(), tenant.id).await?;
    let published: Vec<SigningKey> = keys.into_iter().filter(|k| k.state.published()).collect();
    let chosen: Vec<SigningKey> = match &kid {
        Some(kid) => vec![find(&published, kid, &tenant.slug)?.clone()],
        None => published,
    };
    let kids: Vec<String> = chosen.iter().map(|k| k.kid.clone()).collect();
    let live_tokens = queries::issued_since(
        actor.reader(),
        tenant.id,
        &kids,
        policy.token_ttl_secs + crate::domain::keys::CLOCK_SKEW_SECS,
    )
    .await?;
    Ok(RevokePreview {
        replaces_active: chosen.iter().any(|k| k.state == SigningKeyState::Active),
        keys: chosen.into_iter().map(|k| (k.kid, k.state)).collect(),
        live_tokens,
    })
}

/// Revokes the published key `kid` (typed again as `confirmation`): unpublished at once,
/// its tokens refused at once. When it is the active key, a fresh key is activated in its
/// place in the same change, so the tenant still signs. Allowed during a freeze.
pub async fn revoke(
    actor: &Actor,
    master: &MasterKey,
    slug: &str,
    kid: &str,
    reason: &str,
    confirmation: &str,
) -> Result<KeyChanged, AppError> {
    let kid = check_kid(kid)?;
    let reason = normalize_reason(reason)?;
    if confirmation.trim() != kid {
        return Err(AppError::validation(
            "confirmation",
            "Type the kid of the key you revoke exactly, to confirm.",
        ));
    }
    let mut change = actor.change().await?;
    let tenant = locked(&mut change, slug).await?;
    let keys = queries::lock_keys(&mut change, tenant.id, &PUBLISHED).await?;
    let key = find(&keys, &kid, &tenant.slug)?.clone();
    revoke_keys(actor, master, change, &tenant, &[key], &reason, None).await
}

/// Runbook 000 without a body: revokes every published key of the tenant (typed as
/// `confirmation`) and activates a fresh one, in one change. Refused when more keys are
/// published than the preview showed (`expected`). Allowed during a freeze.
pub async fn revoke_all(
    actor: &Actor,
    master: &MasterKey,
    slug: &str,
    reason: &str,
    confirmation: &str,
    expected: i64,
) -> Result<KeyChanged, AppError> {
    let reason = normalize_reason(reason)?;
    if confirmation.trim() != slug.trim() {
        return Err(AppError::validation(
            "confirmation",
            format!(
                "Type the tenant's slug “{}” exactly to confirm.",
                slug.trim()
            ),
        ));
    }
    let mut change = actor.change().await?;
    let tenant = locked(&mut change, slug).await?;
    let keys = queries::lock_keys(&mut change, tenant.id, &PUBLISHED).await?;
    if keys.len() as i64 > expected {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "{} keys are published now, more than the {expected} the preview showed. Nothing was changed: review the preview again.",
                keys.len()
            ),
        });
    }
    let summary = serde_json::json!({ "revoked_all": true });
    revoke_keys(
        actor,
        master,
        change,
        &tenant,
        &keys,
        &reason,
        Some(summary),
    )
    .await
}

/// Revokes `revoked` (locked, published keys of `tenant`); when the active key is among
/// them, a fresh key is staged and activated at once. One event per key; the change's
/// own event last.
async fn revoke_keys(
    actor: &Actor,
    master: &MasterKey,
    mut change: Change,
    tenant: &LockedTenant,
    revoked: &[SigningKey],
    reason: &str,
    all: Option<serde_json::Value>,
) -> Result<KeyChanged, AppError> {
    let kids: Vec<String> = revoked.iter().map(|k| k.kid.clone()).collect();
    queries::revoke(&mut change, &kids, reason).await?;
    let replaces_active = revoked.iter().any(|k| k.state == SigningKeyState::Active);
    let fresh = if replaces_active || all.is_some() {
        Some(
            insert_new(
                &mut change,
                master,
                tenant.id,
                tenant.algorithm,
                SigningKeyState::Active,
                &actor.label(),
            )
            .await?,
        )
    } else {
        None
    };
    let mut events: Vec<NewEvent> = revoked
        .iter()
        .map(|k| {
            key_event(actor, "signing_key.revoked", tenant, &k.kid)
                .reason(reason.to_owned())
                .details(serde_json::json!({
                    "kid": k.kid, "before": k.state.as_str(), "after": "revoked",
                    "replaced_by": fresh,
                }))
        })
        .collect();
    let last = match (&fresh, all) {
        (Some(fresh), summary) => key_event(actor, "signing_key.activated", tenant, fresh)
            .reason(reason.to_owned())
            .details(serde_json::json!({
                "kid": fresh, "before": null, "after": "active", "emergency": true,
                "replaces_revoked": kids,
                "revoke_all": summary.is_some(),
            })),
        (None, _) => match events.pop() {
            Some(event) => event,
            None => return Err(AppError::internal(&"a revocation without keys")),
        },
    };
    change.record_each(&events).await?;
    change.commit(last).await?;
    Ok(KeyChanged {
        activated: fresh,
        staged: None,
        retired: None,
        revoked: kids,
    })
}

/// Housekeeping: removes the retired keys whose `verify_until` has passed (as `system`,
/// audited). Safe from every instance at once: a key being removed by one is skipped by
/// the others. Returns the kids removed.
pub async fn remove_expired(system: &Actor) -> Result<Vec<String>, AppError> {
    if !queries::removal_due(system.reader()).await? {
        return Ok(Vec::new());
    }
    let mut change = system.change().await?;
    let removed = queries::remove_due(&mut change).await?;
    let events: Vec<NewEvent> = removed
        .iter()
        .map(|(kid, tenant, until)| {
            system
                .event("signing_key.removed")
                .tenant(*tenant)
                .target(format!("signing_key:{kid}"))
                .details(serde_json::json!({
                    "kid": kid, "before": "retired", "after": "removed",
                    "verify_until": until.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                    "why": "verify_until passed",
                }))
        })
        .collect();
    change.commit_all(&events).await?;
    Ok(removed.into_iter().map(|(kid, _, _)| kid).collect())
}

/// At start: gives every tenant without an active key one (as `system`, audited), so
/// every tenant can sign. Safe when instances start together: the tenant row is locked,
/// and the check repeated under the lock. Returns the slugs that got a key.
pub async fn ensure_active_keys(
    system: &Actor,
    master: &MasterKey,
) -> Result<Vec<String>, AppError> {
    let mut given = Vec::new();
    for (_, slug) in queries::tenants_without_active_key(system.reader()).await? {
        let mut change = system.change().await?;
        let Some(tenant) = queries::lock_tenant(&mut change, &slug).await? else {
            continue;
        };
        if !queries::lock_keys(&mut change, tenant.id, &[SigningKeyState::Active])
            .await?
            .is_empty()
        {
            continue;
        }
        let kid = insert_new(
            &mut change,
            master,
            tenant.id,
            tenant.algorithm,
            SigningKeyState::Active,
            &system.label(),
        )
        .await?;
        let event = key_event(system, "signing_key.activated", &tenant, &kid)
            .reason("the tenant had no active signing key")
            .details(serde_json::json!({ "kid": kid, "before": null, "after": "active" }));
        change.commit(event).await?;
        given.push(slug);
    }
    Ok(given)
}

/// Why the stored keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// A sealed key did not open: the ENCRYPTION_KEY differs from the one that sealed it,
    /// or the row was altered.
    #[error("signing key {0} does not decrypt with this ENCRYPTION_KEY (wrong key, or the row was altered)")]
    Undecryptable(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Opens every stored private key under `master`: the server does not start when one does
/// not open (a wrong ENCRYPTION_KEY would otherwise show only at the first token).
pub async fn check_all_open(
    db: impl sqlx::PgExecutor<'_>,
    master: &MasterKey,
) -> Result<usize, KeyCheckError> {
    let sealed = queries::sealed_keys(db).await?;
    for key in &sealed {
        keys::open(
            master,
            key.tenant_id,
            &key.kid,
            key.algorithm,
            &key.nonce,
            &key.sealed,
        )
        .ok_or_else(|| KeyCheckError::Undecryptable(key.kid.clone()))?;
    }
    Ok(sealed.len())
}

/// A second request of the same kind within this many seconds joins the first.
pub const JOIN_REQUEST_SECS: i64 = 3;
/// At most this many requests to the instances in [`REQUESTS_WINDOW_SECS`], every
/// tenant's: each one makes every instance reload or probe.
pub const MAX_REQUESTS: i64 = 10;
/// The window of [`MAX_REQUESTS`].
pub const REQUESTS_WINDOW_SECS: i64 = 10;

/// Asks every live instance to refresh its key set or verify it (runbook 001), for the
/// tenant `slug`: the request's id, whose answers [`request`] reads. Audited as
/// `keys.refresh_requested` / `keys.verify_requested`; each instance's answer is audited
/// by that instance. Allowed during a freeze: it changes no access.
pub async fn ask_instances(
    actor: &Actor,
    slug: &str,
    kind: super::InstanceRequestKind,
) -> Result<String, AppError> {
    let mut change = actor.change().await?;
    let tenant = locked(&mut change, slug).await?;
    if let Some(joined) =
        queries::recent_request(&mut change, tenant.id, kind, JOIN_REQUEST_SECS).await?
    {
        // Nothing written: dropping the change ends its transaction.
        return Ok(joined.to_string());
    }
    if queries::requests_since(&mut change, REQUESTS_WINDOW_SECS).await? >= MAX_REQUESTS {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "The instances were asked {MAX_REQUESTS} times in the last {REQUESTS_WINDOW_SECS} s: wait for their answers, then ask again."
            ),
        });
    }
    // Requests reach only the instances whose listener is in effect.
    let live = queries::live_instances(change.db()).await?;
    let expected: Vec<Uuid> = live
        .iter()
        .filter(|i| i.listening)
        .filter_map(|i| Uuid::parse_str(&i.id).ok())
        .collect();
    let epoch = queries::key_epoch(change.db()).await?;
    let id = Uuid::new_v4();
    queries::insert_request(
        &mut change,
        id,
        tenant.id,
        kind,
        &actor.label(),
        epoch,
        &expected,
    )
    .await?;
    let action = match kind {
        super::InstanceRequestKind::Refresh => "keys.refresh_requested",
        super::InstanceRequestKind::Verify => "keys.verify_requested",
    };
    let event = actor
        .event(action)
        .tenant(tenant.id)
        .target(format!("instance_request:{id}"))
        .details(serde_json::json!({
            "kind": kind.as_str(),
            "epoch": epoch,
            "instances": expected,
        }));
    change.commit(event).await?;
    Ok(id.to_string())
}

/// A request of the tenant `slug` and its answers so far.
pub async fn request(
    actor: &Actor,
    slug: &str,
    id: &str,
) -> Result<super::InstanceRequest, AppError> {
    let tenant = crate::domain::tenants::queries::find(actor.reader(), slug.trim()).await?;
    let id = Uuid::parse_str(id.trim())
        .map_err(|_| AppError::validation("request", "That is not a request id."))?;
    queries::request(actor.reader(), tenant.id, id)
        .await?
        .ok_or_else(|| AppError::not_found("That request"))
}

/// The live instances, the database's key epoch, and the tenant's latest request.
pub async fn instances(actor: &Actor, slug: &str) -> Result<super::InstancesView, AppError> {
    let tenant = crate::domain::tenants::queries::find(actor.reader(), slug.trim()).await?;
    let latest = match queries::latest_request(actor.reader(), tenant.id).await? {
        Some(id) => queries::request(actor.reader(), tenant.id, id).await?,
        None => None,
    };
    Ok(super::InstancesView {
        database_epoch: queries::key_epoch(actor.reader()).await?,
        instances: queries::live_instances(actor.reader()).await?,
        latest,
        now: queries::database_now(actor.reader()).await?,
    })
}
