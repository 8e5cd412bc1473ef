//! ENCRYPTION_KEY rotation (issue 16, runbook 004): with the replaced key as
//! ENCRYPTION_KEY_PREVIOUS every secret still opens; `reseal` moves each one to the new key
//! in audited batches and can run again; afterwards the new key alone opens everything, and
//! recovery codes, which are hashes, are reported rather than moved.

use crate::common;
use app::auth::{Actor, Role};
use app::domain::factors::totp::TotpSecret;
use app::domain::secrets;
use app::domain::tokens::pepper::{self, MasterKey};
use sqlx::PgPool;

const OLD: [u8; 32] = [0x11; 32];
const NEW: [u8; 32] = [0x22; 32];

/// A database set up under `OLD`: a pepper, a tenant with an active and a staged key, and
/// a staff member with an authenticator app and recovery codes.
async fn set_up_under_old(pool: &PgPool) -> (uuid::Uuid, String) {
    let old = MasterKey::new(OLD);
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    pepper::create_first_if_none(&cli, &old).await.unwrap();
    let form = app::panels::tenants::NewTenantForm {
        slug: "acme".into(),
        name: "Acme".into(),
        retention_months: "12".into(),
        max_token_days: "90".into(),
        audiences: "agent-api".into(),
        algorithm: "".into(),
    };
    let (_, kid) = app::panels::tenants::ops::create(&cli, &old, &form)
        .await
        .unwrap();
    app::panels::keys::ops::stage(&cli, &old, "acme", "next")
        .await
        .unwrap();
    let staff = common::staff(
        pool,
        "mfa@example.com",
        Role::Operator,
        "a long passphrase 1",
    )
    .await;
    let (nonce, sealed) = TotpSecret::from_bytes(&[7u8; 20]).seal(&old, staff);
    let mut fx = common::fixture(pool).await;
    sqlx::query("INSERT INTO staff_totp (staff_id, nonce, secret_sealed, confirmed_at) VALUES ($1, $2, $3, now())")
        .bind(staff)
        .bind(&nonce[..])
        .bind(&sealed)
        .execute(&mut fx)
        .await
        .unwrap();
    let code_hash = app::domain::factors::recovery::hash(&old, "k7m2q-9xw4d");
    sqlx::query("INSERT INTO staff_recovery_codes (staff_id, code_hash, key_fingerprint) VALUES ($1, $2, $3)")
        .bind(staff)
        .bind(&code_hash[..])
        .bind(&old.fingerprint()[..])
        .execute(&mut fx)
        .await
        .unwrap();
    (staff, kid)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_rotation_opens_under_either_key_and_reseal_moves_everything_to_the_new_one(
    pool: PgPool,
) {
    let (staff, kid) = set_up_under_old(&pool).await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");

    // The new key alone opens nothing that was sealed before.
    let new_only = MasterKey::new(NEW);
    assert!(pepper::load(&pool, &new_only).await.is_err());
    let census = secrets::census(&pool, &new_only).await.unwrap();
    assert_eq!(census.peppers.unopened, 1);
    assert_eq!(census.unopened().as_deref(), Some("token pepper version 1"));

    // With the old one beside it, everything opens, and the census says where it is.
    let rotating = MasterKey::with_previous(NEW, Some(OLD));
    pepper::load(&pool, &rotating)
        .await
        .expect("opens under the previous key");
    app::panels::keys::ops::check_all_open(&pool, &rotating)
        .await
        .expect("signing keys open");
    let census = secrets::census(&pool, &rotating).await.unwrap();
    assert_eq!(census.unopened(), None);
    assert_eq!(census.peppers.previous, 1);
    assert_eq!(census.signing_keys.previous, 2);
    assert_eq!(census.totp.previous, 1);
    assert_eq!(census.on_previous(), 4);
    assert_eq!(census.recovery_staff_previous, 1);
    assert!(census.recovery_note().contains("1 staff member"));
    // A recovery code made under the old key still works during the rotation.
    assert_eq!(
        app::domain::factors::recovery::hashes(&rotating, "k7m2q-9xw4d")[1],
        app::domain::factors::recovery::hash(&MasterKey::new(OLD), "k7m2q-9xw4d").to_vec()
    );

    // Something sealed during the rotation is sealed under the new key.
    app::panels::keys::ops::stage(&cli, &rotating, "acme", "during the rotation")
        .await
        .unwrap();
    assert_eq!(
        secrets::census(&pool, &rotating)
            .await
            .unwrap()
            .signing_keys,
        secrets::Count {
            current: 1,
            previous: 2,
            ..Default::default()
        }
    );

    let mut heard = Vec::new();
    let done = secrets::reseal(&cli, &pool, &rotating, |kind, n| {
        heard.push((kind.to_owned(), n))
    })
    .await
    .unwrap();
    assert_eq!(
        (done.peppers, done.signing_keys, done.totp, done.skipped),
        (1, 2, 1, 0)
    );
    assert_eq!(
        heard,
        vec![
            ("token_peppers".to_owned(), 1),
            ("signing_keys".to_owned(), 2),
            ("staff_totp".to_owned(), 1)
        ]
    );
    let events = common::audit(&pool, "secrets.resealed").await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].3["count"], 2);
    assert!(events[1].3["secrets"][0]
        .as_str()
        .unwrap()
        .starts_with("signing_key:"));
    assert!(!events.iter().any(|e| e.3.to_string().contains("sealed\"")));

    // Run again: nothing left to move.
    let again = secrets::reseal(&cli, &pool, &rotating, |_, _| {})
        .await
        .unwrap();
    assert_eq!((again.peppers, again.signing_keys, again.totp), (0, 0, 0));
    assert_eq!(common::audit(&pool, "secrets.resealed").await.len(), 3);

    // The new key alone now opens every secret, and the same secrets.
    let census = secrets::census(&pool, &new_only).await.unwrap();
    assert_eq!(census.on_previous(), 0);
    assert_eq!(census.unopened(), None);
    assert_eq!(census.signing_keys.current, 3);
    pepper::load(&pool, &new_only)
        .await
        .expect("opens under the new key");
    let (nonce, sealed): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT nonce, secret_sealed FROM staff_totp WHERE staff_id = $1")
            .bind(staff)
            .fetch_one(&pool)
            .await
            .unwrap();
    let secret = TotpSecret::open(&new_only, staff, &nonce, &sealed).expect("TOTP opens");
    assert_eq!(
        secret.code_at(1_000_000),
        TotpSecret::from_bytes(&[7u8; 20]).code_at(1_000_000)
    );
    let verifier = app::domain::gateway::verify::Verifier::new(pool.clone(), new_only.clone());
    verifier.keys().reload().await.unwrap();
    let snapshot = verifier.keys().snapshot();
    let signer = snapshot.tenants.get("acme").and_then(|t| t.signer.clone());
    assert_eq!(
        signer.map(|(k, _)| k.to_string()),
        Some(kid),
        "the active key signs"
    );
    // Recovery codes cannot move: they are reported until their owner replaces them.
    assert_eq!(
        secrets::census(&pool, &rotating)
            .await
            .unwrap()
            .recovery_staff_previous,
        1
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reseal_without_the_previous_key_is_refused_and_changes_nothing(pool: PgPool) {
    set_up_under_old(&pool).await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    let err = secrets::reseal(&cli, &pool, &MasterKey::new(OLD), |_, _| {})
        .await
        .expect_err("no previous key");
    assert!(
        err.field_message("ENCRYPTION_KEY_PREVIOUS").is_some(),
        "{err:?}"
    );
    // A previous key that is not the one used opens nothing, and nothing is moved.
    let wrong = MasterKey::with_previous(NEW, Some([0x33; 32]));
    let done = secrets::reseal(&cli, &pool, &wrong, |_, _| {})
        .await
        .unwrap();
    assert_eq!((done.peppers, done.signing_keys, done.totp), (0, 0, 0));
    assert_eq!(
        secrets::census(&pool, &wrong)
            .await
            .unwrap()
            .unopened()
            .as_deref(),
        Some("token pepper version 1")
    );
    assert!(common::audit(&pool, "secrets.resealed").await.is_empty());
    assert!(pepper::load(&pool, &MasterKey::new(OLD)).await.is_ok());
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn reseal_waits_until_every_running_instance_holds_the_new_key(pool: PgPool) {
    set_up_under_old(&pool).await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    // An instance still running with the old key alone.
    let old_instance =
        app::domain::gateway::verify::Verifier::new(pool.clone(), MasterKey::new(OLD))
            .for_instance(common::ORIGIN);
    app::domain::gateway::instances::heartbeat(&old_instance)
        .await
        .unwrap();
    let rotating = MasterKey::with_previous(NEW, Some(OLD));
    let err = secrets::reseal(&cli, &pool, &rotating, |_, _| {})
        .await
        .expect_err("an instance holds another key");
    let message = err.to_string();
    assert!(message.contains("use another ENCRYPTION_KEY"), "{message}");
    assert!(
        message.contains(&old_instance.instance().id.to_string()),
        "{message}"
    );
    assert_eq!(
        secrets::census(&pool, &rotating)
            .await
            .unwrap()
            .on_previous(),
        4
    );
    // Restarted with the new key (and the old one as previous): the re-seal goes ahead.
    app::domain::gateway::instances::deregister(&old_instance)
        .await
        .unwrap();
    let new_instance = app::domain::gateway::verify::Verifier::new(pool.clone(), rotating.clone())
        .for_instance(common::ORIGIN);
    app::domain::gateway::instances::heartbeat(&new_instance)
        .await
        .unwrap();
    let done = secrets::reseal(&cli, &pool, &rotating, |_, _| {})
        .await
        .unwrap();
    assert_eq!(done.peppers + done.signing_keys + done.totp, 4);
}
