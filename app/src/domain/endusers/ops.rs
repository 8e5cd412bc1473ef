//! Changes to end users from the console and the command line, each one audited change:
//! create a user, revoke a user's or a tenant's sessions (one epoch row: O(1) at any size),
//! lock an account. The sessions an epoch covers are marked ended in the background
//! ([`mark_revoked_sessions`]); their tokens are refused from the commit on, by the epoch.

use super::sessions::{check_password, normalize_email};
use crate::auth::Actor;
use crate::domain::input::normalize_reason;
use crate::error::AppError;
use uuid::Uuid;

fn bad(err: super::sessions::SignInError) -> AppError {
    AppError::validation(err.field().unwrap_or("email"), err.message())
}

async fn tenant(actor: &Actor, slug: &str) -> Result<crate::domain::tenants::Tenant, AppError> {
    crate::domain::tenants::queries::find(actor.reader(), slug.trim()).await
}

/// Creates an end user of the tenant `slug` with `password`: the user's id.
pub async fn create_user(
    actor: &Actor,
    slug: &str,
    email: &str,
    password: &str,
) -> Result<Uuid, AppError> {
    let tenant = tenant(actor, slug).await?;
    let email = normalize_email(email).map_err(bad)?;
    check_password(password).map_err(bad)?;
    let hash = crate::auth::password::hash_end_user(password).await?;
    let mut change = actor.change().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO end_users (tenant_id, email, password_hash) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, email) DO NOTHING RETURNING id",
        tenant.id,
        email,
        hash
    )
    .fetch_optional(change.db())
    .await?
    .ok_or_else(|| AppError::Conflict {
        field: Some("email".into()),
        message: format!(
            "Tenant “{}” already has a user with this email.",
            tenant.slug
        ),
    })?;
    let event = actor
        .event("end_user.created")
        .tenant(tenant.id)
        .target(format!("end_user:{id}"))
        .details(serde_json::json!({ "email": email }));
    change.commit(event).await?;
    Ok(id)
}

/// Revokes every session of the user `user` of the tenant `slug` at once: their access
/// tokens are refused from the commit on, on every instance; their refresh tokens no
/// longer refresh. How many sessions were live.
pub async fn revoke_user_sessions(
    actor: &Actor,
    slug: &str,
    user: Uuid,
    reason: &str,
) -> Result<i64, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    let mut change = actor.change().await?;
    lock_user(&mut change, tenant.id, user).await?;
    move_user_epoch(&mut change, user).await?;
    super::mail::cancel_links(&mut change, user).await?;
    super::mail::drop_queued_of_user(
        &mut change,
        user,
        Some(super::mail::Kind::MagicLink),
        &actor.label(),
        "the account's sessions were revoked",
    )
    .await?;
    let live = live_sessions_of(&mut change, user).await?;
    let event = actor
        .event("end_user.sessions_revoked")
        .tenant(tenant.id)
        .target(format!("end_user:{user}"))
        .reason(reason)
        .details(serde_json::json!({ "live_sessions": live }));
    change.commit(event).await?;
    Ok(live)
}

/// Revokes every session and refresh token of the tenant `slug` at once (runbook 000 §1),
/// the slug typed as `confirmation`: one row moves, whatever the number of sessions. How
/// many sessions were live.
pub async fn revoke_tenant_sessions(
    actor: &Actor,
    slug: &str,
    reason: &str,
    confirmation: &str,
) -> Result<i64, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    if confirmation.trim() != tenant.slug {
        return Err(AppError::validation(
            "confirmation",
            format!("Type {} to confirm.", tenant.slug),
        ));
    }
    let mut change = actor.change().await?;
    // The row locked first, then the epoch read from the clock: a refresh holding the row
    // shared finished before, with an earlier time; one after waits for this commit.
    sqlx::query!("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", tenant.id)
        .fetch_one(change.db())
        .await?;
    sqlx::query!(
        "UPDATE tenants SET sessions_not_before = clock_timestamp() WHERE id = $1",
        tenant.id
    )
    .execute(change.db())
    .await?;
    super::mail::drop_queued_magic_links(
        &mut change,
        Some(tenant.id),
        &actor.label(),
        "the tenant's sessions were revoked",
    )
    .await?;
    let live = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM end_user_sessions WHERE tenant_id = $1 AND ended_at IS NULL"#,
        tenant.id
    )
    .fetch_one(change.db())
    .await?;
    let event = actor
        .event("tenant.sessions_revoked")
        .tenant(tenant.id)
        .target(format!("tenant:{}", tenant.slug))
        .reason(reason)
        .details(serde_json::json!({ "live_sessions": live }));
    change.commit(event).await?;
    Ok(live)
}

/// What locking an account does besides revoking its sessions (runbook 004).
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Queue a recovery mail to the account's email.
    pub send_recovery: bool,
    /// Addresses to block (each seen on the account in the last 30 days).
    pub block: Vec<String>,
    /// How long the blocks last.
    pub block_for: time::Duration,
}

/// What a lock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// The state it is in now (`needs_password_reset` with a recovery mail, else `locked`).
    pub after: &'static str,
    /// Sessions that were live.
    pub live_sessions: i64,
    /// The recovery mail queued.
    pub recovery_mail: Option<Uuid>,
    /// The addresses blocked.
    pub blocked: Vec<String>,
}

/// Locks the account (runbook 004) in one change: every session and refresh token revoked,
/// unused links and queued mail cancelled, and optionally a block of the addresses chosen.
/// With `send_recovery` the account becomes `needs_password_reset` and a recovery mail goes
/// to its email (only the mailbox's owner gets back in); without, it is `locked` and comes
/// back only through an operator's unlock.
pub async fn lock(
    actor: &Actor,
    slug: &str,
    user: Uuid,
    reason: &str,
    options: &LockOptions,
) -> Result<Locked, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    let mut block = Vec::new();
    for raw in &options.block {
        let ip: std::net::IpAddr = raw
            .trim()
            .parse()
            .map_err(|_| AppError::validation("block", format!("“{raw}” is not an address.")))?;
        if !block.contains(&ip) {
            block.push(ip);
        }
    }
    let mut change = actor.change().await?;
    let (before, email) = lock_user(&mut change, tenant.id, user).await?;
    if before == "deleted" {
        return Err(AppError::Conflict {
            field: None,
            message: "This user is deleted: restore it first.".into(),
        });
    }
    if !block.is_empty() {
        let seen = sources_of(&mut change, tenant.id, user).await?;
        if let Some(unseen) = block.iter().find(|ip| !seen.contains(&ip.to_string())) {
            return Err(AppError::validation(
                "block",
                format!("{unseen} was not seen on this account in the last 30 days: block it from the Limits panel."),
            ));
        }
    }
    let after = if options.send_recovery {
        "needs_password_reset"
    } else {
        "locked"
    };
    sqlx::query!(
        "UPDATE end_users SET state = $2::text::end_user_state, updated_at = now() WHERE id = $1",
        user,
        after
    )
    .execute(change.db())
    .await?;
    move_user_epoch(&mut change, user).await?;
    super::mail::cancel_links(&mut change, user).await?;
    super::mail::drop_queued_of_user(
        &mut change,
        user,
        None,
        &actor.label(),
        "the account was locked",
    )
    .await?;
    let live = live_sessions_of(&mut change, user).await?;
    let recovery_mail = if options.send_recovery {
        Some(queue_recovery(&mut change, actor, &tenant, user, &email).await?)
    } else {
        None
    };
    let until = time::OffsetDateTime::now_utc() + options.block_for;
    let block_reason = format!("account {email} locked: {reason}");
    let mut blocked = Vec::new();
    for ip in &block {
        let net = ipnet::IpNet::from(*ip).to_string();
        crate::domain::gateway::controls::blocks::upsert(
            &mut change,
            &net,
            &block_reason.chars().take(500).collect::<String>(),
            Some(until),
            &actor.label(),
        )
        .await?;
        blocked.push(ip.to_string());
    }
    let event = actor
        .event("end_user.locked")
        .tenant(tenant.id)
        .target(format!("end_user:{user}"))
        .reason(reason)
        .details(serde_json::json!({
            "before": before,
            "after": after,
            "live_sessions": live,
            "recovery_mail": recovery_mail,
            "blocked": blocked,
            "blocked_until": blocked.first().map(|_| until.unix_timestamp()),
        }));
    change.commit(event).await?;
    Ok(Locked {
        after,
        live_sessions: live,
        recovery_mail,
        blocked,
    })
}

/// The addresses the account's sign-ins, failures and reuses came from in the last 30 days.
async fn sources_of(
    change: &mut crate::auth::Change,
    tenant: Uuid,
    user: Uuid,
) -> Result<Vec<String>, AppError> {
    let who = format!("end_user:{user}");
    Ok(sqlx::query_scalar!(
        r#"SELECT DISTINCT host(ip) AS "ip!" FROM audit_events
           WHERE tenant_id = $1 AND ts > now() - interval '30 days' AND ip IS NOT NULL
             AND (actor = $2 OR target = $2)
             AND action IN ('end_user.signed_in', 'end_user.sign_in_failed', 'token.reuse_detected')"#,
        tenant,
        who
    )
    .fetch_all(change.db())
    .await?)
}

/// Queues a recovery mail in `change`, refused outside the tenant's email domains.
async fn queue_recovery(
    change: &mut crate::auth::Change,
    actor: &Actor,
    tenant: &crate::domain::tenants::Tenant,
    user: Uuid,
    email: &str,
) -> Result<Uuid, AppError> {
    let domains = sqlx::query_scalar!("SELECT email_domains FROM tenants WHERE id = $1", tenant.id)
        .fetch_one(change.db())
        .await?;
    if !super::mail::domain_allowed(&domains, email) {
        return Err(AppError::Conflict {
            field: Some("send_recovery".into()),
            message: format!(
                "{email} is outside tenant “{}”'s email domains: no recovery mail can go to it.",
                tenant.slug
            ),
        });
    }
    Ok(super::mail::enqueue(
        change,
        tenant.id,
        user,
        email,
        super::mail::Kind::Recovery,
        &actor.label(),
    )
    .await?)
}

/// A change of an account's state by staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    /// `needs_password_reset`: every session revoked; it signs in again after recovery.
    ForcePasswordReset,
    /// `deleted` (recoverable): every session revoked, links cancelled, no sign-in, no mail.
    Delete,
    /// `locked` → `active`. Adds access: step-up, refused during a freeze.
    Unlock,
    /// `deleted` → `needs_password_reset`: the account comes back through recovery. Adds
    /// access: step-up, refused during a freeze.
    Restore,
}

impl StateChange {
    /// The audit action.
    pub fn action(self) -> &'static str {
        match self {
            Self::ForcePasswordReset => "end_user.password_reset_forced",
            Self::Delete => "end_user.deleted",
            Self::Unlock => "end_user.unlocked",
            Self::Restore => "end_user.restored",
        }
    }

    /// Whether it gives access back (step-up, frozen).
    pub fn adds_access(self) -> bool {
        matches!(self, Self::Unlock | Self::Restore)
    }

    fn to(self) -> &'static str {
        match self {
            Self::ForcePasswordReset => "needs_password_reset",
            Self::Delete => "deleted",
            Self::Unlock => "active",
            Self::Restore => "needs_password_reset",
        }
    }

    /// The refusal when the account is in `state`, if it may not change from it.
    fn refusal(self, state: &str) -> Option<&'static str> {
        match (self, state) {
            (Self::ForcePasswordReset, "deleted") => {
                Some("This user is deleted: restore it first.")
            }
            (Self::ForcePasswordReset, "needs_password_reset") => {
                Some("This user must already set a new password.")
            }
            // Recoverable by mail would give a locked account back to its mailbox: that is
            // an unlock (step-up, frozen).
            (Self::ForcePasswordReset, "locked") => {
                Some("This user is locked: unlock it first (or leave it locked).")
            }
            (Self::Delete, "deleted") => Some("This user is already deleted."),
            (Self::Unlock, s) if s != "locked" => Some("This user is not locked."),
            (Self::Restore, s) if s != "deleted" => Some("This user is not deleted."),
            _ => None,
        }
    }
}

/// What a state change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChanged {
    /// The state before.
    pub before: String,
    /// The state after.
    pub after: &'static str,
    /// Sessions revoked (none for an unlock or a restore).
    pub revoked_sessions: i64,
    /// The recovery mail queued.
    pub recovery_mail: Option<Uuid>,
}

/// Changes the account's state with a reason; `send_recovery` queues a recovery mail with
/// a forced password reset or a restore. The caller checks step-up for those that add
/// access; the freeze is checked here.
pub async fn change_state(
    actor: &Actor,
    slug: &str,
    user: Uuid,
    what: StateChange,
    reason: &str,
    send_recovery: bool,
) -> Result<StateChanged, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    let mut change = actor.change().await?;
    if what.adds_access() {
        change = crate::domain::freeze::guard(
            actor,
            change,
            crate::domain::freeze::FrozenOp::RestoreEndUser,
        )
        .await?;
    }
    let (before, email) = lock_user(&mut change, tenant.id, user).await?;
    if let Some(message) = what.refusal(&before) {
        return Err(AppError::Conflict {
            field: None,
            message: message.into(),
        });
    }
    sqlx::query!(
        "UPDATE end_users SET state = $2::text::end_user_state, updated_at = now() WHERE id = $1",
        user,
        what.to()
    )
    .execute(change.db())
    .await?;
    let revoked_sessions = if what.adds_access() {
        0
    } else {
        move_user_epoch(&mut change, user).await?;
        super::mail::cancel_links(&mut change, user).await?;
        super::mail::drop_queued_of_user(
            &mut change,
            user,
            None,
            &actor.label(),
            "the account's state changed",
        )
        .await?;
        live_sessions_of(&mut change, user).await?
    };
    let recovery_mail = match what {
        StateChange::ForcePasswordReset | StateChange::Restore if send_recovery => {
            Some(queue_recovery(&mut change, actor, &tenant, user, &email).await?)
        }
        _ => None,
    };
    let event = actor
        .event(what.action())
        .tenant(tenant.id)
        .target(format!("end_user:{user}"))
        .reason(reason)
        .details(serde_json::json!({
            "before": before,
            "after": what.to(),
            "revoked_sessions": revoked_sessions,
            "recovery_mail": recovery_mail,
        }));
    change.commit(event).await?;
    Ok(StateChanged {
        before,
        after: what.to(),
        revoked_sessions,
        recovery_mail,
    })
}

/// Queues a recovery mail to the account's email (an operator's request: not limited by
/// the account's request count). The mail's id.
pub async fn send_recovery(
    actor: &Actor,
    slug: &str,
    user: Uuid,
    reason: &str,
) -> Result<Uuid, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    let mut change = actor.change().await?;
    let (state, email) = lock_user(&mut change, tenant.id, user).await?;
    let refused = match state.as_str() {
        "deleted" => Some("This user is deleted: restore it first."),
        "locked" => {
            Some("This user is locked: unlock it first, or lock it again with a recovery mail.")
        }
        _ => None,
    };
    if let Some(message) = refused {
        return Err(AppError::Conflict {
            field: None,
            message: message.into(),
        });
    }
    let mail = queue_recovery(&mut change, actor, &tenant, user, &email).await?;
    let event = actor
        .event("end_user.recovery_sent")
        .tenant(tenant.id)
        .target(format!("end_user:{user}"))
        .reason(reason)
        .details(serde_json::json!({ "mail": mail }));
    change.commit(event).await?;
    Ok(mail)
}

/// Reads an allowlist of email domains: one per line or comma-separated, lowercased,
/// without duplicates. Names the bad entry.
pub fn parse_domains(raw: &str) -> Result<Vec<String>, AppError> {
    let mut domains: Vec<String> = Vec::new();
    for entry in raw.split([',', '\n', ' ', '\t', '\r']) {
        let domain = entry.trim().trim_start_matches('@').to_lowercase();
        if domain.is_empty() {
            continue;
        }
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !labels_ok || !domain.contains('.') || domain.len() > 253 {
            return Err(AppError::validation(
                "domains",
                format!("“{}” is not a domain such as example.com.", entry.trim()),
            ));
        }
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    if domains.len() > 100 {
        return Err(AppError::validation("domains", "At most 100 domains."));
    }
    domains.sort();
    Ok(domains)
}

/// Sets the tenant's allowlist of email domains for magic links and recovery mail (empty:
/// any). Widening it (a domain added, or the list emptied) is refused during a freeze.
pub async fn set_email_domains(
    actor: &Actor,
    slug: &str,
    raw: &str,
    reason: &str,
) -> Result<Vec<String>, AppError> {
    let reason = normalize_reason(reason)?;
    let domains = parse_domains(raw)?;
    let tenant = tenant(actor, slug).await?;
    let mut change = actor.change().await?;
    let before = sqlx::query_scalar!(
        "SELECT email_domains FROM tenants WHERE id = $1 FOR UPDATE",
        tenant.id
    )
    .fetch_one(change.db())
    .await?;
    if before == domains {
        return Err(AppError::Conflict {
            field: Some("domains".into()),
            message: "These are the tenant's domains already.".into(),
        });
    }
    let widens = (!before.is_empty() && domains.is_empty())
        || (!before.is_empty() && domains.iter().any(|d| !before.contains(d)));
    if widens {
        actor.require_step_up()?;
        change = crate::domain::freeze::guard(
            actor,
            change,
            crate::domain::freeze::FrozenOp::WidenTenantSettings,
        )
        .await?;
    }
    sqlx::query!(
        "UPDATE tenants SET email_domains = $2 WHERE id = $1",
        tenant.id,
        &domains
    )
    .execute(change.db())
    .await?;
    let event = actor
        .event("tenant.email_domains_changed")
        .tenant(tenant.id)
        .target(format!("tenant:{}", tenant.slug))
        .reason(reason)
        .details(serde_json::json!({ "before": before, "after": domains, "widens": widens }));
    change.commit(event).await?;
    Ok(domains)
}

/// Drops queued mail of the tenant with a reason: one mail, or all of it. How many.
pub async fn drop_mail(
    actor: &Actor,
    slug: &str,
    mail: Option<Uuid>,
    reason: &str,
) -> Result<u64, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    super::mail::drop_pending(actor, tenant.id, mail, &reason).await
}

/// How many sessions and tenants a platform-wide revocation would reach.
pub async fn platform_preview(db: impl sqlx::PgExecutor<'_>) -> Result<(i64, i64), AppError> {
    let row = sqlx::query!(
        r#"SELECT (SELECT count(*) FROM end_user_sessions WHERE ended_at IS NULL) AS "sessions!",
                  (SELECT count(*) FROM tenants) AS "tenants!""#
    )
    .fetch_one(db)
    .await?;
    Ok((row.sessions, row.tenants))
}

/// The words typed to confirm a platform-wide revocation.
pub const PLATFORM_CONFIRMATION: &str = "revoke every session";

/// Revokes every session and refresh token of every tenant at once (runbook 004, a
/// systemic compromise): each tenant's epoch moves, one row per tenant. How many sessions
/// were live, in how many tenants.
pub async fn revoke_platform_sessions(
    actor: &Actor,
    reason: &str,
    confirmation: &str,
) -> Result<(i64, i64), AppError> {
    let reason = normalize_reason(reason)?;
    if confirmation.trim() != PLATFORM_CONFIRMATION {
        return Err(AppError::validation(
            "confirmation",
            format!("Type {PLATFORM_CONFIRMATION} to confirm."),
        ));
    }
    let mut change = actor.change().await?;
    // Rows locked first, then the clock read (as for one tenant).
    sqlx::query!("SELECT id FROM tenants ORDER BY id FOR UPDATE")
        .fetch_all(change.db())
        .await?;
    let tenants = sqlx::query!("UPDATE tenants SET sessions_not_before = clock_timestamp()")
        .execute(change.db())
        .await?
        .rows_affected() as i64;
    super::mail::drop_queued_magic_links(
        &mut change,
        None,
        &actor.label(),
        "every session was revoked",
    )
    .await?;
    let (live, _) = platform_preview(change.db()).await?;
    let event = actor
        .event("platform.sessions_revoked")
        .target("platform")
        .reason(reason)
        .details(serde_json::json!({ "live_sessions": live, "tenants": tenants }));
    change.commit(event).await?;
    Ok((live, tenants))
}

/// Locks the user's row for a change: its state and email. A user of another tenant is
/// not found.
async fn lock_user(
    change: &mut crate::auth::Change,
    tenant: Uuid,
    user: Uuid,
) -> Result<(String, String), AppError> {
    let row = sqlx::query!(
        r#"SELECT state::text AS "state!", email FROM end_users
           WHERE id = $1 AND tenant_id = $2 FOR UPDATE"#,
        user,
        tenant
    )
    .fetch_optional(change.db())
    .await?
    .ok_or_else(|| AppError::not_found("That user"))?;
    Ok((row.state, row.email))
}

/// Moves the (locked) user's epoch to the clock's now: later than any token a refresh
/// holding the row shared issued before the lock.
async fn move_user_epoch(change: &mut crate::auth::Change, user: Uuid) -> Result<(), AppError> {
    sqlx::query!(
        "UPDATE end_users SET not_before = clock_timestamp(), updated_at = now() WHERE id = $1",
        user
    )
    .execute(change.db())
    .await?;
    Ok(())
}

async fn live_sessions_of(change: &mut crate::auth::Change, user: Uuid) -> Result<i64, AppError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM end_user_sessions WHERE user_id = $1 AND ended_at IS NULL"#,
        user
    )
    .fetch_one(change.db())
    .await?)
}

/// Marks ended, at most `batch` at a time, the sessions an epoch revoked: their tokens are
/// refused already; this keeps the lists true. How many it marked.
pub async fn mark_revoked_sessions(pool: &sqlx::PgPool, batch: i64) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE end_user_sessions SET ended_at = now(), end_reason = 'revoked'
         WHERE id IN (
             SELECT s.id FROM end_user_sessions s
             JOIN end_users u ON u.id = s.user_id
             JOIN tenants t ON t.id = s.tenant_id
             WHERE s.ended_at IS NULL
               AND s.created_at <= greatest(u.not_before, t.sessions_not_before)
             LIMIT $1
             FOR UPDATE OF s SKIP LOCKED)",
        batch
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// Largest CSV import, in lines.
pub const MAX_IMPORT_LINES: usize = 5_000;
/// Largest CSV import, in bytes.
pub const MAX_IMPORT_BYTES: usize = 1024 * 1024;

/// One line of a CSV import, as checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    /// Its line number in the file (1-based, the header counted).
    pub line: u64,
    /// The email, normalised (or as typed when it is wrong).
    pub email: String,
    /// What is wrong with it, if anything.
    pub problem: Option<String>,
}

/// What an import found, and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Every line, in order.
    pub lines: Vec<ImportLine>,
    /// Accounts created (none for a dry run, or when a line is wrong).
    pub created: u64,
    /// Recovery mail queued.
    pub mailed: u64,
}

/// Reads a CSV of end users: one `email` column, an optional `email` header. Every line
/// is checked (its shape, duplicates in the file, accounts the tenant already has).
async fn check_import(
    db: impl sqlx::PgExecutor<'_>,
    tenant: Uuid,
    csv_text: &str,
) -> Result<Vec<ImportLine>, AppError> {
    if csv_text.len() > MAX_IMPORT_BYTES {
        return Err(AppError::validation(
            "csv",
            "The file is over 1 MiB: split it.",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let mut lines: Vec<ImportLine> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = record
            .as_ref()
            .ok()
            .and_then(|r| r.position())
            .map_or(i as u64 + 1, |p| p.line());
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                lines.push(ImportLine {
                    line,
                    email: String::new(),
                    problem: Some(format!("not CSV: {err}")),
                });
                continue;
            }
        };
        let first = record.get(0).unwrap_or_default();
        if i == 0 && first.eq_ignore_ascii_case("email") {
            continue;
        }
        if record.iter().all(str::is_empty) {
            continue;
        }
        let problem = if record.len() > 1 && record.iter().skip(1).any(|f| !f.is_empty()) {
            Some("one column only: the email (passwords are set through recovery)".to_owned())
        } else {
            match super::sessions::normalize_email(first) {
                Ok(email) => {
                    let earlier = lines
                        .iter()
                        .find(|l| l.email == email && l.problem.is_none());
                    lines.push(ImportLine {
                        line,
                        problem: earlier.map(|l| format!("the same email as line {}", l.line)),
                        email,
                    });
                    continue;
                }
                Err(err) => Some(err.message()),
            }
        };
        lines.push(ImportLine {
            line,
            email: first.chars().take(254).collect(),
            problem,
        });
        if lines.len() > MAX_IMPORT_LINES {
            return Err(AppError::validation(
                "csv",
                format!("At most {MAX_IMPORT_LINES} users at once: split the file."),
            ));
        }
    }
    if lines.is_empty() {
        return Err(AppError::validation("csv", "The file has no email in it."));
    }
    let emails: Vec<String> = lines
        .iter()
        .filter(|l| l.problem.is_none())
        .map(|l| l.email.clone())
        .collect();
    let existing = sqlx::query_scalar!(
        "SELECT email FROM end_users WHERE tenant_id = $1 AND email = ANY($2)",
        tenant,
        &emails
    )
    .fetch_all(db)
    .await?;
    for line in lines.iter_mut().filter(|l| l.problem.is_none()) {
        if existing.contains(&line.email) {
            line.problem = Some("the tenant already has this user".into());
        }
    }
    Ok(lines)
}

/// Imports end users from a CSV (see [`check_import`]): all of them in one change, or none
/// when a line is wrong; with `dry_run`, only the check. They start `needs_password_reset`
/// without a password, and set one through recovery (`send_recovery` queues the mail).
pub async fn import_users(
    actor: &Actor,
    slug: &str,
    csv_text: &str,
    dry_run: bool,
    send_recovery: bool,
    reason: &str,
) -> Result<Imported, AppError> {
    let tenant = tenant(actor, slug).await?;
    if dry_run {
        let lines = check_import(actor.reader(), tenant.id, csv_text).await?;
        return Ok(Imported {
            lines,
            created: 0,
            mailed: 0,
        });
    }
    let reason = normalize_reason(reason)?;
    let mut change = actor.change().await?;
    let lines = check_import(change.db(), tenant.id, csv_text).await?;
    if let Some(bad) = lines.iter().find(|l| l.problem.is_some()) {
        let wrong = lines.iter().filter(|l| l.problem.is_some()).count();
        return Err(AppError::validation(
            "csv",
            format!(
                "{wrong} line(s) are wrong (the first: line {}): nothing was imported. Check the file again.",
                bad.line
            ),
        ));
    }
    if send_recovery {
        let domains =
            sqlx::query_scalar!("SELECT email_domains FROM tenants WHERE id = $1", tenant.id)
                .fetch_one(change.db())
                .await?;
        if let Some(outside) = lines
            .iter()
            .find(|l| !super::mail::domain_allowed(&domains, &l.email))
        {
            return Err(AppError::validation(
                "send_recovery",
                format!(
                    "Line {}: {} is outside the tenant's email domains; import without recovery mail, or change the domains.",
                    outside.line, outside.email
                ),
            ));
        }
    }
    let emails: Vec<String> = lines.iter().map(|l| l.email.clone()).collect();
    let created = sqlx::query!(
        "INSERT INTO end_users (tenant_id, email, state)
         SELECT $1, e, 'needs_password_reset' FROM unnest($2::text[]) AS e
         RETURNING id, email",
        tenant.id,
        &emails
    )
    .fetch_all(change.db())
    .await?;
    let mailed = if send_recovery {
        sqlx::query!(
            "INSERT INTO outbound_mail (tenant_id, user_id, kind, to_address, requested_by)
             SELECT $1, id, 'recovery', email, $3 FROM end_users
             WHERE tenant_id = $1 AND id = ANY($2)",
            tenant.id,
            &created.iter().map(|r| r.id).collect::<Vec<_>>(),
            actor.label()
        )
        .execute(change.db())
        .await?
        .rows_affected()
    } else {
        0
    };
    let event = actor
        .event("end_user.imported")
        .tenant(tenant.id)
        .target(format!("tenant:{}", tenant.slug))
        .reason(reason)
        .details(serde_json::json!({
            "created": created.len(),
            "recovery_mail": mailed,
        }));
    change.commit(event).await?;
    Ok(Imported {
        lines,
        created: created.len() as u64,
        mailed,
    })
}
