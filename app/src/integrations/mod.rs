//! Integrations: personal access tokens (PATs) and the pepper their hashes are keyed with.
//!
//! This module holds the token format and its cryptography; the panel, the gateway guard
//! and the rotation procedures build on it.

#[cfg(feature = "ssr")]
pub mod ledger;
#[cfg(feature = "ssr")]
pub mod pepper;
#[cfg(feature = "ssr")]
pub mod sync;
#[cfg(feature = "ssr")]
pub mod token;
#[cfg(feature = "ssr")]
pub mod verify;

/// Scopes a token can carry. Fixed: a scope unknown here is refused at minting.
pub const SCOPES: [&str; 3] = ["agent:read", "agent:write", "payments:write"];
