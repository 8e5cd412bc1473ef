//! A tenant's signing keys (`/t/{tenant}/keys`, runbooks 000 §1 and 001): each key's state
//! and times, and the legal transitions: stage a new key, activate a staged one (after the
//! JWKS max-age, or at once in an emergency), revoke one by kid, revoke every published
//! key at once in favour of a fresh one. Retirement is what activation does to the key it
//! replaces; removal is the server's, when a retired key's `verify_until` passes.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::domain::status::{SigningAlgorithm, SigningKeyState};
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most keys a tenant may have staged at once (each is published in its JWKS).
pub const MAX_STAGED: i64 = 2;
/// What to type to confirm revoking every key: the tenant's slug (the runbook's "without
/// a body" action must name the tenant it empties).
pub const CONFIRM_REVOKE_ALL_HINT: &str = "the tenant's slug";

/// One signing key, as the panel lists it. Never holds key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// Its state.
    pub state: SigningKeyState,
    /// When it was staged (published), and by whom.
    #[serde(with = "time::serde::rfc3339")]
    pub staged_at: OffsetDateTime,
    /// Who created it (an email, `system`, the command line).
    pub created_by: String,
    /// When it became the active key.
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    /// When it was retired.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// Until when, retired, it still verifies.
    #[serde(with = "time::serde::rfc3339::option")]
    pub verify_until: Option<OffsetDateTime>,
    /// When it was removed or revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub revoke_reason: Option<String>,
}

impl SigningKey {
    /// For a staged key: when it may sign without an emergency activation (published for
    /// the JWKS max-age).
    pub fn activatable_at(&self, jwks_max_age_secs: i64) -> OffsetDateTime {
        self.staged_at + time::Duration::seconds(jwks_max_age_secs)
    }
}

/// How much a key was used in the last 24 hours, from the gateway's audit events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    /// The key.
    pub kid: String,
    /// Delegated tokens it signed (`delegated.issued`).
    pub signed: i64,
    /// Calls accepted with tokens it signed (`delegated.used`).
    pub verified: i64,
}

/// The keys page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeysPage {
    /// The tenant's slug.
    pub slug: String,
    /// The tenant's name.
    pub name: String,
    /// The algorithm its new keys use.
    pub algorithm: SigningAlgorithm,
    /// Its keys, newest first.
    pub keys: Vec<SigningKey>,
    /// Their use in the last 24 hours (keys not used are absent).
    pub usage: Vec<KeyUse>,
    /// `JWKS_MAX_AGE_SECONDS`.
    pub jwks_max_age_secs: i64,
    /// The server's clock when the page was read (countdowns count from it).
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// What a revocation would do, for its preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokePreview {
    /// The keys it revokes, with their state now.
    pub keys: Vec<(String, SigningKeyState)>,
    /// Whether it revokes the active key, so that a fresh key is activated in its place.
    pub replaces_active: bool,
    /// Delegated tokens those keys signed that may still be live (issued within the token
    /// lifetime and its clock skew, from the gateway's `delegated.issued` events): refused
    /// from the revocation on.
    pub live_tokens: i64,
}

/// What a key change did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyChanged {
    /// The key now active, when the change activated one.
    pub activated: Option<String>,
    /// The key staged, when the change staged one.
    pub staged: Option<String>,
    /// The key the activation retired.
    pub retired: Option<String>,
    /// The keys revoked.
    pub revoked: Vec<String>,
}

pub use crate::domain::gateway::requests::{InstanceRequestKind, Probe};

/// A running instance of the server, as its heartbeat last said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRow {
    /// Its id (new at every start).
    pub id: String,
    /// Its host name.
    pub host: String,
    /// Its version.
    pub version: String,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Its last heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// The key epoch it held then.
    pub key_epoch: i64,
    /// Whether its change listener was in effect (requests reach only such instances).
    pub listening: bool,
}

/// One instance's answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceAck {
    /// The instance.
    pub instance_id: String,
    /// Its host name.
    pub host: String,
    /// The key epoch it held when it answered (after reloading, for a refresh).
    pub epoch: i64,
    /// When it answered.
    #[serde(with = "time::serde::rfc3339")]
    pub acked_at: OffsetDateTime,
    /// For a verification: whether every probe passed.
    pub passed: Option<bool>,
    /// For a verification: its probes.
    pub probes: Vec<Probe>,
}

/// A request to every live instance, and the answers so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRequest {
    /// Its id.
    pub id: String,
    /// What it asks.
    pub kind: InstanceRequestKind,
    /// Who asked.
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The database's key epoch then.
    pub epoch: i64,
    /// The instances live then: the ones expected to answer.
    pub expected: Vec<InstanceRow>,
    /// The answers so far.
    pub acks: Vec<InstanceAck>,
    /// The server's clock when this was read.
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

impl InstanceRequest {
    /// The expected instances that have not answered.
    pub fn waiting(&self) -> Vec<&InstanceRow> {
        self.expected
            .iter()
            .filter(|i| !self.acks.iter().any(|a| a.instance_id == i.id))
            .collect()
    }
}

/// Seconds without a heartbeat after which an instance is no longer counted live.
pub const INSTANCE_LIVE_SECS: i64 = 20;
/// Seconds the panel waits for every instance to answer before calling the silent ones so.
pub const ANSWER_WITHIN_SECS: i64 = 15;

/// The instances section of the keys page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstancesView {
    /// The database's key epoch now.
    pub database_epoch: i64,
    /// The live instances.
    pub instances: Vec<InstanceRow>,
    /// The tenant's latest request, with its answers.
    pub latest: Option<InstanceRequest>,
    /// The database's clock (heartbeats are stamped with it).
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// Checks the shape of a typed kid: 43 characters of the base64url alphabet.
pub fn check_kid(raw: &str) -> Result<String, AppError> {
    let kid = raw.trim();
    if kid.is_empty() {
        return Err(AppError::validation("kid", "Enter the key's kid."));
    }
    let shaped = kid.len() == 43
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !shaped {
        return Err(AppError::validation(
            "kid",
            "A kid is 43 characters of letters, digits, - and _ (the key's RFC 7638 thumbprint).",
        ));
    }
    Ok(kid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::check_kid;

    #[test]
    fn kids_are_checked_for_shape() {
        let kid = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
        assert_eq!(check_kid(&format!(" {kid} ")).as_deref(), Ok(kid));
        for bad in ["", "short", &format!("{kid}x"), &kid.replace('_', "/")] {
            assert!(check_kid(bad)
                .expect_err(bad)
                .field_message("kid")
                .is_some());
        }
    }
}
