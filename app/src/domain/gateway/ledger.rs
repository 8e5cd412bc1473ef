//! The gateway's ledger: its decisions (`token.used`, `token.failed_auth`), `last_used`
//! times and re-hashes, gathered in memory and written to PostgreSQL once a second in one
//! transaction.
//!
//! The audit chain serialises its writers, so one insert per agent call would cap the
//! gateway at the chain's speed. Instead, identical decisions within a flush interval (same
//! token, outcome, code, address and route) become one event whose `details.count` says
//! how many calls it stands for, with the first and last call's time. At a few calls a
//! second every call is its own event; under a flood the log grows by at most
//! [`MAX_GROUPS`] events a second, however many calls arrive. A crash loses at most the
//! last interval's events.

use super::decision::{CachedToken, CallMeta, Refusal};
use crate::auth::Actor;
use crate::domain::audit::{NewEvent, Source};
use crate::error::AppError;
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use uuid::Uuid;

/// Distinct events one flush writes before folding: past it, refusals of unknown tokens
/// fold into one event per code; decisions about real tokens keep their token (past twice
/// the cap they lose only the caller's address).
pub const MAX_GROUPS: usize = 2_000;

/// A delegated token's kid and jti, as far as they are known.
type DelegatedIds = Option<(Option<Arc<str>>, Option<Arc<str>>)>;

/// One gateway decision.
#[derive(Debug, Clone)]
pub struct GatewayEvent {
    action: &'static str,
    code: Option<&'static str>,
    token_id: Option<Arc<str>>,
    tenant_id: Option<Uuid>,
    ip: Option<IpAddr>,
    request_id: Option<Arc<str>>,
    route: &'static str,
    /// A delegated token's kid and jti.
    delegated: DelegatedIds,
}

impl GatewayEvent {
    /// A successful call with `token`.
    pub fn used(token: &CachedToken, call: &CallMeta) -> Self {
        Self {
            action: "token.used",
            code: None,
            token_id: Some(token.id.clone()),
            tenant_id: Some(token.tenant_id),
            ip: call.ip,
            request_id: call.request_id.clone(),
            route: call.route,
            delegated: None,
        }
    }

    /// A successful call with a delegated token (`kid`, `jti`) exchanged for `token`; or,
    /// with `action` `delegated.issued`, the exchange itself.
    pub fn delegated(
        action: &'static str,
        token: &CachedToken,
        kid: Arc<str>,
        jti: Arc<str>,
        call: &CallMeta,
    ) -> Self {
        Self {
            action,
            code: None,
            token_id: Some(token.id.clone()),
            tenant_id: Some(token.tenant_id),
            ip: call.ip,
            request_id: call.request_id.clone(),
            route: call.route,
            delegated: Some((Some(kid), Some(jti))),
        }
    }

    /// A refused delegated token: `delegated.failed_auth` (or `agent_api.refused` for the
    /// controls), with what is known of it.
    pub fn delegated_refused(
        refusal: Refusal,
        token: Option<&CachedToken>,
        tenant: Option<Uuid>,
        kid: Option<Arc<str>>,
        jti: Option<Arc<str>>,
        call: &CallMeta,
    ) -> Self {
        Self {
            action: if refusal.is_policy() {
                "agent_api.refused"
            } else {
                "delegated.failed_auth"
            },
            code: Some(refusal.code()),
            token_id: token.map(|t| t.id.clone()),
            tenant_id: token.map(|t| t.tenant_id).or(tenant),
            ip: call.ip,
            request_id: call.request_id.clone(),
            route: call.route,
            delegated: Some((kid, jti)),
        }
    }

    /// A refused call; `token` when the id matched one, `id` when only the id is known.
    pub fn refused(
        refusal: Refusal,
        token: Option<&CachedToken>,
        id: Option<Arc<str>>,
        call: &CallMeta,
    ) -> Self {
        Self {
            action: if refusal.is_policy() {
                "agent_api.refused"
            } else {
                "token.failed_auth"
            },
            code: Some(refusal.code()),
            token_id: token.map(|t| t.id.clone()).or(id),
            tenant_id: token.map(|t| t.tenant_id),
            ip: call.ip,
            request_id: call.request_id.clone(),
            route: call.route,
            delegated: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    action: &'static str,
    code: Option<&'static str>,
    token_id: Option<Arc<str>>,
    tenant_id: Option<Uuid>,
    ip: Option<IpAddr>,
    route: &'static str,
    delegated: DelegatedIds,
}

#[derive(Debug, Clone)]
struct Group {
    count: u64,
    first_at: OffsetDateTime,
    last_at: OffsetDateTime,
    request_id: Option<Arc<str>>,
}

struct Rehash {
    token: Arc<CachedToken>,
    from: i32,
    to: i32,
    hash: [u8; 32],
}

#[derive(Default)]
struct State {
    groups: HashMap<Key, Group>,
    overflowed: u64,
    last_used: HashMap<Arc<str>, (OffsetDateTime, Option<IpAddr>)>,
    rehash: Vec<Rehash>,
}

/// What one flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Audit events written.
    pub events: usize,
    /// Calls those events stand for.
    pub calls: u64,
    /// `last_used` rows updated.
    pub last_used: u64,
    /// Tokens re-hashed to the current pepper.
    pub rehashed: usize,
}

/// Gateway decisions waiting to be written. Cheap to record into from any request.
pub struct Ledger {
    actor: Actor,
    state: Mutex<State>,
}

impl Ledger {
    /// An empty ledger writing to `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            actor: Actor::system(pool, "gateway ledger"),
            state: Mutex::new(State::default()),
        }
    }

    /// Counts one decision, made now.
    pub fn record(&self, event: GatewayEvent) {
        self.record_at(event, OffsetDateTime::now_utc());
    }

    /// Counts one decision made at `now`.
    pub fn record_at(&self, event: GatewayEvent, now: OffsetDateTime) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut key = Key {
            action: event.action,
            code: event.code,
            token_id: event.token_id,
            tenant_id: event.tenant_id,
            ip: event.ip,
            route: event.route,
            delegated: event.delegated,
        };
        if state.groups.len() >= MAX_GROUPS && !state.groups.contains_key(&key) {
            if key.tenant_id.is_none() {
                // Past the cap, refusals of unknown tokens (junk ids, malformed tokens) fold
                // into one event per code: a flood of them cannot push real uses out.
                state.overflowed += 1;
                key.token_id = None;
                key.ip = None;
                key.delegated = key.delegated.map(|_| (None, None));
            } else if state.groups.len() >= MAX_GROUPS * 2 {
                // Decisions about real tokens keep their token and tenant; past twice the
                // cap, the caller's address and a delegated token's jti are dropped (one
                // token holder minting tokens cannot grow the groups without bound).
                state.overflowed += 1;
                key.ip = None;
                key.delegated = key.delegated.map(|(kid, _)| (kid, None));
            }
        }
        state
            .groups
            .entry(key)
            .and_modify(|g| {
                g.count += 1;
                g.last_at = now;
            })
            .or_insert(Group {
                count: 1,
                first_at: now,
                last_at: now,
                request_id: event.request_id,
            });
    }

    /// Notes a successful use for `last_used_at`.
    pub fn last_used(&self, id: Arc<str>, at: OffsetDateTime, ip: Option<IpAddr>) {
        if let Ok(mut state) = self.state.lock() {
            state.last_used.insert(id, (at, ip));
        }
    }

    /// Queues re-hashing a token from pepper `from` to `to`.
    pub fn rehash(&self, token: Arc<CachedToken>, from: i32, to: i32, hash: [u8; 32]) {
        if let Ok(mut state) = self.state.lock() {
            state.rehash.push(Rehash {
                token,
                from,
                to,
                hash,
            });
        }
    }

    /// Writes everything gathered so far in one transaction. On failure what was taken is
    /// put back, to be tried again on the next flush.
    pub async fn flush(&self) -> Result<Flushed, AppError> {
        let taken = match self.state.lock() {
            Ok(mut state) => std::mem::take(&mut *state),
            Err(_) => return Ok(Flushed::default()),
        };
        if taken.groups.is_empty() && taken.last_used.is_empty() && taken.rehash.is_empty() {
            return Ok(Flushed::default());
        }
        match write(&self.actor, &taken).await {
            Ok(flushed) => Ok(flushed),
            Err(err) => {
                self.put_back(taken);
                Err(err)
            }
        }
    }

    fn put_back(&self, taken: State) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        for (key, group) in taken.groups {
            state
                .groups
                .entry(key)
                .and_modify(|g| {
                    g.count += group.count;
                    g.first_at = g.first_at.min(group.first_at);
                })
                .or_insert(group);
        }
        state.overflowed += taken.overflowed;
        for (id, used) in taken.last_used {
            state.last_used.entry(id).or_insert(used);
        }
        state.rehash.extend(taken.rehash);
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn events(state: &State) -> Vec<NewEvent> {
    let mut groups: Vec<(&Key, &Group)> = state.groups.iter().collect();
    groups.sort_by_key(|(_, g)| g.first_at);
    groups
        .into_iter()
        .map(|(key, group)| {
            let actor = match &key.token_id {
                Some(id) => format!("pat:{id}"),
                None => "anonymous".to_owned(),
            };
            let mut event = NewEvent::new(Source::AgentApi, actor, key.action);
            if let Some(code) = key.code {
                event = event.denied(code);
            }
            event.tenant_id = key.tenant_id;
            event.target = key.token_id.as_ref().map(|id| format!("pat:{id}"));
            event.ip = key.ip.map(|ip| ip.to_string());
            event.request_id = group.request_id.as_deref().map(str::to_owned);
            let overflow = key.ip.is_none() && state.overflowed > 0;
            let mut details = serde_json::json!({
                "count": group.count,
                "first_at": rfc3339(group.first_at),
                "last_at": rfc3339(group.last_at),
                "route": key.route,
                "folded": overflow,
            });
            if let (Some((kid, jti)), Some(map)) = (&key.delegated, details.as_object_mut()) {
                map.insert("kid".into(), kid.as_deref().into());
                map.insert("jti".into(), jti.as_deref().into());
                map.insert("pat".into(), key.token_id.as_deref().into());
            }
            event.details(details)
        })
        .collect()
}

async fn write(actor: &Actor, state: &State) -> Result<Flushed, AppError> {
    let events = events(state);
    let mut change = actor.change().await?;

    let mut ids = Vec::with_capacity(state.last_used.len());
    let mut ats = Vec::with_capacity(state.last_used.len());
    let mut ips = Vec::with_capacity(state.last_used.len());
    for (id, (at, ip)) in &state.last_used {
        ids.push(id.to_string());
        ats.push(*at);
        ips.push(ip.map(|ip| ip.to_string()));
    }
    let last_used = if ids.is_empty() {
        0
    } else {
        sqlx::query!(
            r#"UPDATE personal_access_tokens p
               SET last_used_at = u.at, last_used_ip = u.ip::inet
               FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(id, at, ip)
               WHERE p.id = u.id AND (p.last_used_at IS NULL OR p.last_used_at < u.at)
                 -- A row locked by a revoke is skipped (its time is best effort): waiting
                 -- here while holding others could deadlock with a mass revoke.
                 AND p.id IN (SELECT id FROM personal_access_tokens
                              WHERE id = ANY ($1) FOR UPDATE SKIP LOCKED)"#,
            &ids,
            &ats,
            &ips as &[Option<String>],
        )
        .execute(change.db())
        .await?
        .rows_affected()
    };

    let mut rehash_events = Vec::new();
    for rehash in &state.rehash {
        let updated = sqlx::query!(
            r#"UPDATE personal_access_tokens SET secret_hash = $2, pepper_version = $3
               WHERE id = $1 AND pepper_version = $4 AND status = 'active'
                 -- Skipped while a revoke holds the row; the next use re-hashes it.
                 AND id IN (SELECT id FROM personal_access_tokens
                            WHERE id = $1 FOR UPDATE SKIP LOCKED)"#,
            &*rehash.token.id,
            &rehash.hash[..],
            rehash.to,
            rehash.from,
        )
        .execute(change.db())
        .await?
        .rows_affected();
        if updated == 1 {
            let event = NewEvent::new(Source::System, "system", "token.rehashed")
                .tenant(rehash.token.tenant_id)
                .target(format!("pat:{}", rehash.token.id))
                .details(
                    serde_json::json!({ "from_version": rehash.from, "to_version": rehash.to }),
                );
            rehash_events.push(event);
        }
    }

    // Events last: the chain head stays locked from the first insert until commit.
    let mut all = events;
    all.extend(rehash_events.iter().cloned());
    change.commit_all(&all).await?;
    Ok(Flushed {
        events: all.len(),
        calls: state.groups.values().map(|g| g.count).sum(),
        last_used,
        rehashed: rehash_events.len(),
    })
}
