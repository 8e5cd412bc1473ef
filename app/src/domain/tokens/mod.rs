//! Personal access tokens (PATs) and the pepper their hashes are keyed with: the token
//! format and its cryptography, who may own a token, and the scopes it may carry. The
//! Integrations panel, the gateway and the rotations build on it.

#[cfg(feature = "ssr")]
pub mod pepper;
#[cfg(feature = "ssr")]
pub mod token;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Scopes a token can carry. Fixed: a scope unknown here is refused at minting.
pub const SCOPES: [&str; 3] = ["agent:read", "agent:write", "payments:write"];

/// The least role a staff member must hold for a token they own to work. A staff-owned
/// token speaks for its owner at the agent API, and minting one for oneself needs
/// `Permission::Operate`, so holding one does too: the gateway checks the owner's current
/// role on every call, and a demotion below it refuses their tokens from the next call (a
/// promotion back makes them work again; a password reset revokes them for good).
pub const STAFF_TOKEN_MIN_ROLE: crate::auth::Role = crate::auth::Role::Operator;

/// Who a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Owner {
    /// A staff member.
    Staff(Uuid),
    /// An API client of the tenant.
    Client(Uuid),
}

impl Owner {
    /// `staff:<uuid>` or `client:<uuid>`: how forms and URLs carry an owner.
    pub fn encode(self) -> String {
        match self {
            Self::Staff(id) => format!("staff:{id}"),
            Self::Client(id) => format!("client:{id}"),
        }
    }

    /// Parses [`Owner::encode`]'s form.
    pub fn decode(raw: &str) -> Option<Self> {
        let (kind, id) = raw.trim().split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "staff" => Some(Self::Staff(id)),
            "client" => Some(Self::Client(id)),
            _ => None,
        }
    }
}
