//! End users' access tokens: JWTs (`typ: at+jwt`) the tenant's active key signs, checked
//! from memory (the key set and the revocation epochs), and refused at once when an epoch
//! covering them moves, not only at their expiry.

use crate::domain::gateway::decision::Refusal;
use crate::domain::gateway::delegated::{self, TYP};
use crate::domain::gateway::keyset::Snapshot;
use crate::domain::keys::{PrivateKey, CLOCK_SKEW_SECS};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest access token looked at.
pub const MAX_TOKEN_LEN: usize = 4096;

/// An access token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `PUBLIC_URL/a/{tenant}`.
    pub iss: String,
    /// The end user.
    pub sub: Uuid,
    /// The tenant's API: `PUBLIC_URL/a/{tenant}/api`.
    pub aud: String,
    /// The session.
    pub sid: Uuid,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Unique id.
    pub jti: Uuid,
    /// The tenant's slug.
    pub tenant: String,
}

/// The audience of a tenant's end users' access tokens.
pub fn audience(public_origin: &str, slug: &str) -> String {
    format!("{}/api", delegated::issuer(public_origin, slug))
}

/// Signs an access token for `user`'s session `sid` with the tenant's active key.
pub fn issue(
    (kid, key): (&str, &PrivateKey),
    public_origin: &str,
    slug: &str,
    user: Uuid,
    sid: Uuid,
    ttl_secs: i64,
    now: OffsetDateTime,
) -> (String, AccessClaims) {
    let iat = now.unix_timestamp();
    let claims = AccessClaims {
        iss: delegated::issuer(public_origin, slug),
        sub: user,
        aud: audience(public_origin, slug),
        sid,
        iat,
        exp: iat + ttl_secs,
        jti: Uuid::new_v4(),
        tenant: slug.to_owned(),
    };
    let value = serde_json::to_value(&claims).unwrap_or_default();
    (
        crate::domain::keys::sign_compact(key, kid, TYP, &value),
        claims,
    )
}

/// Why an access token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// Not a token of this tenant's API: shape, header, issuer, audience, signature.
    Invalid,
    /// Its kid is not in the key set.
    KeyUnknown,
    /// Its key was revoked (or retired past `verify_until`).
    KeyRevoked,
    /// Past its `exp` (with the clock skew).
    Expired,
    /// A revocation epoch of its user or tenant covers it.
    Revoked,
}

impl AccessRefusal {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid => "ACCESS_TOKEN_INVALID",
            Self::KeyUnknown => "ACCESS_TOKEN_KEY_UNKNOWN",
            Self::KeyRevoked => "ACCESS_TOKEN_KEY_REVOKED",
            Self::Expired => "ACCESS_TOKEN_EXPIRED",
            Self::Revoked => "ACCESS_TOKEN_REVOKED",
        }
    }

    /// What to tell the caller.
    pub fn message(self) -> &'static str {
        match self {
            Self::Invalid => "The access token is not one of this tenant's.",
            Self::KeyUnknown => "The access token names a signing key this tenant does not have.",
            Self::KeyRevoked => "The key that signed the access token was revoked: sign in again.",
            Self::Expired => "The access token has expired: refresh it.",
            Self::Revoked => "The session was revoked: sign in again.",
        }
    }
}

/// Most access tokens whose signature is remembered; the cache empties when full.
pub const CACHE_CAPACITY: usize = 100_000;

/// Access tokens whose signature and claims held, by the SHA-256 of their text. A hit
/// saves the signature check and the parse, never the rest: the key is looked up again (a
/// revoked key refuses at once), and the expiry and the epochs are compared on every call.
#[derive(Default)]
pub struct AccessCache {
    entries: RwLock<HashMap<[u8; 32], Arc<Remembered>>>,
}

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.read().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("AccessCache").field("len", &len).finish()
    }
}

/// A verified token: its claims, the key that signed it and its tenant.
pub struct Remembered {
    claims: AccessClaims,
    kid: Arc<str>,
    tenant: Uuid,
}

impl AccessCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Arc<Remembered>> {
        self.entries.read().ok()?.get(hash).cloned()
    }

    fn put(&self, hash: [u8; 32], remembered: Arc<Remembered>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(hash, remembered);
        }
    }
}

/// The checks of every call, cached or not: the expiry and the revocation epochs.
fn current(
    claims: &AccessClaims,
    epochs: &Epochs,
    tenant: Uuid,
    now: i64,
) -> Result<(), AccessRefusal> {
    if now >= claims.exp + CLOCK_SKEW_SECS || claims.iat > now + CLOCK_SKEW_SECS {
        return Err(AccessRefusal::Expired);
    }
    if epochs
        .not_before(claims.sub, tenant)
        .is_some_and(|nb| claims.iat <= nb)
        || epochs.session_ended(claims.sid)
    {
        return Err(AccessRefusal::Revoked);
    }
    Ok(())
}

/// Checks an end user's access token for the tenant `slug` against the key set and the
/// revocation epochs, all in memory; a token seen before skips its signature check.
pub fn check(
    snapshot: &Snapshot,
    epochs: &Epochs,
    cache: &AccessCache,
    public_origin: &str,
    slug: &str,
    raw: &str,
    now: OffsetDateTime,
) -> Result<AccessClaims, AccessRefusal> {
    use sha2::Digest as _;
    if raw.len() > MAX_TOKEN_LEN {
        return Err(AccessRefusal::Invalid);
    }
    let tenant = snapshot.tenants.get(slug).ok_or(AccessRefusal::Invalid)?;
    let hash: [u8; 32] = sha2::Sha256::digest(raw.as_bytes()).into();
    if let Some(hit) = cache.get(&hash) {
        let key = snapshot
            .keys
            .get(&hit.kid)
            .ok_or(AccessRefusal::KeyUnknown)?;
        if !key.verifies_at(now) {
            return Err(AccessRefusal::KeyRevoked);
        }
        if hit.tenant != tenant.id || key.tenant != tenant.id || hit.claims.tenant != slug {
            return Err(AccessRefusal::Invalid);
        }
        current(&hit.claims, epochs, tenant.id, now.unix_timestamp())?;
        return Ok(hit.claims.clone());
    }
    let claims = check_fresh(snapshot, public_origin, slug, tenant.id, raw, now)?;
    current(&claims.0, epochs, tenant.id, now.unix_timestamp())?;
    let (claims, kid) = claims;
    cache.put(
        hash,
        Arc::new(Remembered {
            claims: claims.clone(),
            kid,
            tenant: tenant.id,
        }),
    );
    Ok(claims)
}

/// The signature and the claims of a token not seen before.
fn check_fresh(
    snapshot: &Snapshot,
    public_origin: &str,
    slug: &str,
    tenant_id: Uuid,
    raw: &str,
    now: OffsetDateTime,
) -> Result<(AccessClaims, Arc<str>), AccessRefusal> {
    let signed = delegated::verify_signed(snapshot, raw, now).map_err(|r| match r.refusal {
        Refusal::DelegatedKeyUnknown => AccessRefusal::KeyUnknown,
        Refusal::DelegatedKeyRevoked => AccessRefusal::KeyRevoked,
        _ => AccessRefusal::Invalid,
    })?;
    if signed.key.tenant != tenant_id {
        return Err(AccessRefusal::Invalid);
    }
    let claims: AccessClaims =
        serde_json::from_slice(&signed.payload).map_err(|_| AccessRefusal::Invalid)?;
    if claims.iss != delegated::issuer(public_origin, slug)
        || claims.tenant != slug
        || claims.aud != audience(public_origin, slug)
    {
        return Err(AccessRefusal::Invalid);
    }
    Ok((claims, signed.kid))
}

/// The revocation epochs this instance holds (unix seconds): a user's and a tenant's.
/// A token is covered by the later of its user's and its tenant's, never by one alone.
/// Epochs only move forward.
#[derive(Debug, Default)]
pub struct Epochs {
    users: RwLock<HashMap<Uuid, i64>>,
    tenants: RwLock<HashMap<Uuid, i64>>,
    /// Sessions ended one by one (a reuse detected), with when: their tokens are refused
    /// whatever their `iat`. Kept for longer than any access token lives.
    sessions: RwLock<HashMap<Uuid, i64>>,
    seen_sessions: AtomicI64,
    /// The latest epoch read by the poll, per table: the next poll reads from there.
    seen_users: AtomicI64,
    seen_tenants: AtomicI64,
}

/// How far back each poll reads again: a revocation whose transaction began earlier than
/// another's but committed later lands below the latest epoch seen, and is read all the same.
pub const POLL_LOOKBACK_SECS: i64 = 60;

fn raise(map: &RwLock<HashMap<Uuid, i64>>, id: Uuid, secs: i64) {
    // A poisoned lock still holds the epochs (they only move forward): never dropped.
    let mut map = map
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let held = map.entry(id).or_insert(secs);
    *held = (*held).max(secs);
}

impl Epochs {
    /// Raises `user`'s epoch to `secs`.
    pub fn raise_user(&self, user: Uuid, secs: i64) {
        raise(&self.users, user, secs);
    }

    /// Records that `session` ended at `secs`.
    pub fn end_session(&self, session: Uuid, secs: i64) {
        raise(&self.sessions, session, secs);
    }

    /// Whether `session` was ended one by one.
    pub fn session_ended(&self, session: Uuid) -> bool {
        self.sessions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&session)
    }

    /// Raises `tenant`'s epoch to `secs`.
    pub fn raise_tenant(&self, tenant: Uuid, secs: i64) {
        raise(&self.tenants, tenant, secs);
    }

    /// The epoch covering `user` of `tenant`: the later of both, if either is set.
    pub fn not_before(&self, user: Uuid, tenant: Uuid) -> Option<i64> {
        let user = self
            .users
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&user)
            .copied();
        let tenant = self
            .tenants
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&tenant)
            .copied();
        user.max(tenant)
    }

    /// Applies a notification payload `nb:user:<id>:<secs>` or `nb:tenant:<id>:<secs>`;
    /// whether it was one.
    pub fn apply(&self, payload: &str) -> bool {
        let Some(rest) = payload.strip_prefix("nb:") else {
            return false;
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(kind), Some(id), Some(secs)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let (Ok(id), Ok(secs)) = (Uuid::parse_str(id), secs.parse::<i64>()) else {
            return false;
        };
        match kind {
            "user" => self.raise_user(id, secs),
            "tenant" => self.raise_tenant(id, secs),
            "session" => self.end_session(id, secs),
            _ => return false,
        }
        true
    }

    /// Reads the epochs set since the last read (all of them the first time): the poll
    /// behind the notifications. Returns how many rows it read.
    pub async fn poll(&self, pool: &PgPool) -> sqlx::Result<usize> {
        let since_users = (self.seen_users.load(Ordering::Acquire) - POLL_LOOKBACK_SECS).max(0);
        let users = sqlx::query!(
            r#"SELECT id, floor(extract(epoch FROM not_before))::bigint AS "secs!"
               FROM end_users WHERE not_before >= to_timestamp($1)"#,
            since_users as f64
        )
        .fetch_all(pool)
        .await?;
        let since_tenants = (self.seen_tenants.load(Ordering::Acquire) - POLL_LOOKBACK_SECS).max(0);
        let tenants = sqlx::query!(
            r#"SELECT id, floor(extract(epoch FROM sessions_not_before))::bigint AS "secs!"
               FROM tenants WHERE sessions_not_before >= to_timestamp($1)"#,
            since_tenants as f64
        )
        .fetch_all(pool)
        .await?;
        let since_sessions =
            (self.seen_sessions.load(Ordering::Acquire) - POLL_LOOKBACK_SECS).max(0);
        let sessions = sqlx::query!(
            r#"SELECT id, floor(extract(epoch FROM ended_at))::bigint AS "secs!"
               FROM end_user_sessions
               WHERE end_reason = 'reuse_detected' AND ended_at >= to_timestamp($1)"#,
            since_sessions as f64
        )
        .fetch_all(pool)
        .await?;
        let read = users.len() + tenants.len() + sessions.len();
        for row in sessions {
            self.end_session(row.id, row.secs);
            self.seen_sessions.fetch_max(row.secs, Ordering::AcqRel);
        }
        // Ended sessions' tokens have all expired after the longest access token lifetime.
        let horizon = OffsetDateTime::now_utc().unix_timestamp() - 2 * 3600;
        self.sessions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, ended| *ended > horizon);
        for row in users {
            self.raise_user(row.id, row.secs);
            self.seen_users.fetch_max(row.secs, Ordering::AcqRel);
        }
        for row in tenants {
            self.raise_tenant(row.id, row.secs);
            self.seen_tenants.fetch_max(row.secs, Ordering::AcqRel);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::Epochs;

    #[test]
    fn the_later_of_the_users_and_the_tenants_epoch_covers_a_token() {
        let epochs = Epochs::default();
        let (user, tenant) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        assert_eq!(epochs.not_before(user, tenant), None);
        epochs.raise_tenant(tenant, 100);
        assert_eq!(epochs.not_before(user, tenant), Some(100));
        epochs.raise_user(user, 50);
        assert_eq!(
            epochs.not_before(user, tenant),
            Some(100),
            "the tenant's is later"
        );
        epochs.raise_user(user, 200);
        assert_eq!(
            epochs.not_before(user, tenant),
            Some(200),
            "the user's is later"
        );
        epochs.raise_user(user, 10);
        assert_eq!(
            epochs.not_before(user, tenant),
            Some(200),
            "epochs never go back"
        );
        assert!(epochs.apply(&format!("nb:tenant:{tenant}:300")));
        assert_eq!(epochs.not_before(user, tenant), Some(300));
        let session = uuid::Uuid::new_v4();
        assert!(!epochs.session_ended(session));
        assert!(epochs.apply(&format!("nb:session:{session}:400")));
        assert!(epochs.session_ended(session));
        assert!(!epochs.apply("nb:tenant:not-a-uuid:1"));
        assert!(!epochs.apply("pat:abc"));
    }
}
