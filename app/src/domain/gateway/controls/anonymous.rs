//! Bounds what anonymous callers can make the database do.
//!
//! Some requests cost a database round trip before anything is known about the caller: a
//! bearer service token on `/api/v1/switches` is looked up by id. Random credentials would
//! otherwise turn each request into a query, without limit. (Session cookies are signed,
//! so a junk one is refused before the store is asked, and needs no budget.) An [`AnonymousGuard`] lets each address make a small, steady
//! number of such lookups (its own GCRA limiter, in memory, per instance) and answers the
//! rest without the database; a credential that proved valid on this instance recently
//! skips the limit, so a flood from a shared address (an office NAT) does not lock out the
//! people signed in behind it. The exemption only skips the limiter: the credential is
//! still checked against the database on every request, so a revoked one fails at once.

use super::ratelimit::{RateLimiter, Subject};
use super::Limit;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most credentials remembered as recently valid; past this the memory is emptied (they
/// then pay one lookup each from the limit again).
const KNOWN_CAPACITY: usize = 50_000;

/// Lookups of unknown service tokens per address: 10 at once, then one a second.
pub const SERVICE_TOKEN_LOOKUPS: Limit = Limit {
    per_minute: 60,
    burst: 10,
};

/// The guards of one instance. (Session cookies need none: they are signed, so a junk
/// cookie is refused before the session store is asked.)
pub struct AnonymousLimits {
    /// Bearer tokens on `/api/v1/switches` and its stream.
    pub service_tokens: AnonymousGuard,
}

impl Default for AnonymousLimits {
    /// [`SERVICE_TOKEN_LOOKUPS`] (a valid token remembered for a minute).
    fn default() -> Self {
        Self {
            service_tokens: AnonymousGuard::new(SERVICE_TOKEN_LOOKUPS, Duration::from_secs(60)),
        }
    }
}

impl AnonymousLimits {
    /// Forgets what no longer matters (full budgets, expired memories).
    pub fn prune(&self) {
        self.service_tokens.prune();
    }
}

/// Per-address budget for database lookups of credentials this instance does not know.
pub struct AnonymousGuard {
    limit: Limit,
    limiter: RateLimiter,
    /// SHA-256 (first 16 bytes) of credentials that proved valid, and when. A digest, so no
    /// session id or token sits in memory longer than its request.
    known: Mutex<HashMap<[u8; 16], Instant>>,
    known_for: Duration,
}

/// The first 16 bytes of SHA-256 of `credential`.
fn digest(credential: &[u8]) -> [u8; 16] {
    let full = Sha256::digest(credential);
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

impl AnonymousGuard {
    /// A guard allowing `limit` lookups per address; a valid credential is remembered for
    /// `known_for`.
    pub fn new(limit: Limit, known_for: Duration) -> Self {
        Self {
            limit,
            limiter: RateLimiter::new(),
            known: Mutex::new(HashMap::new()),
            known_for,
        }
    }

    /// Before looking `credential` up for a caller at `ip`: `Ok` when it proved valid here
    /// recently or the address still has budget (spending one), else the whole seconds to
    /// wait (at least 1), for `Retry-After`. Without an address (never the case behind the
    /// server's listener) nothing is limited.
    pub fn admit(&self, ip: Option<IpAddr>, credential: &[u8]) -> Result<(), u64> {
        let Some(ip) = ip else {
            return Ok(());
        };
        if self.is_known(credential) {
            return Ok(());
        }
        self.limiter
            .check(Subject::ip(ip), self.limit, self.limiter.now())
            .map_err(|nanos| nanos.div_ceil(1_000_000_000).max(1))
    }

    fn is_known(&self, credential: &[u8]) -> bool {
        let key = digest(credential);
        let Ok(known) = self.known.lock() else {
            return false;
        };
        known
            .get(&key)
            .is_some_and(|at| at.elapsed() < self.known_for)
    }

    /// `credential` was checked and is valid: later requests with it skip the limit.
    pub fn proved(&self, credential: &[u8]) {
        let key = digest(credential);
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= KNOWN_CAPACITY && !known.contains_key(&key) {
                let known_for = self.known_for;
                known.retain(|_, at| at.elapsed() < known_for);
                if known.len() >= KNOWN_CAPACITY {
                    known.clear();
                }
            }
            known.insert(key, Instant::now());
        }
    }

    /// `credential` was checked and is not (or no longer) valid: it pays from the limit again.
    pub fn refuted(&self, credential: &[u8]) {
        let key = digest(credential);
        if let Ok(mut known) = self.known.lock() {
            known.remove(&key);
        }
    }

    /// Drops addresses whose budget is full again and credentials no longer remembered.
    pub fn prune(&self) {
        self.limiter.prune();
        let known_for = self.known_for;
        if let Ok(mut known) = self.known.lock() {
            known.retain(|_, at| at.elapsed() < known_for);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    #[test]
    fn an_address_gets_its_burst_then_waits() {
        let guard = AnonymousGuard::new(
            Limit {
                per_minute: 60,
                burst: 3,
            },
            Duration::from_secs(60),
        );
        for n in 0..3u8 {
            assert_eq!(guard.admit(ip("192.0.2.1"), &[n]), Ok(()));
        }
        assert_eq!(guard.admit(ip("192.0.2.1"), b"another"), Err(1));
        // Another address has its own budget; no address, no limit.
        assert_eq!(guard.admit(ip("192.0.2.2"), b"x"), Ok(()));
        assert_eq!(guard.admit(None, b"x"), Ok(()));
    }

    #[test]
    fn a_credential_proved_valid_skips_the_limit_until_refuted() {
        let guard = AnonymousGuard::new(
            Limit {
                per_minute: 1,
                burst: 1,
            },
            Duration::from_secs(60),
        );
        assert_eq!(guard.admit(ip("192.0.2.1"), b"good"), Ok(()));
        guard.proved(b"good");
        assert!(guard.admit(ip("192.0.2.1"), b"junk").is_err());
        assert_eq!(guard.admit(ip("192.0.2.1"), b"good"), Ok(()));
        guard.refuted(b"good");
        assert!(guard.admit(ip("192.0.2.1"), b"good").is_err());
    }
}
