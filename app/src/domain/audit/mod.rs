//! The audit log: every state change, sign-in and refusal becomes one append-only,
//! hash-chained event, written in the same transaction as the change it describes.
//!
//! Events are written only through a [`crate::auth::Change`], which an
//! [`crate::auth::Actor`] opens: the insert is private to it. The database holds the same
//! rule from the other side: a transaction that writes an audited table and no event is
//! refused at commit (migration `audit_obligation`).

#[cfg(feature = "ssr")]
pub mod chain;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod retention;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The retention periods a tenant may choose, in months (the database checks the same set).
pub const RETENTION_CLASSES: [i16; 6] = [1, 3, 6, 12, 24, 84];

crate::domain::status::status! {
    /// Which plane produced an event (`audit_source`).
    Source {
        /// A staff member in the console, or its sign-in page.
        Console = "console",
        /// The agent API gateway.
        AgentApi = "agent_api",
        /// The REST admin API used by runbook automation.
        AdminApi = "admin_api",
        /// Tenants' end users: their sign-ins, refreshes and sessions (the identity routes).
        Identity = "identity",
        /// The server itself or its command line (timed reverts, bootstrap, `staff-console staff`).
        System = "system",
    }
}

crate::domain::status::status! {
    /// How an attempted action ended (`audit_outcome`).
    Outcome {
        /// It happened.
        Success = "success",
        /// It was refused: bad credentials, missing role, lockout.
        Deny = "deny",
        /// It failed on our side.
        Error = "error",
    }
}

/// An event about to be recorded. Build it from an actor (`actor.event("staff.created")`)
/// so the actor, address, user agent and request id are filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The tenant concerned, `None` for platform-wide events (staff, sign-in).
    pub tenant_id: Option<Uuid>,
    /// Which plane.
    pub source: Source,
    /// Who: `staff:<uuid>`, `cli:<user>`, `system`, `anonymous`.
    pub actor: String,
    /// A readable name for the actor (an email for staff).
    pub actor_name: Option<String>,
    /// What, as `noun.verb`: `staff.sign_in`, `staff.role_changed`.
    pub action: String,
    /// How it ended.
    pub outcome: Outcome,
    /// A stable code for refusals and errors (`INVALID_CREDENTIALS`, `FORBIDDEN`).
    pub code: Option<String>,
    /// What was acted on: `staff:<uuid>`, `tenant:<slug>`.
    pub target: Option<String>,
    /// The caller's address.
    pub ip: Option<String>,
    /// The caller's user agent.
    pub user_agent: Option<String>,
    /// The HTTP request's id.
    pub request_id: Option<String>,
    /// The incident this action belongs to.
    pub incident_id: Option<Uuid>,
    /// Why, in the actor's words.
    pub reason: Option<String>,
    /// Anything else worth keeping. Never a secret.
    pub details: serde_json::Value,
}

impl NewEvent {
    /// An event with no request context (the command line, the server itself).
    pub fn new(source: Source, actor: impl Into<String>, action: impl Into<String>) -> Self {
        Self {
            tenant_id: None,
            source,
            actor: actor.into(),
            actor_name: None,
            action: action.into(),
            outcome: Outcome::Success,
            code: None,
            target: None,
            ip: None,
            user_agent: None,
            request_id: None,
            incident_id: None,
            reason: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    /// Marks the event as a refusal with a stable code.
    pub fn denied(mut self, code: &str) -> Self {
        self.outcome = Outcome::Deny;
        self.code = Some(code.to_owned());
        self
    }

    /// Marks the event as a failure on our side with a stable code.
    pub fn failed(mut self, code: &str) -> Self {
        self.outcome = Outcome::Error;
        self.code = Some(code.to_owned());
        self
    }

    /// Sets the tenant concerned (`None`: platform-wide).
    pub fn tenant(mut self, tenant: impl Into<Option<Uuid>>) -> Self {
        self.tenant_id = tenant.into();
        self
    }

    /// Sets what was acted on.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the reason given by the actor.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the details object.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// Sets the readable actor name.
    pub fn actor_name(mut self, name: impl Into<String>) -> Self {
        self.actor_name = Some(name.into());
        self
    }
}

/// One line of the recent-activity list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRow {
    /// Position in the chain.
    pub seq: i64,
    /// When (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// Which plane.
    pub source: Source,
    /// Who, readable when known.
    pub actor: String,
    /// What.
    pub action: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The refusal or error code.
    pub code: Option<String>,
    /// What was acted on.
    pub target: Option<String>,
}
