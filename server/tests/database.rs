//! Integration tests of schema handling and seeding, each on a fresh PostgreSQL database.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use server::db;
use sqlx::PgPool;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_demo_tenant_is_created_once_on_an_empty_database(pool: PgPool) {
    let first = app::tenants::queries::create_demo_if_empty(&pool)
        .await
        .expect("query");
    assert_eq!(first.map(|t| t.slug), Some("demo".to_owned()));
    let second = app::tenants::queries::create_demo_if_empty(&pool)
        .await
        .expect("query");
    assert_eq!(second, None);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn no_demo_tenant_when_tenants_exist(pool: PgPool) {
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme')")
        .execute(&pool)
        .await
        .expect("insert");
    let created = app::tenants::queries::create_demo_if_empty(&pool)
        .await
        .expect("query");
    assert_eq!(created, None);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_schema_refuses_malformed_tenants(pool: PgPool) {
    for (slug, name) in [("Upper", "x"), ("-x", "x"), ("ok", "")] {
        let result = sqlx::query("INSERT INTO tenants (slug, name) VALUES ($1, $2)")
            .bind(slug)
            .bind(name)
            .execute(&pool)
            .await;
        assert!(result.is_err(), "{slug:?}/{name:?} must be refused");
    }
}

#[sqlx::test(migrations = false)]
async fn production_start_refuses_a_schema_behind_the_binary(pool: PgPool) {
    let err = db::require_current_schema(&pool)
        .await
        .expect_err("no migrations applied");
    assert!(err.to_string().contains("staff-console migrate"), "{err}");

    db::migrate(&pool).await.expect("migrate");
    db::require_current_schema(&pool)
        .await
        .expect("current after migrating");
}

#[sqlx::test(migrations = false)]
async fn migrating_twice_is_harmless(pool: PgPool) {
    db::migrate(&pool).await.expect("first");
    db::migrate(&pool).await.expect("second");
}
