//! Setting and removing rate-limit overrides and IP blocks, and the `RL_OVERRIDES_JSON`
//! import. Each change is one transaction with its audit event; the tables' triggers notify
//! every instance.

use super::{parse_burst, parse_network, parse_per_minute, queries};
use crate::auth::Actor;
use crate::auth::Change;
use crate::domain::input::normalize_reason;
use crate::error::AppError;
use crate::panels::switches::parse_expiry_minutes;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// An override as asked for, unchecked.
#[derive(Debug, Clone, Default)]
pub struct OverrideRequest<'a> {
    /// `tenant`, `client` or `ip`.
    pub scope: &'a str,
    /// For `tenant` and `client`: the tenant's slug.
    pub tenant: &'a str,
    /// For `client`: the client's name.
    pub client: &'a str,
    /// For `ip`: an address or network.
    pub network: &'a str,
    /// Requests per minute.
    pub limit_per_minute: &'a str,
    /// Burst.
    pub burst: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Minutes until it stops applying; empty for never.
    pub expires_minutes: &'a str,
}

/// Whether a set changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written, with its audit event.
    Written,
    /// The same override was already in force; nothing written.
    Unchanged,
}

struct Subject {
    tenant: Option<Uuid>,
    client: Option<Uuid>,
    network: Option<String>,
    label: String,
}

async fn subject(change: &mut Change, req: &OverrideRequest<'_>) -> Result<Subject, AppError> {
    match req.scope.trim() {
        "tenant" => {
            let t = crate::domain::tenants::queries::named(change.db(), req.tenant).await?;
            Ok(Subject {
                tenant: Some(t.id),
                client: None,
                network: None,
                label: t.slug,
            })
        }
        "client" => {
            let t = crate::domain::tenants::queries::named(change.db(), req.tenant).await?;
            let name = req.client.trim();
            let id = queries::client_id(change, t.id, name)
                .await?
                .ok_or_else(|| {
                    AppError::validation(
                        "client",
                        format!("{} has no API client named “{name}”.", t.slug),
                    )
                })?;
            Ok(Subject {
                tenant: Some(t.id),
                client: Some(id),
                network: None,
                label: format!("{}/{name}", t.slug),
            })
        }
        "ip" => {
            let net = parse_network(req.network, "network")?;
            Ok(Subject {
                tenant: None,
                client: None,
                network: Some(net.to_string()),
                label: net.to_string(),
            })
        }
        _ => Err(AppError::validation(
            "scope",
            "Choose what the limit is for: a tenant, a client or an address.",
        )),
    }
}

fn expiry(raw: &str) -> Result<Option<OffsetDateTime>, AppError> {
    Ok(parse_expiry_minutes(raw)?.map(|m| OffsetDateTime::now_utc() + Duration::minutes(m)))
}

/// Sets (or replaces) the override of a subject.
pub async fn set_override(actor: &Actor, req: OverrideRequest<'_>) -> Result<Applied, AppError> {
    let per_minute = parse_per_minute(req.limit_per_minute)?;
    let burst = parse_burst(req.burst)?;
    let reason = normalize_reason(req.reason)?;
    let expires_at = expiry(req.expires_minutes)?;
    let mut change = actor.change().await?;
    let subject = subject(&mut change, &req).await?;
    let scope = req.scope.trim();
    let previous = queries::lock_override(
        &mut change,
        scope,
        subject.tenant,
        subject.client,
        subject.network.as_deref(),
    )
    .await?;
    if let Some(p) = &previous {
        let live = p.expires_at.is_none_or(|at| at > OffsetDateTime::now_utc());
        if live
            && p.limit_per_minute == per_minute as i32
            && p.burst == burst as i32
            && p.reason == reason
            && p.expires_at.is_none()
            && expires_at.is_none()
        {
            return Ok(Applied::Unchanged);
        }
        // Loosening a limit in force (a higher rate or burst, or an end sooner) lets more
        // through: frozen like the other operations that remove a protection.
        let sooner = match (p.expires_at, expires_at) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new < old,
        };
        if live && (per_minute as i32 > p.limit_per_minute || burst as i32 > p.burst || sooner) {
            change = crate::domain::freeze::guard(
                actor,
                change,
                crate::domain::freeze::FrozenOp::LoosenRateLimit,
            )
            .await?;
        }
    }
    // Without an override in force, the default applies: an override above it loosens too
    // (a tenant has no default: a tenant override only ever restricts).
    let in_force = previous
        .as_ref()
        .is_some_and(|p| p.expires_at.is_none_or(|at| at > OffsetDateTime::now_utc()));
    if !in_force {
        if let Some(default) = default_for(actor, scope) {
            if per_minute > default.per_minute || burst > default.burst {
                change = crate::domain::freeze::guard(
                    actor,
                    change,
                    crate::domain::freeze::FrozenOp::LoosenRateLimit,
                )
                .await?;
            }
        }
    }
    queries::upsert_override(
        &mut change,
        &queries::NewOverride {
            scope,
            tenant: subject.tenant,
            client: subject.client,
            network: subject.network.as_deref(),
            limit_per_minute: per_minute as i32,
            burst: burst as i32,
            reason: &reason,
            expires_at,
            created_by: &actor.label(),
        },
    )
    .await?;
    let event = actor
        .event("rate_limit.set")
        .target(format!("rate_limit:{scope}:{}", subject.label))
        .reason(reason)
        .details(serde_json::json!({
            "scope": scope,
            "subject": subject.label,
            "limit_per_minute": per_minute,
            "burst": burst,
            "expires_at": expires_at.map(|t| t.unix_timestamp()),
            "previous": previous.map(|p| serde_json::json!({
                "limit_per_minute": p.limit_per_minute, "burst": p.burst,
            })),
        }))
        .tenant(subject.tenant);
    change.commit(event).await?;
    Ok(Applied::Written)
}

/// The default limit of `scope` (`None` for a tenant, which has none): this instance's
/// configured defaults, or the built-in ones for the command line.
fn default_for(actor: &Actor, scope: &str) -> Option<crate::domain::gateway::controls::Limit> {
    let defaults = actor.controls().map(|c| c.defaults()).unwrap_or_default();
    match scope {
        "ip" => Some(defaults.ip),
        "client" => Some(defaults.owner),
        _ => None,
    }
}

/// Removes an override by id.
pub async fn remove_override(actor: &Actor, id: &str, reason: &str) -> Result<(), AppError> {
    let reason = normalize_reason(reason)?;
    let id = Uuid::parse_str(id.trim()).map_err(|_| AppError::not_found("This override"))?;
    let mut change = actor.change().await?;
    // Removing a limit stricter than the default (or any tenant limit) loosens it.
    if let Some(held) = queries::lock_live_override(&mut change, id).await? {
        let stricter = match default_for(actor, &held.scope) {
            None => true,
            Some(default) => {
                held.limit_per_minute < default.per_minute as i32
                    || held.burst < default.burst as i32
            }
        };
        if stricter {
            change = crate::domain::freeze::guard(
                actor,
                change,
                crate::domain::freeze::FrozenOp::LoosenRateLimit,
            )
            .await?;
        }
    }
    let removed = queries::delete_override(&mut change, id)
        .await?
        .ok_or_else(|| AppError::not_found("This override"))?;
    let event = actor
        .event("rate_limit.removed")
        .target(format!(
            "rate_limit:{}:{}",
            removed.scope,
            removed.subject.clone().unwrap_or_default()
        ))
        .reason(reason)
        .details(serde_json::json!({
            "scope": removed.scope,
            "limit_per_minute": removed.limit_per_minute,
            "burst": removed.burst,
        }))
        .tenant(removed.tenant_id);
    change.commit(event).await?;
    Ok(())
}

/// Blocks an address or network (or replaces the block's reason and expiry).
pub async fn add_block(
    actor: &Actor,
    network: &str,
    reason: &str,
    expires_minutes: &str,
) -> Result<(), AppError> {
    let net = parse_network(network, "network")?;
    let reason = normalize_reason(reason)?;
    let expires_at = expiry(expires_minutes)?;
    let mut change = actor.change().await?;
    // Replacing a block in force with one that ends sooner is an unblock on a timer: as
    // dangerous as unblocking, and frozen like it.
    if let Some(current) = queries::lock_live_block(&mut change, &net.to_string()).await? {
        let sooner = match (current, expires_at) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(old), Some(new)) => new < old,
        };
        if sooner {
            actor.require_step_up()?;
            change = crate::domain::freeze::guard(
                actor,
                change,
                crate::domain::freeze::FrozenOp::ShortenBlock,
            )
            .await?;
        }
    }
    let replaced = queries::upsert_block(
        &mut change,
        &net.to_string(),
        &reason,
        expires_at,
        &actor.label(),
    )
    .await?;
    let event = actor
        .event("ip_block.added")
        .target(format!("ip:{net}"))
        .reason(reason)
        .details(serde_json::json!({
            "network": net.to_string(),
            "expires_at": expires_at.map(|t| t.unix_timestamp()),
            "replaced": replaced,
        }));
    change.commit(event).await?;
    Ok(())
}

/// Lifts a block.
pub async fn remove_block(actor: &Actor, network: &str, reason: &str) -> Result<(), AppError> {
    let net = parse_network(network, "network")?;
    let reason = normalize_reason(reason)?;
    let mut change = crate::domain::freeze::guard(
        actor,
        actor.change().await?,
        crate::domain::freeze::FrozenOp::UnblockAddress,
    )
    .await?;
    let removed = queries::delete_block(&mut change, &net.to_string()).await?;
    let Some(blocked_for) = removed else {
        return Err(AppError::Conflict {
            field: None,
            message: format!("{net} is not blocked."),
        });
    };
    let event = actor
        .event("ip_block.removed")
        .target(format!("ip:{net}"))
        .reason(reason)
        .details(serde_json::json!({ "network": net.to_string(), "blocked_for": blocked_for }));
    change.commit(event).await?;
    Ok(())
}

/// One entry of `RL_OVERRIDES_JSON`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportEntry {
    /// `tenant`, `client` or `ip`.
    pub scope: String,
    /// A tenant slug, `tenant-slug/client-name`, or an address or network.
    pub subject: String,
    /// Requests per minute.
    pub limit_per_minute: i64,
    /// Burst (default: a tenth of the per-minute limit, at least 1).
    pub burst: Option<i64>,
    /// Why (default: "imported from RL_OVERRIDES_JSON").
    pub reason: Option<String>,
}

/// Parses `RL_OVERRIDES_JSON`: a JSON array of [`ImportEntry`].
pub fn parse_import(raw: &str) -> Result<Vec<ImportEntry>, String> {
    serde_json::from_str(raw).map_err(|e| {
        format!(
            "RL_OVERRIDES_JSON is not a JSON array of {{\"scope\", \"subject\", \"limit_per_minute\", \"burst\"?, \"reason\"?}}: {e}"
        )
    })
}

/// Applies the entries of `RL_OVERRIDES_JSON` at start, each as an audited change by the
/// server (`cli:RL_OVERRIDES_JSON`). Entries already in force are left alone, so every
/// instance can import the same variable. Stops at the first bad entry, naming it.
pub async fn import(actor: &Actor, entries: &[ImportEntry]) -> Result<usize, String> {
    let mut written = 0;
    for (i, entry) in entries.iter().enumerate() {
        let (tenant, client, network) = match entry.scope.as_str() {
            "client" => match entry.subject.split_once('/') {
                Some((t, c)) => (t, c, ""),
                None => {
                    return Err(format!(
                    "RL_OVERRIDES_JSON entry {i}: a client subject is \"tenant-slug/client-name\""
                ))
                }
            },
            "tenant" => (entry.subject.as_str(), "", ""),
            _ => ("", "", entry.subject.as_str()),
        };
        let per_minute = entry.limit_per_minute.to_string();
        let burst = entry
            .burst
            .unwrap_or((entry.limit_per_minute / 10).max(1))
            .to_string();
        let reason = entry
            .reason
            .clone()
            .unwrap_or_else(|| "imported from RL_OVERRIDES_JSON".to_owned());
        let req = OverrideRequest {
            scope: &entry.scope,
            tenant,
            client,
            network,
            limit_per_minute: &per_minute,
            burst: &burst,
            reason: &reason,
            expires_minutes: "",
        };
        match set_override(actor, req).await {
            Ok(Applied::Written) => written += 1,
            Ok(Applied::Unchanged) => {}
            Err(err) => {
                return Err(format!(
                    "RL_OVERRIDES_JSON entry {i} ({}): {err}",
                    entry.subject
                ))
            }
        }
    }
    Ok(written)
}
