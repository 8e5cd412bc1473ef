//! The gateway's token check: parse → checksum → look up by id → HMAC → status and expiry →
//! scope, with verified tokens cached in memory.
//!
//! The cache holds token rows (never secrets), so every call still proves the secret with
//! the HMAC. An entry leaves the cache when PostgreSQL notifies that its row changed
//! ([`super::sync`]), when the periodic revalidation finds its revision moved (the fallback
//! for a missed notification), or when it has not been used for a while.

pub use super::decision::{
    CachedToken, CallMeta, Checked, OwnerStatus, Refusal, Revalidated, Verified,
};
use super::ledger::{GatewayEvent, Ledger};
use crate::auth::Role;
use crate::domain::tokens::pepper::{self, MasterKey, PepperRing};
use crate::domain::tokens::token;
use crate::domain::tokens::{Owner, STAFF_TOKEN_MIN_ROLE};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use uuid::Uuid;

/// Most tokens one instance keeps in memory; past this, the cache is emptied and refills.
pub const CACHE_CAPACITY: usize = 100_000;
/// `last_used_at` is written at most this often per token.
pub const LAST_USED_EVERY_SECS: i64 = 60;

/// The token verifier: pepper ring, token cache, and the ledger its decisions go to. One per
/// server instance, shared by every request.
pub struct Verifier {
    pool: PgPool,
    master: MasterKey,
    ring: RwLock<Option<Arc<PepperRing>>>,
    cache: RwLock<HashMap<Arc<str>, Arc<CachedToken>>>,
    /// Bumped on every invalidation: a lookup that raced one does not cache its result.
    epoch: AtomicU64,
    /// Database lookups so far (cache misses).
    lookups: AtomicU64,
    ledger: Ledger,
    /// Whether this instance's change listener has LISTEN in effect (set by
    /// `sync::listen` once it listens and has reloaded, cleared when it lost the connection).
    listening: tokio::sync::watch::Sender<bool>,
    /// The signing keys delegated tokens are issued and checked with.
    keys: super::keyset::KeySet,
    /// Delegated tokens whose signature held.
    signatures: super::delegated::SignatureCache,
    /// This instance, as the others see it.
    instance: super::instances::Instance,
    /// End users' revocation epochs (per user, per tenant).
    epochs: crate::domain::endusers::access::Epochs,
    /// End users' access tokens whose signature held.
    access_tokens: crate::domain::endusers::access::AccessCache,
}

fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Verifier {
    /// A verifier with an empty cache; the ring loads on first use or [`Verifier::reload_ring`].
    pub fn new(pool: PgPool, master: MasterKey) -> Self {
        Self {
            ledger: Ledger::new(pool.clone()),
            keys: super::keyset::KeySet::new(pool.clone(), master.clone()),
            signatures: super::delegated::SignatureCache::default(),
            pool,
            master,
            ring: RwLock::new(None),
            cache: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            listening: tokio::sync::watch::Sender::new(false),
            instance: super::instances::Instance::new(""),
            epochs: Default::default(),
            access_tokens: Default::default(),
        }
    }

    /// This verifier as the instance serving `public_origin` (`PUBLIC_URL`): the issuer its
    /// verifications' probe tokens name.
    pub fn for_instance(mut self, public_origin: &str) -> Self {
        self.instance = super::instances::Instance::new(public_origin);
        self
    }

    /// This instance.
    pub fn instance(&self) -> &super::instances::Instance {
        &self.instance
    }

    /// Records the first use of a delegated token's `jti` (see
    /// [`super::delegated::first_use`]).
    pub async fn first_use_of(&self, jti: Uuid, expires_at: OffsetDateTime) -> sqlx::Result<bool> {
        super::delegated::first_use(&self.pool, jti, expires_at).await
    }

    /// This instance's key set.
    pub fn keys(&self) -> &super::keyset::KeySet {
        &self.keys
    }

    /// Delegated tokens whose signature held.
    pub fn signatures(&self) -> &super::delegated::SignatureCache {
        &self.signatures
    }

    /// Records whether the change listener is listening (see [`Verifier::until_listening`]).
    pub fn set_listening(&self, listening: bool) {
        self.listening.send_replace(listening);
    }

    /// Whether the change listener is listening now: a change committed from here on
    /// reaches this instance's caches.
    pub fn is_listening(&self) -> bool {
        *self.listening.borrow()
    }

    /// Waits until the change listener listens (at once if it does).
    pub async fn until_listening(&self) {
        let mut listening = self.listening.subscribe();
        // The sender lives as long as `self`, so the wait cannot end in an error.
        let _ = listening.wait_for(|on| *on).await;
    }

    /// The key peppers are sealed under, for minting and rotation.
    pub fn master_key(&self) -> &MasterKey {
        &self.master
    }

    /// The pool, for the gateway's own reads and background work (the listener, the polls,
    /// end users' sign-in look-ups). Changes go through an `Actor`.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the pool is closed (the server is shutting down): background work stops.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// The ledger gateway decisions are recorded in.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Reads and opens the peppers again (after a rotation, or on start).
    pub async fn reload_ring(&self) -> Result<(), pepper::PepperError> {
        let ring = pepper::load(&self.pool, &self.master).await?;
        if let Ok(mut slot) = self.ring.write() {
            *slot = Some(Arc::new(ring));
        }
        Ok(())
    }

    fn ring(&self) -> Option<Arc<PepperRing>> {
        self.ring.read().ok().and_then(|r| r.clone())
    }

    /// The pepper ring, loaded first if it never was (end users' refresh tokens hash
    /// under it as personal access tokens do).
    pub async fn pepper_ring(&self) -> Result<Arc<PepperRing>, pepper::PepperError> {
        if let Some(ring) = self.ring() {
            return Ok(ring);
        }
        self.reload_ring().await?;
        self.ring().ok_or(pepper::PepperError::NoCurrent)
    }

    /// End users' access tokens whose signature held.
    pub fn access_tokens(&self) -> &crate::domain::endusers::access::AccessCache {
        &self.access_tokens
    }

    /// The end users' revocation epochs this instance holds.
    pub fn epochs(&self) -> &crate::domain::endusers::access::Epochs {
        &self.epochs
    }

    /// Drops one token from the cache.
    pub fn invalidate(&self, id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(id);
        }
    }

    /// Drops every cached token of `owner` (a staff member or a client was disabled,
    /// suspended, revoked or re-enabled).
    pub fn invalidate_owner(&self, owner: Uuid) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut cache) = self.cache.write() {
            cache.retain(|_, entry| match entry.owner {
                Owner::Staff(id) | Owner::Client(id) => id != owner,
            });
        }
    }

    /// Drops every cached token.
    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }

    /// The cached ids with what revalidation compares (revision, owner status, allowlist
    /// flag and staff owner's role); entries idle for `idle_secs` are dropped instead.
    pub fn cached_revisions(&self, idle_secs: i64) -> Vec<(Arc<str>, Revalidated)> {
        let cutoff = now_secs() - idle_secs;
        let Ok(mut cache) = self.cache.write() else {
            return Vec::new();
        };
        cache.retain(|_, entry| entry.last_hit.load(Ordering::Relaxed) >= cutoff);
        cache
            .values()
            .map(|entry| {
                (
                    entry.id.clone(),
                    Revalidated {
                        revision: entry.revision,
                        owner_status: entry.owner_status,
                        owner_allowlisted: entry.owner_allowlisted,
                        owner_role: entry.owner_role,
                    },
                )
            })
            .collect()
    }

    /// Database lookups so far (cache misses), and invalidations so far.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.lookups.load(Ordering::Relaxed),
            self.epoch.load(Ordering::Relaxed),
        )
    }

    /// How many tokens are cached.
    pub fn cached_len(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }

    /// The check without I/O: everything after the lookup, when the token is cached.
    pub fn check(&self, raw: &str, scope: Option<&str>, now: OffsetDateTime) -> Checked {
        let presented = match token::parse(raw) {
            Ok(presented) => presented,
            Err(_) => return Checked::Decided(Err((Refusal::Malformed, None))),
        };
        let Some(ring) = self.ring() else {
            return Checked::NoRing(presented);
        };
        let cached = self
            .cache
            .read()
            .ok()
            .and_then(|cache| cache.get(presented.id.as_str()).cloned());
        match cached {
            Some(entry) => Checked::Decided(decide(&ring, entry, &presented, scope, now)),
            None => Checked::Miss(presented),
        }
    }

    /// Verifies a bearer token for a route needing `scope`, records the decision in the
    /// ledger, and returns the token or the refusal.
    pub async fn verify(
        &self,
        raw: &str,
        scope: Option<&str>,
        call: &CallMeta,
    ) -> Result<Verified, Refusal> {
        self.verify_with(raw, scope, call, |_| Ok(())).await
    }

    /// [`Self::verify`], with `policy` judging a token that passed every credential check
    /// (kill switches, allowlist, rate limits); its refusal is the one recorded.
    pub async fn verify_with(
        &self,
        raw: &str,
        scope: Option<&str>,
        call: &CallMeta,
        policy: impl FnOnce(&CachedToken) -> Result<(), Refusal>,
    ) -> Result<Verified, Refusal> {
        let now = OffsetDateTime::now_utc();
        // The id of a well-formed token, for refusals where no row matched.
        let mut id: Option<Arc<str>> = None;
        let decided = match self.check(raw, scope, now) {
            Checked::Decided(decided) => decided,
            Checked::Miss(presented) => {
                id = Some(presented.id.as_str().into());
                // Boxed: the lookup's future is large, and the cached path should not carry
                // (and move) it on every call.
                Box::pin(self.check_loaded(presented, scope, now)).await
            }
            Checked::NoRing(presented) => {
                id = Some(presented.id.as_str().into());
                match Box::pin(self.reload_ring()).await {
                    Ok(()) => Box::pin(self.check_loaded(presented, scope, now)).await,
                    Err(err) => {
                        tracing::error!(error = %err, "token peppers unavailable: refusing tokens");
                        Err((Refusal::RevokedOrInvalid, None))
                    }
                }
            }
        };
        let decided = decided.and_then(|verified| match policy(&verified.token) {
            Ok(()) => Ok(verified),
            Err(refusal) => Err((refusal, Some(verified.token))),
        });
        match decided {
            Ok(verified) => {
                self.after_success(&verified, call, now);
                Ok(verified)
            }
            Err((refusal, token)) => {
                self.ledger.record_at(
                    GatewayEvent::refused(refusal, token.as_deref(), id, call),
                    now,
                );
                Err(refusal)
            }
        }
    }

    async fn check_loaded(
        &self,
        presented: token::Presented,
        scope: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Verified, (Refusal, Option<Arc<CachedToken>>)> {
        let loaded = match self.lookup(&presented.id).await {
            Ok(Some(entry)) => entry,
            Ok(None) => return Err((Refusal::NotFound, None)),
            // Fail closed: a token that cannot be checked is refused.
            Err(()) => return Err((Refusal::RevokedOrInvalid, None)),
        };
        let Some(ring) = self.ring() else {
            return Err((Refusal::RevokedOrInvalid, Some(loaded)));
        };
        decide(&ring, loaded, &presented, scope, now)
    }

    /// The token row with this id, from the cache or the database (and cached): for a
    /// delegated token, the personal access token it came from. `Err` when the database
    /// could not be asked (fail closed).
    pub async fn token_by_id(&self, id: &str) -> Result<Option<Arc<CachedToken>>, ()> {
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(id).cloned()) {
            return Ok(Some(hit));
        }
        self.lookup(id).await
    }

    /// Reads the token row `id` from the database and caches it, unless an invalidation
    /// happened during the read (the row read may predate it). `Err` (logged) when the
    /// database could not be asked.
    async fn lookup(&self, id: &str) -> Result<Option<Arc<CachedToken>>, ()> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let loaded = match load(&self.pool, id).await {
            Ok(Some(entry)) => Arc::new(entry),
            Ok(None) => return Ok(None),
            Err(err) => {
                tracing::error!(error = %err, "token lookup failed: refusing");
                return Err(());
            }
        };
        if let Ok(mut cache) = self.cache.write() {
            if self.epoch.load(Ordering::SeqCst) == epoch {
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(loaded.id.clone(), loaded.clone());
            }
        }
        Ok(Some(loaded))
    }

    fn after_success(&self, verified: &Verified, call: &CallMeta, now: OffsetDateTime) {
        let token = &verified.token;
        let secs = now.unix_timestamp();
        token.last_hit.store(secs, Ordering::Relaxed);
        self.ledger.record_at(GatewayEvent::used(token, call), now);
        let written = token.last_used_written.load(Ordering::Relaxed);
        if secs - written >= LAST_USED_EVERY_SECS
            && token
                .last_used_written
                .compare_exchange(written, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.ledger.last_used(token.id.clone(), now, call.ip);
        }
        if let Some((version, hash)) = verified.rehash {
            if !token.rehash_queued.swap(true, Ordering::Relaxed) {
                self.ledger
                    .rehash(token.clone(), token.pepper_version, version, hash);
            }
        }
    }
}

/// Everything after the lookup.
fn decide(
    ring: &PepperRing,
    entry: Arc<CachedToken>,
    presented: &token::Presented,
    scope: Option<&str>,
    now: OffsetDateTime,
) -> Result<Verified, (Refusal, Option<Arc<CachedToken>>)> {
    let Some(pepper) = ring.get(entry.pepper_version, now) else {
        return Err((Refusal::RevokedOrInvalid, Some(entry)));
    };
    if !pepper.verify(presented.secret(), &entry.secret_hash) {
        return Err((Refusal::HashMismatch, Some(entry)));
    }
    if let Err(refusal) = standing(&entry, scope, now) {
        return Err((refusal, Some(entry)));
    }
    let rehash = (entry.pepper_version != ring.current.version)
        .then(|| (ring.current.version, ring.current.hash(presented.secret())));
    Ok(Verified {
        token: entry,
        rehash,
    })
}

/// Whether a token that proved its secret may be used now for `scope`: its owner, its
/// status and expiry, a staff owner's role, the scope. A delegated token asks the same of
/// the personal access token it came from (with no scope: its own is checked).
pub fn standing(
    entry: &CachedToken,
    scope: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    // The owner first: a revoked client's tokens are revoked with it, and its callers should
    // learn that the client is gone rather than that one token is.
    match entry.owner_status {
        OwnerStatus::Active => {}
        OwnerStatus::Disabled => return Err(Refusal::RevokedOrInvalid),
        OwnerStatus::Suspended => return Err(Refusal::ClientSuspended),
        OwnerStatus::Revoked => return Err(Refusal::ClientRevoked),
    }
    if !entry.active {
        return Err(Refusal::RevokedOrInvalid);
    }
    if now.unix_timestamp() >= entry.expires_at {
        return Err(Refusal::Expired);
    }
    // A staff-owned token acts with its owner's current role: a demotion below what tokens
    // need refuses it (the cache entry is dropped when the role changes, see `sync`).
    if matches!(entry.owner, Owner::Staff(_))
        && entry
            .owner_role
            .is_none_or(|role| role < STAFF_TOKEN_MIN_ROLE)
    {
        return Err(Refusal::OwnerRoleInsufficient);
    }
    if let Some(scope) = scope {
        if !entry.scopes.iter().any(|s| s == scope) {
            return Err(Refusal::InsufficientScope);
        }
    }
    Ok(())
}

/// Reads one token row for the cache.
async fn load(pool: &PgPool, id: &str) -> sqlx::Result<Option<CachedToken>> {
    let row = sqlx::query!(
        r#"SELECT p.id, p.tenant_id, t.slug, p.owner_staff_id, p.owner_client_id, p.scopes,
                  p.secret_hash, p.pepper_version, p.status = 'active' AS "active!",
                  p.expires_at, p.revision, p.last_used_at,
                  coalesce(s.status::text, c.status::text, 'disabled') AS "owner_status!",
                  coalesce(c.allowlisted, false) AS "owner_allowlisted!",
                  s.role::text AS owner_role
           FROM personal_access_tokens p
           JOIN tenants t ON t.id = p.tenant_id
           LEFT JOIN staff s ON s.id = p.owner_staff_id
           LEFT JOIN api_clients c ON c.id = p.owner_client_id
           WHERE p.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let owner = match (row.owner_staff_id, row.owner_client_id) {
        (Some(id), _) => Owner::Staff(id),
        (None, Some(id)) => Owner::Client(id),
        (None, None) => return Ok(None),
    };
    let Ok(secret_hash) = <[u8; 32]>::try_from(row.secret_hash.as_slice()) else {
        return Ok(None);
    };
    Ok(Some(CachedToken {
        id: row.id.into(),
        tenant_id: row.tenant_id,
        tenant_slug: row.slug.into(),
        owner,
        scopes: row.scopes,
        owner_status: OwnerStatus::parse(&row.owner_status),
        owner_allowlisted: row.owner_allowlisted,
        owner_role: row.owner_role.as_deref().and_then(Role::parse),
        secret_hash,
        pepper_version: row.pepper_version,
        active: row.active,
        expires_at: row.expires_at.unix_timestamp(),
        revision: row.revision,
        last_used_written: AtomicI64::new(
            row.last_used_at.map(|t| t.unix_timestamp()).unwrap_or(0),
        ),
        last_hit: AtomicI64::new(now_secs()),
        rehash_queued: AtomicBool::new(false),
        whoami: std::sync::OnceLock::new(),
    }))
}

/// A cache entry for benchmarks and tests that run without a database.
pub fn cached_for_test(
    id: &str,
    tenant_slug: &str,
    scopes: &[&str],
    secret_hash: [u8; 32],
    pepper_version: i32,
    expires_at: OffsetDateTime,
) -> CachedToken {
    CachedToken {
        id: id.into(),
        tenant_id: Uuid::nil(),
        tenant_slug: tenant_slug.into(),
        owner: Owner::Staff(Uuid::nil()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        owner_status: OwnerStatus::Active,
        owner_allowlisted: false,
        owner_role: Some(Role::Admin),
        secret_hash,
        pepper_version,
        active: true,
        expires_at: expires_at.unix_timestamp(),
        revision: 0,
        last_used_written: AtomicI64::new(0),
        last_hit: AtomicI64::new(now_secs()),
        rehash_queued: AtomicBool::new(false),
        whoami: std::sync::OnceLock::new(),
    }
}

impl Verifier {
    /// Puts a ring and a token straight into memory, for benchmarks and tests.
    pub fn prime_for_test(&self, ring: PepperRing, entry: CachedToken) {
        if let Ok(mut slot) = self.ring.write() {
            *slot = Some(Arc::new(ring));
        }
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(entry.id.clone(), Arc::new(entry));
        }
    }
}
