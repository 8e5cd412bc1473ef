//! Reads of the audit log. Events are written only through [`crate::auth::Change`].

use super::{ActivityRow, Outcome, Source};
use sqlx::PgExecutor;

/// The newest `limit` events, newest first.
pub async fn recent(db: impl PgExecutor<'_>, limit: i64) -> sqlx::Result<Vec<ActivityRow>> {
    sqlx::query_as!(
        ActivityRow,
        r#"SELECT seq, ts, source::text AS "source!: Source", coalesce(actor_name, actor) AS "actor!",
                  action, outcome::text AS "outcome!: Outcome", code, target
           FROM audit_events
           ORDER BY seq DESC
           LIMIT $1"#,
        limit
    )
    .fetch_all(db)
    .await
}
