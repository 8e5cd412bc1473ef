//! Walking the hash chain: every event's hash is recomputed from the previous event's hash
//! and its own canonical content (`audit_canonical()`, the text the insert trigger hashed),
//! and the chain is checked for gaps and for a head that does not match its last event.
//!
//! PostgreSQL builds each event's canonical text (the one definition of it); this side
//! hashes it, a batch at a time, while the next batch is read.

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
    /// Another event has the same position: a copy was inserted.
    Duplicate,
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
            Self::Duplicate => write!(f, "another event has the same position (a copy was inserted)"),
            Self::Rewritten { verified_at } => write!(
                f,
                "it is gone or has another hash than when it was verified on {} (the chain was cut back and rebuilt)",
                crate::domain::input::utc_minutes(*verified_at)
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
    /// Events whose hash matched only the database's own canonical text, not the one
    /// built here: zero unless `audit_canonical()` or the formatting here changed. Worth
    /// a look either way, since a redefined `audit_canonical()` could vouch for an edit.
    pub by_database: i64,
}

/// Reads `--from`/`--to` as the audit panel reads its window: RFC 3339, `2026-11-22T10:00`
/// (UTC) or a UTC date (`2026-11-22`, meaning its midnight).
pub fn parse_time(raw: &str, field: &str) -> Result<OffsetDateTime, AppError> {
    crate::domain::input::parse_instant(raw, field)
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

/// One event as read for checking: the chain fields and the columns of its canonical text.
struct Row {
    seq: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    ts: OffsetDateTime,
    tenant_id: Option<uuid::Uuid>,
    source: String,
    actor: String,
    actor_name: Option<String>,
    action: String,
    outcome: String,
    code: Option<String>,
    target: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    incident_id: Option<uuid::Uuid>,
    reason: Option<String>,
    details: String,
}

async fn batch(pool: &PgPool, after: i64, to: i64) -> sqlx::Result<Vec<Row>> {
    // `ip` as its output function prints it (a host without its /32 or /128), which is
    // what the canonical JSON holds.
    sqlx::query_as!(
        Row,
        r#"SELECT seq, prev_hash, hash, ts, tenant_id, source::text AS "source!", actor,
                  actor_name, action, outcome::text AS "outcome!", code, target,
                  CASE WHEN masklen(ip) = CASE family(ip) WHEN 4 THEN 32 ELSE 128 END
                       THEN host(ip) ELSE ip::text END AS ip,
                  user_agent, request_id, incident_id, reason, details::text AS "details!"
           FROM audit_events WHERE seq >= $1 AND seq <= $2
           ORDER BY seq LIMIT $3"#,
        after,
        to,
        BATCH
    )
    .fetch_all(pool)
    .await
}

/// Appends `s` as a JSON string the way PostgreSQL's jsonb prints it.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
            b => out.push(b),
        }
    }
    out.push(b'"');
}

fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// The columns an event's canonical text is built from (as the database prints them: `ip`
/// as its output function does, `details` as jsonb text).
#[derive(Debug, Clone, Copy)]
pub struct CanonicalFields<'a> {
    /// Position in the chain.
    pub seq: i64,
    /// When.
    pub ts: OffsetDateTime,
    /// The tenant.
    pub tenant_id: Option<uuid::Uuid>,
    /// `audit_source`.
    pub source: &'a str,
    /// Who.
    pub actor: &'a str,
    /// Who, readable.
    pub actor_name: Option<&'a str>,
    /// What.
    pub action: &'a str,
    /// `audit_outcome`.
    pub outcome: &'a str,
    /// The code.
    pub code: Option<&'a str>,
    /// The target.
    pub target: Option<&'a str>,
    /// The address (`10.0.0.1`, `10.0.0.0/8`).
    pub ip: Option<&'a str>,
    /// The user agent.
    pub user_agent: Option<&'a str>,
    /// The request id.
    pub request_id: Option<&'a str>,
    /// The incident.
    pub incident_id: Option<uuid::Uuid>,
    /// The reason.
    pub reason: Option<&'a str>,
    /// The details, as jsonb prints them.
    pub details: &'a str,
}

/// The canonical text of an event, byte for byte what `audit_canonical()` returns (checked
/// against it by the tests). A row whose hash does not match is re-checked with the
/// database's own text before it is called edited, so a difference here costs time, never
/// a false alarm.
pub fn canonical_text(f: &CanonicalFields<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let ts = f.ts.to_offset(time::UtcOffset::UTC);
    let _ = write!(
        out,
        "[{}, \"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z\", ",
        f.seq,
        ts.year(),
        u8::from(ts.month()),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second(),
        ts.microsecond()
    );
    match f.tenant_id {
        Some(id) => {
            let _ = write!(out, "\"{id}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    for field in [
        Some(f.source),
        Some(f.actor),
        f.actor_name,
        Some(f.action),
        Some(f.outcome),
        f.code,
        f.target,
        f.ip,
        f.user_agent,
        f.request_id,
    ] {
        out.extend_from_slice(b", ");
        push_opt_str(out, field);
    }
    out.extend_from_slice(b", ");
    match f.incident_id {
        Some(id) => {
            let _ = write!(out, "\"{id}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b", ");
    push_opt_str(out, f.reason);
    out.extend_from_slice(b", ");
    out.extend_from_slice(f.details.as_bytes());
    out.push(b']');
}

fn canonical(row: &Row, out: &mut Vec<u8>) {
    canonical_text(
        &CanonicalFields {
            seq: row.seq,
            ts: row.ts,
            tenant_id: row.tenant_id,
            source: &row.source,
            actor: &row.actor,
            actor_name: row.actor_name.as_deref(),
            action: &row.action,
            outcome: &row.outcome,
            code: row.code.as_deref(),
            target: row.target.as_deref(),
            ip: row.ip.as_deref(),
            user_agent: row.user_agent.as_deref(),
            request_id: row.request_id.as_deref(),
            incident_id: row.incident_id,
            reason: row.reason.as_deref(),
            details: &row.details,
        },
        out,
    );
}

/// SHA-256 over the previous hash and an event's canonical text: the event's hash.
pub fn chained(prev_hash: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(canonical);
    hasher.finalize().into()
}

/// Whether `row`'s stored hash is its content's, by the database's own canonical text (the
/// slow path, for rows the fast one did not match).
async fn holds_by_database(pool: &PgPool, row: &Row) -> sqlx::Result<bool> {
    let text: Option<Vec<u8>> = sqlx::query_scalar!(
        r#"SELECT convert_to(audit_canonical(e), 'UTF8') AS "c!" FROM audit_events e
           WHERE seq = $1"#,
        row.seq
    )
    .fetch_optional(pool)
    .await?;
    Ok(text.is_some_and(|text| chained(&row.prev_hash, &text).as_slice() == row.hash))
}

/// The events in `(after, to]` (one batch at most) whose canonical text as built here
/// differs from the database's: empty unless the fast path has a formatting defect. For the
/// tests, and for anyone chasing a slow verification.
pub async fn fast_path_differences(pool: &PgPool, after: i64, to: i64) -> sqlx::Result<Vec<i64>> {
    let mut differ = Vec::new();
    let mut text = Vec::new();
    for row in batch(pool, after, to).await? {
        canonical(&row, &mut text);
        let theirs: Option<Vec<u8>> = sqlx::query_scalar!(
            r#"SELECT convert_to(audit_canonical(e), 'UTF8') AS "c!" FROM audit_events e
               WHERE seq = $1"#,
            row.seq
        )
        .fetch_optional(pool)
        .await?;
        if theirs.as_deref() != Some(text.as_slice()) {
            differ.push(row.seq);
        }
    }
    Ok(differ)
}

/// Recorded removals (retention drops) starting in `(after, to]`, by first event.
async fn gaps(
    pool: &PgPool,
    after: i64,
    to: i64,
) -> sqlx::Result<std::collections::BTreeMap<i64, (i64, Vec<u8>)>> {
    let rows = sqlx::query!(
        "SELECT from_seq, to_seq, last_hash FROM audit_retention_gaps
         WHERE from_seq > $1 AND from_seq <= $2",
        after,
        to
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|g| (g.from_seq, (g.to_seq, g.last_hash)))
        .collect())
}

/// The hash event `seq` links the next one to: its stored hash, or the recorded hash of a
/// removal ending at it; genesis for 0.
async fn anchor(pool: &PgPool, seq: i64) -> sqlx::Result<Option<Vec<u8>>> {
    if seq <= 0 {
        return Ok(Some(vec![0; 32]));
    }
    let stored = sqlx::query_scalar!("SELECT hash FROM audit_events WHERE seq = $1", seq)
        .fetch_optional(pool)
        .await?;
    if stored.is_some() {
        return Ok(stored);
    }
    sqlx::query_scalar!(
        "SELECT last_hash FROM audit_retention_gaps WHERE to_seq = $1",
        seq
    )
    .fetch_optional(pool)
    .await
}

/// What one stretch found.
struct Stretch {
    checked: i64,
    by_database: i64,
    broken: Option<(i64, Problem)>,
    last_hash: Vec<u8>,
}

/// Checks events `after+1..=to` against `link`, the hash event `after` links on with.
async fn verify_stretch(
    pool: PgPool,
    after: i64,
    to: i64,
    mut link: Vec<u8>,
    done: std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> sqlx::Result<Stretch> {
    use std::sync::atomic::Ordering;
    let mut out = Stretch {
        checked: 0,
        by_database: 0,
        broken: None,
        last_hash: Vec::new(),
    };
    let mut last = after;
    let mut text = Vec::with_capacity(1024);
    let mut next = tokio::spawn({
        let pool = pool.clone();
        async move { batch(&pool, last, to).await }
    });
    loop {
        let rows = next
            .await
            .map_err(|e| sqlx::Error::Protocol(e.to_string()))??;
        let Some(batch_last) = rows.last().map(|r| r.seq) else {
            break;
        };
        // Read the next batch while this one is hashed.
        next = tokio::spawn({
            let pool = pool.clone();
            async move { batch(&pool, batch_last, to).await }
        });
        // Each batch starts again at the last event checked, so a second event with its
        // position cannot hide at a batch or stretch boundary.
        let fresh = rows.iter().filter(|r| r.seq > last).count() as i64;
        let removed = if fresh != batch_last - last {
            gaps(&pool, last, batch_last).await?
        } else {
            Default::default()
        };
        let before = out.checked;
        for (i, row) in rows.into_iter().enumerate() {
            if i == 0 && row.seq == last && row.hash == link {
                // The event checked last (or the stretch's anchor), read again.
                continue;
            }
            if row.seq <= last {
                next.abort();
                out.broken = Some((row.seq, Problem::Duplicate));
                return Ok(out);
            }
            // Step over recorded removals, which link on with their last event's hash.
            let mut expected = last + 1;
            while row.seq > expected {
                let Some((to_seq, hash)) = removed.get(&expected) else {
                    break;
                };
                link.clone_from(hash);
                expected = to_seq + 1;
            }
            let problem = if row.seq != expected {
                Some(Problem::Missing { after: last })
            } else if row.prev_hash != link {
                Some(Problem::Relinked)
            } else {
                canonical(&row, &mut text);
                let holds = if chained(&row.prev_hash, &text).as_slice() == row.hash {
                    true
                } else if holds_by_database(&pool, &row).await? {
                    out.by_database += 1;
                    true
                } else {
                    false
                };
                (!holds).then_some(Problem::Edited)
            };
            if let Some(problem) = problem {
                next.abort();
                out.broken = Some((row.seq, problem));
                return Ok(out);
            }
            out.checked += 1;
            last = row.seq;
            link = row.hash;
        }
        done.fetch_add(out.checked - before, Ordering::Relaxed);
        if fresh == 0 {
            // Only the last event checked came back: the stretch is done.
            next.abort();
            break;
        }
    }
    if last < to {
        // Events at the end of the stretch are missing, unless their removal was recorded.
        let removed = gaps(&pool, last, to).await?;
        let mut expected = last + 1;
        while let Some((to_seq, hash)) = removed.get(&expected) {
            link.clone_from(hash);
            expected = to_seq + 1;
        }
        if expected <= to {
            out.broken = Some((last + 1, Problem::Missing { after: last }));
            return Ok(out);
        }
    }
    out.last_hash = link;
    Ok(out)
}

/// How many stretches are checked at once.
fn parallelism() -> i64 {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8) as i64)
}

/// Checks events `from_seq..=to_seq`; `progress` hears how many were checked, about once a
/// second. The range is cut into stretches checked side by side, each starting from the
/// stored hash of the event before it, which the previous stretch checks, so together they
/// check every link. Reports the first event that does not hold.
pub async fn verify(
    pool: &PgPool,
    from_seq: i64,
    to_seq: i64,
    mut progress: impl FnMut(i64),
) -> sqlx::Result<Report> {
    use std::sync::atomic::{AtomicI64, Ordering};
    let mut report = Report {
        from_seq,
        to_seq,
        checked: 0,
        broken: None,
        last_hash: None,
        by_database: 0,
    };
    if to_seq < from_seq {
        return Ok(report);
    }
    let Some(first_link) = anchor(pool, from_seq - 1).await? else {
        // The event before the stretch is gone and its removal was not recorded.
        report.broken = Some((
            from_seq - 1,
            Problem::Missing {
                after: from_seq - 1,
            },
        ));
        return Ok(report);
    };
    // Cut points: existing events, so each later stretch has a stored hash to start from.
    let parts = parallelism().min((to_seq - from_seq + 1) / BATCH + 1);
    let mut starts = vec![(from_seq - 1, first_link)];
    for k in 1..parts {
        let target = from_seq - 1 + (to_seq - from_seq + 1) * k / parts;
        let cut = sqlx::query!(
            "SELECT seq, hash FROM audit_events WHERE seq <= $1 AND seq > $2
             ORDER BY seq DESC LIMIT 1",
            target,
            starts.last().map_or(from_seq - 1, |s| s.0)
        )
        .fetch_optional(pool)
        .await?;
        if let Some(cut) = cut {
            starts.push((cut.seq, cut.hash));
        }
    }
    let done = std::sync::Arc::new(AtomicI64::new(0));
    let ends: Vec<i64> = starts.iter().skip(1).map(|s| s.0).chain([to_seq]).collect();
    let mut tasks = Vec::with_capacity(starts.len());
    for ((after, link), to) in starts.into_iter().zip(ends) {
        tasks.push(tokio::spawn(verify_stretch(
            pool.clone(),
            after,
            to,
            link,
            done.clone(),
        )));
    }
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    ticker.tick().await;
    let all = async move {
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await);
        }
        results.into_iter().collect::<Result<Vec<_>, _>>()
    };
    tokio::pin!(all);
    let stretches = loop {
        tokio::select! {
            result = &mut all => break result.map_err(|e| sqlx::Error::Protocol(e.to_string()))?,
            _ = ticker.tick() => progress(done.load(Ordering::Relaxed)),
        }
    };
    let mut last_hash = Vec::new();
    for stretch in stretches {
        let stretch = stretch?;
        report.checked += stretch.checked;
        report.by_database += stretch.by_database;
        if report.broken.is_none() {
            report.broken = stretch.broken;
            last_hash = stretch.last_hash;
        }
    }
    progress(report.checked);
    if report.broken.is_some() {
        return Ok(report);
    }
    let link = last_hash;
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
    // What the last intact run verified must still be there, unchanged (or its removal by
    // retention recorded).
    let earlier = sqlx::query!(
        r#"SELECT v.to_seq, v.to_hash AS "to_hash!", v.finished_at,
                  (SELECT e.hash FROM audit_events e WHERE e.seq = v.to_seq) AS now_hash,
                  EXISTS (SELECT 1 FROM audit_retention_gaps g
                          WHERE v.to_seq BETWEEN g.from_seq AND g.to_seq) AS "removed!"
           FROM audit_verifications v
           WHERE v.broken_seq IS NULL AND v.to_hash IS NOT NULL
           ORDER BY v.id DESC LIMIT 1"#
    )
    .fetch_optional(pool)
    .await?;
    if let Some(earlier) = earlier {
        if !earlier.removed && earlier.now_hash.as_deref() != Some(earlier.to_hash.as_slice()) {
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

/// Why a run could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The database refused the run (`audit_record_verification()` checks what an intact
    /// run claims): its message says why, for the operator who ran it.
    #[error(transparent)]
    Refused(#[from] sqlx::Error),
    /// The change or its event could not be written.
    #[error(transparent)]
    Change(#[from] crate::error::AppError),
}

/// Records a run: a row for the panel (through `audit_record_verification()`, the only way
/// to add one) and an `audit.verified` event (outcome `error` with code
/// `AUDIT_CHAIN_BROKEN` when something does not hold), in one transaction.
pub async fn record(
    actor: &crate::auth::Actor,
    report: &Report,
    started_at: OffsetDateTime,
) -> Result<(), RecordError> {
    let run_by = actor.label();
    let mut change = actor.change().await?;
    let (broken_seq, problem) = match &report.broken {
        Some((seq, problem)) => (Some(*seq), Some(problem.to_string())),
        None => (None, None),
    };
    // Through the definer function: the app role may not insert verification rows itself,
    // and the function checks what an intact run claims (its last hash is the stored one).
    sqlx::query_scalar!(
        r#"SELECT audit_record_verification($1, $2, $3, $4, $5, $6, $7, $8) AS "id!""#,
        started_at,
        report.from_seq,
        report.to_seq,
        report.checked,
        report.last_hash,
        broken_seq,
        problem,
        run_by
    )
    .fetch_one(change.db())
    .await?;
    let mut event = actor.event("audit.verified").details(serde_json::json!({
        "from_seq": report.from_seq,
        "to_seq": report.to_seq,
        "checked": report.checked,
        "broken_seq": broken_seq,
        "problem": problem,
    }));
    if let Some(seq) = broken_seq {
        event = event
            .failed("AUDIT_CHAIN_BROKEN")
            .target(format!("audit_event:{seq}"));
    }
    change.commit(event).await?;
    Ok(())
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
