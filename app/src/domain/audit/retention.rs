//! Partitions and retention of the audit log.
//!
//! `audit_events` is partitioned by month and, within a month, by retention class (the
//! tenant's `audit_retention_months` when the event was written). Retention drops a whole
//! class partition once all its events are older than the class, never deletes rows; each
//! drop records the hash chain across the removed events (so `audit verify` steps over it)
//! and is itself an audit event.

use crate::auth::Actor;
use crate::error::AppError;
use sqlx::PgExecutor;
use time::OffsetDateTime;

pub use super::RETENTION_CLASSES as CLASSES;

/// Months ahead of the current one that always have partitions.
pub const MONTHS_AHEAD: i32 = 2;

/// One dropped partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Its table name (`audit_events_2026_08_r3`).
    pub partition: String,
    /// Events removed.
    pub removed: i64,
    /// The first and last removed event, when any.
    pub seqs: Option<(i64, i64)>,
}

/// Creates missing partitions for this month and the next [`MONTHS_AHEAD`].
/// (The month tables are not state anyone changes: no audit event, and any handle will do.)
pub async fn ensure_partitions(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query!("SELECT audit_ensure_partitions($1)", MONTHS_AHEAD)
        .execute(db)
        .await?;
    Ok(())
}

/// The partitions whose retention has passed, oldest first, with when they fell due.
pub async fn due(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<(String, OffsetDateTime)>> {
    let rows = sqlx::query!(
        r#"SELECT part AS "part!", kept_until AS "kept_until!" FROM audit_due_partitions()"#
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.part, r.kept_until)).collect())
}

/// Drops every partition that is due, each in its own short transaction with its
/// `audit.retention_applied` event, recorded as `actor` (the system, or the command line).
/// A partition another instance dropped first is skipped.
pub async fn apply(actor: &Actor) -> Result<Vec<Dropped>, AppError> {
    let mut dropped = Vec::new();
    for (partition, kept_until) in due(actor.reader()).await? {
        let mut change = actor.change().await?;
        let result = sqlx::query!(
            r#"SELECT removed AS "removed!", first_seq, last_seq, runs AS "runs!"
               FROM audit_drop_partition($1)"#,
            partition
        )
        .fetch_one(change.db())
        .await;
        let row = match result {
            Ok(row) => row,
            // undefined_table: another instance dropped it since we listed it.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => continue,
            // lock_not_available: a long reader holds the table; the next run tries again
            // rather than queueing every audit write behind the drop.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => {
                tracing::warn!(%partition, "audit partition busy: its drop waits for the next run");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let event = actor
            .event("audit.retention_applied")
            .target(format!("audit_partition:{partition}"))
            .details(serde_json::json!({
                "partition": partition,
                "kept_until": kept_until.unix_timestamp(),
                "removed": row.removed,
                "first_seq": row.first_seq,
                "last_seq": row.last_seq,
                "runs": row.runs,
            }));
        change.commit(event).await?;
        dropped.push(Dropped {
            partition,
            removed: row.removed,
            seqs: row.first_seq.zip(row.last_seq),
        });
    }
    Ok(dropped)
}

/// Hourly upkeep for the server: partitions ahead, then retention, as the system.
pub async fn upkeep(system: &Actor) -> Result<Vec<Dropped>, AppError> {
    ensure_partitions(system.reader()).await?;
    apply(system).await
}
