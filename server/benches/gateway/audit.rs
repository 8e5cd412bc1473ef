//! `audit`: the audit log at scale. Seeds `BENCH_AUDIT_EVENTS` (default 10,000,000) events
//! over 90 days across 20 tenants, four sources and three outcomes into its own database
//! `staff_console_bench_audit` (kept between runs: a second run with the same count reuses
//! it), then measures, through one server instance over loopback:
//!
//! - the filtered first page (deny, agent API, last 7 days), p50/p95, and the same SQL run
//!   by pgbench (or, without pgbench, on a plain connection) in the same run;
//! - the histogram of that filter over 30 days, p50/p95;
//! - the 200th page of that view against the first;
//! - the CSV export of about 1,000,000 rows: rows per second and this process's memory
//!   growth while it streams;
//! - `audit verify` over every event.

use super::{connect, console_session, instance, ms, request, send, Checks, KEY};
use app::auth::{Actor, Role};
use app::domain::audit::chain::{canonical_text, chained, CanonicalFields};
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const DB: &str = "staff_console_bench_audit";
const TENANTS: usize = 20;
const DAYS: i64 = 90;
const SAMPLES: usize = 200;

fn events_wanted() -> i64 {
    std::env::var("BENCH_AUDIT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

pub fn bench_audit() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (pool, url) = database().await;
        let (addr, _) = instance(&url, Checks::Default).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cookie = console_session(addr).await;
        let n = events_wanted();
        println!("audit log at {n} events over {DAYS} days ({TENANTS} tenants), one server instance over loopback:");
        first_and_deep_pages(addr, &cookie, &url).await;
        histogram(addr, &cookie).await;
        export(addr, &cookie, &pool).await;
        verify(&pool).await;
    });
}

/// The bench database: reused when it already holds the wanted number of seeded events,
/// else made and seeded.
async fn database() -> (PgPool, String) {
    let admin_url = std::env::var("DATABASE_URL").unwrap();
    let base = admin_url
        .split('?')
        .next()
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    let url = format!("{base}/{DB}");
    let n = events_wanted();
    if let Ok(pool) = PgPool::connect(&url).await {
        let seeded: Option<i64> = sqlx::query_scalar("SELECT n FROM bench_audit_seeded")
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten();
        if seeded == Some(n) {
            server::db::migrate(&pool).await.unwrap();
            println!("(reusing {DB}: {n} events seeded by an earlier run)");
            return (pool, url);
        }
        pool.close().await;
    }
    let admin = PgPool::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {DB} WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {DB}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .unwrap();
    server::db::migrate(&pool).await.unwrap();
    seed(&pool, n).await;
    // The console's sign-in for the measurements: its event follows the seeded ones.
    let actor = Actor::command_line_unchecked(pool.clone(), "bench");
    app::panels::staff::ops::create(
        &actor,
        "bench@example.com",
        "Bench",
        Role::IncidentCommander,
        Some("gateway load test passphrase"),
    )
    .await
    .unwrap();
    let system = Actor::system(pool.clone(), "bench");
    app::domain::tokens::pepper::create_first_if_none(
        &system,
        &app::domain::tokens::pepper::MasterKey::new(KEY),
    )
    .await
    .unwrap();
    sqlx::query("CREATE TABLE bench_audit_seeded (n bigint NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO bench_audit_seeded VALUES ($1)")
        .bind(n)
        .execute(&pool)
        .await
        .unwrap();
    (pool, url)
}

/// splitmix64: cheap, deterministic spread for the synthetic fields.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes `n` chained events with COPY (triggers off: the chain is computed here, with the
/// same canonical text `audit verify` checks), then sets the chain head and vacuums.
async fn seed(pool: &PgPool, n: i64) {
    let started = Instant::now();
    let classes = [1_i16, 3, 6, 12, 24, 84];
    let mut tenants = Vec::with_capacity(TENANTS);
    for t in 0..TENANTS {
        let class = classes[t % classes.len()].max(3); // keep the 90 days
                                                       // A seed, not a change anyone made: said so, or the database refuses it unaudited.
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL staff_console.unaudited = 'benchmark seed'")
            .execute(&mut *tx)
            .await
            .unwrap();
        let id: uuid::Uuid = sqlx::query_scalar(
            "INSERT INTO tenants (slug, name, audit_retention_months) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(format!("t{t:02}"))
        .bind(format!("Tenant {t:02}"))
        .bind(class)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        tenants.push((id, class));
    }
    let now = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let from = now - time::Duration::days(DAYS);
    let mut month = from;
    while month <= now + time::Duration::days(31) {
        sqlx::query("SELECT audit_ensure_month($1)")
            .bind(month)
            .execute(pool)
            .await
            .unwrap();
        month += time::Duration::days(28);
    }
    let span_us = (now - from).whole_microseconds();

    // Generation is sequential (the chain); two COPY connections take the chunks.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let (pool, rx) = (pool.clone(), rx.clone());
        writers.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            sqlx::query("SET session_replication_role = replica")
                .execute(&mut *conn)
                .await
                .unwrap();
            loop {
                let chunk = rx.lock().await.recv().await;
                let Some(chunk) = chunk else { break };
                let mut copy = conn
                    .copy_in_raw(
                        "COPY audit_events (seq, ts, tenant_id, source, actor, actor_name, action,
                              outcome, code, target, ip, user_agent, request_id, incident_id,
                              reason, details, prev_hash, hash, retention_months) FROM STDIN",
                    )
                    .await
                    .unwrap();
                copy.send(chunk).await.unwrap();
                copy.finish().await.unwrap();
            }
        }));
    }
    let generator = tokio::task::spawn_blocking(move || {
        use std::fmt::Write as _;
        let mut prev = [0_u8; 32];
        let mut text = Vec::with_capacity(512);
        let mut chunk = String::with_capacity(32 << 20);
        let hex = |bytes: &[u8]| {
            let mut s = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                let _ = write!(s, "{b:02x}");
            }
            s
        };
        for i in 0..n {
            let seq = i + 1;
            let h = mix(seq as u64);
            let ts = from
                + time::Duration::microseconds((span_us * i128::from(i) / i128::from(n)) as i64);
            let tenant = (!h.is_multiple_of(10)).then(|| tenants[(h >> 8) as usize % TENANTS]);
            let (source, outcome) = {
                let s = (h >> 16) % 100;
                let o = (h >> 24) % 100;
                (
                    match s {
                        0..=69 => "agent_api",
                        70..=84 => "console",
                        85..=89 => "admin_api",
                        _ => "system",
                    },
                    match o {
                        0..=84 => "success",
                        85..=94 => "deny",
                        _ => "error",
                    },
                )
            };
            let token = format!("pat:{:06}", (h >> 32) % 50_000);
            let (actor, actor_name, action, code) = match (source, outcome) {
                ("agent_api", "success") => (token.clone(), None, "token.used", None),
                ("agent_api", "deny") => (
                    token.clone(),
                    None,
                    "token.failed_auth",
                    Some(if h & 1 == 0 {
                        "PAT_REVOKED"
                    } else {
                        "RATE_LIMITED"
                    }),
                ),
                ("agent_api", _) => (
                    token.clone(),
                    None,
                    "agent_api.error",
                    Some("UPSTREAM_TIMEOUT"),
                ),
                ("console", o) => (
                    format!("staff:00000000-0000-4000-8000-{:012}", (h >> 40) % 40),
                    Some(format!("ops{}@example.com", (h >> 40) % 40)),
                    "switch.flipped",
                    (o != "success").then_some("FORBIDDEN"),
                ),
                ("admin_api", o) => (
                    "admin:automation".to_owned(),
                    None,
                    "audit.exported",
                    (o != "success").then_some("ADMIN_TOKEN_INVALID"),
                ),
                (_, o) => (
                    "system".to_owned(),
                    None,
                    "switch.reverted",
                    (o != "success").then_some("INTERNAL"),
                ),
            };
            let target = if source == "agent_api" {
                Some(token.clone())
            } else {
                tenant.map(|_| format!("tenant:t{:02}", (h >> 8) as usize % TENANTS))
            };
            let ip = format!(
                "10.{}.{}.{}",
                (h >> 8) & 0xff,
                (h >> 16) & 0xff,
                (h >> 48) & 0xff
            );
            let request_id = format!("req-{seq:x}");
            let details = format!("{{\"n\": {seq}, \"route\": \"/agent/v1/whoami\"}}");
            canonical_text(
                &CanonicalFields {
                    seq,
                    ts,
                    tenant_id: tenant.map(|t| t.0),
                    source,
                    actor: &actor,
                    actor_name: actor_name.as_deref(),
                    action,
                    outcome,
                    code,
                    target: target.as_deref(),
                    ip: Some(&ip),
                    user_agent: Some("bench-agent/1.0"),
                    request_id: Some(&request_id),
                    incident_id: None,
                    reason: None,
                    details: &details,
                },
                &mut text,
            );
            let hash = chained(&prev, &text);
            let ts = ts.to_offset(time::UtcOffset::UTC);
            let _ = writeln!(
                chunk,
                "{seq}\t{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00\t{}\t{source}\t{actor}\t{}\t{action}\t{outcome}\t{}\t{}\t{ip}\tbench-agent/1.0\t{request_id}\t\\N\t\\N\t{details}\t\\\\x{}\t\\\\x{}\t{}",
                ts.year(),
                u8::from(ts.month()),
                ts.day(),
                ts.hour(),
                ts.minute(),
                ts.second(),
                ts.microsecond(),
                tenant.map_or("\\N".to_owned(), |t| t.0.to_string()),
                actor_name.as_deref().unwrap_or("\\N"),
                code.unwrap_or("\\N"),
                target.as_deref().unwrap_or("\\N"),
                hex(&prev),
                hex(&hash),
                tenant.map_or(84, |t| t.1),
            );
            prev = hash;
            if chunk.len() >= 16 << 20 {
                let full = std::mem::replace(&mut chunk, String::with_capacity(32 << 20));
                if tx.blocking_send(full.into_bytes()).is_err() {
                    break;
                }
            }
            if seq % 1_000_000 == 0 {
                eprintln!("  seeded {seq} of {n}…");
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk.into_bytes());
        }
        prev
    });
    let last = generator.await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    sqlx::query("UPDATE audit_chain_head SET seq = $1, hash = $2")
        .bind(n)
        .bind(last.to_vec())
        .execute(pool)
        .await
        .unwrap();
    let copied = started.elapsed();
    sqlx::raw_sql("VACUUM (ANALYZE) audit_events")
        .execute(pool)
        .await
        .unwrap();
    println!(
        "  seeding: {n} events written in {:.0} s (COPY, chain computed in Rust), vacuum + analyze {:.0} s",
        copied.as_secs_f64(),
        (started.elapsed() - copied).as_secs_f64()
    );
}

fn pct(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)]
}

const FILTER: &str = "query[outcome][0]=deny&query[source]=agent_api&query[window]=7d";

async fn page(
    conn: &mut super::Conn,
    addr: SocketAddr,
    cookie: &str,
    after: &str,
) -> (Duration, serde_json::Value) {
    let req = request(
        "POST",
        app::panels::audit::api::AuditPage::PATH,
        &[
            ("origin", format!("http://{addr}")),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("cookie", cookie.to_owned()),
        ],
        &format!("{FILTER}&after={after}"),
    );
    let started = Instant::now();
    let (status, _, body) = send(conn, req).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    (took, serde_json::from_str(&body).unwrap())
}

async fn first_and_deep_pages(addr: SocketAddr, cookie: &str, url: &str) {
    let mut conn = connect(addr).await;
    for _ in 0..20 {
        page(&mut conn, addr, cookie, "").await; // warm
    }
    let mut first = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        first.push(page(&mut conn, addr, cookie, "").await.0);
    }
    // The same SQL straight at PostgreSQL.
    let now = OffsetDateTime::now_utc();
    let sql = format!(
        "SELECT e.seq, e.ts, t.slug AS tenant, e.source::text AS source, e.actor, e.actor_name, e.action, \
         e.outcome::text AS outcome, e.code, e.target, host(e.ip) AS ip \
         FROM audit_events e LEFT JOIN tenants t ON t.id = e.tenant_id \
         WHERE e.ts >= '{}' AND e.ts < '{}' AND e.outcome IN ('deny') AND e.outcome <> 'success' \
         AND e.source = 'agent_api' ORDER BY e.ts DESC, e.seq DESC LIMIT 51;\n",
        app::panels::audit::rfc3339(now - time::Duration::days(7)),
        app::panels::audit::rfc3339(now)
    );
    let direct = direct_sql(url, &sql).await;
    let (p50, p95) = (ms(pct(&mut first, 0.50)), ms(pct(&mut first, 0.95)));
    println!("  first page (deny, agent API, last 7 days) through the server: p50 {p50:.2} ms, p95 {p95:.2} ms ({SAMPLES} requests)");
    if let Some((how, d50, d95)) = direct {
        println!(
            "  the same SQL {how}: p50 {d50:.2} ms, p95 {d95:.2} ms; server / direct at p95: {:.2}",
            p95 / d95
        );
    }

    // Walk to the 200th page, then time it against the first.
    let mut after = String::new();
    for _ in 1..200 {
        let (_, body) = page(&mut conn, addr, cookie, &after).await;
        after = body["next"]
            .as_str()
            .expect("200 pages of deny events")
            .to_owned();
    }
    let mut deep = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        deep.push(page(&mut conn, addr, cookie, &after).await.0);
    }
    let (d50, d95) = (ms(pct(&mut deep, 0.50)), ms(pct(&mut deep, 0.95)));
    println!(
        "  200th page: p50 {d50:.2} ms, p95 {d95:.2} ms; 200th / first at p50: {:.2}, at p95: {:.2}",
        d50 / p50,
        d95 / p95
    );
}

/// Times `sql` with pgbench when it is installed (per-transaction latencies from its log),
/// else on one plain connection. Returns (how, p50 ms, p95 ms).
async fn direct_sql(url: &str, sql: &str) -> Option<(&'static str, f64, f64)> {
    let dir = std::env::temp_dir().join(format!("audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let script = dir.join("page.sql");
    std::fs::write(&script, sql).ok()?;
    let pgbench = std::process::Command::new("sh")
        .arg("-c")
        .arg("command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n1")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| !p.is_empty());
    if let Some(pgbench) = pgbench {
        let ran = std::process::Command::new(pgbench)
            .current_dir(&dir)
            .args([
                "-n",
                "-M",
                "simple",
                "-c",
                "1",
                "-t",
                &SAMPLES.to_string(),
                "-l",
                "-f",
            ])
            .arg(&script)
            .arg(url)
            .output()
            .ok()?;
        if ran.status.success() {
            let mut lat: Vec<Duration> = std::fs::read_dir(&dir)
                .ok()?
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("pgbench_log"))
                .flat_map(|e| {
                    std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .lines()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
                .map(Duration::from_micros)
                .collect();
            let _ = std::fs::remove_dir_all(&dir);
            if !lat.is_empty() {
                return Some((
                    "by pgbench (simple protocol, one client)",
                    ms(pct(&mut lat, 0.5)),
                    ms(pct(&mut lat, 0.95)),
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let pool = PgPool::connect(url).await.ok()?;
    let mut lat = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        sqlx::raw_sql(sql).fetch_all(&pool).await.ok()?;
        lat.push(started.elapsed());
    }
    Some((
        "on a plain connection (no pgbench here)",
        ms(pct(&mut lat, 0.5)),
        ms(pct(&mut lat, 0.95)),
    ))
}

async fn histogram(addr: SocketAddr, cookie: &str) {
    let mut conn = connect(addr).await;
    let req = request(
        "POST",
        app::panels::audit::api::AuditHistogram::PATH,
        &[
            ("origin", format!("http://{addr}")),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("cookie", cookie.to_owned()),
        ],
        "query[outcome][0]=deny&query[source]=agent_api&query[window]=30d",
    );
    let mut samples = Vec::with_capacity(50);
    let mut total = 0_i64;
    for i in 0..55 {
        let started = Instant::now();
        let (status, _, body) = send(&mut conn, req.clone()).await;
        let took = started.elapsed();
        assert_eq!(status, 200, "{body}");
        if i >= 5 {
            samples.push(took);
        }
        let h: serde_json::Value = serde_json::from_str(&body).unwrap();
        total = h["counts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c.as_array().unwrap().iter().map(|n| n.as_i64().unwrap()))
            .sum();
    }
    println!(
        "  histogram (deny, agent API, 30 days: {total} events in 60 bars): p50 {:.1} ms, p95 {:.1} ms (50 requests)",
        ms(pct(&mut samples, 0.5)),
        ms(pct(&mut samples, 0.95))
    );
}

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn export(addr: SocketAddr, cookie: &str, pool: &PgPool) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    // A window holding about a million events, ending a day ago.
    let end = OffsetDateTime::now_utc() - time::Duration::days(1);
    let per_day = events_wanted() / DAYS;
    let from = end - time::Duration::seconds(1_000_000 * 86_400 / per_day.max(1));
    let expected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE ts >= $1 AND ts < $2")
            .bind(from)
            .bind(end)
            .fetch_one(pool)
            .await
            .unwrap();
    let path = format!(
        "/audit/export?from={}&to={}&format=csv",
        app::panels::audit::rfc3339(from),
        app::panels::audit::rfc3339(end)
    );
    let baseline = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut conn = connect(addr).await;
    let req = request("GET", &path, &[("cookie", cookie.to_owned())], "");
    let started = Instant::now();
    conn.stream.get_mut().write_all(&req).await.unwrap();
    let mut line = String::new();
    conn.stream.read_line(&mut line).await.unwrap();
    assert!(line.contains(" 200 "), "{line}");
    loop {
        line.clear();
        conn.stream.read_line(&mut line).await.unwrap();
        if line.trim_end().is_empty() {
            break;
        }
    }
    // Chunked body, read and dropped as it comes; CRLF ends each CSV record.
    let (mut bytes, mut records) = (0_u64, 0_u64);
    let mut buf = vec![0_u8; 64 * 1024];
    let mut last = 0_u8;
    loop {
        line.clear();
        conn.stream.read_line(&mut line).await.unwrap();
        let mut size = usize::from_str_radix(line.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        bytes += size as u64;
        while size > 0 {
            let take = size.min(buf.len());
            conn.stream.read_exact(&mut buf[..take]).await.unwrap();
            for &b in &buf[..take] {
                if b == b'\n' && last == b'\r' {
                    records += 1;
                }
                last = b;
            }
            size -= take;
        }
        let mut crlf = [0_u8; 2];
        conn.stream.read_exact(&mut crlf).await.unwrap();
    }
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let rows = records.saturating_sub(1); // the header
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(baseline);
    println!(
        "  CSV export of {rows} rows ({expected} in the window, {:.0} MiB): {:.1} s, {:.0} rows/s; process memory growth {:.1} MiB (RSS peak over the baseline, sampled every 20 ms)",
        bytes as f64 / 1_048_576.0,
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64(),
        growth as f64 / 1024.0
    );
}

async fn verify(pool: &PgPool) {
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_chain_head")
        .fetch_one(pool)
        .await
        .unwrap();
    let started = Instant::now();
    let report = app::domain::audit::chain::verify(pool, 1, head, |_| {})
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(report.broken, None, "the seeded chain must verify");
    println!(
        "  audit verify over all {} events: {:.1} s ({:.0} events/s), intact",
        report.checked,
        took.as_secs_f64(),
        report.checked as f64 / took.as_secs_f64()
    );
}
