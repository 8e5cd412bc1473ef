//! SQL of the audit log. The chain (seq, ts, prev_hash, hash) is computed by the database's
//! insert trigger, under a lock on the chain head, so no writer can skip or fork it.

use super::{ActivityRow, NewEvent};
use sqlx::{PgConnection, PgExecutor};

/// Records `event` on `conn`, which should be the transaction holding the change it
/// describes. Returns the event's position in the chain.
///
/// The chain head stays locked until that transaction ends: record the event last, just
/// before committing, so concurrent writers wait as little as possible.
pub async fn record(conn: &mut PgConnection, event: &NewEvent) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO audit_events
               (tenant_id, source, actor, actor_name, action, outcome, code, target,
                ip, user_agent, request_id, incident_id, reason, details, retention_months)
           VALUES ($1, $2::text::audit_source, $3, $4, $5, $6::text::audit_outcome, $7, $8,
                   $9::text::inet, $10, $11, $12, $13, $14, audit_retention_for($1))
           RETURNING seq"#,
        event.tenant_id,
        event.source.as_str(),
        event.actor,
        event.actor_name,
        event.action,
        event.outcome.as_str(),
        event.code,
        event.target,
        event.ip,
        event.user_agent,
        event.request_id,
        event.incident_id,
        event.reason,
        event.details,
    )
    .fetch_one(conn)
    .await
}

/// The newest `limit` events, newest first.
pub async fn recent(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<ActivityRow>> {
    sqlx::query_as!(
        ActivityRow,
        r#"SELECT seq, ts, source::text AS "source!", coalesce(actor_name, actor) AS "actor!",
                  action, outcome::text AS "outcome!", code, target
           FROM audit_events
           ORDER BY seq DESC
           LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await
}

/// Records `events` in order with one statement on `conn` (the chain trigger still runs per
/// row). Returns how many were written.
pub async fn record_many(conn: &mut PgConnection, events: &[NewEvent]) -> sqlx::Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let n = events.len();
    let mut tenant = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut actor = Vec::with_capacity(n);
    let mut actor_name = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut outcome = Vec::with_capacity(n);
    let mut code = Vec::with_capacity(n);
    let mut target = Vec::with_capacity(n);
    let mut ip = Vec::with_capacity(n);
    let mut user_agent = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut incident = Vec::with_capacity(n);
    let mut reason = Vec::with_capacity(n);
    let mut details = Vec::with_capacity(n);
    for e in events {
        tenant.push(e.tenant_id);
        source.push(e.source.as_str().to_owned());
        actor.push(e.actor.clone());
        actor_name.push(e.actor_name.clone());
        action.push(e.action.clone());
        outcome.push(e.outcome.as_str().to_owned());
        code.push(e.code.clone());
        target.push(e.target.clone());
        ip.push(e.ip.clone());
        user_agent.push(e.user_agent.clone());
        request_id.push(e.request_id.clone());
        incident.push(e.incident_id);
        reason.push(e.reason.clone());
        details.push(e.details.to_string());
    }
    let done = sqlx::query!(
        r#"INSERT INTO audit_events
               (tenant_id, source, actor, actor_name, action, outcome, code, target,
                ip, user_agent, request_id, incident_id, reason, details, retention_months)
           SELECT tenant, src::audit_source, who, who_name, act, res::audit_outcome, code,
                  target, addr::inet, ua, rid, incident, why, details::jsonb,
                  audit_retention_for(tenant)
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                       $12::uuid[], $13::text[], $14::text[])
                WITH ORDINALITY AS e(tenant, src, who, who_name, act, res, code, target, addr,
                                     ua, rid, incident, why, details, n)
           ORDER BY n"#,
        &tenant as &[Option<uuid::Uuid>],
        &source,
        &actor,
        &actor_name as &[Option<String>],
        &action,
        &outcome,
        &code as &[Option<String>],
        &target as &[Option<String>],
        &ip as &[Option<String>],
        &user_agent as &[Option<String>],
        &request_id as &[Option<String>],
        &incident as &[Option<uuid::Uuid>],
        &reason as &[Option<String>],
        &details,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
