//! Per-subject rate limiting in memory: the generic cell rate algorithm (GCRA), one
//! "theoretical arrival time" per subject, in sharded maps.
//!
//! A limit of `per_minute` with `burst` lets `burst` calls through at once and then one every
//! `60 s / per_minute`. State is per instance: with N instances behind a balancer a subject
//! can get up to N times its limit (the README says more).

use super::Limit;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;
use uuid::Uuid;

const SHARDS: usize = 64;
/// Past this many subjects in one shard, idle ones are dropped on the next call there
/// (64 shards: about a million subjects, some 50 MiB, at the most).
const SHARD_SOFT_CAP: usize = 16_384;

/// Who a limit counts calls of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A token's owner: an API client or a staff member.
    Owner(Uuid),
    /// All callers of a tenant together (only with a tenant override).
    Tenant(Uuid),
    /// A caller's address (IPv6: its /64).
    Ip(IpAddr),
}

impl Subject {
    /// The subject for a caller's address: the address itself, or the /64 of an IPv6 one
    /// (one host usually holds a whole /64).
    pub fn ip(ip: IpAddr) -> Self {
        Self::Ip(per_host(ip))
    }
}

/// What one caller is counted as: an IPv4 address itself, an IPv6 address by its /64 (the
/// network part; one host or household usually holds a whole /64, so counting single
/// addresses would hand it 2^64 allowances). Shared by the gateway's limiter and the
/// sign-in throttle.
///
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how IPv4 clients of a socket bound to
/// `[::]` arrive) is read as the IPv4 address first: otherwise every IPv4 caller would
/// share the /64 `::`.
pub fn per_host(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// A network as callers' addresses are compared with it: an IPv4-mapped IPv6 network
/// (`::ffff:10.0.0.0/104`) becomes the IPv4 network it maps (`10.0.0.0/8`), because client
/// addresses are canonical (IPv4 as IPv4) before any comparison. Other networks are
/// returned as they are.
pub fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(ipnet::IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// The limiter: one arrival time per subject.
pub struct RateLimiter {
    epoch: Instant,
    hasher: std::hash::RandomState,
    shards: Box<[Mutex<HashMap<Subject, u64>>]>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            hasher: std::hash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Nanoseconds since the limiter started: the clock [`Self::check`] takes.
    pub fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts one call of `subject` at `now` (from [`Self::now`]) against `limit`. Refused:
    /// the nanoseconds until a call would pass.
    pub fn check(&self, subject: Subject, limit: Limit, now: u64) -> Result<(), u64> {
        let interval = 60_000_000_000 / u64::from(limit.per_minute.max(1));
        let tolerance = interval.saturating_mul(u64::from(limit.burst.max(1)) - 1);
        let shard = (self.hasher.hash_one(subject) as usize) % SHARDS;
        let Ok(mut map) = self.shards[shard].lock() else {
            // A poisoned shard (a panic while holding it): let calls through rather than
            // refuse everyone; the panic was logged where it happened.
            return Ok(());
        };
        if map.len() >= SHARD_SOFT_CAP {
            map.retain(|_, tat| *tat > now);
            // Still full (a spray of addresses, each still owing time): forget the shard
            // rather than scan it again on every new subject. Its subjects start afresh,
            // which errs towards letting calls through; memory and time stay bounded.
            if map.len() >= SHARD_SOFT_CAP / 2 {
                map.clear();
            }
        }
        let tat = map.get(&subject).copied().unwrap_or(now).max(now);
        if tat - now > tolerance {
            return Err(tat - now - tolerance);
        }
        map.insert(subject, tat + interval);
        Ok(())
    }

    /// Drops subjects whose allowance is full again (nothing to remember). Returns how many
    /// subjects are still tracked.
    pub fn prune(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .filter_map(|shard| shard.lock().ok())
            .map(|mut map| {
                map.retain(|_, tat| *tat > now);
                map.len()
            })
            .sum()
    }

    /// Forgets every subject (a limit was changed: start everyone afresh).
    pub fn reset(&self) {
        for shard in self.shards.iter() {
            if let Ok(mut map) = shard.lock() {
                map.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let limiter = RateLimiter::new();
        let limit = Limit {
            per_minute: 60,
            burst: 3,
        };
        let who = Subject::Owner(Uuid::nil());
        let t0 = 10 * SECOND;
        for _ in 0..3 {
            assert_eq!(limiter.check(who, limit, t0), Ok(()));
        }
        let wait = limiter.check(who, limit, t0).expect_err("fourth at once");
        assert_eq!(wait, SECOND);
        assert_eq!(limiter.check(who, limit, t0 + SECOND), Ok(()));
        assert!(limiter.check(who, limit, t0 + SECOND).is_err());
        // Another subject has its own allowance.
        assert_eq!(
            limiter.check(Subject::Tenant(Uuid::nil()), limit, t0),
            Ok(())
        );
    }

    #[test]
    fn an_idle_subject_is_forgotten_and_starts_full() {
        let limiter = RateLimiter::new();
        let limit = Limit {
            per_minute: 6000,
            burst: 1,
        };
        let who = Subject::ip("192.0.2.1".parse().expect("ip"));
        let now = limiter.now();
        assert_eq!(limiter.check(who, limit, now), Ok(()));
        assert!(limiter.check(who, limit, now).is_err());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(limiter.prune(), 0);
        assert_eq!(limiter.check(who, limit, limiter.now()), Ok(()));
    }

    #[test]
    fn ipv4_mapped_callers_count_as_their_ipv4_address() {
        let mapped = Subject::ip("::ffff:192.0.2.1".parse().expect("ip"));
        assert_eq!(mapped, Subject::ip("192.0.2.1".parse().expect("ip")));
        assert_ne!(mapped, Subject::ip("::ffff:192.0.2.2".parse().expect("ip")));
        let net = |s: &str| s.parse::<ipnet::IpNet>().expect("net");
        assert_eq!(canonical_net(net("::ffff:10.0.0.0/104")), net("10.0.0.0/8"));
        assert_eq!(
            canonical_net(net("::ffff:10.0.0.5/128")),
            net("10.0.0.5/32")
        );
        assert_eq!(canonical_net(net("2001:db8::/32")), net("2001:db8::/32"));
        assert_eq!(canonical_net(net("::/64")), net("::/64"));
    }

    #[test]
    fn ipv6_callers_share_their_64() {
        let a = Subject::ip("2001:db8:1:2::1".parse().expect("ip"));
        let b = Subject::ip("2001:db8:1:2:ffff::9".parse().expect("ip"));
        let c = Subject::ip("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
