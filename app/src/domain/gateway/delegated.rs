//! Delegated agent tokens: short JWTs (`typ: at+jwt`) a tenant's active key signs in
//! exchange for one of its personal access tokens (RFC 8693), and their check at the
//! gateway: from memory, with a cache of verified signatures.
//!
//! The check: size and shape → header (`alg` ES256 or EdDSA only: no `none`, no HMAC;
//! `jku`, `x5u`, `jwk` never read) → the `kid` in the key set (active or staged, or retired
//! before its `verify_until`) → the algorithm is the key's, not the header's word → the
//! signature → `iss` (the key's tenant), `aud` (the agent API), `exp`/`nbf` with 30 s of
//! skew. Then, at the gateway, the scope, the personal access token it came from (still
//! valid, its owner still allowed) and the same switches, allowlist and limits as that
//! token.

use super::decision::{CachedToken, Refusal};
use super::keyset::{KnownKey, Snapshot, TenantKeys};
use crate::domain::keys::{PrivateKey, CLOCK_SKEW_SECS};
use crate::domain::status::SigningKeyState;
use crate::domain::tokens::Owner;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// The audience of the agent API: the only one `/agent/v1/*` accepts.
pub const AGENT_API_AUDIENCE: &str = "agent-api";
/// The `typ` header of delegated tokens (RFC 9068).
pub const TYP: &str = "at+jwt";
/// The longest token looked at: anything longer is refused unread.
pub const MAX_TOKEN_LEN: usize = 4096;
/// RFC 8693's grant type.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The subject token type: a personal access token is an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// Most verified tokens one instance remembers; past this, the cache is emptied and refills.
pub const SIGNATURE_CACHE_CAPACITY: usize = 100_000;

/// The actor of a delegated token: the API client on whose behalf it acts (RFC 8693 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// `client:<uuid>`.
    pub sub: String,
}

/// A delegated token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuing tenant: `PUBLIC_URL/a/{tenant}`.
    pub iss: String,
    /// The personal access token's owner: `staff:<uuid>` or `client:<uuid>`.
    pub sub: String,
    /// The API client, when a client owns the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    /// The audience.
    pub aud: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Unique id.
    pub jti: uuid::Uuid,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not before (unix seconds).
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// The tenant's slug.
    pub tenant: String,
    /// The personal access token it was exchanged for (its id, never its secret).
    pub pat: String,
}

impl Claims {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}

/// A tenant's issuer.
pub fn issuer(public_origin: &str, slug: &str) -> String {
    format!("{}/a/{slug}", public_origin.trim_end_matches('/'))
}

/// What a delegated token is issued for.
#[derive(Debug, Clone)]
pub struct Grant<'a> {
    /// Its audience.
    pub audience: &'a str,
    /// Its scopes (already checked against the personal access token's).
    pub scopes: &'a [String],
    /// Its lifetime.
    pub ttl_secs: i64,
    /// When it is issued.
    pub now: OffsetDateTime,
}

/// Signs a delegated token for `pat` with the tenant's active key (`kid`, `key`): the token
/// and its claims.
pub fn issue(
    (kid, key): (&str, &PrivateKey),
    issuer: String,
    tenant: &TenantKeys,
    pat: &CachedToken,
    grant: Grant<'_>,
) -> (String, Claims) {
    let Grant {
        audience,
        scopes,
        ttl_secs,
        now,
    } = grant;
    let (sub, act) = match pat.owner {
        Owner::Staff(id) => (format!("staff:{id}"), None),
        Owner::Client(id) => (
            format!("client:{id}"),
            Some(Act {
                sub: format!("client:{id}"),
            }),
        ),
    };
    let iat = now.unix_timestamp();
    let claims = Claims {
        iss: issuer,
        sub,
        act,
        aud: audience.to_owned(),
        scope: scopes.join(" "),
        jti: uuid::Uuid::new_v4(),
        iat,
        nbf: Some(iat),
        exp: iat + ttl_secs,
        tenant: tenant.slug.to_string(),
        pat: pat.id.to_string(),
    };
    let value = serde_json::to_value(&claims).unwrap_or_default();
    (
        crate::domain::keys::sign_compact(key, kid, TYP, &value),
        claims,
    )
}

/// Whether a bearer credential is shaped like a JWT (`eyJ…` with three parts), rather than
/// a personal access token (`mf_pat_v1.…`).
pub fn looks_like_jwt(raw: &str) -> bool {
    raw.starts_with("eyJ") && raw.bytes().filter(|b| *b == b'.').count() == 2
}

/// A delegated token that passed every check of its own.
#[derive(Debug)]
pub struct Delegated {
    /// Its claims.
    pub claims: Claims,
    /// The key that signed it.
    pub kid: Arc<str>,
    /// Its tenant.
    pub tenant: uuid::Uuid,
}

/// A refused delegated token, with what was learnt of it for the audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub refusal: Refusal,
    /// The kid it named, when it named one.
    pub kid: Option<Arc<str>>,
    /// Its jti, when its signature held.
    pub jti: Option<Arc<str>>,
    /// Its tenant, when its key was known.
    pub tenant: Option<uuid::Uuid>,
}

fn rejected(refusal: Refusal) -> Rejected {
    Rejected {
        refusal,
        kid: None,
        jti: None,
        tenant: None,
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    /// RFC 7515 §4.1.11: extensions the recipient must understand. The console defines
    /// none, so a token naming any is refused.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Verified tokens by the SHA-256 of their text. An entry saves the signature check and the
/// parse, never the rest: the key is looked up again on every call (a revocation refuses at
/// once) and the expiry compared again.
#[derive(Default)]
pub struct SignatureCache {
    entries: RwLock<HashMap<[u8; 32], Arc<Delegated>>>,
}

impl std::fmt::Debug for SignatureCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.entries.read().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("SignatureCache").field("len", &len).finish()
    }
}

impl SignatureCache {
    fn get(&self, hash: &[u8; 32]) -> Option<Arc<Delegated>> {
        self.entries.read().ok()?.get(hash).cloned()
    }

    fn put(&self, hash: [u8; 32], delegated: Arc<Delegated>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= SIGNATURE_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(hash, delegated);
        }
    }

    /// Forgets every entry (a key set reload need not: keys are looked up on every call).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

/// What the key set says of `kid` at `now`.
fn usable<'a>(
    snapshot: &'a Snapshot,
    kid: &str,
    now: OffsetDateTime,
) -> Result<&'a KnownKey, Refusal> {
    let key = snapshot.keys.get(kid).ok_or(Refusal::DelegatedKeyUnknown)?;
    if key.verifies_at(now) {
        return Ok(key);
    }
    match key.state {
        // Staged here, so not signing yet as far as this instance knows: another instance
        // may have activated it a moment ago (the caller reloads, as for an unknown kid).
        SigningKeyState::Staged => Err(Refusal::DelegatedKeyUnknown),
        _ => Err(Refusal::DelegatedKeyRevoked),
    }
}

/// Whether the tenant behind `key` still lets its delegated tokens reach the agent API.
fn agent_api_allowed(snapshot: &Snapshot, key: &KnownKey) -> bool {
    snapshot
        .slugs
        .get(&key.tenant)
        .and_then(|slug| snapshot.tenants.get(slug))
        .is_some_and(|t| t.audiences.iter().any(|a| a == AGENT_API_AUDIENCE))
}

/// The time checks: `exp` and `nbf` with [`CLOCK_SKEW_SECS`].
fn timely(claims: &Claims, now: i64) -> bool {
    now < claims.exp + CLOCK_SKEW_SECS && claims.nbf.is_none_or(|nbf| nbf - CLOCK_SKEW_SECS <= now)
}

/// Checks a delegated token against the key set: everything but the scope and the personal
/// access token behind it, which the gateway checks next.
pub fn check(
    snapshot: &Snapshot,
    public_origin: &str,
    cache: &SignatureCache,
    raw: &str,
    now: OffsetDateTime,
) -> Result<Arc<Delegated>, Rejected> {
    use sha2::Digest as _;
    if raw.len() > MAX_TOKEN_LEN {
        return Err(rejected(Refusal::DelegatedMalformed));
    }
    let hash: [u8; 32] = sha2::Sha256::digest(raw.as_bytes()).into();
    if let Some(hit) = cache.get(&hash) {
        let with = |refusal| Rejected {
            refusal,
            kid: Some(hit.kid.clone()),
            jti: Some(hit.claims.jti.to_string().into()),
            tenant: Some(hit.tenant),
        };
        let key = usable(snapshot, &hit.kid, now).map_err(with)?;
        if !agent_api_allowed(snapshot, key) {
            return Err(with(Refusal::DelegatedAudienceMismatch));
        }
        if !timely(&hit.claims, now.unix_timestamp()) {
            return Err(with(Refusal::DelegatedExpired));
        }
        return Ok(hit);
    }
    let checked = check_uncached(snapshot, public_origin, raw, now)?;
    let checked = Arc::new(checked);
    cache.put(hash, checked.clone());
    Ok(checked)
}

/// Every check of [`check`], without the cache (benchmarks; the gateway uses [`check`]).
pub fn check_fresh(
    snapshot: &Snapshot,
    public_origin: &str,
    raw: &str,
    now: OffsetDateTime,
) -> Result<Delegated, Rejected> {
    if raw.len() > MAX_TOKEN_LEN {
        return Err(rejected(Refusal::DelegatedMalformed));
    }
    check_uncached(snapshot, public_origin, raw, now)
}

/// A compact JWS whose header, kid and signature held against the key set: its kid, the
/// key and the decoded payload (claims not checked yet).
pub struct Signed<'a> {
    /// The kid it named.
    pub kid: Arc<str>,
    /// The key that signed it.
    pub key: &'a KnownKey,
    /// The payload's bytes.
    pub payload: Vec<u8>,
}

/// Checks a compact JWS's shape, header (`alg` of the console's, `typ` an access token's,
/// no `crit`, a thumbprint `kid`), key (known and verifying at `now`) and signature; the
/// claims are the caller's. `jku`, `x5u` and `jwk` headers are never read.
pub fn verify_signed<'a>(
    snapshot: &'a Snapshot,
    raw: &str,
    now: OffsetDateTime,
) -> Result<Signed<'a>, Rejected> {
    let mut parts = raw.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(rejected(Refusal::DelegatedMalformed));
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
    let header: Header = decode(header_b64)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| rejected(Refusal::DelegatedMalformed))?;
    // Only the algorithms the console signs with; `none` and HMAC never reach a key.
    let Some(alg) = crate::domain::status::SigningAlgorithm::parse(&header.alg) else {
        return Err(rejected(Refusal::DelegatedMalformed));
    };
    // RFC 9068: an access token says it is one.
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok || header.crit.is_some() {
        return Err(rejected(Refusal::DelegatedMalformed));
    }
    // A kid is a thumbprint: anything else is not looked up, nor recorded.
    let Some(kid) = header.kid.filter(|k| {
        k.len() == 43
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) else {
        return Err(rejected(Refusal::DelegatedMalformed));
    };
    let kid: Arc<str> = kid.into();
    let key = usable(snapshot, &kid, now).map_err(|refusal| Rejected {
        refusal,
        kid: Some(kid.clone()),
        jti: None,
        tenant: snapshot.keys.get(&*kid).map(|k| k.tenant),
    })?;
    let fail = |refusal| Rejected {
        refusal,
        kid: Some(kid.clone()),
        jti: None,
        tenant: Some(key.tenant),
    };
    // The key decides the algorithm: a header naming another is not this key's token.
    if key.public.algorithm() != alg {
        return Err(fail(Refusal::DelegatedSignatureInvalid));
    }
    let signature = decode(signature_b64).ok_or_else(|| fail(Refusal::DelegatedMalformed))?;
    let signing_input = &raw[..header_b64.len() + 1 + payload_b64.len()];
    if !key.public.verify(signing_input.as_bytes(), &signature) {
        return Err(fail(Refusal::DelegatedSignatureInvalid));
    }
    let payload = decode(payload_b64).ok_or_else(|| fail(Refusal::DelegatedMalformed))?;
    Ok(Signed { kid, key, payload })
}

fn check_uncached(
    snapshot: &Snapshot,
    public_origin: &str,
    raw: &str,
    now: OffsetDateTime,
) -> Result<Delegated, Rejected> {
    let Signed { kid, key, payload } = verify_signed(snapshot, raw, now)?;
    let fail = |refusal, jti: Option<Arc<str>>| Rejected {
        refusal,
        kid: Some(kid.clone()),
        jti,
        tenant: Some(key.tenant),
    };
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|_| fail(Refusal::DelegatedMalformed, None))?;
    let jti: Arc<str> = claims.jti.to_string().into();
    let slug = snapshot
        .slugs
        .get(&key.tenant)
        .ok_or_else(|| fail(Refusal::DelegatedKeyUnknown, Some(jti.clone())))?;
    // Signed by this tenant's key for another issuer: not a token the console made.
    if claims.iss != issuer(public_origin, slug) || claims.tenant != **slug {
        return Err(fail(Refusal::DelegatedMalformed, Some(jti)));
    }
    // For the agent API, and the tenant still allows that (removing the audience ends
    // the tokens already issued for it).
    if claims.aud != AGENT_API_AUDIENCE || !agent_api_allowed(snapshot, key) {
        return Err(fail(Refusal::DelegatedAudienceMismatch, Some(jti)));
    }
    if !timely(&claims, now.unix_timestamp()) {
        return Err(fail(Refusal::DelegatedExpired, Some(jti)));
    }
    Ok(Delegated {
        claims,
        kid,
        tenant: key.tenant,
    })
}

/// Records the first use of `jti` on a route that changes state: `false` when it was used
/// before (a replay), on this instance or another. Purged by [`purge_used`] once expired.
pub async fn first_use(
    db: impl sqlx::PgExecutor<'_>,
    jti: uuid::Uuid,
    expires_at: OffsetDateTime,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO delegated_token_uses (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        jti,
        expires_at
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// How long past a token's expiry its single-use record is kept: far beyond the clock skew,
/// so an instance whose clock runs behind the database's cannot accept a replay after the
/// record is gone.
pub const USED_KEPT_SECS: i64 = 600;

/// Deletes the single-use records of tokens expired for good.
pub async fn purge_used(db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM delegated_token_uses WHERE expires_at < now() - make_interval(secs => $1)",
        (CLOCK_SKEW_SECS + USED_KEPT_SECS) as f64
    )
    .execute(db)
    .await?
    .rows_affected())
}
