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

/// Locks the account (runbook 004): every session revoked and the account `locked` in one
/// change; it signs in again only after an operator unlocks it or it recovers.
pub async fn lock(actor: &Actor, slug: &str, user: Uuid, reason: &str) -> Result<i64, AppError> {
    let reason = normalize_reason(reason)?;
    let tenant = tenant(actor, slug).await?;
    let mut change = actor.change().await?;
    let before = lock_user(&mut change, tenant.id, user).await?;
    if before == "deleted" {
        return Err(AppError::Conflict {
            field: None,
            message: "This user is deleted: restore it first.".into(),
        });
    }
    sqlx::query!(
        "UPDATE end_users SET state = 'locked', updated_at = now() WHERE id = $1",
        user
    )
    .execute(change.db())
    .await?;
    move_user_epoch(&mut change, user).await?;
    let live = live_sessions_of(&mut change, user).await?;
    let event = actor
        .event("end_user.locked")
        .tenant(tenant.id)
        .target(format!("end_user:{user}"))
        .reason(reason)
        .details(serde_json::json!({ "before": before, "after": "locked", "live_sessions": live }));
    change.commit(event).await?;
    Ok(live)
}

/// Locks the user's row for a change: its state. A user of another tenant is not found.
async fn lock_user(
    change: &mut crate::auth::Change,
    tenant: Uuid,
    user: Uuid,
) -> Result<String, AppError> {
    sqlx::query_scalar!(
        r#"SELECT state::text AS "state!" FROM end_users WHERE id = $1 AND tenant_id = $2 FOR UPDATE"#,
        user,
        tenant
    )
    .fetch_optional(change.db())
    .await?
    .ok_or_else(|| AppError::not_found("That user"))
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
