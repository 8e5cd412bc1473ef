//! The token pepper panel (platform-wide): which pepper versions exist, how many tokens
//! are still on each, and the two rotations of the runbook.
//!
//! - **Staged**: a new version becomes current; the old one stays `previous` for a grace
//!   period, during which its tokens still verify and are re-hashed to the new version on
//!   their next use. When the grace period ends, the old version is retired and the tokens
//!   still on it (not used during the grace period) are revoked.
//! - **Compromise**: a new version, every other version retired at once, and every active
//!   token of every tenant revoked — after a per-tenant preview and a typed confirmation.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest grace period of a staged rotation, in hours (30 days).
pub const MAX_GRACE_HOURS: i64 = 720;
/// What to type to confirm a staged rotation.
pub const CONFIRM_STAGED: &str = "rotate";
/// What to type to confirm a compromise rotation.
pub const CONFIRM_COMPROMISE: &str = "revoke all tokens";

/// One pepper version. Never holds key material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PepperVersion {
    /// Version number.
    pub version: i32,
    /// Its state.
    pub state: crate::domain::status::PepperState,
    /// When it was created, and by whom.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it (an email, `system`).
    pub created_by: String,
    /// For `previous`: until when its tokens still verify.
    #[serde(with = "time::serde::rfc3339::option")]
    pub grace_until: Option<OffsetDateTime>,
    /// When it was retired.
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// Active tokens hashed under it.
    pub active_tokens: i64,
}

/// Active tokens of one tenant, for the compromise preview.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantTokens {
    /// Tenant slug.
    pub slug: String,
    /// Tenant name.
    pub name: String,
    /// Its active tokens.
    pub active_tokens: i64,
}

/// What a compromise rotation would revoke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompromisePreview {
    /// Tenants with active tokens, most first.
    pub tenants: Vec<TenantTokens>,
    /// All active tokens.
    pub total: i64,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotated {
    /// The new current version.
    pub version: i32,
    /// Tokens revoked by it (compromise rotation; staged rotations revoke none).
    pub revoked: i64,
}
