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
                ip, user_agent, request_id, incident_id, reason, details)
           VALUES ($1, $2::text::audit_source, $3, $4, $5, $6::text::audit_outcome, $7, $8,
                   $9::text::inet, $10, $11, $12, $13, $14)
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
