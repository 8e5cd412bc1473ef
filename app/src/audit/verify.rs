//! Walking the hash chain: every event's hash is recomputed from the previous event's hash
//! and its own canonical content (`audit_canonical()`, the text the insert trigger hashed),
//! and the chain is checked for gaps and for a head that does not match its last event.
//!
//! PostgreSQL builds each event's canonical text (the one definition of it); this side
//! hashes it, a batch at a time, while the next batch is read.

use crate::audit::{NewEvent, Outcome, Source};
use crate::error::AppError;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;

/// Events read per round trip.
pub const BATCH: i64 = 20_000;

/// Why an event does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Its content no longer hashes to its stored hash: the row was edited.
    Edited,
    /// Its `prev_hash` is not the previous event's hash: the chain was re-linked.
    Relinked,
    /// Events before it are missing (`seq` jumps from `after` to it).
    Missing {
        /// The last event seen before the gap.
        after: i64,
    },
    /// The chain head does not name the last event: events after it were removed.
    HeadMismatch {
        /// What the head records.
        head_seq: i64,
    },
    /// An event an earlier run verified is gone or has another hash now: the chain was
    /// cut back and rebuilt from before it.
    Rewritten {
        /// When the earlier run finished.
        verified_at: OffsetDateTime,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edited => write!(f, "its content does not match its hash (the row was edited)"),
            Self::Relinked => write!(f, "its prev_hash is not the previous event's hash (the chain was re-linked)"),
            Self::Missing { after } => write!(f, "the events after {after} up to it are missing"),
            Self::Rewritten { verified_at } => write!(
                f,
                "it is gone or has another hash than when it was verified on {} (the chain was cut back and rebuilt)",
                crate::components::time::utc_minutes(*verified_at)
            ),
            Self::HeadMismatch { head_seq } => write!(
                f,
                "the chain head records event {head_seq}: events after this one were removed or the head was rewritten"
            ),
        }
    }
}

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// First event checked.
    pub from_seq: i64,
    /// Last event checked (or meant to be).
    pub to_seq: i64,
    /// Events checked.
    pub checked: i64,
    /// The first event that does not hold.
    pub broken: Option<(i64, Problem)>,
    /// The hash of the last event checked, when the stretch held.
    pub last_hash: Option<Vec<u8>>,
}

/// Reads `--from`/`--to`: RFC 3339 (`2026-11-22T10:00:00Z`) or a UTC date (`2026-11-22`,
/// meaning its midnight).
pub fn parse_time(raw: &str, field: &str) -> Result<OffsetDateTime, AppError> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(at);
    }
    let date = time::Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        AppError::validation(
            field,
            format!("“{raw}” is not a date: use 2026-11-22 or 2026-11-22T10:00:00Z."),
        )
    })?;
    Ok(date.midnight().assume_utc())
}

/// The stretch of the chain to check: events from `from` (default the first) to `to`
/// (default the head).
pub async fn range(
    pool: &PgPool,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<(i64, i64), AppError> {
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(AppError::validation("from", "--from is after --to."));
        }
    }
    let from_seq: Option<i64> = match from {
        None => Some(1),
        Some(at) => {
            sqlx::query_scalar!(
                "SELECT seq FROM audit_events WHERE ts >= $1 ORDER BY ts, seq LIMIT 1",
                at
            )
            .fetch_optional(pool)
            .await?
        }
    };
    let to_seq: Option<i64> = match to {
        None => Some(
            sqlx::query_scalar!("SELECT seq FROM audit_chain_head")
                .fetch_one(pool)
                .await?,
        ),
        Some(at) => {
            sqlx::query_scalar!(
                "SELECT seq FROM audit_events WHERE ts <= $1 ORDER BY ts DESC, seq DESC LIMIT 1",
                at
            )
            .fetch_optional(pool)
            .await?
        }
    };
    let Some(from_seq) = from_seq else {
        return Err(AppError::validation(
            "from",
            "No events at or after --from.",
        ));
    };
    let Some(to_seq) = to_seq else {
        return Err(AppError::validation("to", "No events at or before --to."));
    };
    Ok((from_seq, to_seq))
}

struct Row {
    seq: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    canonical: Vec<u8>,
}

async fn batch(pool: &PgPool, after: i64, to: i64) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as!(
        Row,
        r#"SELECT seq, prev_hash, hash,
                  convert_to(audit_canonical(e), 'UTF8') AS "canonical!"
           FROM audit_events e WHERE seq > $1 AND seq <= $2
           ORDER BY seq LIMIT $3"#,
        after,
        to,
        BATCH
    )
    .fetch_all(pool)
    .await
}

/// Checks events `from_seq..=to_seq`; `progress` hears the last event checked after each
/// batch. Stops at the first event that does not hold.
pub async fn verify(
    pool: &PgPool,
    from_seq: i64,
    to_seq: i64,
    mut progress: impl FnMut(i64),
) -> sqlx::Result<Report> {
    let mut report = Report {
        from_seq,
        to_seq,
        checked: 0,
        broken: None,
        last_hash: None,
    };
    if to_seq < from_seq {
        return Ok(report);
    }
    // The hash the first checked event must link to: the genesis value, or the stored
    // hash of the event before the stretch (trusted: it is outside what is checked).
    let mut link: Vec<u8> = if from_seq <= 1 {
        vec![0; 32]
    } else {
        sqlx::query_scalar!("SELECT hash FROM audit_events WHERE seq = $1", from_seq - 1)
            .fetch_optional(pool)
            .await?
            .unwrap_or_default()
    };
    let mut last = from_seq - 1;
    let mut next = tokio::spawn({
        let pool = pool.clone();
        async move { batch(&pool, last, to_seq).await }
    });
    loop {
        let rows = next
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
        if rows.is_empty() {
            break;
        }
        let after = rows.last().map(|r| r.seq).unwrap_or(last);
        // Read the next batch while this one is hashed.
        next = tokio::spawn({
            let pool = pool.clone();
            async move { batch(&pool, after, to_seq).await }
        });
        for row in rows {
            let problem = if row.seq != last + 1 {
                Some(Problem::Missing { after: last })
            } else if row.prev_hash != link {
                Some(Problem::Relinked)
            } else {
                let mut hasher = Sha256::new();
                hasher.update(&row.prev_hash);
                hasher.update(&row.canonical);
                (hasher.finalize().as_slice() != row.hash.as_slice()).then_some(Problem::Edited)
            };
            if let Some(problem) = problem {
                next.abort();
                report.broken = Some((row.seq, problem));
                return Ok(report);
            }
            report.checked += 1;
            last = row.seq;
            link = row.hash;
        }
        progress(last);
    }
    if last < to_seq {
        // Events at the end of the stretch are missing.
        report.broken = Some((last + 1, Problem::Missing { after: last }));
        return Ok(report);
    }
    let head = sqlx::query!("SELECT seq, hash FROM audit_chain_head")
        .fetch_one(pool)
        .await?;
    if head.seq == to_seq && head.hash != link {
        report.broken = Some((to_seq, Problem::HeadMismatch { head_seq: head.seq }));
        return Ok(report);
    } else if head.seq < to_seq {
        report.broken = Some((head.seq + 1, Problem::HeadMismatch { head_seq: head.seq }));
        return Ok(report);
    }
    // What the last intact run verified must still be there, unchanged.
    let earlier = sqlx::query!(
        r#"SELECT v.to_seq, v.to_hash AS "to_hash!", v.finished_at,
                  (SELECT e.hash FROM audit_events e WHERE e.seq = v.to_seq) AS now_hash
           FROM audit_verifications v
           WHERE v.broken_seq IS NULL AND v.to_hash IS NOT NULL
           ORDER BY v.id DESC LIMIT 1"#
    )
    .fetch_optional(pool)
    .await?;
    if let Some(earlier) = earlier {
        if earlier.now_hash.as_deref() != Some(earlier.to_hash.as_slice()) {
            report.broken = Some((
                earlier.to_seq,
                Problem::Rewritten {
                    verified_at: earlier.finished_at,
                },
            ));
            return Ok(report);
        }
    }
    report.last_hash = Some(link);
    Ok(report)
}

/// Records a run: a row for the panel and an `audit.verified` event (outcome `error` with
/// code `AUDIT_CHAIN_BROKEN` when something does not hold), in one transaction.
pub async fn record(
    pool: &PgPool,
    report: &Report,
    started_at: OffsetDateTime,
    run_by: &str,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let (broken_seq, problem) = match &report.broken {
        Some((seq, problem)) => (Some(*seq), Some(problem.to_string())),
        None => (None, None),
    };
    sqlx::query!(
        "INSERT INTO audit_verifications
             (started_at, from_seq, to_seq, checked, to_hash, broken_seq, problem, run_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        started_at,
        report.from_seq,
        report.to_seq,
        report.checked,
        report.last_hash,
        broken_seq,
        problem,
        run_by
    )
    .execute(&mut *tx)
    .await?;
    let mut event =
        NewEvent::new(Source::System, run_by, "audit.verified").details(serde_json::json!({
            "from_seq": report.from_seq,
            "to_seq": report.to_seq,
            "checked": report.checked,
            "broken_seq": broken_seq,
            "problem": problem,
        }));
    if broken_seq.is_some() {
        event.outcome = Outcome::Error;
        event.code = Some("AUDIT_CHAIN_BROKEN".to_owned());
        event.target = broken_seq.map(|seq| format!("audit_event:{seq}"));
    }
    crate::audit::queries::record(&mut tx, &event).await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert_eq!(
            parse_time("2026-11-22", "from").map(|t| t.unix_timestamp()),
            Ok(1_795_305_600)
        );
        assert!(parse_time("2026-11-22T10:00:00Z", "from").is_ok());
        for bad in ["yesterday", "2026-13-01", "22/11/2026", ""] {
            assert!(parse_time(bad, "from").is_err(), "{bad}");
        }
    }
}
