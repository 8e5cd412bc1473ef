//! SQL of the account page. Mutations take the `Change`.

use crate::auth::Change;
use uuid::Uuid;

/// What changing one's own password needs to know about the account.
pub struct OwnPassword {
    /// Argon2id PHC string of the current password.
    pub password_hash: String,
    /// Locked after failed sign-ins (or wrong current passwords), until then.
    pub locked_until: Option<time::OffsetDateTime>,
}

/// The person's current hash and lock, read without a lock (checked before the slow hash
/// of the new password; [`lock`] re-reads the hash), if their session's `epoch` is current.
pub async fn current(
    db: impl sqlx::PgExecutor<'_>,
    id: Uuid,
    epoch: i32,
) -> sqlx::Result<Option<OwnPassword>> {
    sqlx::query_as!(
        OwnPassword,
        "SELECT password_hash, locked_until FROM staff
         WHERE id = $1 AND status = 'active' AND session_epoch = $2",
        id,
        epoch
    )
    .fetch_optional(db)
    .await
}

/// Locks the person's row and reads their current hash, if their session's `epoch` is
/// still current (a disable and re-enable in between ends it).
pub async fn lock(change: &mut Change, id: Uuid, epoch: i32) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT password_hash FROM staff
         WHERE id = $1 AND status = 'active' AND session_epoch = $2 FOR UPDATE",
        id,
        epoch
    )
    .fetch_optional(change.db())
    .await
}

/// Stores a password its owner chose, clears the must-change flag and ends every session
/// (the epoch moves on). Returns the new epoch, for the session that made the change.
pub async fn set_own_password(change: &mut Change, id: Uuid, hash: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "UPDATE staff SET password_hash = $2, password_changed_at = now(),
                must_change_password = false, session_epoch = session_epoch + 1,
                failed_sign_ins = 0, failed_window_start = NULL, updated_at = now()
         WHERE id = $1 RETURNING session_epoch",
        id,
        hash
    )
    .fetch_one(change.db())
    .await
}
