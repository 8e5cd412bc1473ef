//! A rolling upgrade: the new release's migrations are applied while instances of the old
//! one keep serving (README, Production). The old binary is this one; the new release's
//! migration is a fixture of the kind the rule allows (`tests/fixtures/expand_migration.sql`:
//! a new table, a new column with a default, a new index, a new grant), applied the way the
//! new binary's `staff-console migrate` would, from a folder holding every migration this
//! binary knows plus the new one.
//!
//! The control: a migration the rule forbids (a rename) breaks the same old instance, so
//! the test can tell the two apart.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use axum::http::StatusCode;
use common::{app, get_as, sign_in, staff};
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const EXPAND: &str = include_str!("fixtures/expand_migration.sql");
const CONTRACT: &str = "ALTER TABLE staff RENAME COLUMN password_hash TO password_digest;";

/// A folder with every migration of this binary plus `next` as the newest: what the next
/// release's binary embeds.
fn next_release(next: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sc-next-release-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for entry in std::fs::read_dir(ours).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.join("29991231000001_next_release.sql"), next).unwrap();
    dir
}

/// Applies the next release's migrations as its `staff-console migrate` would.
async fn migrate_to_next_release(pool: &PgPool, next: &str) {
    let dir = next_release(next);
    let migrator = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .expect("read migrations");
    migrator.run(pool).await.expect("apply the next release");
    std::fs::remove_dir_all(dir).ok();
}

/// Signs in and opens the console's home page: the staff table, the session store, the
/// audit log (the sign-in is audited) and a page render. Whether it all worked.
async fn sign_in_and_look(app: &axum::Router, email: &str) -> Result<(), String> {
    let (answer, cookie) = sign_in(app, email, "rollout password, long enough").await;
    let cookie = cookie.ok_or_else(|| format!("sign-in: {} {}", answer.status, answer.body))?;
    let page = get_as(app, "/", &cookie).await;
    if page.status != StatusCode::OK {
        return Err(format!("home page: {}", page.status));
    }
    Ok(())
}

const EMAIL: &str = "upgrade-check@example.com";

/// This release's schema, a staff member, and an instance of this binary that serves them.
async fn old_instance(pool: &PgPool) -> axum::Router {
    server::db::migrate(pool)
        .await
        .expect("this release's schema");
    staff(
        pool,
        EMAIL,
        app::auth::Role::Operator,
        "rollout password, long enough",
    )
    .await;
    let old = app(pool.clone());
    sign_in_and_look(&old, EMAIL).await.expect("before");
    old
}

/// Waits until `served` passes `count` (at most 60 s: a stuck instance fails the test).
async fn served_beyond(served: &AtomicU64, count: u64) {
    let waited = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while served.load(Ordering::Relaxed) <= count {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the old instance served nothing past {count} requests in 60 s"
    );
}

#[sqlx::test(migrations = false)]
async fn the_old_binary_keeps_serving_while_an_expand_migration_is_applied(pool: PgPool) {
    let old = old_instance(&pool).await;

    // Traffic on the old instance all through the migration.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let traffic = tokio::spawn({
        let (old, stop, served, failed) =
            (old.clone(), stop.clone(), served.clone(), failed.clone());
        async move {
            let mut first_failure = None;
            while !stop.load(Ordering::Relaxed) {
                match sign_in_and_look(&old, EMAIL).await {
                    Ok(()) => served.fetch_add(1, Ordering::Relaxed),
                    Err(err) => {
                        first_failure.get_or_insert(err);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            first_failure
        }
    });
    // Served before the migration starts and after it ends, however slow the machine: the
    // counts are awaited, not slept for.
    served_beyond(&served, 0).await;
    migrate_to_next_release(&pool, EXPAND).await;
    let by_the_end = served.load(Ordering::Relaxed);
    served_beyond(&served, by_the_end).await;
    stop.store(true, Ordering::Relaxed);
    let first_failure = traffic.await.unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "the old instance failed during the migration: {first_failure:?}"
    );
    let applied: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = 29991231000001)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(applied, "the next release's migration was applied");

    // After it, the old instance still serves, and an old instance restarting meanwhile
    // starts: the schema is ahead of it, not behind (with AUTO_MIGRATE too).
    sign_in_and_look(&old, EMAIL).await.expect("after");
    server::db::require_current_schema(&pool)
        .await
        .expect("an old instance starts on the newer schema");
    server::db::migrate(&pool)
        .await
        .expect("an old instance with AUTO_MIGRATE starts on the newer schema");
    sign_in_and_look(&app(pool.clone()), EMAIL)
        .await
        .expect("a restarted old instance serves");
}

#[sqlx::test(migrations = false)]
async fn a_contract_migration_breaks_the_old_binary(pool: PgPool) {
    let old = old_instance(&pool).await;
    migrate_to_next_release(&pool, CONTRACT).await;
    let err = sign_in_and_look(&old, EMAIL)
        .await
        .expect_err("a renamed column breaks the old binary's queries");
    assert!(err.starts_with("sign-in"), "{err}");
}

/// The deadlock the traffic above once hit (in a CI run). A sign-in had locked its staff
/// row (`FOR UPDATE`: the table's ROW SHARE lock) when the migration created a table
/// referencing `staff` (SHARE ROW EXCLUSIVE on it, which ROW SHARE lets through); the
/// sign-in's `UPDATE` then waited for ROW EXCLUSIVE behind the migration, and the
/// migration's `ALTER TABLE staff` for ACCESS EXCLUSIVE behind the sign-in. PostgreSQL ended
/// one of them. Driven step by step here: the sign-in's lock, the migration waiting, then
/// the sign-in's update and commit; both must go through.
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_sign_in_holding_its_row_lets_a_waiting_migration_wait(pool: PgPool) {
    let id = staff(
        &pool,
        EMAIL,
        app::auth::Role::Operator,
        "rollout password, long enough",
    )
    .await;
    let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "test");
    let mut change = actor.change().await.unwrap();
    app::auth::queries::lock_for_sign_in(&mut change, id)
        .await
        .unwrap()
        .expect("the account");
    let migration = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            sqlx::query("CREATE TABLE next_release (staff_id uuid NOT NULL REFERENCES staff (id))")
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "ALTER TABLE staff ADD COLUMN next_release_flag boolean NOT NULL DEFAULT false",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
    });
    common::until_a_session_waits_for_a_lock(&pool, "the migration never waited").await;
    app::auth::queries::record_success(&mut change, id)
        .await
        .expect("the sign-in's update goes through, no deadlock");
    change.commit(actor.event("test.sign_in")).await.unwrap();
    migration
        .await
        .unwrap()
        .expect("then the migration, no deadlock");
}
