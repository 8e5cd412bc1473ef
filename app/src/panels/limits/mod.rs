//! Rate limits and IP blocks (platform-wide): the configured defaults, overrides per tenant,
//! client or address/network, and the block list — all enforced by every gateway instance
//! within a second of a change. Runbook 000 (`RL_OVERRIDES_JSON`) and runbook 004 (block
//! list).

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::domain::gateway::controls::{Limit, MAX_BURST, MAX_PER_MINUTE};
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// One override as the panel lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideRow {
    /// Id.
    pub id: Uuid,
    /// What it is for.
    pub scope: crate::domain::status::LimitScope,
    /// Readable subject: a tenant slug, `tenant/client`, or an address or network.
    pub subject: String,
    /// Requests per minute.
    pub limit_per_minute: i32,
    /// Burst.
    pub burst: i32,
    /// Why.
    pub reason: String,
    /// When it stops applying.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Who set it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One blocked address or network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockRow {
    /// Address (`/32`, `/128`) or network, in CIDR notation.
    pub network: String,
    /// Why.
    pub reason: String,
    /// When the block ends.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Who added it.
    pub created_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The panel's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsOverview {
    /// Default per token owner.
    pub owner_default: Limit,
    /// Default per caller address.
    pub ip_default: Limit,
    /// Whether this server enforces rate limits at all.
    pub limiting: bool,
    /// Overrides in force.
    pub overrides: Vec<OverrideRow>,
    /// Blocks in force.
    pub blocks: Vec<BlockRow>,
}

/// The rate-limit form as sent (`form[scope]`, `form[tenant]`, ...), unchecked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitForm {
    /// `tenant`, `client` or `ip`.
    pub scope: String,
    /// For a tenant or client: the tenant's slug.
    pub tenant: String,
    /// For a client: its name.
    pub client: String,
    /// For an address: the address or network.
    pub network: String,
    /// Requests per minute.
    pub limit_per_minute: String,
    /// Burst.
    pub burst: String,
    /// Why.
    pub reason: String,
    /// Minutes until it stops applying; empty for never.
    pub expires_minutes: String,
}

/// Reads a per-minute limit: a whole number from 1 to [`MAX_PER_MINUTE`].
pub fn parse_per_minute(raw: &str) -> Result<u32, AppError> {
    parse_bounded(
        raw,
        "limit_per_minute",
        MAX_PER_MINUTE,
        "requests per minute",
    )
}

/// Reads a burst: a whole number from 1 to [`MAX_BURST`].
pub fn parse_burst(raw: &str) -> Result<u32, AppError> {
    parse_bounded(raw, "burst", MAX_BURST, "requests at once")
}

fn parse_bounded(raw: &str, field: &str, max: u32, what: &str) -> Result<u32, AppError> {
    let raw = raw.trim();
    match raw.parse::<i64>() {
        Ok(n) if n >= 1 && n <= i64::from(max) => Ok(n as u32),
        Ok(n) if n < 1 => Err(AppError::validation(
            field,
            format!("Give at least 1 {what}; to stop a caller entirely, block it instead."),
        )),
        Ok(_) => Err(AppError::validation(
            field,
            format!("At most {max} {what}."),
        )),
        Err(_) => Err(AppError::validation(
            field,
            format!("Give a whole number of {what}."),
        )),
    }
}

/// Reads an address or network (`203.0.113.7`, `203.0.113.0/24`, `2001:db8::/48`).
/// Host bits set under the mask are refused with the network meant.
#[cfg(feature = "ssr")]
pub fn parse_network(raw: &str, field: &str) -> Result<ipnet::IpNet, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(AppError::validation(
            field,
            "Give an address or a network in CIDR notation.",
        ));
    }
    let net = match raw.parse::<ipnet::IpNet>() {
        Ok(net) => net,
        Err(_) => match raw.parse::<std::net::IpAddr>() {
            Ok(ip) => ipnet::IpNet::from(ip),
            Err(_) => {
                return Err(AppError::validation(
                    field,
                    format!("“{raw}” is not an address or a CIDR network such as 203.0.113.0/24."),
                ))
            }
        },
    };
    // Callers' addresses are compared in canonical form (IPv4 as IPv4), so an IPv4-mapped
    // network is kept as the IPv4 network it means.
    let net = crate::domain::gateway::controls::ratelimit::canonical_net(net);
    if net.trunc() != net {
        return Err(AppError::validation(
            field,
            format!(
                "{raw} has bits set past its /{}: did you mean {}?",
                net.prefix_len(),
                net.trunc()
            ),
        ));
    }
    if net.prefix_len() == 0 {
        return Err(AppError::validation(
            field,
            "That covers every address. Use the agentApiEnabled kill switch to stop all traffic.",
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_positive_and_bounded() {
        assert_eq!(parse_per_minute(" 600 "), Ok(600));
        assert_eq!(parse_burst("1"), Ok(1));
        for bad in ["0", "-10", "99999999999", "fast", "1.5", ""] {
            assert!(parse_per_minute(bad).is_err(), "{bad}");
        }
        assert!(parse_burst("1000001").is_err());
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn networks_are_checked() {
        assert_eq!(
            parse_network("203.0.113.7", "network").map(|n| n.to_string()),
            Ok("203.0.113.7/32".into())
        );
        assert_eq!(
            parse_network("2001:db8::/48", "network").map(|n| n.to_string()),
            Ok("2001:db8::/48".into())
        );
        // IPv4-mapped: kept as the IPv4 network callers will be compared with.
        assert_eq!(
            parse_network("::ffff:127.0.0.0/104", "network").map(|n| n.to_string()),
            Ok("127.0.0.0/8".into())
        );
        let err = parse_network("10.0.0.1/8", "network").expect_err("host bits");
        assert!(err.to_string().contains("10.0.0.0/8"), "{err}");
        for bad in ["", "10.0.0.0/33", "300.1.1.1", "0.0.0.0/0", "example.com"] {
            assert!(parse_network(bad, "network").is_err(), "{bad}");
        }
    }
}
