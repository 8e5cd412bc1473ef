//! Every instance's key set: the signing keys (public halves, states, `verify_until`), each
//! tenant's active private key (to sign delegated tokens) and what a tenant's tokens are
//! checked against, held in memory as one snapshot swapped whole on reload.
//!
//! Reloaded when PostgreSQL notifies `keys` (a trigger, in the changing transaction), by a
//! poll that compares the database's key epoch in case a notification was lost, and at most
//! once per [`UNKNOWN_KID_RELOAD_EVERY`] when a token names a kid the snapshot does not
//! hold: a flood of made-up kids costs one query per 30 s, not one per call.

use crate::domain::keys::{self, PrivateKey, PublicKey};
use crate::domain::status::{SigningAlgorithm, SigningKeyState};
use crate::domain::tokens::pepper::MasterKey;
use arc_swap::ArcSwap;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

/// The least time between two reloads asked for by unknown kids.
pub const UNKNOWN_KID_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// A key as the gateway checks tokens with it.
#[derive(Debug, Clone)]
pub struct KnownKey {
    /// Its tenant.
    pub tenant: Uuid,
    /// Its public half.
    pub public: PublicKey,
    /// Its state when loaded.
    pub state: SigningKeyState,
    /// For a retired key: until when it verifies.
    pub verify_until: Option<OffsetDateTime>,
}

impl KnownKey {
    /// Whether tokens it signed verify at `now`: the active key, or a retired one before
    /// its `verify_until`. A staged key signs nothing yet, so nothing it signed is accepted.
    pub fn verifies_at(&self, now: OffsetDateTime) -> bool {
        match self.state {
            SigningKeyState::Active => true,
            SigningKeyState::Retired => self.verify_until.is_some_and(|until| now < until),
            SigningKeyState::Staged | SigningKeyState::Removed | SigningKeyState::Revoked => false,
        }
    }

    /// Whether it is in the published JWKS at `now`: staged, active, or retired before its
    /// `verify_until`.
    pub fn published_at(&self, now: OffsetDateTime) -> bool {
        self.state == SigningKeyState::Staged || self.verifies_at(now)
    }
}

/// A tenant as delegated tokens are issued and checked for.
#[derive(Debug)]
pub struct TenantKeys {
    /// Its id.
    pub id: Uuid,
    /// Its slug.
    pub slug: Arc<str>,
    /// The audiences its delegated tokens may be issued for.
    pub audiences: Vec<String>,
    /// Its active key: kid and private key, when it has one.
    pub signer: Option<(Arc<str>, Arc<PrivateKey>)>,
    /// Its keys that are or may be published, in JWKS order (active, staged, retired; by
    /// staging time): kid and JWK.
    pub jwks: Vec<(Arc<str>, serde_json::Value)>,
}

/// One snapshot of the key set.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The database's key epoch it was read at (0: never loaded).
    pub epoch: i64,
    /// When it was read.
    pub loaded_at: Option<OffsetDateTime>,
    /// Every key that is or was published, by kid.
    pub keys: HashMap<Arc<str>, KnownKey>,
    /// Tenants by slug.
    pub tenants: HashMap<Arc<str>, Arc<TenantKeys>>,
    /// Tenant slugs by id.
    pub slugs: HashMap<Uuid, Arc<str>>,
}

impl Snapshot {
    /// The tenant `slug`'s published JWKS at `now` (`None`: no such tenant).
    pub fn jwks(&self, slug: &str, now: OffsetDateTime) -> Option<serde_json::Value> {
        let tenant = self.tenants.get(slug)?;
        let keys: Vec<&serde_json::Value> = tenant
            .jwks
            .iter()
            .filter(|(kid, _)| self.keys.get(kid).is_some_and(|k| k.published_at(now)))
            .map(|(_, jwk)| jwk)
            .collect();
        Some(serde_json::json!({ "keys": keys }))
    }
}

/// Why the key set could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// An active key did not open with ENCRYPTION_KEY.
    #[error("signing key {0} does not decrypt with this ENCRYPTION_KEY (wrong key, or the row was altered)")]
    Undecryptable(String),
    /// A stored public key is not one this build reads.
    #[error("signing key {0} has a public JWK this build cannot read")]
    BadJwk(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// The key set of one instance.
pub struct KeySet {
    pool: PgPool,
    master: MasterKey,
    current: ArcSwap<Snapshot>,
    /// Unix seconds of the last reload an unknown kid asked for.
    last_unknown_reload: AtomicI64,
    /// Serialises reloads, so a burst of notifications does not read the database in
    /// parallel; holds when the last successful reload began.
    reloading: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// Reloads so far.
    reloads: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.current.load();
        f.debug_struct("KeySet")
            .field("epoch", &snapshot.epoch)
            .field("keys", &snapshot.keys.len())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// An empty key set; [`KeySet::reload`] fills it.
    pub fn new(pool: PgPool, master: MasterKey) -> Self {
        Self {
            pool,
            master,
            current: ArcSwap::from_pointee(Snapshot::default()),
            last_unknown_reload: AtomicI64::new(0),
            reloading: tokio::sync::Mutex::new(None),
            reloads: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The epoch of the snapshot in force.
    pub fn epoch(&self) -> i64 {
        self.current.load().epoch
    }

    /// The snapshot in force, loading it first if this key set never loaded (a router built
    /// without `serve`, as the tests do).
    pub async fn loaded(&self) -> Result<arc_swap::Guard<Arc<Snapshot>>, KeySetError> {
        if self.reloads() == 0 {
            self.reload().await?;
        }
        Ok(self.snapshot())
    }

    /// Reads the whole key set and swaps it in. Returns the new epoch.
    pub async fn reload(&self) -> Result<i64, KeySetError> {
        let mut last_began = self.reloading.lock().await;
        let began = std::time::Instant::now();
        let snapshot = load(&self.pool, &self.master).await?;
        let epoch = snapshot.epoch;
        self.current.store(Arc::new(snapshot));
        *last_began = Some(began);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(epoch)
    }

    /// Reloads, unless a reload that began at or after `since` has completed meanwhile
    /// (then what it read is as new as asked): a burst of refresh requests costs one or
    /// two reloads, not one each. Returns the epoch held.
    pub async fn reload_unless_since(&self, since: std::time::Instant) -> Result<i64, KeySetError> {
        {
            let last_began = self.reloading.lock().await;
            if last_began.is_some_and(|began| began >= since) {
                return Ok(self.epoch());
            }
        }
        self.reload().await
    }

    /// How many reloads this key set has done (the unknown-kid throttle's evidence).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// The database's key epoch, for the poll.
    pub async fn database_epoch(&self) -> sqlx::Result<i64> {
        database_epoch(&self.pool).await
    }

    /// A token named a kid the snapshot does not hold: reloads, unless a reload for the
    /// same reason ran in the last [`UNKNOWN_KID_RELOAD_EVERY`]. Whether it reloaded.
    pub async fn reload_for_unknown_kid(&self) -> bool {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let last = self.last_unknown_reload.load(Ordering::Relaxed);
        let every = UNKNOWN_KID_RELOAD_EVERY.as_secs() as i64;
        if now - last < every
            || self
                .last_unknown_reload
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        match self.reload().await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(error = %err, "reloading the key set for an unknown kid failed");
                false
            }
        }
    }

    /// A key set from a snapshot (benchmarks and tests).
    pub fn with_snapshot(pool: PgPool, master: MasterKey, snapshot: Snapshot) -> Self {
        let set = Self::new(pool, master);
        set.current.store(Arc::new(snapshot));
        set
    }
}

async fn database_epoch(db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!("SELECT epoch FROM signing_key_epoch")
        .fetch_one(db)
        .await
}

/// Reads the epoch, the tenants and the keys in one snapshot of the database, so the epoch
/// held always describes the rows held.
async fn load(pool: &PgPool, master: &MasterKey) -> Result<Snapshot, KeySetError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let epoch = database_epoch(&mut *tx).await?;
    let tenants = sqlx::query!("SELECT id, slug, allowed_audiences FROM tenants")
        .fetch_all(&mut *tx)
        .await?;
    let rows = sqlx::query!(
        r#"SELECT kid, tenant_id, algorithm AS "algorithm: SigningAlgorithm", public_jwk,
                  state::text AS "state!: SigningKeyState", verify_until,
                  CASE WHEN state = 'active' THEN nonce END AS nonce,
                  CASE WHEN state = 'active' THEN sealed END AS sealed
           FROM signing_keys WHERE state <> 'removed'
           ORDER BY tenant_id,
                    CASE state WHEN 'active' THEN 0 WHEN 'staged' THEN 1 ELSE 2 END, staged_at, kid"#
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut signers: HashMap<Uuid, (Arc<str>, Arc<PrivateKey>)> = HashMap::new();
    let mut published: HashMap<Uuid, Vec<(Arc<str>, serde_json::Value)>> = HashMap::new();
    let mut known = HashMap::with_capacity(rows.len());
    for row in rows {
        // A row this build cannot read is left out, and said loudly: its tokens are then
        // refused (an unknown kid), and every other key still applies, revocations first.
        let Some(public) = PublicKey::from_jwk(&row.public_jwk)
            .filter(|k| k.algorithm() == row.algorithm && k.thumbprint() == row.kid)
        else {
            tracing::error!(error = %KeySetError::BadJwk(row.kid.clone()), "a signing key is left out of the key set");
            continue;
        };
        let kid: Arc<str> = row.kid.as_str().into();
        if let (Some(nonce), Some(sealed)) = (&row.nonce, &row.sealed) {
            match keys::open(
                master,
                row.tenant_id,
                &row.kid,
                row.algorithm,
                nonce,
                sealed,
            ) {
                Some(private) => {
                    signers.insert(row.tenant_id, (kid.clone(), Arc::new(private)));
                }
                // The tenant cannot sign (its exchanges answer so) until the key is
                // replaced; the key still verifies what it signed.
                None => tracing::error!(
                    error = %KeySetError::Undecryptable(row.kid.clone()),
                    "a tenant's active signing key does not open: it cannot sign"
                ),
            }
        }
        if row.state.published() {
            published
                .entry(row.tenant_id)
                .or_default()
                .push((kid.clone(), public.jwk()));
        }
        known.insert(
            kid,
            KnownKey {
                tenant: row.tenant_id,
                public,
                state: row.state,
                verify_until: row.verify_until,
            },
        );
    }
    let mut by_slug = HashMap::with_capacity(tenants.len());
    let mut slugs = HashMap::with_capacity(tenants.len());
    for t in tenants {
        let slug: Arc<str> = t.slug.as_str().into();
        slugs.insert(t.id, slug.clone());
        by_slug.insert(
            slug.clone(),
            Arc::new(TenantKeys {
                id: t.id,
                slug,
                audiences: t.allowed_audiences,
                signer: signers.remove(&t.id),
                jwks: published.remove(&t.id).unwrap_or_default(),
            }),
        );
    }
    Ok(Snapshot {
        epoch,
        loaded_at: Some(OffsetDateTime::now_utc()),
        keys: known,
        tenants: by_slug,
        slugs,
    })
}
