//! SQL of the account page. Mutations take the change's connection.

use sqlx::PgConnection;
use uuid::Uuid;

/// What changing one's own password needs, locked until the change commits.
pub struct OwnPassword {
    /// Argon2id PHC string of the current password.
    pub password_hash: String,
}

/// The signed-in person's current hash, read without a lock (it is checked before the
/// slow hash of the new password; [`lock`] re-reads it).
pub async fn current_hash(db: impl sqlx::PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT password_hash FROM staff WHERE id = $1 AND status = 'active'",
        id
    )
    .fetch_optional(db)
    .await
}

/// Locks the person's row and reads their current hash.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<OwnPassword>> {
    sqlx::query_as!(
        OwnPassword,
        "SELECT password_hash FROM staff WHERE id = $1 AND status = 'active' FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Stores a password its owner chose, clears the must-change flag and ends every session
/// (the epoch moves on). Returns the new epoch, for the session that made the change.
pub async fn set_own_password(conn: &mut PgConnection, id: Uuid, hash: &str) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "UPDATE staff SET password_hash = $2, password_changed_at = now(),
                must_change_password = false, session_epoch = session_epoch + 1,
                failed_sign_ins = 0, failed_window_start = NULL, updated_at = now()
         WHERE id = $1 RETURNING session_epoch",
        id,
        hash
    )
    .fetch_one(conn)
    .await
}
