//! SQL of the audit panel. The WHERE clause is built from the checked filter, with only
//! the conditions in use, so each query gets the index and partitions that fit it: the
//! window bounds `ts` (partition pruning), and outcome and source are written as literals
//! from their fixed sets so the deny/error partial index applies.

use super::{
    AuditFilter, EventDetail, EventPage, EventRow, Histogram, LastVerification, PAGE_SIZE,
};
use crate::auth::Change;
use crate::auth::Reader;
use crate::error::AppError;
use sqlx::{Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns of a table row.
pub const ROW_COLUMNS: &str = "e.seq, e.ts, t.slug AS tenant, e.source::text AS source, e.actor, \
     e.actor_name, e.action, e.outcome::text AS outcome, e.code, e.target, \
     host(e.ip) AS ip";

/// Resolves the tenant slug of `filter`.
pub async fn tenant_id(pool: &Reader, filter: &AuditFilter) -> Result<Option<Uuid>, AppError> {
    let Some(slug) = &filter.tenant else {
        return Ok(None);
    };
    Ok(Some(
        crate::domain::tenants::queries::named(pool, slug).await?.id,
    ))
}

/// Appends `WHERE …` for `filter` (and the resolved tenant) to `q`.
pub fn push_where(q: &mut QueryBuilder<'_, Postgres>, filter: &AuditFilter, tenant: Option<Uuid>) {
    q.push(" WHERE e.ts >= ")
        .push_bind(filter.from)
        .push(" AND e.ts < ")
        .push_bind(filter.to);
    if !filter.outcomes.is_empty() {
        // Literals from a fixed set: the planner proves the partial index's predicate.
        let list: Vec<String> = filter.outcomes.iter().map(|o| format!("'{o}'")).collect();
        q.push(format_args!(" AND e.outcome IN ({})", list.join(", ")));
        if !filter.outcomes.contains(&"success") {
            q.push(" AND e.outcome <> 'success'");
        }
    }
    if let Some(source) = filter.source {
        q.push(format_args!(" AND e.source = '{source}'"));
    }
    if let Some(tenant) = tenant {
        q.push(" AND e.tenant_id = ").push_bind(tenant);
    }
    if let Some(actor) = &filter.actor {
        if actor.contains('@') {
            q.push(" AND e.actor_name = ").push_bind(actor.clone());
        } else {
            q.push(" AND e.actor = ").push_bind(actor.clone());
        }
    }
    match &filter.action {
        Some((prefix, true)) => {
            let escaped = prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            q.push(" AND e.action LIKE ")
                .push_bind(format!("{escaped}%"));
        }
        Some((action, false)) => {
            q.push(" AND e.action = ").push_bind(action.clone());
        }
        None => {}
    }
    if let Some(target) = &filter.target {
        q.push(" AND e.target = ").push_bind(target.clone());
    }
    if let Some(code) = &filter.code {
        q.push(" AND e.code = ").push_bind(code.clone());
    }
    if let Some(ip) = &filter.ip {
        q.push(" AND e.ip <<= ")
            .push_bind(ip.clone())
            .push("::inet");
    }
    if let Some(incident) = filter.incident {
        q.push(" AND e.incident_id = ").push_bind(incident);
    }
}

/// A cursor: the last row's time and position ([`crate::cursor`]'s format).
pub fn encode_cursor(row: &EventRow) -> String {
    crate::cursor::encode(row.ts, &row.seq.to_string())
}

/// Reads a cursor; a malformed or out-of-range one is a clear error on `after`, not an
/// empty page or a panic.
pub fn decode_cursor(raw: &str) -> Result<(OffsetDateTime, i64), AppError> {
    Ok(crate::cursor::decode_seq(raw)?)
}

fn event_row(r: &sqlx::postgres::PgRow) -> sqlx::Result<EventRow> {
    Ok(EventRow {
        seq: r.try_get("seq")?,
        ts: r.try_get("ts")?,
        tenant: r.try_get("tenant")?,
        source: r.try_get("source")?,
        actor: r.try_get("actor")?,
        actor_name: r.try_get("actor_name")?,
        action: r.try_get("action")?,
        outcome: r.try_get("outcome")?,
        code: r.try_get("code")?,
        target: r.try_get("target")?,
        ip: r.try_get("ip")?,
    })
}

/// One page, newest first, after `cursor` when given. Keyset on (ts, seq): no OFFSET, and
/// rows written meanwhile never shift a later page.
pub async fn page(
    pool: &Reader,
    filter: &AuditFilter,
    tenant: Option<Uuid>,
    cursor: Option<(OffsetDateTime, i64)>,
) -> Result<EventPage, AppError> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {ROW_COLUMNS} FROM audit_events e LEFT JOIN tenants t ON t.id = e.tenant_id"
    ));
    push_where(&mut q, filter, tenant);
    if let Some((ts, seq)) = cursor {
        q.push(" AND (e.ts, e.seq) < (")
            .push_bind(ts)
            .push(", ")
            .push_bind(seq)
            .push(")");
    }
    q.push(" ORDER BY e.ts DESC, e.seq DESC LIMIT ")
        .push_bind(PAGE_SIZE + 1);
    let rows = q.build().fetch_all(pool).await?;
    let mut rows: Vec<EventRow> = rows.iter().map(event_row).collect::<sqlx::Result<_>>()?;
    let next = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(encode_cursor)
    } else {
        None
    };
    Ok(EventPage { rows, next })
}

/// Counts per bucket and outcome over the window.
pub async fn histogram(
    pool: &Reader,
    filter: &AuditFilter,
    tenant: Option<Uuid>,
) -> Result<Histogram, AppError> {
    let window = (filter.to - filter.from).whole_seconds().max(1);
    let bucket = super::bucket_for(window);
    let bars = (window + bucket - 1) / bucket;
    // date_bin on timestamps: extract(epoch ...) would be numeric arithmetic per row.
    let mut q = QueryBuilder::<Postgres>::new("SELECT date_bin(make_interval(secs => ");
    q.push_bind(bucket as f64)
        .push("), e.ts, ")
        .push_bind(filter.from)
        .push(") AS bin, e.outcome::text AS outcome, count(*) AS n FROM audit_events e");
    push_where(&mut q, filter, tenant);
    q.push(" GROUP BY bin, e.outcome");
    let mut counts = vec![[0_i64; 3]; bars as usize];
    for r in q.build().fetch_all(pool).await? {
        let bin: OffsetDateTime = r.try_get("bin")?;
        let outcome: String = r.try_get("outcome")?;
        let n: i64 = r.try_get("n")?;
        let at = super::OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        let bar = (bin - filter.from).whole_seconds() / bucket;
        if let Some(slot) = usize::try_from(bar).ok().and_then(|b| counts.get_mut(b)) {
            slot[at] += n;
        }
    }
    Ok(Histogram {
        from: filter.from,
        to: filter.to,
        bucket_secs: bucket,
        counts,
    })
}

/// Every field of event `seq`.
pub async fn detail(pool: &Reader, seq: i64) -> Result<EventDetail, AppError> {
    let r = sqlx::query(&format!(
        "SELECT {ROW_COLUMNS}, e.user_agent, e.request_id, e.incident_id, e.reason,
                jsonb_pretty(e.details) AS details, encode(e.prev_hash, 'hex') AS prev_hash,
                encode(e.hash, 'hex') AS hash, e.retention_months
         FROM audit_events e LEFT JOIN tenants t ON t.id = e.tenant_id WHERE e.seq = $1"
    ))
    .bind(seq)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| AppError::not_found(format!("Audit event {seq}")))?;
    Ok(EventDetail {
        row: event_row(&r)?,
        user_agent: r.try_get("user_agent")?,
        request_id: r.try_get("request_id")?,
        incident_id: r.try_get("incident_id")?,
        reason: r.try_get("reason")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        retention_months: r.try_get("retention_months")?,
    })
}

/// The last verification run and the chain head's position.
pub async fn last_verification(pool: &Reader) -> Result<(Option<LastVerification>, i64), AppError> {
    let last = sqlx::query!(
        "SELECT finished_at, to_seq, checked, broken_seq, problem FROM audit_verifications
         ORDER BY id DESC LIMIT 1"
    )
    .fetch_optional(pool)
    .await?
    .map(|v| LastVerification {
        finished_at: v.finished_at,
        to_seq: v.to_seq,
        checked: v.checked,
        broken: v.broken_seq.zip(v.problem),
    });
    let head = sqlx::query_scalar!("SELECT seq FROM audit_chain_head")
        .fetch_one(pool)
        .await?;
    Ok((last, head))
}

/// Tenants with their retention class, by name.
pub async fn tenants(pool: &Reader) -> Result<Vec<super::TenantRetention>, AppError> {
    Ok(sqlx::query_as!(
        super::TenantRetention,
        "SELECT slug, name, audit_retention_months AS months FROM tenants ORDER BY name"
    )
    .fetch_all(pool)
    .await?)
}

/// A tenant's id and retention class, locked while the class changes.
pub struct RetentionLock {
    /// The tenant.
    pub id: Uuid,
    /// Its retention class, in months.
    pub audit_retention_months: i16,
}

/// Locks the tenant with `slug` to change its retention class; `None` when there is none.
pub async fn lock_retention(
    change: &mut Change,
    slug: &str,
) -> sqlx::Result<Option<RetentionLock>> {
    sqlx::query_as!(
        RetentionLock,
        "SELECT id, audit_retention_months FROM tenants WHERE slug = $1 FOR UPDATE",
        slug
    )
    .fetch_optional(change.db())
    .await
}

/// Sets the retention class of `tenant` (locked by [`lock_retention`]) to `months`.
pub async fn set_class(change: &mut Change, tenant: Uuid, months: i16) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE tenants SET audit_retention_months = $2 WHERE id = $1",
        tenant,
        months
    )
    .execute(change.db())
    .await?;
    Ok(())
}
