//! SQL of the users panel (reads; the changes are the identity service's).

use super::{AccountEvent, MailRow, SessionRow, SourceRow, UserRow, PAGE_SIZE};
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

/// The account's refresh tokens still usable: its live sessions' unused, unrevoked heads.
pub async fn live_refresh(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM refresh_tokens r
           JOIN end_user_sessions s ON s.id = r.session_id
           WHERE s.user_id = $1 AND s.ended_at IS NULL AND r.used_at IS NULL
             AND r.revoked_at IS NULL AND r.expires_at > now()"#,
        user
    )
    .fetch_one(db)
    .await
}

/// The addresses the account's sign-ins, failures and reuses came from in the last 30
/// days, the most suspicious first, and whether a block covers each now.
pub async fn sources(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    user: Uuid,
) -> sqlx::Result<Vec<SourceRow>> {
    let who = format!("end_user:{user}");
    sqlx::query_as!(
        SourceRow,
        r#"SELECT host(e.ip) AS "ip!",
                  count(*) FILTER (WHERE e.outcome <> 'success') AS "suspicious!",
                  count(*) FILTER (WHERE e.outcome = 'success') AS "signed_in!",
                  max(e.ts) AS "last_seen!",
                  EXISTS (SELECT 1 FROM ip_blocks b WHERE b.network >>= e.ip
                          AND (b.expires_at IS NULL OR b.expires_at > now())) AS "blocked!"
           FROM audit_events e
           WHERE e.tenant_id = $1 AND e.ts > now() - interval '30 days' AND e.ip IS NOT NULL
             AND (e.actor = $2 OR e.target = $2)
             AND e.action IN ('end_user.signed_in', 'end_user.sign_in_failed', 'token.reuse_detected')
           GROUP BY e.ip
           ORDER BY 2 DESC, 4 DESC
           LIMIT 20"#,
        tenant,
        who
    )
    .fetch_all(db)
    .await
}

/// The account's 20 latest mail.
pub async fn mail_of_user(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<MailRow>> {
    sqlx::query_as!(
        MailRow,
        r#"SELECT id::text AS "id!", user_id::text AS "user_id!", kind::text AS "kind!",
                  to_address, state::text AS "state!", requested_by, created_at, attempts,
                  last_error, sent_at, transport, message_id, dropped_by, dropped_reason
           FROM outbound_mail WHERE user_id = $1
           ORDER BY created_at DESC LIMIT 20"#,
        user
    )
    .fetch_all(db)
    .await
}

/// The tenant's mail not yet sent (oldest first, at most 200), or its latest mail sent,
/// dropped or failed (at most 50).
pub async fn mail_of_tenant(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    queued: bool,
) -> sqlx::Result<Vec<MailRow>> {
    sqlx::query_as!(
        MailRow,
        r#"SELECT id::text AS "id!", user_id::text AS "user_id!", kind::text AS "kind!",
                  to_address, state::text AS "state!", requested_by, created_at, attempts,
                  last_error, sent_at, transport, message_id, dropped_by, dropped_reason
           FROM outbound_mail
           WHERE tenant_id = $1 AND (state = 'pending') = $2
           ORDER BY CASE WHEN $2 THEN created_at END ASC, created_at DESC
           LIMIT CASE WHEN $2 THEN 200 ELSE 50 END"#,
        tenant,
        queued
    )
    .fetch_all(db)
    .await
}

/// The tenant's allowlist of email domains.
pub async fn email_domains(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!("SELECT email_domains FROM tenants WHERE id = $1", tenant)
        .fetch_one(db)
        .await
}

/// One mail of the tenant.
pub async fn mail(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<MailRow>> {
    sqlx::query_as!(
        MailRow,
        r#"SELECT id::text AS "id!", user_id::text AS "user_id!", kind::text AS "kind!",
                  to_address, state::text AS "state!", requested_by, created_at, attempts,
                  last_error, sent_at, transport, message_id, dropped_by, dropped_reason
           FROM outbound_mail WHERE tenant_id = $1 AND id = $2"#,
        tenant,
        id
    )
    .fetch_optional(db)
    .await
}
