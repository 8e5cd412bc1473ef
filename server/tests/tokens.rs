//! Token peppers in PostgreSQL: created once, sealed under ENCRYPTION_KEY, refused with the
//! wrong key.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use app::domain::tokens::pepper::{self, PepperError};
use sqlx::PgPool;

const KEY: [u8; 32] = [0x5a; 32];

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_first_pepper_is_created_once_even_by_instances_starting_together(pool: PgPool) {
    // Two instances at once: both find no pepper, both insert; the second waits on the
    // first's key and then does nothing.
    let a = app::auth::Actor::system(pool.clone(), "instance a");
    let b = app::auth::Actor::system(pool.clone(), "instance b");
    let master = app::domain::tokens::pepper::MasterKey::new(KEY);
    let (first, second) = tokio::join!(
        pepper::create_first_if_none(&a, &master),
        pepper::create_first_if_none(&b, &master)
    );
    let mut created = [first.unwrap(), second.unwrap()];
    created.sort_unstable();
    assert_eq!(created, [false, true]);
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM token_peppers")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(versions, [1]);
    let created: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'pepper.created'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(created, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn peppers_open_with_their_key_only(pool: PgPool) {
    let system = app::auth::Actor::system(pool.clone(), "test");
    pepper::create_first_if_none(&system, &app::domain::tokens::pepper::MasterKey::new(KEY))
        .await
        .unwrap();

    let ring = pepper::load(&pool, &app::domain::tokens::pepper::MasterKey::new(KEY))
        .await
        .expect("opens with its key");
    assert_eq!(ring.current.version, 1);
    assert!(ring.previous.is_none());

    let err = pepper::load(
        &pool,
        &app::domain::tokens::pepper::MasterKey::new([0x5b; 32]),
    )
    .await
    .expect_err("wrong key");
    assert!(matches!(err, PepperError::Undecryptable(1)), "{err}");
    assert!(err.to_string().contains("ENCRYPTION_KEY"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn no_pepper_means_no_ring(pool: PgPool) {
    let err = pepper::load(&pool, &app::domain::tokens::pepper::MasterKey::new(KEY))
        .await
        .expect_err("empty");
    assert!(matches!(err, PepperError::NoCurrent));
}
