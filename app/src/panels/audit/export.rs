//! The streamed export: the filtered events, oldest first, as CSV or JSON Lines, read from
//! one snapshot with a server-side cursor and sent in chunks, so memory stays flat however
//! many rows there are.
//!
//! Every export is audited twice: `audit.export_started` (with the filters) is committed
//! before the first byte is sent, so an export that cannot be audited does not happen;
//! `audit.exported` records how many rows went out and whether the download completed.

use super::{AuditFilter, AuditQuery, EXPORT_MAX_DAYS};
use crate::auth::{Actor, Permission};
use crate::domain::audit::NewEvent;
use crate::error::AppError;
use futures_util::StreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 64 * 1024;
/// Exports running at once on one instance: each holds a database connection and a
/// snapshot for as long as its download lasts.
pub const CONCURRENT: usize = 4;
/// How long a download may stall (the client reading nothing) before it is ended, so a
/// stuck client cannot hold its snapshot and connection for ever.
pub const STALL: std::time::Duration = std::time::Duration::from_secs(30);
/// How long one export may run in all, however steadily its client reads. The stall limit
/// alone is per chunk: a client taking one 64 KiB chunk every 29 s would hold a snapshot
/// (holding back vacuum on every table) and one of the [`CONCURRENT`] slots for ever.
///
/// 30 minutes: the largest export the panel allows (93 days) of the benchmark's whole
/// 10 million events takes about a minute at the measured 177,000 rows/s, so the cap
/// leaves a client 30 times slower than that (about 1.4 MB/s) room to finish.
pub const TOTAL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The time limits of one export. [`begin`] uses [`ExportLimits::default`] ([`STALL`] and
/// [`TOTAL`]); tests set short ones with [`Export::with_limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    /// Longest wait for the client to take one chunk.
    pub stall: std::time::Duration,
    /// Longest time the whole export may take, from its first row.
    pub total: std::time::Duration,
}

impl Default for ExportLimits {
    fn default() -> Self {
        Self {
            stall: STALL,
            total: TOTAL,
        }
    }
}

/// Why an export ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Every row was sent.
    Complete,
    /// The client took nothing for [`ExportLimits::stall`], or went away.
    Stalled,
    /// The export ran past [`ExportLimits::total`].
    TimeLimit,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Stalled => "stalled_or_cancelled",
            Self::TimeLimit => "time_limit",
        }
    }
}

fn slots() -> &'static std::sync::Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    SLOTS.get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENT)))
}

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180 CSV, safe to open in a spreadsheet.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl Format {
    /// Reads `format=` (default CSV).
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        match raw.trim() {
            "" | "csv" => Ok(Self::Csv),
            "jsonl" | "ndjson" => Ok(Self::Jsonl),
            other => Err(AppError::validation(
                "format",
                format!("Unknown format “{other}”: use csv or jsonl."),
            )),
        }
    }

    /// Its name in events and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
        }
    }
}

/// The columns, in order.
pub const COLUMNS: [&str; 17] = [
    "seq",
    "ts",
    "tenant",
    "source",
    "actor",
    "actor_name",
    "action",
    "outcome",
    "code",
    "target",
    "ip",
    "user_agent",
    "request_id",
    "incident_id",
    "reason",
    "details",
    "hash",
];

/// A cell as a spreadsheet will not run it: one starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return gets a leading apostrophe (OWASP's CSV injection advice).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Runs `require(ExportAudit)` for a plain axum handler: the request's parts, the pool and
/// the sign-in policy (is a second factor required) are put in a Leptos owner's context
/// for the length of the check, as for a server function.
pub async fn authorize(
    parts: http::request::Parts,
    pool: PgPool,
    policy: crate::auth::api::SignInPolicy,
) -> Result<Actor, AppError> {
    use leptos::prelude::{provide_context, Owner};
    let owner = Owner::new();
    let check = owner.with(|| {
        provide_context(parts);
        provide_context(pool);
        provide_context(policy);
        leptos::reactive::computed::ScopedFuture::new(crate::auth::require(Permission::ExportAudit))
    });
    check.await
}

/// An export that was checked and whose start was audited.
pub struct Export {
    _slot: tokio::sync::OwnedSemaphorePermit,
    actor: Actor,
    filter: AuditFilter,
    tenant: Option<Uuid>,
    format: Format,
    filters: String,
    done_event: NewEvent,
    limits: ExportLimits,
    completed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Checks the request and records its start. `tenant_path` is the tenant of an
/// `/a/{tenant}/admin/...` URL, which wins over a `tenant=` filter.
pub async fn begin(
    actor: &Actor,
    query: &AuditQuery,
    format: &str,
    tenant_path: Option<&str>,
) -> Result<Export, AppError> {
    let format = Format::parse(format)?;
    let slot = slots()
        .clone()
        .try_acquire_owned()
        .map_err(|_| AppError::Conflict {
            field: None,
            message: format!(
                "{CONCURRENT} exports are already running on this server: try again when one ends."
            ),
        })?;
    let mut query = query.clone();
    if let Some(slug) = tenant_path {
        query.tenant = slug.to_owned();
    }
    let filter = query.parse(OffsetDateTime::now_utc(), EXPORT_MAX_DAYS)?;
    let tenant = super::queries::tenant_id(actor.reader(), &filter).await?;
    let filters = query.to_query(&[]);
    let details = serde_json::json!({
        "filters": filters,
        "format": format.as_str(),
        "from": super::rfc3339(filter.from),
        "to": super::rfc3339(filter.to),
    });
    let started = actor
        .event("audit.export_started")
        .details(details.clone())
        .tenant(tenant);
    actor.change().await?.commit(started).await?;
    let done_event = actor
        .event("audit.exported")
        .details(details)
        .tenant(tenant);
    Ok(Export {
        _slot: slot,
        actor: actor.clone(),
        filter,
        tenant,
        format,
        filters,
        done_event,
        limits: ExportLimits::default(),
        completed: Default::default(),
    })
}

impl Export {
    /// `audit-acme-20261122T1000Z-20261123T1000Z.csv`: the tenant (or `all`) and the range.
    pub fn file_name(&self) -> String {
        let stamp = |at: OffsetDateTime| {
            let at = at.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        };
        format!(
            "audit-{}-{}-{}.{}",
            self.filter.tenant.as_deref().unwrap_or("all"),
            stamp(self.filter.from),
            stamp(self.filter.to),
            self.format.as_str()
        )
    }

    /// The filters as a query string (for logs).
    pub fn filters(&self) -> &str {
        &self.filters
    }

    /// The same export under other time limits.
    pub fn with_limits(mut self, limits: ExportLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Set once [`Export::run`] has sent every row. The HTTP body reads it when the chunks
    /// end: an export cut short must end the download with an error, not a clean end of
    /// file that would pass a truncated file off as whole.
    pub fn completion(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.completed.clone()
    }

    /// Streams the rows into `out` in chunks, then records `audit.exported`. Stops early,
    /// and records that (with why: `stopped`), when the receiver is gone (the download was
    /// cancelled), stalls, or the export runs past its total time limit.
    pub async fn run(self, out: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>) {
        let (rows, ending) = match self.stream(&out).await {
            Ok((rows, ending)) => (rows, Ok(ending)),
            Err(err) => {
                let err = AppError::from(err);
                tracing::error!(error = %err, filters = %self.filters, "audit export failed");
                let _ = out
                    .send(Err(std::io::Error::other(
                        "the export failed on the server",
                    )))
                    .await;
                (0, Err(()))
            }
        };
        let complete = ending == Ok(Ending::Complete);
        if complete {
            self.completed
                .store(true, std::sync::atomic::Ordering::Release);
        } else if ending == Ok(Ending::TimeLimit) {
            tracing::warn!(
                rows,
                limit_s = self.limits.total.as_secs(),
                filters = %self.filters,
                "audit export ended at its time limit"
            );
        }
        let mut event = self.done_event;
        if let serde_json::Value::Object(map) = &mut event.details {
            map.insert("rows".into(), rows.into());
            map.insert("complete".into(), complete.into());
            let stopped = ending.map_or("error", Ending::as_str);
            map.insert("stopped".into(), stopped.into());
        }
        if !complete {
            event = event.failed("EXPORT_INCOMPLETE");
        }
        let recorded = async { self.actor.change().await?.commit(event).await };
        if let Err(err) = recorded.await {
            tracing::error!(error = %err, "recording the end of an audit export failed");
        }
    }

    async fn stream(
        &self,
        out: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    ) -> sqlx::Result<(i64, Ending)> {
        let deadline = tokio::time::Instant::now() + self.limits.total;
        let stall = self.limits.stall;
        // Sends one chunk unless the export is past its deadline; waits at most the stall
        // limit, and never past the deadline.
        let send = move |chunk: Vec<u8>| async move {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Ending::TimeLimit);
            }
            let wait = stall.min(deadline - now);
            match tokio::time::timeout(wait, out.send(Ok(chunk))).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Ending::Stalled),
                Err(_) if wait < stall => Err(Ending::TimeLimit),
                Err(_) => Err(Ending::Stalled),
            }
        };
        let mut tx = self.actor.reader().snapshot().await?;
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT {}, e.user_agent, e.request_id, e.incident_id::text AS incident_id,
                    e.reason, e.details::text AS details, encode(e.hash, 'hex') AS hash
             FROM audit_events e LEFT JOIN tenants t ON t.id = e.tenant_id",
            super::queries::ROW_COLUMNS
        ));
        super::queries::push_where(&mut q, &self.filter, self.tenant);
        q.push(" ORDER BY e.ts, e.seq");
        let mut rows = q.build().fetch(&mut *tx);
        let new_csv = || {
            csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::with_capacity(CHUNK + 4096))
        };
        let mut csv = new_csv();
        let mut jsonl = Vec::with_capacity(CHUNK + 4096);
        if self.format == Format::Csv {
            csv.write_record(COLUMNS).map_err(csv_error)?;
        }
        let mut count = 0_i64;
        let mut cells: Vec<Option<String>> = Vec::with_capacity(COLUMNS.len());
        while let Some(row) = rows.next().await {
            let row = row?;
            cells.clear();
            let ts: OffsetDateTime = row.try_get("ts")?;
            cells.push(Some(row.try_get::<i64, _>("seq")?.to_string()));
            cells.push(Some(stamp_micros(ts)));
            for column in &COLUMNS[2..] {
                cells.push(row.try_get::<Option<String>, _>(*column)?);
            }
            match self.format {
                Format::Csv => {
                    for cell in &cells {
                        csv.write_field(neutralise(cell.as_deref().unwrap_or_default()).as_bytes())
                            .map_err(csv_error)?;
                    }
                    csv.write_record(std::iter::empty::<&[u8]>())
                        .map_err(csv_error)?;
                }
                Format::Jsonl => {
                    let mut object = serde_json::Map::with_capacity(COLUMNS.len());
                    for (name, cell) in COLUMNS.iter().zip(cells.drain(..)) {
                        let value = match (*name, cell) {
                            ("seq", Some(seq)) => seq
                                .parse::<i64>()
                                .map(serde_json::Value::from)
                                .unwrap_or_default(),
                            ("details", Some(json)) => serde_json::from_str(&json)
                                .unwrap_or(serde_json::Value::String(json)),
                            (_, Some(text)) => serde_json::Value::String(text),
                            (_, None) => serde_json::Value::Null,
                        };
                        object.insert((*name).to_owned(), value);
                    }
                    serde_json::to_writer(&mut jsonl, &object)
                        .map_err(|e| sqlx::Error::Encode(e.into()))?;
                    jsonl.push(b'\n');
                }
            }
            count += 1;
            let ready = match self.format {
                Format::Csv => csv.get_ref().len() >= CHUNK,
                Format::Jsonl => jsonl.len() >= CHUNK,
            };
            if ready {
                let chunk = match self.format {
                    Format::Csv => std::mem::replace(&mut csv, new_csv())
                        .into_inner()
                        .map_err(|e| sqlx::Error::Io(e.into_error()))?,
                    Format::Jsonl => std::mem::take(&mut jsonl),
                };
                if let Err(ending) = send(chunk).await {
                    return Ok((count, ending));
                }
            }
        }
        drop(rows);
        let rest = match self.format {
            Format::Csv => csv
                .into_inner()
                .map_err(|e| sqlx::Error::Io(e.into_error()))?,
            Format::Jsonl => jsonl,
        };
        if !rest.is_empty() {
            if let Err(ending) = send(rest).await {
                return Ok((count, ending));
            }
        } else if tokio::time::Instant::now() >= deadline {
            return Ok((count, Ending::TimeLimit));
        }
        tx.commit().await?;
        Ok((count, Ending::Complete))
    }
}

fn csv_error(err: csv::Error) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::other(err.to_string()))
}

/// `2026-11-22T10:00:00.123456Z`.
fn stamp_micros(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Reads an export URL's query: the panel's filters, `format`. Repeated `outcome=` keys
/// are kept, and a comma list is split (`outcome=deny,error`).
pub fn read_query(raw: &str) -> (AuditQuery, String) {
    let mut query = AuditQuery::default();
    let mut format = String::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "outcome" => query.outcome.extend(value.split(',').map(str::to_owned)),
            "source" => query.source = value,
            "tenant" => query.tenant = value,
            "actor" => query.actor = value,
            "action" => query.action = value,
            "target" => query.target = value,
            "code" => query.code = value,
            "ip" => query.ip = value,
            "incident" => query.incident = value,
            "window" => query.window = value,
            "from" => query.from = value,
            "to" => query.to = value,
            "format" => format = value,
            _ => {}
        }
    }
    (query, format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_other_cells_kept() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad}");
        }
        for fine in ["token.used", "1", "", "a=b", "::1"] {
            assert_eq!(neutralise(fine), fine);
        }
    }

    #[test]
    fn export_queries_read_repeated_and_listed_outcomes() {
        let (q, format) = read_query(
            "outcome=deny&outcome=error,success&source=agent_api&format=jsonl&from=2026-11-22",
        );
        assert_eq!(q.outcome, ["deny", "error", "success"]);
        assert_eq!(
            (q.source.as_str(), format.as_str(), q.from.as_str()),
            ("agent_api", "jsonl", "2026-11-22")
        );
    }
}
