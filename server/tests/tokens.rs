//! Token peppers in PostgreSQL: created once, sealed under ENCRYPTION_KEY, refused with the
//! wrong key.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use app::integrations::pepper::{self, PepperError};
use sqlx::PgPool;

const KEY: [u8; 32] = [0x5a; 32];

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_first_pepper_is_created_once_even_by_instances_starting_together(pool: PgPool) {
    let mut a = pool.begin().await.unwrap();
    let mut b = pool.begin().await.unwrap();
    let first = pepper::create_first_if_none(&mut a, &KEY).await.unwrap();
    a.commit().await.unwrap();
    let second = pepper::create_first_if_none(&mut b, &KEY).await.unwrap();
    b.commit().await.unwrap();
    assert!(first);
    assert!(!second);
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
    let mut tx = pool.begin().await.unwrap();
    pepper::create_first_if_none(&mut tx, &KEY).await.unwrap();
    tx.commit().await.unwrap();

    let ring = pepper::load(&pool, &KEY).await.expect("opens with its key");
    assert_eq!(ring.current.version, 1);
    assert!(ring.previous.is_none());

    let err = pepper::load(&pool, &[0x5b; 32])
        .await
        .expect_err("wrong key");
    assert!(matches!(err, PepperError::Undecryptable(1)), "{err}");
    assert!(err.to_string().contains("ENCRYPTION_KEY"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn no_pepper_means_no_ring(pool: PgPool) {
    let err = pepper::load(&pool, &KEY).await.expect_err("empty");
    assert!(matches!(err, PepperError::NoCurrent));
}
