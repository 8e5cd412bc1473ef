//! The audit log's guarantees, checked in PostgreSQL itself.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use app::auth::Actor;
use app::domain::audit::{NewEvent, Source};
use sqlx::PgPool;

fn event(n: usize) -> NewEvent {
    NewEvent::new(Source::System, "test", "test.event")
        .target(format!("thing:{n}"))
        .details(serde_json::json!({ "n": n }))
}

async fn insert_one(pool: &PgPool) {
    let actor = Actor::command_line_unchecked(pool.clone(), "test");
    let change = actor.change().await.unwrap();
    change.commit(event(0)).await.unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn events_cannot_be_updated_deleted_or_truncated(pool: PgPool) {
    insert_one(&pool).await;
    for statement in [
        "UPDATE audit_events SET action = 'edited'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let err = sqlx::query(statement)
            .execute(&pool)
            .await
            .expect_err(statement);
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_application_role_may_append_but_not_truncate_or_rewrite(pool: PgPool) {
    let actor = Actor::command_line_unchecked(pool.clone(), "test");
    let mut change = actor.change().await.unwrap();
    sqlx::query("SET LOCAL ROLE staff_console_app")
        .execute(change.db())
        .await
        .unwrap();
    change.commit(event(1)).await.expect("the app role appends");

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE staff_console_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("TRUNCATE audit_events")
        .execute(&mut *tx)
        .await
        .expect_err("truncate");
    assert!(err.to_string().contains("permission denied"), "{err}");
    tx.rollback().await.unwrap();

    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE staff_console_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("UPDATE audit_chain_head SET seq = 0")
        .execute(&mut *tx)
        .await
        .expect_err("head");
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn concurrent_writers_extend_one_unbroken_chain(pool: PgPool) {
    let writers = 8;
    let each = 40;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let actor = Actor::command_line_unchecked(pool.clone(), "test");
        tasks.push(tokio::spawn(async move {
            for i in 0..each {
                let change = actor.change().await.unwrap();
                change.commit(event(w * 1000 + i)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (count, min, max): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), min(seq), max(seq) FROM audit_events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (count, min, max),
        ((writers * each) as i64, 1, (writers * each) as i64)
    );
    let broken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT seq, hash, prev_hash, lag(hash) OVER (ORDER BY seq) AS previous,
                    sha256(prev_hash || convert_to(audit_canonical(e), 'UTF8')) AS recomputed
             FROM audit_events e
         ) c
         WHERE hash <> recomputed
            OR (seq > 1 AND prev_hash <> previous)
            OR (seq = 1 AND prev_hash <> '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(broken, 0, "every event links to the one before it");
    let head_matches: bool = sqlx::query_scalar(
        "SELECT h.hash = e.hash AND h.seq = e.seq FROM audit_chain_head h
         JOIN audit_events e ON e.seq = (SELECT max(seq) FROM audit_events)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(head_matches);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_change_without_its_commit_leaves_no_trace(pool: PgPool) {
    let actor = Actor::command_line_unchecked(pool.clone(), "test");
    {
        let mut change = actor.change().await.unwrap();
        sqlx::query("INSERT INTO tenants (slug, name) VALUES ('ghost', 'Ghost')")
            .execute(change.db())
            .await
            .unwrap();
        // Dropped without commit: rolled back, change and event alike.
    }
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tenants, 0);

    let mut change = actor.change().await.unwrap();
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ('real', 'Real')")
        .execute(change.db())
        .await
        .unwrap();
    change
        .commit(actor.event("tenant.created").target("tenant:real"))
        .await
        .unwrap();
    let (tenants, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM audit_events WHERE action = 'tenant.created')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((tenants, events), (1, 1));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn definer_functions_search_pg_temp_last(pool: PgPool) {
    // Every function that runs with its owner's rights, and every function that pins a
    // search path at all: pg_temp must be named, and last, or a caller's temporary table
    // named like one of ours is searched first.
    let functions: Vec<(String, bool, Vec<String>)> = sqlx::query_as(
        "SELECT p.proname::text, p.prosecdef, coalesce(p.proconfig, '{}')
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
           AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c
                                       WHERE c LIKE 'search_path=%'))
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let names: Vec<&str> = functions.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in [
        "audit_drop_partition",
        "audit_due_partitions",
        "audit_ensure_month",
        "audit_ensure_partitions",
        "audit_events_chain",
        "audit_events_chain_head",
        "audit_record_verification",
        "audit_retention_for",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for (name, definer, config) in &functions {
        let path = config
            .iter()
            .find_map(|c| c.strip_prefix("search_path="))
            .unwrap_or_else(|| panic!("{name} (definer: {definer}) pins no search_path"));
        let parts: Vec<&str> = path.split(',').map(str::trim).collect();
        assert_eq!(parts.last(), Some(&"pg_temp"), "{name}: search_path={path}");
        assert_eq!(
            parts.first(),
            Some(&"pg_catalog"),
            "{name}: search_path={path}"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_application_role_cannot_write_verification_runs_itself(pool: PgPool) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE staff_console_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO audit_verifications (started_at, from_seq, to_seq, checked, run_by)
         VALUES (now(), 1, 1000000, 1000000, 'forger')",
    )
    .execute(&mut *tx)
    .await
    .expect_err("the app role inserted a verification row");
    assert!(err.to_string().contains("permission denied"), "{err}");
    tx.rollback().await.unwrap();
    // Nor edit one.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE staff_console_app")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("UPDATE audit_verifications SET broken_seq = NULL")
        .execute(&mut *tx)
        .await
        .expect_err("update");
    assert!(err.to_string().contains("permission denied"), "{err}");
}
