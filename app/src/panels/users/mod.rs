//! A tenant's end users (`/t/{tenant}/users`, runbooks 000 and 004): find an account,
//! see its sessions, recent sign-in events and mail; revoke its sessions, lock it (with a
//! recovery mail and a block of its suspicious addresses), force a password reset, delete
//! and restore it, unlock it; revoke every session of the tenant, or of every tenant, at
//! once; create accounts. The tenant's mail (`/t/{tenant}/mail`): the queue held while
//! `emailSendingEnabled` is off, what was sent, and the email domains links may go to. The changes themselves are the identity
//! service's ([`crate::domain::endusers::ops`]).

pub mod api;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Users per page.
pub const PAGE_SIZE: i64 = 50;
/// How long a lock's blocks of the account's addresses last.
pub const LOCK_BLOCK_DAYS: i64 = 7;
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

/// An address the account's sign-ins, failures or reuses came from (last 30 days): what
/// the lock offers to block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    /// The address.
    pub ip: String,
    /// Failed sign-ins and reuses from it.
    pub suspicious: i64,
    /// Successful sign-ins from it.
    pub signed_in: i64,
    /// The last one.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Whether a block covers it now.
    pub blocked: bool,
}

/// One mail to an end user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailRow {
    /// Its id.
    pub id: String,
    /// The account's id.
    pub user_id: String,
    /// `recovery` or `magic_link`.
    pub kind: String,
    /// The address.
    pub to_address: String,
    /// `pending` (held while sending is off), `sent`, `dropped`, `failed`.
    pub state: String,
    /// Who asked for it.
    pub requested_by: String,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When it was sent.
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// `smtp` or `outbox`.
    pub transport: Option<String>,
    /// The outbox file or the SMTP server's answer.
    pub message_id: Option<String>,
    /// Who dropped it, and why.
    pub dropped_by: Option<String>,
    /// Why it was dropped.
    pub dropped_reason: Option<String>,
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
    /// Refresh tokens still usable (its live families' heads).
    pub live_refresh: i64,
    /// Its recent events, newest first.
    pub events: Vec<AccountEvent>,
    /// Where its sign-ins came from.
    pub sources: Vec<SourceRow>,
    /// Mail sent or queued to it, newest first.
    pub mail: Vec<MailRow>,
    /// Whether recovery mail may go to its address (the tenant's email domains).
    pub mail_allowed: bool,
}

/// What a lock did, for the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockDone {
    /// The state it is in now.
    pub after: String,
    /// Sessions revoked.
    pub live_sessions: i64,
    /// Whether a recovery mail was queued.
    pub recovery_queued: bool,
    /// Addresses blocked.
    pub blocked: Vec<String>,
}

/// The tenant's mail: the queue, what was sent, and where mail may go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailPage {
    /// The tenant's slug.
    pub slug: String,
    /// `smtp`, `outbox` (development) or `none`.
    pub transport: String,
    /// `emailSendingEnabled` for the tenant: off holds the queue.
    pub sending_enabled: bool,
    /// `magicLinkEnabled` for the tenant.
    pub magic_links_enabled: bool,
    /// Mail not yet sent (held, or waiting for a retry).
    pub queued: Vec<MailRow>,
    /// The latest mail sent, dropped or failed.
    pub recent: Vec<MailRow>,
    /// The allowlist of email domains (empty: any).
    pub domains: Vec<String>,
}

/// What a platform-wide revocation would reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformPreview {
    /// Sessions not ended, every tenant's.
    pub live_sessions: i64,
    /// Tenants.
    pub tenants: i64,
    /// The words to type.
    pub confirmation: String,
}

/// One line of a CSV import, as checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRow {
    /// Its line in the file.
    pub line: u64,
    /// The email.
    pub email: String,
    /// What is wrong with it, if anything.
    pub problem: Option<String>,
}

/// What a CSV import found (a dry run) or did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Only checked.
    pub dry_run: bool,
    /// Every line.
    pub lines: Vec<ImportRow>,
    /// Accounts created.
    pub created: u64,
    /// Recovery mail queued.
    pub mailed: u64,
}
