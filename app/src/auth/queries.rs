//! SQL for signing in and identifying staff.

use super::{Role, StaffIdentity};
use crate::auth::Change;
use crate::domain::factors::Factor;
use crate::domain::status::StaffStatus;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a request's session is, beyond who holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionFacts {
    /// The `staff_sessions` row.
    pub row: Uuid,
    /// The factor that opened it.
    pub factor: Factor,
    /// The last time a second factor was used in it.
    pub stepped_up_at: Option<OffsetDateTime>,
    /// Whether the person has a second factor enrolled.
    pub has_factor: bool,
}

/// The active staff member with this id, if their session `row` of `epoch` is still live
/// (not ended, the person's epoch unchanged): who they are, whether they have a second
/// factor, and the session's facts. `mfa_required` says whether a person without a factor
/// must enrol one before anything else.
pub async fn active_identity(
    db: impl PgExecutor<'_>,
    id: Uuid,
    epoch: i32,
    row: Uuid,
    mfa_required: bool,
) -> sqlx::Result<Option<(StaffIdentity, SessionFacts)>> {
    let found = sqlx::query!(
        r#"SELECT s.id, s.email, s.display_name, s.role::text AS "role!", s.must_change_password,
                  ss.factor AS "factor!: Factor", ss.stepped_up_at,
                  staff_has_factor(s.id) AS "has_factor!"
           FROM staff s
           JOIN staff_sessions ss ON ss.id = $3 AND ss.staff_id = s.id
           WHERE s.id = $1 AND s.status = 'active' AND s.session_epoch = $2
             AND ss.epoch = $2 AND ss.ended_at IS NULL
             -- A session opened without a factor ends once the person has one: whoever
             -- signed in with the password alone must not gain what enrolling unlocks.
             AND NOT (ss.factor = 'none' AND staff_has_factor(s.id))"#,
        id,
        epoch,
        row
    )
    .fetch_optional(db)
    .await?;
    Ok(found.and_then(|r| {
        let identity = StaffIdentity {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            role: Role::parse(&r.role)?,
            must_change_password: r.must_change_password,
            must_enrol_factor: mfa_required && !r.has_factor,
            mfa_optional: !mfa_required,
            freeze: None,
        };
        let facts = SessionFacts {
            row,
            factor: r.factor,
            stepped_up_at: r.stepped_up_at,
            has_factor: r.has_factor,
        };
        Some((identity, facts))
    }))
}

/// Stamps the session as seen now, at most once a minute (not audited state: the
/// obligation trigger ignores `last_seen_at`).
pub async fn touch_session(db: impl PgExecutor<'_>, row: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff_sessions SET last_seen_at = now()
         WHERE id = $1 AND last_seen_at < now() - interval '60 seconds'",
        row
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A new session row for `staff` opened with `factor`; stepped up now when the factor
/// counts as one.
pub async fn insert_session(
    change: &mut Change,
    staff: Uuid,
    epoch: i32,
    factor: Factor,
    meta: &super::RequestMeta,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO staff_sessions (staff_id, epoch, factor, stepped_up_at, ip, user_agent)
         VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END, $5::text::inet, $6)
         RETURNING id",
        staff,
        epoch,
        factor.as_str(),
        factor.steps_up(),
        meta.ip.map(|ip| ip.to_string()),
        meta.user_agent.as_deref()
    )
    .fetch_one(change.db())
    .await
}

/// Records that session `row` just enrolled the person's first second factor: it is now a
/// session opened with that factor, stepped up now (every other factor-less session of
/// theirs ends at its next request, see [`active_identity`]).
pub async fn enrolled_in(change: &mut Change, row: Uuid, factor: Factor) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff_sessions SET factor = $2, stepped_up_at = now()
         WHERE id = $1 AND ended_at IS NULL",
        row,
        factor.as_str()
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Records that a second factor was just used in session `row`.
pub async fn stamp_step_up(change: &mut Change, row: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff_sessions SET stepped_up_at = now() WHERE id = $1 AND ended_at IS NULL",
        row
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// The live sessions (not ended, of the person's current epoch, inside both timeouts) of
/// `staff`, or of everyone when `None`: most recently seen first, at most 500.
pub async fn live_sessions(
    db: impl PgExecutor<'_>,
    staff: Option<Uuid>,
) -> sqlx::Result<Vec<super::StaffSession>> {
    let rows = sqlx::query!(
        r#"SELECT ss.id, ss.staff_id, s.email, ss.factor AS "factor!: Factor", ss.signed_in_at,
                  ss.last_seen_at, ss.stepped_up_at, host(ss.ip) AS ip, ss.user_agent
           FROM staff_sessions ss JOIN staff s ON s.id = ss.staff_id
           WHERE ss.ended_at IS NULL AND ss.epoch = s.session_epoch AND s.status = 'active'
             AND NOT (ss.factor = 'none' AND staff_has_factor(s.id))
             AND ss.signed_in_at > now() - make_interval(secs => $2)
             AND ss.last_seen_at > now() - make_interval(secs => $3)
             AND ($1::uuid IS NULL OR ss.staff_id = $1)
           ORDER BY ss.last_seen_at DESC, ss.id LIMIT 500"#,
        staff,
        super::session::ABSOLUTE_TIMEOUT.as_seconds_f64(),
        // Seen stamps are at most a minute old (`touch_session`): one more minute of grace.
        super::session::IDLE_TIMEOUT.as_seconds_f64() + 60.0,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| super::StaffSession {
            id: r.id,
            staff_id: r.staff_id,
            email: r.email,
            device: super::session::device(r.user_agent.as_deref().unwrap_or_default()),
            ip: r.ip,
            factor: r.factor,
            signed_in_at: r.signed_in_at,
            last_seen_at: r.last_seen_at,
            stepped_up_at: r.stepped_up_at,
            current: false,
        })
        .collect())
}

/// Ends the sessions of `staff` not ended yet, but for `keep`: each one's next request,
/// on any instance, is signed out. Returns the rows it ended.
pub async fn end_session_rows(
    change: &mut Change,
    staff: Uuid,
    keep: Option<Uuid>,
    by: &str,
    reason: &str,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar!(
        "UPDATE staff_sessions SET ended_at = now(), ended_by = $3, end_reason = $4
         WHERE staff_id = $1 AND ended_at IS NULL AND ($2::uuid IS NULL OR id <> $2)
         RETURNING id",
        staff,
        keep,
        by,
        reason
    )
    .fetch_all(change.db())
    .await
}

/// Ends every staff session: every person's epoch moves on (so even a session without a
/// row ends) and every row not ended yet is ended. Returns how many people and rows.
pub async fn end_everyones_sessions(
    change: &mut Change,
    by: &str,
    reason: &str,
) -> sqlx::Result<(u64, u64)> {
    lock_staff_table(change).await?;
    let people = sqlx::query!("UPDATE staff SET session_epoch = session_epoch + 1")
        .execute(change.db())
        .await?
        .rows_affected();
    let sessions = sqlx::query!(
        "UPDATE staff_sessions SET ended_at = now(), ended_by = $1, end_reason = $2
         WHERE ended_at IS NULL",
        by,
        reason
    )
    .execute(change.db())
    .await?
    .rows_affected();
    Ok((people, sessions))
}

/// Whose session `row` is, if it is not ended yet (locked, for ending it).
pub async fn lock_session_owner(
    change: &mut Change,
    row: Uuid,
) -> sqlx::Result<Option<(Uuid, String)>> {
    Ok(sqlx::query!(
        "SELECT ss.staff_id, s.email FROM staff_sessions ss JOIN staff s ON s.id = ss.staff_id
         WHERE ss.id = $1 AND ss.ended_at IS NULL FOR UPDATE OF ss",
        row
    )
    .fetch_optional(change.db())
    .await?
    .map(|r| (r.staff_id, r.email)))
}

/// Ends session `row` (its next request, on any instance, is signed out).
pub async fn end_session_row(
    change: &mut Change,
    row: Uuid,
    by: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE staff_sessions SET ended_at = now(), ended_by = $2, end_reason = $3
         WHERE id = $1 AND ended_at IS NULL",
        row,
        by,
        reason
    )
    .execute(change.db())
    .await?
    .rows_affected()
        == 1)
}

/// What sign-in needs to know about an account. `Debug` leaves the password hash out (an
/// Argon2 hash in a log is an offline guessing target).
pub struct SignInRow {
    /// Staff id.
    pub id: Uuid,
    /// Email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Whether the account may sign in.
    pub status: StaffStatus,
    /// Locked until, when locked.
    pub locked_until: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SignInRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRow")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &format_args!("[redacted]"))
            .field("status", &self.status)
            .field("locked_until", &self.locked_until)
            .finish()
    }
}

/// The account signing in with `email` (already lowercased), if any.
pub async fn for_sign_in(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<SignInRow>> {
    sqlx::query_as!(
        SignInRow,
        r#"SELECT id, email, password_hash, status::text AS "status!: StaffStatus", locked_until
           FROM staff WHERE email = $1"#,
        email
    )
    .fetch_optional(db)
    .await
}

/// The account's sign-in state, locked until the sign-in transaction ends.
pub struct Fresh {
    /// Whether the account may sign in.
    pub status: StaffStatus,
    /// Locked until, when locked.
    pub locked_until: Option<OffsetDateTime>,
    /// Sessions carry this; bumping it ends them all.
    pub session_epoch: i32,
    /// The sign-in email, for the audit events.
    pub email: String,
    /// The password hash now: a password checked against an older one (a reset or change
    /// committed while the hash was computed) is no longer the account's password.
    pub password_hash: String,
}

/// Takes the staff table's `ROW EXCLUSIVE` lock, for a change that locks a staff row and
/// then updates it. `SELECT ... FOR UPDATE` alone holds the weaker `ROW SHARE`, and the
/// `UPDATE` after it then asks for `ROW EXCLUSIVE`: a migration's `ALTER TABLE staff`
/// queued between the two (it waits for the `ROW SHARE`, the `UPDATE` waits behind it)
/// deadlocks with the change, and PostgreSQL ends the change with an error. Holding the
/// stronger lock from the start, the migration just waits for the change to commit (seen
/// in the rolling-upgrade test, `rollout.rs`).
pub async fn lock_staff_table(change: &mut Change) -> sqlx::Result<()> {
    sqlx::query("LOCK TABLE staff IN ROW EXCLUSIVE MODE")
        .execute(change.db())
        .await
        .map(drop)
}

/// Until when the account is locked, if it is now.
pub async fn locked_until(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<OffsetDateTime>> {
    Ok(sqlx::query_scalar!(
        "SELECT locked_until FROM staff WHERE id = $1 AND locked_until > now()",
        id
    )
    .fetch_optional(db)
    .await?
    .flatten())
}

/// Re-reads and locks the account, after the password was hashed.
pub async fn lock_for_sign_in(change: &mut Change, id: Uuid) -> sqlx::Result<Option<Fresh>> {
    lock_staff_table(change).await?;
    sqlx::query_as!(
        Fresh,
        r#"SELECT status::text AS "status!: StaffStatus", locked_until, session_epoch, email,
                  password_hash
           FROM staff WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(change.db())
    .await
}

/// Ends every session of `id`: sessions signed in under an older epoch stop working.
pub async fn end_sessions(
    change: &mut Change,
    id: Uuid,
    by: &str,
    reason: &str,
) -> sqlx::Result<usize> {
    sqlx::query!(
        "UPDATE staff SET session_epoch = session_epoch + 1 WHERE id = $1",
        id
    )
    .execute(change.db())
    .await?;
    // The epoch alone ends them; the rows say so too, for the sessions list and the record.
    Ok(end_session_rows(change, id, None, by, reason).await?.len())
}

/// A successful sign-in: clears failures and any lock, stamps the time.
pub async fn record_success(change: &mut Change, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff SET last_sign_in_at = now(), failed_sign_ins = 0,
                failed_window_start = NULL, locked_until = NULL
         WHERE id = $1",
        id
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// A failed sign-in for an account. Counts it in the current window (starting a new window
/// when the last one is older than `window_secs`) and, at `max_failures`, locks the account
/// for `lock_secs`. Returns the lock's end when this failure locked it.
///
/// The row is locked first, so concurrent failures for one account count one by one.
pub async fn record_failure(
    change: &mut Change,
    id: Uuid,
    max_failures: i32,
    window_secs: f64,
    lock_secs: f64,
) -> sqlx::Result<Option<OffsetDateTime>> {
    lock_staff_table(change).await?;
    let current = sqlx::query!(
        r#"SELECT failed_sign_ins,
                  (failed_window_start IS NULL
                   OR failed_window_start < now() - make_interval(secs => $2)) AS "new_window!"
           FROM staff WHERE id = $1 FOR UPDATE"#,
        id,
        window_secs
    )
    .fetch_one(change.db())
    .await?;
    let count = if current.new_window {
        1
    } else {
        current.failed_sign_ins.saturating_add(1)
    };
    if count >= max_failures {
        let until = sqlx::query_scalar!(
            r#"UPDATE staff SET locked_until = now() + make_interval(secs => $2),
                                failed_sign_ins = 0, failed_window_start = NULL
               WHERE id = $1
               RETURNING locked_until AS "locked_until!""#,
            id,
            lock_secs
        )
        .fetch_one(change.db())
        .await?;
        return Ok(Some(until));
    }
    sqlx::query!(
        "UPDATE staff SET failed_sign_ins = $2,
                failed_window_start = CASE WHEN $3 THEN now() ELSE failed_window_start END
         WHERE id = $1",
        id,
        count,
        current.new_window
    )
    .execute(change.db())
    .await?;
    Ok(None)
}

/// Failed sign-ins from `ip` in the last `window_secs`.
pub async fn ip_failures(db: impl PgExecutor<'_>, ip: &str, window_secs: f64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM sign_in_failures
           WHERE ip = $1::text::inet AND at > now() - make_interval(secs => $2)"#,
        ip,
        window_secs
    )
    .fetch_one(db)
    .await
}

/// Counts a failed sign-in against `ip`.
pub async fn record_ip_failure(change: &mut Change, ip: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO sign_in_failures (ip) VALUES ($1::text::inet)",
        ip
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Forgets per-IP failures older than `older_than_secs`.
pub async fn prune_ip_failures(db: impl PgExecutor<'_>, older_than_secs: f64) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM sign_in_failures WHERE at < now() - make_interval(secs => $1)",
        older_than_secs
    )
    .execute(db)
    .await?
    .rows_affected())
}
