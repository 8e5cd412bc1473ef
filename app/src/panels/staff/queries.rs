//! SQL of the Staff panel. Mutations take the `Change`.

use super::StaffRow;
use crate::auth::Change;
use crate::auth::Role;
use sqlx::PgExecutor;
use uuid::Uuid;

/// Every staff member, active first, then by email.
pub async fn list(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<StaffRow>> {
    let rows = sqlx::query!(
        r#"SELECT id, email, display_name, role::text AS "role!", status = 'active' AS "active!",
                  locked_until, last_sign_in_at
           FROM staff ORDER BY status, email"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some(StaffRow {
                id: r.id,
                email: r.email,
                display_name: r.display_name,
                role: Role::parse(&r.role)?,
                active: r.active,
                locked_until: r.locked_until,
                last_sign_in_at: r.last_sign_in_at,
            })
        })
        .collect())
}

/// Whether any staff member exists at all (for the first-admin bootstrap).
pub async fn any(db: impl PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM staff) AS "any!""#)
        .fetch_one(db)
        .await
}

/// Inserts a staff member, who must choose their own password at their first sign-in (the
/// admin or the command line knows this one). A duplicate email fails with a unique violation.
pub async fn insert(
    change: &mut Change,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
    created_by: Option<Uuid>,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        r#"INSERT INTO staff (email, display_name, role, password_hash, created_by, must_change_password)
           VALUES ($1, $2, $3::text::staff_role, $4, $5, true) RETURNING id"#,
        email,
        display_name,
        role.as_str(),
        password_hash,
        created_by
    )
    .fetch_one(change.db())
    .await
}

/// The person a change is about, locked until the change commits.
pub struct Locked {
    /// Email.
    pub email: String,
    /// Current role.
    pub role: Role,
    /// Currently active.
    pub active: bool,
}

/// Locks and reads one staff member by id.
pub async fn lock(change: &mut Change, id: Uuid) -> sqlx::Result<Option<Locked>> {
    crate::auth::queries::lock_staff_table(change).await?;
    let row = sqlx::query!(
        r#"SELECT email, role::text AS "role!", status = 'active' AS "active!"
           FROM staff WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(change.db())
    .await?;
    Ok(row.and_then(|r| {
        Some(Locked {
            email: r.email,
            role: Role::parse(&r.role)?,
            active: r.active,
        })
    }))
}

/// The id of the staff member with this email.
pub async fn id_by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!("SELECT id FROM staff WHERE email = $1", email)
        .fetch_optional(db)
        .await
}

/// The email of the staff member with this id.
pub async fn email_of(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT email FROM staff WHERE id = $1", id)
        .fetch_optional(db)
        .await
}

/// Locks every active admin and returns their ids: two admins demoting each other at once
/// queue here, so the second sees the first's change.
pub async fn lock_active_admins(change: &mut Change) -> sqlx::Result<Vec<Uuid>> {
    crate::auth::queries::lock_staff_table(change).await?;
    sqlx::query_scalar!(
        "SELECT id FROM staff WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE"
    )
    .fetch_all(change.db())
    .await
}

/// Sets a role.
pub async fn set_role(change: &mut Change, id: Uuid, role: Role) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff SET role = $2::text::staff_role, updated_at = now() WHERE id = $1",
        id,
        role.as_str()
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Disables or re-enables.
pub async fn set_active(change: &mut Change, id: Uuid, active: bool) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE staff SET status = CASE WHEN $2 THEN 'active' ELSE 'disabled' END::staff_status,
                            updated_at = now()
           WHERE id = $1"#,
        id,
        active
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Replaces the password with one an admin handed over and clears any lock: its owner must
/// change it at their next sign-in.
pub async fn set_password(change: &mut Change, id: Uuid, hash: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE staff SET password_hash = $2, password_changed_at = now(), failed_sign_ins = 0,
                failed_window_start = NULL, locked_until = NULL, updated_at = now(),
                must_change_password = true
         WHERE id = $1",
        id,
        hash
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// How many second factors of each kind a reset removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Passkeys.
    pub passkeys: u64,
    /// Authenticator apps (0 or 1).
    pub totp: u64,
    /// Recovery codes, used or not.
    pub recovery_codes: u64,
}

/// Deletes someone's second factors (passkeys, authenticator app, recovery codes, and any
/// passkey ceremony waiting for an answer): how many of each.
pub async fn delete_factors(change: &mut Change, id: Uuid) -> sqlx::Result<Removed> {
    sqlx::query!(
        "DELETE FROM staff_webauthn_ceremonies WHERE staff_id = $1",
        id
    )
    .execute(change.db())
    .await?;
    let passkeys = sqlx::query!("DELETE FROM staff_passkeys WHERE staff_id = $1", id)
        .execute(change.db())
        .await?
        .rows_affected();
    let totp = sqlx::query!("DELETE FROM staff_totp WHERE staff_id = $1", id)
        .execute(change.db())
        .await?
        .rows_affected();
    let codes = sqlx::query!("DELETE FROM staff_recovery_codes WHERE staff_id = $1", id)
        .execute(change.db())
        .await?
        .rows_affected();
    Ok(Removed {
        passkeys,
        totp,
        recovery_codes: codes,
    })
}
