//! A tenant's end users (`/t/{tenant}/users`, runbooks 000 and 004): find an account,
//! see its sessions and recent sign-in events, revoke its sessions or lock it; revoke every
//! session of the tenant at once; create accounts. The changes themselves are the identity
//! service's ([`crate::domain::endusers::ops`]).

pub mod api;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Users per page.
pub const PAGE_SIZE: i64 = 50;
/// The states an account can be in, as the filter offers them.
pub const STATES: [&str; 4] = ["active", "needs_password_reset", "locked", "deleted"];

/// One account in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRow {
    /// Its id.
    pub id: String,
    /// Its email.
    pub email: String,
    /// `active`, `needs_password_reset`, `locked`, `deleted`.
    pub state: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Until when failed sign-ins lock it, if they do.
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    /// Its sessions not ended.
    pub live_sessions: i64,
}

/// A page of the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsersPage {
    /// The tenant's slug.
    pub slug: String,
    /// The accounts, by email.
    pub rows: Vec<UserRow>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
    /// The tenant's sessions not ended, every account's.
    pub live_sessions: i64,
}

/// One session of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    /// Its id.
    pub id: String,
    /// When it signed in.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its last refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    /// The address it last came from.
    pub ip: Option<String>,
    /// Its user agent.
    pub user_agent: Option<String>,
    /// When it ended, and why (`revoked`, `reuse_detected`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Refresh tokens issued in it (its family).
    pub refreshes: i64,
}

/// One recent event of an account (sign-ins, failures, reuse detected, revocations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// Its position in the audit chain.
    pub seq: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// What.
    pub action: String,
    /// How it ended.
    pub outcome: String,
    /// Its code, for a refusal.
    pub code: Option<String>,
    /// The caller's address.
    pub ip: Option<String>,
    /// Who did it (the user, or the staff member who acted on them).
    pub actor: String,
}

/// An account's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDetail {
    /// The tenant's slug.
    pub slug: String,
    /// The account.
    pub user: UserRow,
    /// Its sessions, newest first.
    pub sessions: Vec<SessionRow>,
    /// Its recent events, newest first.
    pub events: Vec<AccountEvent>,
}
