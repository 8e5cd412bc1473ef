//! Staff identity, roles and permissions, and the check every server function starts with.
//!
//! `require(Permission::X)` is the first line of every server function. It returns an
//! [`Actor`], and an `Actor` is the only way to open a [`Change`]: a transaction that can
//! commit only together with its audit event. So a mutation cannot be written without
//! passing the check and leaving a record.

pub mod api;
#[cfg(feature = "ssr")]
pub mod factor;
#[cfg(feature = "ssr")]
pub mod passkey;
#[cfg(feature = "ssr")]
pub mod password;
/// The password rules both builds need (the form shows them; the server enforces them).
pub mod password_policy {
    /// Shortest password accepted.
    pub const MIN_LEN: usize = 12;
    /// Longest password accepted: bounds the work an attacker can make us hash.
    pub const MAX_LEN: usize = 128;
}
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
mod require;
#[cfg(feature = "ssr")]
pub mod session;
pub mod view;

#[cfg(feature = "ssr")]
pub use require::{
    current_staff, request_meta, require, require_session_stepped_up, require_stepped_up, Actor,
    Change, Reader, Recorded, RequestMeta,
};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Staff roles, least to most powerful. Each role has every permission of the roles below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads panels.
    Viewer,
    /// Reads and exports the audit log.
    Auditor,
    /// Suspends clients, revokes tokens and sessions.
    Operator,
    /// Flips kill switches, rotates keys and the pepper, runs mass actions.
    IncidentCommander,
    /// Manages staff.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Auditor,
        Role::Operator,
        Role::IncidentCommander,
        Role::Admin,
    ];

    /// The database and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Auditor => "auditor",
            Self::Operator => "operator",
            Self::IncidentCommander => "incident_commander",
            Self::Admin => "admin",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Viewer => "Viewer",
            Self::Auditor => "Auditor",
            Self::Operator => "Operator",
            Self::IncidentCommander => "Incident commander",
            Self::Admin => "Admin",
        }
    }

    /// Parses the database spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `permission` guards.
    pub fn allows(self, permission: Permission) -> bool {
        self >= permission.minimum_role()
    }
}

/// What a server function needs. Each maps to the least role that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// See tenants, panels and recent activity.
    ViewConsole,
    /// Export the audit log (every role may read it in the panel).
    ExportAudit,
    /// Suspend clients, revoke tokens and sessions.
    Operate,
    /// Kill switches, key and pepper rotation, mass revocation.
    CommandIncident,
    /// Create staff, change roles, disable, reset passwords.
    ManageStaff,
    /// Set how long a tenant's audit events are kept.
    ManageRetention,
    /// Create tenants, rename them, change their settings.
    ManageTenants,
    /// Act on one's own account only: change one's password, sign out. The one permission a
    /// person who must still change a handed-over password holds.
    OwnAccount,
}

impl Permission {
    /// The least role holding this permission.
    pub fn minimum_role(self) -> Role {
        match self {
            Self::ViewConsole | Self::OwnAccount => Role::Viewer,
            Self::ExportAudit => Role::Auditor,
            Self::Operate => Role::Operator,
            Self::CommandIncident => Role::IncidentCommander,
            Self::ManageStaff | Self::ManageRetention | Self::ManageTenants => Role::Admin,
        }
    }

    /// The wire spelling, for audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ViewConsole => "view_console",
            Self::ExportAudit => "export_audit",
            Self::Operate => "operate",
            Self::CommandIncident => "command_incident",
            Self::ManageStaff => "manage_staff",
            Self::ManageRetention => "manage_retention",
            Self::ManageTenants => "manage_tenants",
            Self::OwnAccount => "own_account",
        }
    }
}

/// The signed-in staff member, as pages see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffIdentity {
    /// Staff id.
    pub id: Uuid,
    /// Sign-in email (lowercase).
    pub email: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Current role, read from the database on every request.
    pub role: Role,
    /// Signed in with a password someone else chose (first admin, new account, reset):
    /// nothing but choosing a new one is reachable until they do.
    pub must_change_password: bool,
    /// Has no second factor where one is required: nothing but enrolling one (and their own
    /// password) is reachable until they do.
    #[serde(default)]
    pub must_enrol_factor: bool,
    /// The server runs with `MFA_REQUIRED=false` (development only): the console says so.
    #[serde(default)]
    pub mfa_optional: bool,
    /// The freeze of high-risk operations on now, in a sentence, for the top bar (filled
    /// by `whoami` only).
    #[serde(default)]
    pub freeze: Option<String>,
}

/// A live staff session, as the sessions lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffSession {
    /// The session's row (what ending it names).
    pub id: Uuid,
    /// Whose it is.
    pub staff_id: Uuid,
    /// Their email.
    pub email: String,
    /// Browser and system, summarised from the user agent.
    pub device: String,
    /// The address it signed in from.
    pub ip: Option<String>,
    /// The second factor that opened it.
    pub factor: crate::domain::factors::Factor,
    /// When it signed in.
    pub signed_in_at: time::OffsetDateTime,
    /// When it was last used (to the minute).
    pub last_seen_at: time::OffsetDateTime,
    /// When a second factor was last used in it.
    pub stepped_up_at: Option<time::OffsetDateTime>,
    /// Whether it is the session asking.
    pub current: bool,
}

impl StaffIdentity {
    /// Whether the UI should offer what `permission` guards (the server checks again).
    pub fn can(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_inherit_everything_below_them() {
        assert!(Role::Viewer.allows(Permission::ViewConsole));
        assert!(!Role::Viewer.allows(Permission::ExportAudit));
        assert!(Role::Auditor.allows(Permission::ExportAudit));
        assert!(!Role::Auditor.allows(Permission::Operate));
        assert!(Role::Operator.allows(Permission::Operate));
        assert!(!Role::Operator.allows(Permission::CommandIncident));
        assert!(Role::IncidentCommander.allows(Permission::CommandIncident));
        assert!(!Role::IncidentCommander.allows(Permission::ManageStaff));
        assert!(Role::Admin.allows(Permission::ManageStaff));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
