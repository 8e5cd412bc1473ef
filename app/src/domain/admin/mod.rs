//! The admin API's tokens (issue 18): a staff member's scoped, expiring token for runbook
//! automation. A token speaks for its owner: each call needs the scope *and* the owner's
//! current role, so a disabled owner, or one whose role no longer allows a scope, is
//! refused at once. A token acts on one tenant, or on the platform (admins only), and
//! cannot mint tokens.

#[cfg(feature = "ssr")]
pub mod tokens;

use crate::auth::{Permission, Role};
use serde::{Deserialize, Serialize};

/// The token's prefix (`mf_adm_v1.<id>.<secret>`).
pub const PREFIX: &str = "mf_adm_v1";
/// The longest lifetime a token may have, in days.
pub const MAX_DAYS: i64 = 90;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Stage, activate, retire, revoke signing keys.
    #[serde(rename = "keys:write")]
    KeysWrite,
    /// Revoke end users' sessions (a user's, a tenant's).
    #[serde(rename = "sessions:write")]
    SessionsWrite,
    /// Lock end users, force resets, send recovery.
    #[serde(rename = "users:write")]
    UsersWrite,
    /// Revoke personal access tokens.
    #[serde(rename = "tokens:write")]
    TokensWrite,
    /// Suspend, reactivate, revoke, re-key API clients.
    #[serde(rename = "clients:write")]
    ClientsWrite,
    /// Flip kill switches.
    #[serde(rename = "switches:write")]
    SwitchesWrite,
    /// Rate-limit overrides and IP blocks.
    #[serde(rename = "limits:write")]
    LimitsWrite,
    /// Declare and update incidents.
    #[serde(rename = "incidents:write")]
    IncidentsWrite,
    /// Search and export the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read switch state, clients, tokens, keys.
    #[serde(rename = "read")]
    Read,
}

impl Scope {
    /// Every scope, in the order the console lists them.
    pub const ALL: [Scope; 10] = [
        Self::Read,
        Self::AuditRead,
        Self::SessionsWrite,
        Self::UsersWrite,
        Self::KeysWrite,
        Self::TokensWrite,
        Self::ClientsWrite,
        Self::SwitchesWrite,
        Self::LimitsWrite,
        Self::IncidentsWrite,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeysWrite => "keys:write",
            Self::SessionsWrite => "sessions:write",
            Self::UsersWrite => "users:write",
            Self::TokensWrite => "tokens:write",
            Self::ClientsWrite => "clients:write",
            Self::SwitchesWrite => "switches:write",
            Self::LimitsWrite => "limits:write",
            Self::IncidentsWrite => "incidents:write",
            Self::AuditRead => "audit:read",
            Self::Read => "read",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The permission the owner's role must hold for a call of this scope: the one the
    /// console's panel asks for the same action.
    pub fn permission(self) -> Permission {
        match self {
            Self::Read => Permission::ViewConsole,
            Self::AuditRead => Permission::ExportAudit,
            Self::TokensWrite | Self::ClientsWrite | Self::LimitsWrite => Permission::Operate,
            Self::KeysWrite
            | Self::SessionsWrite
            | Self::UsersWrite
            | Self::SwitchesWrite
            | Self::IncidentsWrite => Permission::CommandIncident,
        }
    }

    /// Whether `role` may hold it.
    pub fn allowed_to(self, role: Role) -> bool {
        role.allows(self.permission())
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;
    use crate::auth::Role;

    #[test]
    fn every_scope_reads_back_and_needs_the_role_its_panel_needs() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert!(Scope::Read.allowed_to(Role::Viewer));
        assert!(!Scope::AuditRead.allowed_to(Role::Viewer));
        assert!(!Scope::SessionsWrite.allowed_to(Role::Operator));
        assert!(Scope::SessionsWrite.allowed_to(Role::IncidentCommander));
        assert_eq!(Scope::parse("admin"), None);
    }
}
