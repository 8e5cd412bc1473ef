//! `audit verify`: the chain walk finds edited, removed and re-linked events, from the
//! library and from the command line.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use app::domain::audit::chain::{self, Problem};
use app::domain::audit::{NewEvent, Source};
use sqlx::PgPool;

async fn seed(pool: &PgPool, n: usize) {
    let events: Vec<NewEvent> = (0..n)
        .map(|i| {
            NewEvent::new(Source::AgentApi, format!("pat:{i}"), "token.used")
                .target(format!("pat:{i}"))
                .details(serde_json::json!({ "n": i, "note": "quote \" comma , newline \n" }))
        })
        .collect();
    common::record_events(pool, &events).await;
}

/// Runs `statement` as the superuser with triggers off: what an attacker with database
/// access could do, bypassing the append-only triggers.
async fn tamper(pool: &PgPool, statement: &str) {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(statement).execute(&mut *conn).await.unwrap();
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn verify_all(pool: &PgPool) -> chain::Report {
    let (from, to) = chain::range(pool, None, None).await.unwrap();
    chain::verify(pool, from, to, |_| {}).await.unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_intact_chain_verifies_and_the_run_is_recorded(pool: PgPool) {
    seed(&pool, 25_000).await;
    let mut seen = Vec::new();
    let report = chain::verify(&pool, 1, 25_000, |done| seen.push(done))
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, 25_000);
    // Progress rises to the total.
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&25_000));
    chain::record(
        &app::auth::Actor::command_line_unchecked(pool.clone(), "test"),
        &report,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let (to_seq, broken): (i64, Option<i64>) =
        sqlx::query_as("SELECT to_seq, broken_seq FROM audit_verifications")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((to_seq, broken), (25_000, None));
    // The run's own event extends the chain, which still verifies.
    assert_eq!(verify_all(&pool).await.broken, None);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_edited_row_is_named(pool: PgPool) {
    seed(&pool, 50).await;
    tamper(
        &pool,
        "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 12",
    )
    .await;
    let report = verify_all(&pool).await;
    assert_eq!(report.broken, Some((12, Problem::Edited)));
    assert_eq!(report.checked, 11);
    // Re-hashing the edited row does not help: the next event no longer links to it.
    tamper(
        &pool,
        "UPDATE audit_events SET hash = sha256(prev_hash || convert_to(audit_canonical(audit_events), 'UTF8')) WHERE seq = 12",
    )
    .await;
    assert_eq!(
        verify_all(&pool).await.broken,
        Some((13, Problem::Relinked))
    );
    chain::record(
        &app::auth::Actor::command_line_unchecked(pool.clone(), "test"),
        &verify_all(&pool).await,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    let (outcome, code, target): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT outcome::text, code, target FROM audit_events WHERE action = 'audit.verified'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(outcome, "error");
    assert_eq!(code.as_deref(), Some("AUDIT_CHAIN_BROKEN"));
    assert_eq!(target.as_deref(), Some("audit_event:13"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn removed_rows_are_found_in_the_middle_and_at_the_end(pool: PgPool) {
    seed(&pool, 50).await;
    tamper(&pool, "DELETE FROM audit_events WHERE seq IN (20, 21)").await;
    assert_eq!(
        verify_all(&pool).await.broken,
        Some((22, Problem::Missing { after: 19 }))
    );
    // Events removed from the end: the head still names the last one written.
    tamper(&pool, "DELETE FROM audit_events WHERE seq > 45").await;
    let report = chain::verify(&pool, 23, 50, |_| {}).await.unwrap();
    assert_eq!(report.broken, Some((46, Problem::Missing { after: 45 })));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_stretch_verifies_from_its_anchor_and_bad_ranges_are_refused(pool: PgPool) {
    seed(&pool, 30).await;
    tamper(
        &pool,
        "UPDATE audit_events SET actor = 'someone else' WHERE seq = 3",
    )
    .await;
    // A stretch after the edit holds on its own (its anchor is the stored hash before it).
    let report = chain::verify(&pool, 10, 30, |_| {}).await.unwrap();
    assert_eq!((report.checked, report.broken), (21, None));
    let from = chain::parse_time("2030-01-02", "from").unwrap();
    let to = chain::parse_time("2030-01-01", "to").unwrap();
    let err = chain::range(&pool, Some(from), Some(to)).await.unwrap_err();
    assert!(err.to_string().contains("after"), "{err}");
    let before_any = chain::parse_time("2000-01-01", "to").unwrap();
    let err = chain::range(&pool, None, Some(before_any))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No events"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_chain_cut_back_and_re_headed_below_a_verified_event_is_found(pool: PgPool) {
    seed(&pool, 40).await;
    let report = verify_all(&pool).await;
    assert_eq!(report.broken, None);
    chain::record(
        &app::auth::Actor::command_line_unchecked(pool.clone(), "test"),
        &report,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    // Cut the chain back to event 30 (the run's own event, 41, goes too) and point the
    // head at 30: on its own, the shorter chain is consistent.
    tamper(&pool, "DELETE FROM audit_events WHERE seq > 30").await;
    tamper(
        &pool,
        "UPDATE audit_chain_head SET seq = 30, hash = (SELECT hash FROM audit_events WHERE seq = 30)",
    )
    .await;
    let report = verify_all(&pool).await;
    assert!(
        matches!(report.broken, Some((40, Problem::Rewritten { .. }))),
        "{:?}",
        report.broken
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_command_names_the_edited_event(pool: PgPool) {
    seed(&pool, 20).await;
    let admin = std::env::var("DATABASE_URL").unwrap();
    let base = admin
        .split('?')
        .next()
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0
        .to_owned();
    let db = pool.connect_options().get_database().unwrap().to_owned();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_staff-console"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", format!("{base}/{db}"))
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let intact = run();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("audit chain intact: 20 events"));
    tamper(
        &pool,
        "UPDATE audit_events SET details = '{\"n\": 999}' WHERE seq = 7",
    )
    .await;
    let broken = run();
    assert_eq!(broken.status.code(), Some(1));
    let said = String::from_utf8_lossy(&broken.stderr);
    assert!(said.contains("BROKEN at event 7"), "{said}");
    assert!(said.contains("edited"), "{said}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_staff-console"))
        .args(["audit", "verify", "--from", "last tuesday"])
        .env("DATABASE_URL", format!("{base}/{db}"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_fast_canonical_text_is_the_databases_byte_for_byte(pool: PgPool) {
    let tenant = common_tenant(&pool).await;
    let odd = [
        "plain",
        "quote \" backslash \\ slash /",
        "controls \u{1} \u{8} \u{c} \n \r \t \u{1f} \u{7f}",
        "unicode é ü 漢字 🚨 \u{2028}",
        "",
    ];
    let mut events = Vec::new();
    for (i, text) in odd.iter().enumerate() {
        let mut event = NewEvent::new(Source::AdminApi, format!("pat:{text}"), "token.used")
            .reason(*text)
            .target(*text)
            .details(serde_json::json!({
                "text": text, "n": i, "f": 1.5, "big": 12345678901234_i64, "neg": -3,
                "nested": {"b": [1, null, true], "a": "x"}, "empty": {}, "list": []
            }));
        event.tenant_id = (i % 2 == 0).then_some(tenant);
        event.incident_id = (i % 2 == 1).then(uuid::Uuid::new_v4);
        event.ip = Some(
            [
                "10.1.2.3",
                "2001:db8::1",
                "::ffff:10.0.0.1",
                "10.0.0.0/8",
                "2001:db8::/32",
            ][i]
                .to_owned(),
        );
        event.user_agent = Some(format!("agent/{i} {text}"));
        event.actor_name = (i != 4).then(|| text.to_string());
        event.code = (i == 3).then(|| "CODE".to_owned());
        events.push(event);
    }
    common::record_events(&pool, &events).await;
    assert_eq!(
        chain::fast_path_differences(&pool, 0, 100).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(verify_all(&pool).await.broken, None);
}

async fn common_tenant(pool: &PgPool) -> uuid::Uuid {
    sqlx::query_scalar("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id")
        .fetch_one(&mut common::fixture(pool).await)
        .await
        .unwrap()
}

/// Moves every event `months` back in time and rebuilds the chain over the new times, as
/// if they had been written then (the superuser, triggers off).
async fn backdate(pool: &PgPool, months: i32) {
    tamper(
        pool,
        &format!(
            "DO $$
             DECLARE r audit_events; prev bytea := '\\x{zero}'; h bytea;
             BEGIN
               PERFORM audit_ensure_month(now() - make_interval(months => {months}));
               UPDATE audit_events SET ts = ts - make_interval(months => {months});
               FOR r IN SELECT * FROM audit_events ORDER BY seq LOOP
                 h := sha256(prev || convert_to(audit_canonical(r), 'UTF8'));
                 UPDATE audit_events SET prev_hash = prev, hash = h WHERE seq = r.seq;
                 prev := h;
               END LOOP;
               UPDATE audit_chain_head SET hash = prev;
             END $$",
            zero = "0".repeat(64)
        ),
    )
    .await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn retention_drops_whole_partitions_and_the_chain_still_verifies(pool: PgPool) {
    let short = common_tenant(&pool).await;
    sqlx::query("UPDATE tenants SET audit_retention_months = 1 WHERE id = $1")
        .bind(short)
        .execute(&mut common::fixture(&pool).await)
        .await
        .unwrap();
    // Interleaved: even events belong to the one-month tenant, odd ones are platform events.
    let events: Vec<NewEvent> = (0..40)
        .map(|i| {
            let mut e = NewEvent::new(Source::Console, "staff:x", format!("thing.{i}"));
            e.tenant_id = (i % 2 == 0).then_some(short);
            e
        })
        .collect();
    common::record_events(&pool, &events).await;
    backdate(&pool, 3).await;
    assert_eq!(verify_all(&pool).await.broken, None);

    let due = app::domain::audit::retention::due(&pool).await.unwrap();
    assert!(due.iter().any(|(p, _)| p.ends_with("_r1")), "{due:?}");
    assert!(!due.iter().any(|(p, _)| p.ends_with("_r84")), "{due:?}");
    let dropped = app::domain::audit::retention::apply(&app::auth::Actor::command_line_unchecked(
        pool.clone(),
        "test",
    ))
    .await
    .unwrap();
    let removed: i64 = dropped.iter().map(|d| d.removed).sum();
    assert_eq!(removed, 20);
    // Whole partitions went, the platform's events stayed, and the drop was audited.
    let (left, tenant_left): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(tenant_id) FROM audit_events WHERE action LIKE 'thing.%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((left, tenant_left), (20, 0));
    let audited: serde_json::Value = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'audit.retention_applied'
         AND (details->>'removed')::int > 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(audited["removed"], 20);
    // The chain verifies across the recorded removals...
    let report = verify_all(&pool).await;
    assert_eq!(report.broken, None, "{report:?}");
    // ...but a removal nobody recorded is still found.
    tamper(&pool, "DELETE FROM audit_events WHERE action = 'thing.21'").await;
    assert!(matches!(
        verify_all(&pool).await.broken,
        Some((_, Problem::Missing { .. }))
    ));
    // A partition that is not due cannot be dropped, even by calling the function.
    let err = sqlx::query("SELECT * FROM audit_drop_partition($1)")
        .bind(format!(
            "audit_events_{}_r84",
            time::OffsetDateTime::now_utc()
                .format(time::macros::format_description!("[year]_[month]"))
                .unwrap()
        ))
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kept until"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_forged_chain_head_setting_cannot_fork_the_chain(pool: PgPool) {
    seed(&pool, 10).await;
    // Anyone may set a session setting: pretend the head is event 3.
    let mut conn = pool.acquire().await.unwrap();
    let err = sqlx::query(
        "INSERT INTO audit_events (source, actor, action, outcome, retention_months)
         SELECT 'system', 'x', 'forged', 'success', 84
         FROM (SELECT set_config('staff_console.audit_head', '3:' || repeat('ab', 32), true)) s",
    )
    .execute(&mut *conn)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("do not continue the chain head"),
        "{err}"
    );
    drop(conn);
    assert_eq!(verify_all(&pool).await.broken, None);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 10);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_copied_event_is_named_as_a_duplicate(pool: PgPool) {
    seed(&pool, 30).await;
    tamper(
        &pool,
        "INSERT INTO audit_events SELECT * FROM audit_events WHERE seq = 20",
    )
    .await;
    assert_eq!(
        verify_all(&pool).await.broken,
        Some((20, Problem::Duplicate))
    );
    // At a stretch's anchor too: the stretch after it starts on event 20.
    let report = chain::verify(&pool, 21, 30, |_| {}).await.unwrap();
    assert_eq!(report.broken, Some((20, Problem::Duplicate)));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn partitions_are_utc_months_whatever_the_session_time_zone(pool: PgPool) {
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET TimeZone = 'America/New_York'")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SELECT audit_ensure_month('2027-03-15T12:00:00Z')")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("SET TimeZone = 'UTC'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let bound: String = sqlx::query_scalar(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'audit_events_2027_03'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(
        bound,
        "FOR VALUES FROM ('2027-03-01 00:00:00+00') TO ('2027-04-01 00:00:00+00')"
    );
}

/// A pool whose every connection acts as the application role, as the server and the
/// command line run in production.
async fn as_app_role(pool: &PgPool) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("SET ROLE staff_console_app")
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_verifier_records_its_runs_as_the_app_role_and_only_true_claims(pool: PgPool) {
    seed(&pool, 50).await;
    let app_pool = as_app_role(&pool).await;
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&app_pool)
        .await
        .unwrap();
    assert_eq!(role, "staff_console_app");
    // The verifier's own path records, through the definer function.
    let (from, to) = chain::range(&app_pool, None, None).await.unwrap();
    let report = chain::verify(&app_pool, from, to, |_| {}).await.unwrap();
    assert_eq!(report.broken, None);
    chain::record(
        &app::auth::Actor::command_line_unchecked(app_pool.clone(), "test"),
        &report,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect("the verifier records as the app role");
    let rows: Vec<(i64, Option<i64>, String)> =
        sqlx::query_as("SELECT to_seq, broken_seq, run_by FROM audit_verifications")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, [(50, None, "cli:test".to_owned())]);
    // A broken run is recorded as found.
    let mut broken = report.clone();
    broken.broken = Some((7, Problem::Edited));
    broken.last_hash = None;
    chain::record(
        &app::auth::Actor::command_line_unchecked(app_pool.clone(), "test"),
        &broken,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    // A forged claim through the function is refused: an intact run whose hash is not the
    // event's, or one past the chain head.
    let mut forged = report.clone();
    forged.last_hash = Some(vec![0; 32]);
    let err = chain::record(
        &app::auth::Actor::command_line_unchecked(app_pool.clone(), "x"),
        &forged,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect_err("a false hash was recorded");
    assert!(err.to_string().contains("does not have the hash"), "{err}");
    let mut ahead = report.clone();
    ahead.to_seq = 1_000_000;
    let err = chain::record(
        &app::auth::Actor::command_line_unchecked(app_pool.clone(), "x"),
        &ahead,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect_err("a run past the head was recorded");
    assert!(err.to_string().contains("chain head"), "{err}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_verifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    // Runs recorded as the app role verify like any other: the chain still holds.
    assert_eq!(verify_all(&pool).await.broken, None);
}
