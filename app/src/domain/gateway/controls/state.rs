//! The in-memory snapshot of switches, limits and blocks each instance decides with.
//!
//! Snapshots are immutable and swapped whole ([`arc_swap`]): a call reads a consistent
//! view without a lock, and a reload never blocks a call.

use super::ratelimit::{canonical_net, RateLimiter, Subject};
use super::{Limit, SwitchKey, SwitchRow};
use crate::domain::gateway::decision::{CachedToken, Refusal};
use crate::domain::tokens::Owner;
use arc_swap::ArcSwap;

use ipnet::IpNet;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

const N: usize = SwitchKey::ALL.len();

/// Every switch's value: global, and the tenants' overrides.
#[derive(Debug)]
pub struct SwitchState {
    global: [bool; N],
    tenants: HashMap<Uuid, [Option<bool>; N]>,
    /// `agentApiEnabled` is off globally and no tenant turns it back on.
    api_off_everywhere: bool,
    /// The same for `agentPaymentsEnabled`.
    payments_off_everywhere: bool,
    /// The stored rows, for the panel and the switches API.
    pub rows: Vec<SwitchRow>,
    /// The freeze of high-risk operations on now, for the switches API (its document
    /// carries it, so other services can hold their own high-risk operations too).
    pub freeze: Option<crate::domain::freeze::Freeze>,
    /// `GET /api/v1/switches`'s body.
    pub document: Arc<str>,
    /// Its entity tag (quoted).
    pub etag: Arc<str>,
}

impl SwitchState {
    /// The state of a database without rows: every switch at its default.
    pub fn defaults() -> Self {
        Self::from_rows(Vec::new(), &HashMap::new(), None)
    }

    fn from_rows(
        rows: Vec<SwitchRow>,
        tenant_ids: &HashMap<String, Uuid>,
        freeze: Option<crate::domain::freeze::Freeze>,
    ) -> Self {
        let mut global = SwitchKey::ALL.map(SwitchKey::default_value);
        let mut tenants: HashMap<Uuid, [Option<bool>; N]> = HashMap::new();
        let now = OffsetDateTime::now_utc();
        for row in &rows {
            // A timed flip whose expiry passed counts as reverted even before the timer
            // task has written the revert.
            let value = match row.expires_at {
                Some(at) if at <= now => row.revert_to,
                _ => Some(row.value),
            };
            match &row.tenant {
                None => global[row.key.index()] = value.unwrap_or(row.key.default_value()),
                Some(slug) => {
                    let Some(id) = tenant_ids.get(slug) else {
                        continue;
                    };
                    tenants.entry(*id).or_insert([None; N])[row.key.index()] = value;
                }
            }
        }
        let off_everywhere = |key: SwitchKey| {
            !global[key.index()] && !tenants.values().any(|t| t[key.index()] == Some(true))
        };
        let document = document(&global, &rows, freeze.as_ref());
        let etag = etag(&document);
        Self {
            api_off_everywhere: off_everywhere(SwitchKey::AgentApiEnabled),
            payments_off_everywhere: off_everywhere(SwitchKey::AgentPaymentsEnabled),
            global,
            tenants,
            rows,
            freeze,
            document: document.into(),
            etag: etag.into(),
        }
    }

    /// The value of `key` for `tenant`: its override, else the global value.
    #[inline]
    pub fn value(&self, key: SwitchKey, tenant: Uuid) -> bool {
        if !self.tenants.is_empty() {
            if let Some(value) = self.tenants.get(&tenant).and_then(|t| t[key.index()]) {
                return value;
            }
        }
        self.global[key.index()]
    }

    /// The global value of `key`.
    pub fn global(&self, key: SwitchKey) -> bool {
        self.global[key.index()]
    }
}

/// The entity tag of a body: a quoted prefix of its SHA-256.
pub fn etag(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn rfc3339(at: Option<OffsetDateTime>) -> serde_json::Value {
    at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map(serde_json::Value::String)
    .unwrap_or(serde_json::Value::Null)
}

/// `{"switches": {"agentApiEnabled": {"value": true, "expires_at": null, "tenants":
/// {"demo": {"value": false, "expires_at": "..."}}}, ...}}`
fn document(
    global: &[bool; N],
    rows: &[SwitchRow],
    freeze: Option<&crate::domain::freeze::Freeze>,
) -> String {
    let mut switches = serde_json::Map::new();
    for key in SwitchKey::ALL {
        let global_row = rows.iter().find(|r| r.key == key && r.tenant.is_none());
        let tenants: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .filter(|r| r.key == key)
            .filter_map(|r| {
                let slug = r.tenant.clone()?;
                Some((
                    slug,
                    serde_json::json!({ "value": r.value, "expires_at": rfc3339(r.expires_at) }),
                ))
            })
            .collect();
        switches.insert(
            key.as_str().to_owned(),
            serde_json::json!({
                "value": global[key.index()],
                "expires_at": rfc3339(global_row.and_then(|r| r.expires_at)),
                "tenants": tenants,
            }),
        );
    }
    serde_json::json!({ "switches": switches, "freeze": freeze_json(freeze) }).to_string()
}

/// The freeze as the switches API shows it: `null`, or `{"since", "by", "reason",
/// "expires_at"}` (RFC 3339 times).
pub fn freeze_json(freeze: Option<&crate::domain::freeze::Freeze>) -> serde_json::Value {
    match freeze {
        None => serde_json::Value::Null,
        Some(f) => serde_json::json!({
            "since": rfc3339(Some(f.started_at)),
            "by": f.started_by,
            "reason": f.reason,
            "expires_at": rfc3339(f.expires_at),
        }),
    }
}

/// Rate-limit overrides and the block list, with the configured defaults.
#[derive(Debug, Default)]
pub struct LimitTable {
    owners: HashMap<Uuid, (Limit, Option<i64>)>,
    tenants: HashMap<Uuid, (Limit, Option<i64>)>,
    ip_exact: HashMap<IpAddr, (Limit, Option<i64>)>,
    ip_nets: Vec<(IpNet, Limit, Option<i64>)>,
    blocks_exact: HashMap<IpAddr, Option<i64>>,
    blocks_nets: Vec<(IpNet, Option<i64>)>,
}

fn live(expires: Option<i64>, now: i64) -> bool {
    expires.is_none_or(|at| at > now)
}

impl LimitTable {
    fn blocked(&self, ip: IpAddr, now: i64) -> bool {
        if let Some(expires) = self.blocks_exact.get(&ip) {
            if live(*expires, now) {
                return true;
            }
        }
        self.blocks_nets
            .iter()
            .any(|(net, expires)| live(*expires, now) && net.contains(&ip))
    }

    fn ip_limit(&self, ip: IpAddr, now: i64) -> Option<Limit> {
        if let Some((limit, expires)) = self.ip_exact.get(&ip) {
            if live(*expires, now) {
                return Some(*limit);
            }
        }
        self.ip_nets
            .iter()
            .find(|(net, _, expires)| live(*expires, now) && net.contains(&ip))
            .map(|(_, limit, _)| *limit)
    }

    fn lookup(map: &HashMap<Uuid, (Limit, Option<i64>)>, id: Uuid, now: i64) -> Option<Limit> {
        map.get(&id)
            .filter(|(_, expires)| live(*expires, now))
            .map(|(limit, _)| *limit)
    }
}

/// The limits that apply when no override does, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Per token owner (an API client or a staff member).
    pub owner: Limit,
    /// Per caller address.
    pub ip: Limit,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            owner: Limit {
                per_minute: 6_000,
                burst: 300,
            },
            ip: Limit {
                per_minute: 12_000,
                burst: 600,
            },
        }
    }
}

/// A refusal with, for rate limits, the seconds to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// Why.
    pub refusal: Refusal,
    /// For `RATE_LIMITED`: whole seconds until a call would pass.
    pub retry_after: Option<u64>,
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Self {
        Self {
            refusal,
            retry_after: None,
        }
    }
}

fn limited(wait_ns: u64) -> Denied {
    Denied {
        refusal: Refusal::RateLimited,
        retry_after: Some(wait_ns.div_ceil(1_000_000_000).max(1)),
    }
}

/// One instance's controls: snapshots, the limiter, and a channel announcing switch changes
/// to push streams.
pub struct Controls {
    pool: PgPool,
    switches: ArcSwap<SwitchState>,
    limits: ArcSwap<LimitTable>,
    limiter: RateLimiter,
    anonymous: super::anonymous::AnonymousLimits,
    defaults: Defaults,
    /// When off, no rate limit applies (switches and blocks still do): for benchmarks and
    /// deployments that limit elsewhere.
    limiting: bool,
    /// When off, nothing is checked at all: only for measuring what the checks cost.
    enforce: bool,
    changes: tokio::sync::watch::Sender<Arc<SwitchState>>,
    /// Held across a reload's read and store: a reload that read before a change committed
    /// cannot store its older snapshot after one that read after it.
    reloading: tokio::sync::Mutex<()>,
}

impl Controls {
    /// Controls at their defaults; [`Self::reload`] reads the database.
    pub fn new(pool: PgPool, defaults: Defaults, limiting: bool) -> Self {
        let initial = Arc::new(SwitchState::defaults());
        let (changes, _) = tokio::sync::watch::channel(initial.clone());
        Self {
            pool,
            switches: ArcSwap::new(initial),
            limits: ArcSwap::from_pointee(LimitTable::default()),
            limiter: RateLimiter::new(),
            anonymous: super::anonymous::AnonymousLimits::default(),
            defaults,
            limiting,
            enforce: true,
            changes,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Controls that check nothing (no switches, limits or blocks): the baseline the
    /// benchmarks compare the real checks against. Never used to serve.
    pub fn unenforced(pool: PgPool) -> Self {
        Self {
            enforce: false,
            ..Self::new(pool, Defaults::default(), false)
        }
    }

    /// The value of switch `key` for `tenant`, from memory: what the gateway reads per call.
    #[inline]
    pub fn switch(&self, key: SwitchKey, tenant: Uuid) -> bool {
        self.switches.load().value(key, tenant)
    }

    /// A read-only handle on the controls' database, for look-ups beside them (a service
    /// token, a tenant). Changes go through an `Actor`, never through the controls.
    pub fn reader(&self) -> crate::auth::Reader {
        crate::auth::Reader::new(self.pool.clone())
    }

    /// Whether the pool is closed (the server is shutting down): background work stops.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// The configured default limits.
    pub fn defaults(&self) -> Defaults {
        self.defaults
    }

    /// Whether rate limits are enforced.
    pub fn limiting(&self) -> bool {
        self.limiting
    }

    /// The current switch snapshot.
    pub fn switches(&self) -> Arc<SwitchState> {
        self.switches.load_full()
    }

    /// A receiver that wakes on every switch change, for push streams.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<SwitchState>> {
        self.changes.subscribe()
    }

    /// The limiter, for housekeeping.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The budgets for anonymous credential lookups (service tokens, session cookies). They
    /// protect the database, so they apply whether `RL_ENABLED` is on or off.
    pub fn anonymous(&self) -> &super::anonymous::AnonymousLimits {
        &self.anonymous
    }

    /// Reads switches, limits and blocks again.
    pub async fn reload(&self) -> sqlx::Result<()> {
        self.reload_switches().await?;
        self.reload_limits().await
    }

    /// Reads the switches again; announces the new state when it differs.
    pub async fn reload_switches(&self) -> sqlx::Result<bool> {
        let _serialised = self.reloading.lock().await;
        let rows = sqlx::query!(
            r#"SELECT s.key, t.slug AS "tenant?", t.id AS "tenant_id?", s.value, s.reason,
                      s.set_by, s.set_at, s.expires_at, s.revert_to
               FROM kill_switches s LEFT JOIN tenants t ON t.id = s.tenant_id
               ORDER BY s.key, t.slug NULLS FIRST"#
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tenant_ids = HashMap::new();
        let rows: Vec<SwitchRow> = rows
            .into_iter()
            .filter_map(|r| {
                let key = SwitchKey::parse(&r.key)?;
                if let (Some(slug), Some(id)) = (&r.tenant, r.tenant_id) {
                    tenant_ids.insert(slug.clone(), id);
                }
                Some(SwitchRow {
                    key,
                    tenant: r.tenant,
                    value: r.value,
                    reason: r.reason,
                    set_by: r.set_by,
                    set_at: r.set_at,
                    expires_at: r.expires_at,
                    revert_to: r.revert_to,
                })
            })
            .collect();
        let freeze = crate::domain::freeze::active(&self.pool).await?;
        let state = SwitchState::from_rows(rows, &tenant_ids, freeze);
        if state.etag == self.switches.load().etag && state.rows == self.switches.load().rows {
            return Ok(false);
        }
        let state = Arc::new(state);
        self.switches.store(state.clone());
        self.changes.send_replace(state);
        Ok(true)
    }

    /// Reads the rate-limit overrides and the block list again.
    pub async fn reload_limits(&self) -> sqlx::Result<()> {
        let _serialised = self.reloading.lock().await;
        let overrides = sqlx::query!(
            r#"SELECT scope, tenant_id, client_id, network::text AS network,
                      limit_per_minute, burst, expires_at
               FROM rate_limit_overrides
               WHERE expires_at IS NULL OR expires_at > now()"#
        )
        .fetch_all(&self.pool)
        .await?;
        let blocks = sqlx::query!(
            r#"SELECT network::text AS "network!", expires_at FROM ip_blocks
               WHERE expires_at IS NULL OR expires_at > now()"#
        )
        .fetch_all(&self.pool)
        .await?;
        let mut table = LimitTable::default();
        for o in overrides {
            let limit = Limit {
                per_minute: u32::try_from(o.limit_per_minute).unwrap_or(1),
                burst: u32::try_from(o.burst).unwrap_or(1),
            };
            let entry = (limit, o.expires_at.map(OffsetDateTime::unix_timestamp));
            match (o.scope.as_str(), o.client_id, o.tenant_id, o.network) {
                ("client", Some(client), _, _) => {
                    table.owners.insert(client, entry);
                }
                ("tenant", _, Some(tenant), _) => {
                    table.tenants.insert(tenant, entry);
                }
                ("ip", _, _, Some(net)) => match net.parse::<IpNet>().map(canonical_net) {
                    Ok(net) if net.prefix_len() == net.max_prefix_len() => {
                        table.ip_exact.insert(net.addr(), entry);
                    }
                    Ok(net) => table.ip_nets.push((net, entry.0, entry.1)),
                    Err(_) => {
                        tracing::warn!(network = %net, "unreadable rate-limit network skipped")
                    }
                },
                _ => {}
            }
        }
        // Longest prefix first: the most specific override wins.
        table
            .ip_nets
            .sort_by_key(|(net, ..)| std::cmp::Reverse(net.prefix_len()));
        for b in blocks {
            let expires = b.expires_at.map(OffsetDateTime::unix_timestamp);
            // Canonical, as callers' addresses are: a row stored as `::ffff:a.b.c.d` before
            // addresses were canonicalised must still match its IPv4 caller.
            match b.network.parse::<IpNet>().map(canonical_net) {
                Ok(net) if net.prefix_len() == net.max_prefix_len() => {
                    table.blocks_exact.insert(net.addr(), expires);
                }
                Ok(net) => table.blocks_nets.push((net, expires)),
                Err(_) => {
                    tracing::warn!(network = %b.network, "unreadable blocked network skipped")
                }
            }
        }
        self.limits.store(Arc::new(table));
        Ok(())
    }

    /// Checks made before the token: the block list, a kill switch that is off for every
    /// tenant, and the caller address's rate limit.
    pub fn admit_caller(&self, ip: Option<IpAddr>, payments: bool, now: i64) -> Result<(), Denied> {
        if !self.enforce {
            return Ok(());
        }
        // Blocks and limits are kept in canonical form: an IPv4-mapped caller is its IPv4
        // address (the server resolves it so already; this keeps every caller of this
        // function right).
        let ip = ip.map(|ip| ip.to_canonical());
        let limits = self.limits.load();
        if let Some(ip) = ip {
            if limits.blocked(ip, now) {
                return Err(Refusal::IpBlocked.into());
            }
        }
        let switches = self.switches.load();
        if switches.api_off_everywhere {
            return Err(Refusal::AgentApiDisabled.into());
        }
        if payments && switches.payments_off_everywhere {
            return Err(Refusal::AgentPaymentsDisabled.into());
        }
        if let (Some(ip), true) = (ip, self.limiting) {
            let limit = limits.ip_limit(ip, now).unwrap_or(self.defaults.ip);
            self.limiter
                .check(Subject::ip(ip), limit, self.limiter.now())
                .map_err(limited)?;
        }
        Ok(())
    }

    /// The checks of end users' routes before anything else: the block list and the
    /// caller address's rate limit (the agent API's switches do not apply to them).
    pub fn admit_identity_caller(&self, ip: Option<IpAddr>, now: i64) -> Result<(), Denied> {
        if !self.enforce {
            return Ok(());
        }
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return Ok(());
        };
        let limits = self.limits.load();
        if limits.blocked(ip, now) {
            return Err(Refusal::IpBlocked.into());
        }
        if self.limiting {
            let limit = limits.ip_limit(ip, now).unwrap_or(self.defaults.ip);
            self.limiter
                .check(Subject::ip(ip), limit, self.limiter.now())
                .map_err(limited)?;
        }
        Ok(())
    }

    /// Checks made once the token is known: the tenant's switches, the allowlist posture,
    /// and the owner's and tenant's rate limits.
    pub fn admit_token(&self, token: &CachedToken, payments: bool, now: i64) -> Result<(), Denied> {
        if !self.enforce {
            return Ok(());
        }
        let switches = self.switches.load();
        let tenant = token.tenant_id;
        if !switches.value(SwitchKey::AgentApiEnabled, tenant) {
            return Err(Refusal::AgentApiDisabled.into());
        }
        if payments && !switches.value(SwitchKey::AgentPaymentsEnabled, tenant) {
            return Err(Refusal::AgentPaymentsDisabled.into());
        }
        let owner = match token.owner {
            Owner::Client(id) => {
                if switches.value(SwitchKey::StrictAllowlist, tenant) && !token.owner_allowlisted {
                    return Err(Refusal::ClientNotAllowlisted.into());
                }
                id
            }
            Owner::Staff(id) => id,
        };
        if !self.limiting {
            return Ok(());
        }
        let limits = self.limits.load();
        let at = self.limiter.now();
        let limit = LimitTable::lookup(&limits.owners, owner, now).unwrap_or(self.defaults.owner);
        self.limiter
            .check(Subject::Owner(owner), limit, at)
            .map_err(limited)?;
        if let Some(limit) = LimitTable::lookup(&limits.tenants, tenant, now) {
            self.limiter
                .check(Subject::Tenant(tenant), limit, at)
                .map_err(limited)?;
        }
        Ok(())
    }
}

/// After a committed change: a failed reload here is logged, not reported as a failure of
/// the change (it committed; the notification and the poll bring this instance up to date).
pub fn reload_after_change(result: sqlx::Result<()>) {
    if let Err(err) = result {
        tracing::warn!(error = %err, "reloading gateway controls after a change failed; the poll will catch up");
    }
}
