//! The audit panel: filters, keyset pages under concurrent writes, the histogram, the
//! event detail, and the streamed export with its escaping, refusals and audit trail.
//! Real router, real PostgreSQL.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use app::auth::Role;
use app::domain::audit::{NewEvent, Outcome, Source};
use app::panels::audit::api::{AuditEvent, AuditHistogram, AuditPage};
use axum::http::StatusCode;
use axum::Router;
use common::{app, call, get_as, person, tenant, urlencode};
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;

/// 60 events: outcome cycles success/deny/error, source cycles over the four, every
/// fifth belongs to tenant acme, actors pat:0..pat:5, addresses 10.0.0.0..3.
async fn seed(pool: &PgPool) -> uuid::Uuid {
    tenant(pool, "acme", "Acme").await;
    let acme: uuid::Uuid = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(pool)
        .await
        .unwrap();
    let sources = [
        Source::Console,
        Source::AgentApi,
        Source::AdminApi,
        Source::System,
    ];
    let outcomes = [Outcome::Success, Outcome::Deny, Outcome::Error];
    let events: Vec<NewEvent> = (0..60)
        .map(|i| {
            let mut e = NewEvent::new(
                sources[i % 4],
                format!("pat:{}", i % 6),
                format!("seeded.{}", i % 2),
            );
            e.outcome = outcomes[i % 3];
            e.code = (i % 3 != 0).then(|| format!("CODE_{}", i % 3));
            e.ip = Some(format!("10.0.0.{}", i % 4));
            e.tenant_id = (i % 5 == 0).then_some(acme);
            e
        })
        .collect();
    common::record_events(pool, &events).await;
    acme
}

fn body(pairs: &[(&str, &str)], after: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut outcome = 0;
    for (k, v) in pairs {
        if *k == "outcome" {
            parts.push(format!("query[outcome][{outcome}]={}", urlencode(v)));
            outcome += 1;
        } else {
            parts.push(format!("query[{k}]={}", urlencode(v)));
        }
    }
    parts.push(format!("after={}", urlencode(after)));
    parts.join("&")
}

async fn page(
    app: &Router,
    cookie: &str,
    pairs: &[(&str, &str)],
    after: &str,
) -> serde_json::Value {
    let answer = call(app, AuditPage::PATH, cookie, &body(pairs, after)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

fn seqs(page: &serde_json::Value) -> Vec<i64> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect()
}

/// Only the seeded events (the sign-ins of the test's people are events too).
fn seeded(page: &serde_json::Value) -> usize {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"].as_str().unwrap().starts_with("seeded."))
        .count()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn filters_combine_to_exactly_the_matching_events(pool: PgPool) {
    seed(&pool).await;
    let app = app(pool.clone());
    let (_, viewer) = person(&pool, &app, Role::Viewer).await;
    let cases: [(&[(&str, &str)], usize); 9] = [
        (&[("action", "seeded.*")], 50), // first page of 60
        (&[("outcome", "deny"), ("action", "seeded.*")], 20),
        (
            &[
                ("outcome", "deny"),
                ("outcome", "error"),
                ("action", "seeded.*"),
            ],
            40,
        ),
        (&[("outcome", "deny"), ("source", "agent_api")], 5), // i ≡ 1 mod 3 and mod 4
        (&[("tenant", "acme")], 12),
        (&[("actor", "pat:3"), ("ip", "10.0.0.1")], 5), // i ≡ 3 mod 6, ≡ 1 mod 4
        (
            &[
                ("ip", "10.0.0.0/30"),
                ("code", "code_2"),
                ("action", "seeded.*"),
            ],
            20,
        ),
        (&[("action", "seeded.1"), ("window", "15m")], 30),
        (
            &[
                ("action", "seeded.*"),
                ("from", "2000-01-01"),
                ("to", "2000-01-02"),
            ],
            0,
        ),
    ];
    for (pairs, expected) in cases {
        let got = page(&app, &viewer, pairs, "").await;
        assert_eq!(seeded(&got), expected, "{pairs:?}");
    }
    // Bad input: a clear message on its field, nothing run.
    for (pairs, field, words) in [
        (&[("outcome", "denied")][..], "outcome", "Unknown outcome"),
        (&[("source", "web")][..], "source", "Unknown source"),
        (&[("from", "yesterday")][..], "from", "not a date"),
        (
            &[("from", "2026-11-22T10:00"), ("to", "2026-11-22T09:00")][..],
            "from",
            "not before",
        ),
        (
            &[("from", "2020-01-01"), ("to", "2026-01-01")][..],
            "from",
            "longer than",
        ),
        (&[("tenant", "nope")][..], "tenant", "No tenant"),
    ] {
        let answer = call(&app, AuditPage::PATH, &viewer, &body(pairs, "")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{pairs:?}");
        let error = answer.json();
        assert_eq!(error["field"], field, "{pairs:?}");
        assert!(
            error["message"].as_str().unwrap().contains(words),
            "{error}"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn pages_have_no_duplicates_or_gaps_while_events_arrive(pool: PgPool) {
    seed(&pool).await;
    let app = app(pool.clone());
    let (_, viewer) = person(&pool, &app, Role::Viewer).await;
    let filter = [("action", "seeded.*")];
    let before: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM audit_events WHERE action LIKE 'seeded.%' ORDER BY seq DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let got = page(&app, &viewer, &filter, &after).await;
        seen.extend(seqs(&got));
        // New events land while the reader pages.
        seed_more(&pool).await;
        match got["next"].as_str() {
            Some(cursor) => after = cursor.to_owned(),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a row was shown twice");
    assert_eq!(
        seen, before,
        "every row that existed was shown, newest first"
    );
    // A damaged cursor is an error, not an empty page.
    let answer = call(&app, AuditPage::PATH, &viewer, &body(&filter, "garbage")).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn seed_more(pool: &PgPool) {
    let events: Vec<NewEvent> = (0..7)
        .map(|_| NewEvent::new(Source::AgentApi, "pat:new", "seeded.late"))
        .collect();
    common::record_events(pool, &events).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_histogram_and_the_detail_agree_with_the_events(pool: PgPool) {
    seed(&pool).await;
    let app = app(pool.clone());
    let (_, viewer) = person(&pool, &app, Role::Viewer).await;
    let answer = call(
        &app,
        AuditHistogram::PATH,
        &viewer,
        &body(&[("action", "seeded.*"), ("window", "1h")], "").replace("&after=", "&unused="),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let h = answer.json();
    let mut totals = [0_i64; 3];
    for bar in h["counts"].as_array().unwrap() {
        for (i, n) in bar.as_array().unwrap().iter().enumerate() {
            totals[i] += n.as_i64().unwrap();
        }
    }
    assert_eq!(totals, [20, 20, 20]);
    assert_eq!(h["bucket_secs"], 60);

    let seq: i64 =
        sqlx::query_scalar("SELECT max(seq) FROM audit_events WHERE action LIKE 'seeded.%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let answer = call(&app, AuditEvent::PATH, &viewer, &format!("seq={seq}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let detail = answer.json();
    assert_eq!(detail["row"]["actor"], "pat:5");
    assert_eq!(detail["row"]["ip"], "10.0.0.3");
    assert_eq!(detail["hash"].as_str().unwrap().len(), 64);
    let missing = call(&app, AuditEvent::PATH, &viewer, "seq=999999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The page renders on the server: histogram bars are links, rows link to the detail.
    let html = get_as(&app, "/audit?action=seeded.*&window=1h", &viewer).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(
        html.body.contains("data-testid=\"histogram-bar\""),
        "no bars"
    );
    assert!(html.body.contains(&format!("href=\"/audit/{seq}\"")));
}

async fn export(app: &Router, cookie: &str, path: &str) -> common::Answer {
    get_as(app, path, cookie).await
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_csv_export_is_quoted_neutralised_streamed_and_audited(pool: PgPool) {
    let acme = seed(&pool).await;
    let mut tricky = NewEvent::new(Source::Console, "=HYPERLINK(\"http://evil\")", "tricky.one")
        .reason("comma, \"quotes\" and\nnewline")
        .target("+SUM(A1)")
        .details(serde_json::json!({"note": "-2"}));
    tricky.tenant_id = Some(acme);
    tricky.actor_name = Some("@admin".into());
    common::record_events(&pool, &[tricky]).await;
    let app = app(pool.clone());
    let (_, auditor) = person(&pool, &app, Role::Auditor).await;

    let csv = export(&app, &auditor, "/audit/export?action=tricky.one&format=csv").await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.body);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let disposition = csv.header("content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\"audit-all-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".csv\""), "{disposition}");
    let mut lines = csv.body.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        app::panels::audit::export::COLUMNS.join(",")
    );
    let body = &csv.body;
    assert!(
        body.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{body}"
    );
    assert!(body.contains(",'@admin,"), "{body}");
    assert!(body.contains(",'+SUM(A1),"), "{body}");
    assert!(
        body.contains("\"comma, \"\"quotes\"\" and\nnewline\""),
        "{body}"
    );
    assert!(body.contains("\"{\"\"note\"\": \"\"-2\"\"}\""), "{body}");

    // JSON Lines: one object per event, the filters applied.
    let jsonl = export(
        &app,
        &auditor,
        "/audit/export?outcome=deny&action=seeded.*&format=jsonl",
    )
    .await;
    assert_eq!(jsonl.status, StatusCode::OK, "{}", jsonl.body);
    let rows: Vec<serde_json::Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|r| r["outcome"] == "deny"));
    assert!(
        rows.windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()),
        "oldest first"
    );

    // The admin API's route exports one tenant.
    let tenant_only = export(
        &app,
        &auditor,
        "/a/acme/admin/audit/export?from=2000-01-01T00:00:00Z&to=2000-02-01T00:00:00Z&format=csv",
    )
    .await;
    assert_eq!(tenant_only.status, StatusCode::OK, "{}", tenant_only.body);
    assert_eq!(
        tenant_only
            .body
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .count(),
        1,
        "header only"
    );
    let now = time::OffsetDateTime::now_utc();
    let path = format!(
        "/a/acme/admin/audit/export?from={}&to={}&format=csv&action=seeded.*",
        app::panels::audit::rfc3339(now - time::Duration::hours(1)),
        app::panels::audit::rfc3339(now + time::Duration::minutes(1)),
    );
    let tenant_rows = export(&app, &auditor, &path).await;
    assert!(tenant_rows
        .header("content-disposition")
        .contains("audit-acme-"));
    // The 12 seeded events of acme, and none of another tenant's or the platform's.
    assert_eq!(
        tenant_rows.body.matches(",acme,").count(),
        12,
        "{}",
        tenant_rows.body
    );
    assert_eq!(
        tenant_rows
            .body
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .count(),
        13
    );

    // Each export is audited: started with its filters, finished with its row count.
    let done = common::audit_when(&pool, "audit.exported", 4).await;
    let counts: Vec<i64> = done
        .iter()
        .map(|(_, _, _, d)| d["rows"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [1, 20, 0, 12]);
    let started = common::audit(&pool, "audit.export_started").await;
    assert_eq!(started.len(), 4);
    assert!(started[1].3["filters"]
        .as_str()
        .unwrap()
        .contains("outcome=deny"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn exports_are_refused_to_viewers_and_bad_requests_are_explained(pool: PgPool) {
    seed(&pool).await;
    let app = app(pool.clone());
    let (_, viewer) = person(&pool, &app, Role::Viewer).await;
    let (_, auditor) = person(&pool, &app, Role::Auditor).await;
    let refused = export(&app, &viewer, "/audit/export?format=csv").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!refused.body.contains("seq,"));
    let anonymous = common::send(
        &app,
        axum::http::Request::get("/a/acme/admin/audit/export?format=csv")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    for (path, words) in [
        (
            "/audit/export?from=2026-11-22T10:00&to=2026-11-22T09:00",
            "not before",
        ),
        ("/audit/export?from=someday", "not a date"),
        ("/audit/export?outcome=maybe", "Unknown outcome"),
        ("/audit/export?source=web", "Unknown source"),
        (
            "/audit/export?from=2026-01-01&to=2026-11-01",
            "longer than 93 days",
        ),
        ("/audit/export?format=xlsx", "Unknown format"),
        ("/a/nope/admin/audit/export", "No tenant"),
    ] {
        let answer = export(&app, &auditor, path).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(answer.body.contains(words), "{path}: {}", answer.body);
    }
    // Nothing ran: no export was started, and the viewer's refusal was audited.
    assert!(common::audit(&pool, "audit.export_started")
        .await
        .is_empty());
    let refusals = common::audit(&pool, "authorization.refused").await;
    assert!(refusals
        .iter()
        .any(|(_, code, _, d)| code.as_deref() == Some("FORBIDDEN")
            && d["permission"] == "export_audit"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_admin_sets_a_tenants_retention_and_new_events_follow_it(pool: PgPool) {
    use app::panels::audit::api::SetAuditRetention;
    let acme = seed(&pool).await;
    let app = app(pool.clone());
    let (_, auditor) = person(&pool, &app, Role::Auditor).await;
    let (_, admin) = person(&pool, &app, Role::Admin).await;
    let refused = call(
        &app,
        SetAuditRetention::PATH,
        &auditor,
        "tenant=acme&months=3&reason=x",
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    for (body, field) in [
        ("tenant=acme&months=2&reason=x", "months"),
        ("tenant=acme&months=3&reason=+", "reason"),
        ("tenant=nope&months=3&reason=x", "tenant"),
    ] {
        let answer = call(&app, SetAuditRetention::PATH, &admin, body).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.json()["field"], field, "{body}");
    }
    assert!(common::audit(&pool, "tenant.audit_retention_changed")
        .await
        .is_empty());
    let done = call(
        &app,
        SetAuditRetention::PATH,
        &admin,
        "tenant=acme&months=3&reason=contract+ends",
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let events = common::audit(&pool, "tenant.audit_retention_changed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (
            events[0].3["from_months"].as_i64(),
            events[0].3["to_months"].as_i64()
        ),
        (Some(12), Some(3))
    );
    // The same again is a conflict, not a second event.
    let again = call(
        &app,
        SetAuditRetention::PATH,
        &admin,
        "tenant=acme&months=3&reason=again",
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // Events written from now on go to the three-month partitions; older ones stay put.
    let mut e = NewEvent::new(Source::Console, "staff:x", "after.change");
    e.tenant_id = Some(acme);
    common::record_events(&pool, &[e]).await;
    let classes: Vec<(String, i16)> = sqlx::query_as(
        "SELECT action, retention_months FROM audit_events
         WHERE tenant_id = $1 AND action IN ('after.change', 'seeded.0') ORDER BY seq DESC LIMIT 2",
    )
    .bind(acme)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        classes,
        [("after.change".to_owned(), 3), ("seeded.0".to_owned(), 12)]
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_retention_change_is_kept_as_long_as_the_longer_class(pool: PgPool) {
    use app::panels::audit::api::SetAuditRetention;
    let acme = seed(&pool).await;
    let app = app(pool.clone());
    let (_, admin) = person(&pool, &app, Role::Admin).await;
    let set = |months: &'static str| {
        let app = app.clone();
        let admin = admin.clone();
        async move {
            let body = format!("tenant=acme&months={months}&reason=contract");
            let answer = call(&app, SetAuditRetention::PATH, &admin, &body).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        }
    };
    // Shortened from 12 months to 1: the evidence stays in the 12-month class, not in
    // the one-month class it would be dropped with.
    set("1").await;
    // Lengthened from 1 to 24: the event goes in the new, longer class.
    set("24").await;
    let classes: Vec<(i16, serde_json::Value)> = sqlx::query_as(
        "SELECT retention_months, details FROM audit_events
         WHERE action = 'tenant.audit_retention_changed' AND tenant_id = $1 ORDER BY seq",
    )
    .bind(acme)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(classes.len(), 2);
    assert_eq!(
        (
            classes[0].1["from_months"].as_i64(),
            classes[0].1["to_months"].as_i64()
        ),
        (Some(12), Some(1))
    );
    assert_eq!(
        classes[0].0, 12,
        "shortening keeps its event in the old class"
    );
    assert_eq!(
        classes[1].0, 24,
        "lengthening keeps its event in the new class"
    );
    // The change itself took effect.
    let months: i16 =
        sqlx::query_scalar("SELECT audit_retention_months FROM tenants WHERE id = $1")
            .bind(acme)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(months, 24);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_crafted_page_cursor_is_a_validation_message_not_a_panic(pool: PgPool) {
    seed(&pool).await;
    let app = app(pool.clone());
    let (_, viewer) = person(&pool, &app, Role::Viewer).await;
    // i128::MAX microseconds: multiplied by 1000 unchecked, this panicked a debug build.
    let overflowing = format!("{}.1", i128::MAX);
    for after in [
        overflowing.as_str(),
        "9223372036854775807.1",
        "-5.1",
        "1800000000000000.-1",
        "junk",
    ] {
        let answer = call(&app, AuditPage::PATH, &viewer, &body(&ALL, after)).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{after}: {}",
            answer.body
        );
        let json = answer.json();
        assert_eq!(json["field"], "after", "{after}");
        assert!(
            json["message"].as_str().unwrap().contains("damaged"),
            "{after}: {json}"
        );
    }
    // The page itself, as a link would open it, shows the message and renders.
    let page = get_as(
        &app,
        &format!("/audit?after={}", urlencode(&overflowing)),
        &viewer,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("This page link is damaged"),
        "{}",
        page.body
    );
    // A good cursor still pages.
    let first = page_of(&app, &viewer).await;
    let next = first["next"].as_str().expect("a second page");
    let second = call(&app, AuditPage::PATH, &viewer, &body(&ALL, next)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
}

/// Every seeded event.
const ALL: [(&str, &str); 1] = [("action", "seeded.*")];

async fn page_of(app: &Router, cookie: &str) -> serde_json::Value {
    page(app, cookie, &ALL, "").await
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_export_past_its_total_time_limit_ends_and_is_audited_incomplete(pool: PgPool) {
    use app::panels::audit::export::{self, ExportLimits};
    use app::panels::audit::AuditQuery;
    seed(&pool).await;
    let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "test");
    let query = AuditQuery {
        action: "seeded.*".into(),
        ..AuditQuery::default()
    };
    // A client that reads every chunk at once, so the stall limit never triggers: only the
    // total limit (zero here) can end it.
    let run = |limits: ExportLimits| {
        let actor = actor.clone();
        let query = query.clone();
        async move {
            let export = export::begin(&actor, &query, "csv", None)
                .await
                .unwrap()
                .with_limits(limits);
            let completed = export.completion();
            let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
            let task = tokio::spawn(export.run(sender));
            let mut bytes = 0;
            while let Some(chunk) = receiver.recv().await {
                bytes += chunk.unwrap().len();
            }
            task.await.unwrap();
            (bytes, completed.load(std::sync::atomic::Ordering::Acquire))
        }
    };
    let (_, completed) = run(ExportLimits {
        stall: std::time::Duration::from_secs(30),
        total: std::time::Duration::ZERO,
    })
    .await;
    assert!(!completed, "an export past its time limit is not complete");
    // The same export under the default limits runs to the end.
    let (bytes, completed) = run(ExportLimits::default()).await;
    assert!(completed && bytes > 0);
    let done = common::audit(&pool, "audit.exported").await;
    assert_eq!(done.len(), 2);
    let (outcome, code, _, details) = &done[0];
    assert_eq!(details["complete"], false, "{details}");
    assert_eq!(details["stopped"], "time_limit", "{details}");
    assert_eq!(
        (outcome.as_str(), code.as_deref()),
        ("error", Some("EXPORT_INCOMPLETE"))
    );
    assert_eq!(done[1].3["complete"], true);
    assert_eq!(done[1].3["rows"], 60);
    assert_eq!(export::TOTAL, std::time::Duration::from_secs(1800));
}
