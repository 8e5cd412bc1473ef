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
    crate::auth::queries::lock_staff_table(change).await?;
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

/// Moves the session `row` that changed the password to the new `epoch`: it stays
/// signed in while every other session of the person ends.
pub async fn move_session(change: &mut Change, row: Uuid, epoch: i32) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff_sessions SET epoch = $2 WHERE id = $1 AND ended_at IS NULL",
        row,
        epoch
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// The person's passkeys, authenticator app and recovery codes, as the security page
/// shows them.
pub async fn factors(db: &mut sqlx::PgConnection, id: Uuid) -> sqlx::Result<super::Factors> {
    let app = sqlx::query!(
        r#"SELECT t.confirmed_at AS totp_added_at, t.last_used_at AS totp_last_used_at,
                  (SELECT count(*) FROM staff_recovery_codes r
                   WHERE r.staff_id = $1 AND r.used_at IS NULL) AS "recovery_codes_left!"
           FROM (SELECT 1) one
           LEFT JOIN staff_totp t ON t.staff_id = $1 AND t.confirmed_at IS NOT NULL"#,
        id
    )
    .fetch_one(&mut *db)
    .await?;
    let passkeys = sqlx::query_as!(
        super::PasskeyInfo,
        "SELECT id, name, created_at, last_used_at FROM staff_passkeys
         WHERE staff_id = $1 ORDER BY created_at, id",
        id
    )
    .fetch_all(&mut *db)
    .await?;
    Ok(super::Factors {
        passkeys,
        totp_added_at: app.totp_added_at,
        totp_last_used_at: app.totp_last_used_at,
        recovery_codes_left: app.recovery_codes_left,
    })
}

/// Locks the person's row until the change ends: changes to one person's factors take
/// turns (two removals at once must not each see the other's factor still there).
pub async fn lock_person(change: &mut Change, id: Uuid) -> sqlx::Result<()> {
    crate::auth::queries::lock_staff_table(change).await?;
    sqlx::query!("SELECT id FROM staff WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(change.db())
        .await?;
    Ok(())
}

/// Stores a new passkey; `false` when its credential is registered already (to anyone).
pub async fn insert_passkey(
    change: &mut Change,
    staff: Uuid,
    name: &str,
    credential_id: &[u8],
    credential: &serde_json::Value,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO staff_passkeys (staff_id, name, credential_id, credential)
         VALUES ($1, $2, $3, $4) ON CONFLICT (credential_id) DO NOTHING",
        staff,
        name,
        credential_id,
        credential
    )
    .execute(change.db())
    .await?
    .rows_affected()
        == 1)
}

/// Whether a passkey with this credential id is registered (to anyone).
pub async fn passkey_registered(
    db: impl sqlx::PgExecutor<'_>,
    credential_id: &[u8],
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM staff_passkeys WHERE credential_id = $1) AS "found!""#,
        credential_id
    )
    .fetch_one(db)
    .await
}

/// Deletes one of the person's passkeys.
pub async fn delete_passkey(change: &mut Change, staff: Uuid, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM staff_passkeys WHERE id = $1 AND staff_id = $2",
        id,
        staff
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Deletes the person's authenticator app.
pub async fn delete_totp(change: &mut Change, staff: Uuid) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM staff_totp WHERE staff_id = $1", staff)
        .execute(change.db())
        .await?;
    Ok(())
}

/// Starts (or starts again) enrolling an authenticator app: the sealed secret waits for
/// its first code. Never replaces a confirmed one (`false` then).
pub async fn stage_totp(
    change: &mut Change,
    id: Uuid,
    nonce: &[u8],
    sealed: &[u8],
    session: Option<Uuid>,
) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO staff_totp (staff_id, nonce, secret_sealed, staged_in) VALUES ($1, $2, $3, $4)
         ON CONFLICT (staff_id) DO UPDATE
             SET nonce = EXCLUDED.nonce, secret_sealed = EXCLUDED.secret_sealed,
                 created_at = now(), last_step = NULL, last_used_at = NULL,
                 staged_in = EXCLUDED.staged_in
             WHERE staff_totp.confirmed_at IS NULL",
        id,
        nonce,
        sealed,
        session
    )
    .execute(change.db())
    .await?
    .rows_affected()
        == 1)
}

/// The secret waiting for its first code, locked until the change ends, with the session
/// that staged it.
pub async fn staged_totp(
    change: &mut Change,
    id: Uuid,
) -> sqlx::Result<Option<(Vec<u8>, Vec<u8>, Option<Uuid>)>> {
    Ok(sqlx::query!(
        "SELECT nonce, secret_sealed, staged_in FROM staff_totp
         WHERE staff_id = $1 AND confirmed_at IS NULL FOR UPDATE",
        id
    )
    .fetch_optional(change.db())
    .await?
    .map(|r| (r.nonce, r.secret_sealed, r.staged_in)))
}

/// Confirms the staged secret with the step its first code matched.
pub async fn confirm_totp(change: &mut Change, id: Uuid, step: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff_totp SET confirmed_at = now(), last_step = $2, last_used_at = now()
         WHERE staff_id = $1 AND confirmed_at IS NULL",
        id,
        step
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Replaces the person's recovery codes with the set hashed in `hashes`.
pub async fn replace_recovery_codes(
    change: &mut Change,
    id: Uuid,
    hashes: &[Vec<u8>],
    key_fingerprint: &[u8; 16],
) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM staff_recovery_codes WHERE staff_id = $1", id)
        .execute(change.db())
        .await?;
    sqlx::query!(
        "INSERT INTO staff_recovery_codes (staff_id, code_hash, key_fingerprint)
         SELECT $1, unnest($2::bytea[]), $3",
        id,
        hashes,
        &key_fingerprint[..]
    )
    .execute(change.db())
    .await?;
    Ok(())
}
