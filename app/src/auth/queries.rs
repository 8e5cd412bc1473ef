//! SQL for signing in and identifying staff.

use super::{Role, StaffIdentity};
use crate::auth::Change;
use crate::domain::status::StaffStatus;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// The active staff member with this id, if their sessions of `epoch` are still valid.
pub async fn active_identity(
    db: impl PgExecutor<'_>,
    id: Uuid,
    epoch: i32,
) -> sqlx::Result<Option<StaffIdentity>> {
    let row = sqlx::query!(
        r#"SELECT id, email, display_name, role::text AS "role!", must_change_password
           FROM staff WHERE id = $1 AND status = 'active' AND session_epoch = $2"#,
        id,
        epoch
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| {
        Some(StaffIdentity {
            id: r.id,
            email: r.email,
            display_name: r.display_name,
            role: Role::parse(&r.role)?,
            must_change_password: r.must_change_password,
        })
    }))
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
}

/// Re-reads and locks the account, after the password was hashed.
pub async fn lock_for_sign_in(change: &mut Change, id: Uuid) -> sqlx::Result<Option<Fresh>> {
    sqlx::query_as!(
        Fresh,
        r#"SELECT status::text AS "status!: StaffStatus", locked_until, session_epoch
           FROM staff WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(change.db())
    .await
}

/// Ends every session of `id`: sessions signed in under an older epoch stop working.
pub async fn end_sessions(change: &mut Change, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff SET session_epoch = session_epoch + 1 WHERE id = $1",
        id
    )
    .execute(change.db())
    .await?;
    Ok(())
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
