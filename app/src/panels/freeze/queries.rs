//! The Freeze panel's SQL. Mutations take the `Change`.

use super::{Freeze, PastFreeze};
use crate::auth::Change;
use uuid::Uuid;

/// How many past freezes the panel lists.
pub const HISTORY: i64 = 20;

/// The last [`HISTORY`] freezes, newest first.
pub async fn history(db: &crate::auth::Reader) -> sqlx::Result<Vec<PastFreeze>> {
    let rows = sqlx::query!(
        r#"SELECT id, reason, started_by, started_at, expires_at, lifted_at, lifted_by,
                  lift_reason
           FROM freezes ORDER BY started_at DESC, id DESC LIMIT $1"#,
        HISTORY
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PastFreeze {
            freeze: Freeze {
                id: r.id,
                reason: r.reason,
                started_by: r.started_by,
                started_at: r.started_at,
                expires_at: r.expires_at,
            },
            lifted_at: r.lifted_at,
            lifted_by: r.lifted_by,
            lift_reason: r.lift_reason,
        })
        .collect())
}

/// Waits for the frozen operations under way (they hold the lock shared) and keeps new
/// ones out until this change commits.
pub async fn lock_out_frozen_operations(change: &mut Change) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        crate::domain::freeze::LOCK
    )
    .execute(change.db())
    .await
    .map(drop)
}

/// The row not lifted yet, locked (on, or past its expiry and waiting for the timer), and
/// whether its expiry passed, by the database's clock (the one the guard reads).
pub async fn lock_unlifted(change: &mut Change) -> sqlx::Result<Option<(Freeze, bool)>> {
    Ok(sqlx::query!(
        r#"SELECT id, reason, started_by, started_at, expires_at,
                  coalesce(expires_at <= now(), false) AS "expired!"
           FROM freezes WHERE lifted_at IS NULL FOR UPDATE"#
    )
    .fetch_optional(change.db())
    .await?
    .map(|r| {
        (
            Freeze {
                id: r.id,
                reason: r.reason,
                started_by: r.started_by,
                started_at: r.started_at,
                expires_at: r.expires_at,
            },
            r.expired,
        )
    }))
}

/// Turns a freeze on, lifting by itself after `minutes` when given (by the database's
/// clock, like every check of it).
pub async fn insert(
    change: &mut Change,
    reason: &str,
    by: &str,
    minutes: Option<i64>,
) -> sqlx::Result<Freeze> {
    sqlx::query_as!(
        Freeze,
        r#"INSERT INTO freezes (reason, started_by, expires_at)
           VALUES ($1, $2, now() + make_interval(mins => $3::bigint::int))
           RETURNING id, reason, started_by, started_at, expires_at"#,
        reason,
        by,
        minutes
    )
    .fetch_one(change.db())
    .await
}

/// Marks freeze `id` lifted by `by`, at its expiry when `at_expiry` (the timer's lift),
/// else now.
pub async fn lift(
    change: &mut Change,
    id: Uuid,
    by: &str,
    reason: &str,
    at_expiry: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE freezes
           SET lifted_at = CASE WHEN $4 THEN least(coalesce(expires_at, now()), now()) ELSE now() END,
               lifted_by = $2, lift_reason = $3
           WHERE id = $1"#,
        id,
        by,
        reason,
        at_expiry
    )
    .execute(change.db())
    .await
    .map(drop)
}

/// The freezes whose expiry passed and that nobody lifted, locked; rows another instance
/// is lifting are skipped.
pub async fn lock_expired(change: &mut Change) -> sqlx::Result<Vec<Freeze>> {
    sqlx::query_as!(
        Freeze,
        r#"SELECT id, reason, started_by, started_at, expires_at FROM freezes
           WHERE lifted_at IS NULL AND expires_at <= now()
           FOR UPDATE SKIP LOCKED"#
    )
    .fetch_all(change.db())
    .await
}
