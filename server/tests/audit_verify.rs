//! `audit verify`: the chain walk finds edited, removed and re-linked events, from the
//! library and from the command line.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use app::audit::verify::{self, Problem};
use app::audit::{queries::record_many, NewEvent, Source};
use sqlx::PgPool;

async fn seed(pool: &PgPool, n: usize) {
    let events: Vec<NewEvent> = (0..n)
        .map(|i| {
            NewEvent::new(Source::AgentApi, format!("pat:{i}"), "token.used")
                .target(format!("pat:{i}"))
                .details(serde_json::json!({ "n": i, "note": "quote \" comma , newline \n" }))
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    record_many(&mut conn, &events).await.unwrap();
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

async fn verify_all(pool: &PgPool) -> verify::Report {
    let (from, to) = verify::range(pool, None, None).await.unwrap();
    verify::verify(pool, from, to, |_| {}).await.unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_intact_chain_verifies_and_the_run_is_recorded(pool: PgPool) {
    seed(&pool, 25_000).await;
    let mut seen = Vec::new();
    let report = verify::verify(&pool, 1, 25_000, |done| seen.push(done))
        .await
        .unwrap();
    assert_eq!(report.broken, None);
    assert_eq!(report.checked, 25_000);
    // Progress after each batch.
    assert_eq!(seen, [20_000, 25_000]);
    verify::record(&pool, &report, time::OffsetDateTime::now_utc(), "cli:test")
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
    verify::record(
        &pool,
        &verify_all(&pool).await,
        time::OffsetDateTime::now_utc(),
        "cli:test",
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
    let report = verify::verify(&pool, 23, 50, |_| {}).await.unwrap();
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
    let report = verify::verify(&pool, 10, 30, |_| {}).await.unwrap();
    assert_eq!((report.checked, report.broken), (21, None));
    let from = verify::parse_time("2030-01-02", "from").unwrap();
    let to = verify::parse_time("2030-01-01", "to").unwrap();
    let err = verify::range(&pool, Some(from), Some(to))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("after"), "{err}");
    let before_any = verify::parse_time("2000-01-01", "to").unwrap();
    let err = verify::range(&pool, None, Some(before_any))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No events"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_chain_cut_back_and_re_headed_below_a_verified_event_is_found(pool: PgPool) {
    seed(&pool, 40).await;
    let report = verify_all(&pool).await;
    assert_eq!(report.broken, None);
    verify::record(&pool, &report, time::OffsetDateTime::now_utc(), "cli:test")
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
