//! The gateway's decisions, as the verifier, the controls and the ledger all speak of them:
//! why a call was refused, what a cached token holds, and what a call carried. A leaf: it
//! imports none of them, so they import it and not each other.

use crate::auth::Role;
use crate::domain::tokens::token;
use crate::domain::tokens::Owner;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64};
use std::sync::Arc;
use uuid::Uuid;

/// Why the gateway refused a token. Each has a stable code callers can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No bearer token, or not `mf_pat_v1.<id>.<secret>` with a valid checksum.
    Malformed,
    /// Well-formed, but no token has this id.
    NotFound,
    /// Revoked, or hashed under a pepper that no longer verifies.
    RevokedOrInvalid,
    /// The secret does not match the stored hash.
    HashMismatch,
    /// Past its expiry.
    Expired,
    /// Valid, but without the scope this route needs.
    InsufficientScope,
    /// The token's API client is suspended.
    ClientSuspended,
    /// The token's API client is revoked (final).
    ClientRevoked,
    /// Strict allowlist posture, and the token's API client is not allowlisted.
    ClientNotAllowlisted,
    /// The caller's address is on the block list.
    IpBlocked,
    /// The `agentApiEnabled` kill switch is off.
    AgentApiDisabled,
    /// The `agentPaymentsEnabled` kill switch is off (payments route).
    AgentPaymentsDisabled,
    /// Over the rate limit of the caller's address, token owner or tenant.
    RateLimited,
    /// A staff-owned token whose owner no longer holds the role tokens need
    /// ([`crate::domain::tokens::STAFF_TOKEN_MIN_ROLE`]), after a demotion.
    OwnerRoleInsufficient,
    /// A delegated token that is not a JWT the console issues: too long, not base64url
    /// JSON, no kid, an algorithm other than ES256 or EdDSA (`none`, HMAC), another issuer.
    DelegatedMalformed,
    /// A delegated token naming a kid no published key has.
    DelegatedKeyUnknown,
    /// A delegated token signed by a revoked key, or a retired one past its `verify_until`.
    DelegatedKeyRevoked,
    /// A delegated token whose signature does not hold.
    DelegatedSignatureInvalid,
    /// A delegated token for another audience than the agent API.
    DelegatedAudienceMismatch,
    /// A delegated token past its `exp` (or before its `nbf`), beyond the clock skew.
    DelegatedExpired,
    /// A delegated token used a second time on a route that changes state.
    DelegatedNonceReplay,
}

impl Refusal {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "PAT_MALFORMED",
            Self::NotFound => "PAT_TOKEN_NOT_FOUND",
            Self::RevokedOrInvalid => "PAT_REVOKED_OR_INVALID",
            Self::HashMismatch => "PAT_HASH_MISMATCH",
            Self::Expired => "PAT_EXPIRED",
            Self::InsufficientScope => "INSUFFICIENT_SCOPE",
            Self::ClientSuspended => "CLIENT_SUSPENDED",
            Self::ClientRevoked => "CLIENT_REVOKED",
            Self::ClientNotAllowlisted => "CLIENT_NOT_ALLOWLISTED",
            Self::IpBlocked => "IP_BLOCKED",
            Self::AgentApiDisabled => "AGENT_API_DISABLED",
            Self::AgentPaymentsDisabled => "AGENT_PAYMENTS_DISABLED",
            Self::RateLimited => "RATE_LIMITED",
            Self::OwnerRoleInsufficient => "OWNER_ROLE_INSUFFICIENT",
            Self::DelegatedMalformed => "DELEGATED_MALFORMED",
            Self::DelegatedKeyUnknown => "DELEGATED_KEY_UNKNOWN",
            Self::DelegatedKeyRevoked => "DELEGATED_KEY_REVOKED",
            Self::DelegatedSignatureInvalid => "DELEGATED_SIGNATURE_INVALID",
            Self::DelegatedAudienceMismatch => "DELEGATED_AUDIENCE_MISMATCH",
            Self::DelegatedExpired => "DELEGATED_EXPIRED",
            Self::DelegatedNonceReplay => "DELEGATED_NONCE_REPLAY",
        }
    }

    /// 401 for credentials; 403 for a missing scope, a suspended or unlisted client or a
    /// blocked address; 503 for a kill switch; 429 over a rate limit.
    pub fn status(self) -> u16 {
        match self {
            Self::InsufficientScope
            | Self::OwnerRoleInsufficient
            | Self::ClientSuspended
            | Self::ClientNotAllowlisted
            | Self::IpBlocked => 403,
            Self::AgentApiDisabled | Self::AgentPaymentsDisabled => 503,
            Self::RateLimited => 429,
            _ => 401,
        }
    }

    /// A refusal by the gateway's controls (switches, allowlist, limits, blocks) rather than
    /// of the credential: audited as `agent_api.refused`, not `token.failed_auth`.
    pub fn is_policy(self) -> bool {
        matches!(
            self,
            Self::ClientNotAllowlisted
                | Self::IpBlocked
                | Self::AgentApiDisabled
                | Self::AgentPaymentsDisabled
                | Self::RateLimited
        )
    }

    /// What the caller is told. Never echoes the token.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "Send a personal access token as `Authorization: Bearer mf_pat_v1.<id>.<secret>`; this one is missing, mistyped or truncated.",
            Self::NotFound => "No token has this id.",
            Self::RevokedOrInvalid => "This token has been revoked or is no longer valid. Mint a new one.",
            Self::HashMismatch => "The token's secret does not match.",
            Self::Expired => "This token has expired. Mint a new one.",
            Self::InsufficientScope => "This token lacks the scope this call needs.",
            Self::ClientSuspended => "This token's API client is suspended.",
            Self::ClientRevoked => "This token's API client has been revoked.",
            Self::ClientNotAllowlisted => "Strict allowlist posture is on and this token's API client is not on the allowlist.",
            Self::IpBlocked => "Calls from this address are blocked.",
            Self::AgentApiDisabled => "The agent API is switched off during an incident. Retry later.",
            Self::AgentPaymentsDisabled => "Agent payments are switched off during an incident. Retry later.",
            Self::RateLimited => "Too many calls. Retry after the number of seconds in Retry-After.",
            Self::OwnerRoleInsufficient => "This token's owner no longer holds a role that may use tokens (operator or above).",
            Self::DelegatedMalformed => "Send a delegated token as issued by the tenant's token endpoint: a JWT signed with ES256 or EdDSA, naming its kid; this one is not.",
            Self::DelegatedKeyUnknown => "No published signing key has this token's kid.",
            Self::DelegatedKeyRevoked => "The key that signed this token has been revoked or retired. Exchange the personal access token again.",
            Self::DelegatedSignatureInvalid => "This token's signature does not hold.",
            Self::DelegatedAudienceMismatch => "This token is not for the agent API (aud must be agent-api).",
            Self::DelegatedExpired => "This delegated token has expired. Exchange the personal access token again.",
            Self::DelegatedNonceReplay => "This delegated token was used already on a route that changes state; each one is single-use there.",
        }
    }
}

/// A token row as the gateway caches it. Holds the stored hash, never the secret; its
/// `Debug` leaves the hash out.
pub struct CachedToken {
    /// Token id.
    pub id: Arc<str>,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// The tenant's slug.
    pub tenant_slug: Arc<str>,
    /// Its owner.
    pub owner: Owner,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The owner's status when read: `active`, `disabled` (staff), `suspended` or `revoked`
    /// (client).
    pub owner_status: OwnerStatus,
    /// Whether the owning API client is on the allowlist (false for staff-owned tokens).
    pub owner_allowlisted: bool,
    /// The owning staff member's role when read (`None` for client-owned tokens, or a role
    /// this build does not know, which no check accepts).
    pub owner_role: Option<Role>,
    pub(super) secret_hash: [u8; 32],
    /// The pepper version the hash is keyed with.
    pub pepper_version: i32,
    pub(super) active: bool,
    pub(super) expires_at: i64,
    /// The row's revision when read.
    pub revision: i64,
    pub(super) last_used_written: AtomicI64,
    pub(super) last_hit: AtomicI64,
    pub(super) rehash_queued: AtomicBool,
    /// The gateway's `whoami` answer for this token, serialised once: it depends only on
    /// the fields above, and the entry is replaced whenever they change.
    pub whoami: std::sync::OnceLock<axum::body::Bytes>,
}

/// What the revalidation poll compares for one cached token: any difference from the
/// database drops the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revalidated {
    /// The token row's revision.
    pub revision: i64,
    /// The owner's status.
    pub owner_status: OwnerStatus,
    /// The owning client's allowlist flag.
    pub owner_allowlisted: bool,
    /// The owning staff member's role.
    pub owner_role: Option<Role>,
}

/// Whether a token's owner may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerStatus {
    /// Active staff member or client.
    Active,
    /// Disabled staff member.
    Disabled,
    /// Suspended client.
    Suspended,
    /// Revoked client.
    Revoked,
}

impl OwnerStatus {
    /// From the database spelling of either owner kind.
    pub fn parse(raw: &str) -> Self {
        match raw {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "revoked" => Self::Revoked,
            _ => Self::Disabled,
        }
    }
}

impl CachedToken {
    /// Its expiry (unix seconds).
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("id", &self.id)
            .field("tenant", &self.tenant_slug)
            .field("owner", &self.owner)
            .field("owner_status", &self.owner_status)
            .field("owner_allowlisted", &self.owner_allowlisted)
            .field("owner_role", &self.owner_role)
            .field("scopes", &self.scopes)
            .field("pepper_version", &self.pepper_version)
            .field("active", &self.active)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

/// A token that passed every check. `Debug` shows no hash.
#[derive(Clone)]
pub struct Verified {
    /// The token.
    pub token: Arc<CachedToken>,
    /// The hash under the current pepper, when the token is still on the previous one.
    pub rehash: Option<(i32, [u8; 32])>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("token", &self.token)
            .field("rehash_to", &self.rehash.map(|(v, _)| v))
            .finish()
    }
}

/// What a cache-only check found.
pub enum Checked {
    /// Decided without the database.
    Decided(Result<Verified, (Refusal, Option<Arc<CachedToken>>)>),
    /// Well-formed, not cached: look it up.
    Miss(token::Presented),
    /// No pepper ring loaded yet.
    NoRing(token::Presented),
}

/// The request a check is made for, for the audit event.
#[derive(Debug, Clone, Default)]
pub struct CallMeta {
    /// Client address.
    pub ip: Option<IpAddr>,
    /// Request id.
    pub request_id: Option<Arc<str>>,
    /// The route, such as `GET /agent/v1/whoami`.
    pub route: &'static str,
}
