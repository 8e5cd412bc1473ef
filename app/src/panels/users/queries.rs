//! SQL of the users panel (reads; the changes are the identity service's).

use super::{AccountEvent, SessionRow, UserRow, PAGE_SIZE};
use sqlx::PgExecutor;
use uuid::Uuid;

/// A page of the tenant's accounts, by email after `after`: matching `q` (part of the
/// email, or the id) and `state`. One more than a page is read, to know if there is a next.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    q: &str,
    id: Option<Uuid>,
    state: Option<&str>,
    after: Option<&str>,
) -> sqlx::Result<Vec<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT u.id::text AS "id!", u.email, u.state::text AS "state!", u.created_at,
                  NULL::timestamptz AS locked_until,
                  (SELECT count(*) FROM end_user_sessions s
                   WHERE s.user_id = u.id AND s.ended_at IS NULL) AS "live_sessions!"
           FROM end_users u
           WHERE u.tenant_id = $1
             AND ($2 = '' OR strpos(u.email, $2) > 0 OR u.id = $3)
             AND ($4::text IS NULL OR u.state::text = $4)
             AND ($5::text IS NULL OR u.email > $5)
           ORDER BY u.email
           LIMIT $6"#,
        tenant,
        q,
        id,
        state,
        after,
        PAGE_SIZE + 1
    )
    .fetch_all(db)
    .await
}

/// The tenant's sessions not ended.
pub async fn live_sessions(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM end_user_sessions WHERE tenant_id = $1 AND ended_at IS NULL"#,
        tenant
    )
    .fetch_one(db)
    .await
}

/// One account of the tenant.
pub async fn user(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT u.id::text AS "id!", u.email, u.state::text AS "state!", u.created_at,
                  NULL::timestamptz AS locked_until,
                  (SELECT count(*) FROM end_user_sessions s
                   WHERE s.user_id = u.id AND s.ended_at IS NULL) AS "live_sessions!"
           FROM end_users u WHERE u.tenant_id = $1 AND u.id = $2"#,
        tenant,
        id
    )
    .fetch_optional(db)
    .await
}

/// The account's 50 latest sessions.
pub async fn sessions(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as!(
        SessionRow,
        r#"SELECT s.id::text AS "id!", s.created_at, s.last_used_at, host(s.ip) AS ip, s.user_agent,
                  s.ended_at, s.end_reason,
                  (SELECT count(*) FROM refresh_tokens r WHERE r.session_id = s.id) AS "refreshes!"
           FROM end_user_sessions s WHERE s.user_id = $1
           ORDER BY s.created_at DESC LIMIT 50"#,
        user
    )
    .fetch_all(db)
    .await
}

/// The account's 30 latest audit events of the last 90 days.
pub async fn events(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    user: Uuid,
) -> sqlx::Result<Vec<AccountEvent>> {
    let who = format!("end_user:{user}");
    sqlx::query_as!(
        AccountEvent,
        r#"SELECT seq, ts, action, outcome::text AS "outcome!", code, host(ip) AS ip, actor
           FROM audit_events
           WHERE tenant_id = $1 AND ts > now() - interval '90 days'
             AND (actor = $2 OR target = $2)
           ORDER BY seq DESC LIMIT 30"#,
        tenant,
        who
    )
    .fetch_all(db)
    .await
}
