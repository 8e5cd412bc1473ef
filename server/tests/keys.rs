//! Tenants and their signing keys (issue 16): creating a tenant gives it an active key;
//! the key states and their legal transitions; the published JWKS and metadata; removal at
//! `verify_until`; every refusal says what was wrong and changes nothing.

use crate::common;
use app::auth::Actor;
use app::domain::keys::{KeyPolicy, PublicKey};
use app::domain::status::SigningKeyState;
use app::domain::tokens::pepper::MasterKey;
use app::error::AppError;
use app::panels::keys::ops as keys;
use app::panels::tenants::{ops as tenants, NewTenantForm};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use sqlx::PgPool;

fn master() -> MasterKey {
    MasterKey::new(common::MASTER_KEY)
}

fn form(slug: &str) -> NewTenantForm {
    NewTenantForm {
        slug: slug.into(),
        name: "Acme Payments".into(),
        retention_months: "12".into(),
        max_token_days: "90".into(),
        audiences: "agent-api, billing".into(),
        algorithm: "".into(),
    }
}

async fn create(cli: &Actor, slug: &str) -> String {
    tenants::create(cli, &master(), &form(slug))
        .await
        .unwrap()
        .1
}

/// (kid, state) of every key of `slug`, in the order they signed or were staged.
async fn states(pool: &PgPool, slug: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kid, state::text FROM signing_keys k JOIN tenants t ON t.id = k.tenant_id
         WHERE t.slug = $1 ORDER BY coalesce(activated_at, staged_at), kid",
    )
    .bind(slug)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The JWKS as an instance that has just loaded its key set answers it (the tests run no
/// change listener, so each call asks a fresh one).
async fn jwks(pool: &PgPool, slug: &str) -> common::Answer {
    common::send(
        &common::app(pool.clone()),
        Request::get(format!("/a/{slug}/.well-known/jwks.json"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn kids(answer: &common::Answer) -> Vec<String> {
    answer.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Moves a staged key's publication back by `secs` (the fixture connection may).
async fn published_ago(pool: &PgPool, kid: &str, secs: i64) {
    sqlx::query(
        "UPDATE signing_keys SET staged_at = now() - make_interval(secs => $2) WHERE kid = $1",
    )
    .bind(kid)
    .bind(secs as f64)
    .execute(&mut common::fixture(pool).await)
    .await
    .unwrap();
}

async fn stage(cli: &Actor, slug: &str) -> String {
    keys::stage(cli, &master(), slug, "next rotation")
        .await
        .unwrap()
        .staged
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_new_tenant_has_one_active_key_published_under_its_thumbprint(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "admin");
    let kid = create(&cli, "acme").await;
    assert_eq!(
        states(&pool, "acme").await,
        vec![(kid.clone(), "active".into())]
    );
    let created = common::audit(&pool, "tenant.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].3["first_kid"], kid);
    assert_eq!(
        created[0].3["allowed_audiences"],
        serde_json::json!(["agent-api", "billing"])
    );
    assert_eq!(common::audit(&pool, "signing_key.activated").await.len(), 1);

    let app = common::app(pool.clone());
    let answer = jwks(&pool, "acme").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("cache-control"), "public, max-age=300");
    assert_eq!(answer.header("content-type"), "application/jwk-set+json");
    let jwk = &answer.json()["keys"][0];
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert!(jwk.get("d").is_none(), "no private member");
    // The kid is the RFC 7638 thumbprint of the key published under it.
    assert_eq!(PublicKey::from_jwk(jwk).unwrap().thumbprint(), kid);

    let config = common::send(
        &app,
        Request::get("/a/acme/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(config.status, StatusCode::OK);
    let config = config.json();
    assert_eq!(config["issuer"], format!("{}/a/acme", common::ORIGIN));
    assert_eq!(
        config["jwks_uri"],
        format!("{}/a/acme/.well-known/jwks.json", common::ORIGIN)
    );
    assert_eq!(
        config["audiences_supported"],
        serde_json::json!(["agent-api", "billing"])
    );

    for missing in ["nobody", "NOT_A_SLUG"] {
        let answer = jwks(&pool, missing).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(common::code(&answer), "TENANT_NOT_FOUND");
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_eddsa_tenant_publishes_ed25519_keys(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "admin");
    let form = NewTenantForm {
        algorithm: "EdDSA".into(),
        ..form("edge")
    };
    let (_, kid) = tenants::create(&cli, &master(), &form).await.unwrap();
    let answer = jwks(&pool, "edge").await;
    let jwk = &answer.json()["keys"][0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(PublicKey::from_jwk(jwk).unwrap().thumbprint(), kid);
    // A staged key takes the tenant's algorithm too.
    stage(&cli, "edge").await;
    assert!(jwks(&pool, "edge").await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["alg"] == "EdDSA"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_tenants_are_refused_at_their_field_and_nothing_is_written(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "admin");
    create(&cli, "acme").await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    for (form, field) in [
        (form("a"), "slug"),
        (form("Acme2"), "slug"),
        (form(&"a".repeat(41)), "slug"),
        (
            NewTenantForm {
                audiences: "".into(),
                ..form("beta")
            },
            "audiences",
        ),
        (
            NewTenantForm {
                retention_months: "7".into(),
                ..form("beta")
            },
            "retention_months",
        ),
        (
            NewTenantForm {
                algorithm: "none".into(),
                ..form("beta")
            },
            "algorithm",
        ),
    ] {
        let err = tenants::create(&cli, &master(), &form)
            .await
            .expect_err(field);
        assert!(err.field_message(field).is_some(), "{field}: {err:?}");
    }
    let taken = tenants::create(&cli, &master(), &form("acme"))
        .await
        .expect_err("taken");
    assert!(
        matches!(&taken, AppError::Conflict { field: Some(f), message } if f == "slug" && message.contains("already exists")),
        "{taken:?}"
    );
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .unwrap();
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((tenants, keys, after), (1, 1, events));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn renaming_and_settings_are_audited_with_before_and_after(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "admin");
    create(&cli, "acme").await;
    tenants::rename(&cli, "acme", "Acme Payments Ltd")
        .await
        .unwrap();
    let renamed = common::audit(&pool, "tenant.renamed").await;
    assert_eq!(renamed[0].3["before"], "Acme Payments");
    assert_eq!(renamed[0].3["after"], "Acme Payments Ltd");
    let same = tenants::rename(&cli, "acme", " Acme Payments Ltd ")
        .await
        .expect_err("same");
    assert!(same.field_message("name").is_some());

    let settings = tenants::update_settings(&cli, "acme", "30", "agent-api", "EdDSA")
        .await
        .unwrap();
    assert_eq!(settings.allowed_audiences, vec!["agent-api"]);
    let changed = common::audit(&pool, "tenant.settings_changed").await;
    assert_eq!(changed[0].3["before"]["max_token_lifetime_days"], 90);
    assert_eq!(changed[0].3["after"]["max_token_lifetime_days"], 30);
    assert_eq!(changed[0].3["after"]["signing_algorithm"], "EdDSA");
    // New keys follow the new algorithm; the active one stays what it is.
    stage(&cli, "acme").await;
    let algorithms: Vec<String> =
        sqlx::query_scalar("SELECT algorithm FROM signing_keys ORDER BY staged_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(algorithms, vec!["ES256", "EdDSA"]);
    for (days, audiences, field) in [
        ("0", "agent-api", "max_token_days"),
        ("30", "Bad Audience", "audiences"),
    ] {
        let err = tenants::update_settings(&cli, "acme", days, audiences, "")
            .await
            .expect_err(field);
        assert!(err.field_message(field).is_some(), "{field}: {err:?}");
    }
    let missing = tenants::rename(&cli, "nobody", "X")
        .await
        .expect_err("missing");
    assert!(matches!(missing, AppError::NotFound { .. }), "{missing:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn activation_waits_for_the_jwks_max_age_unless_it_is_an_emergency(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let policy = KeyPolicy::default();
    let first = create(&cli, "acme").await;
    let second = stage(&cli, "acme").await;

    // Published a moment ago: relying services may not have it yet.
    let early = keys::activate(&cli, policy, "acme", &second, "rotation", false, "")
        .await
        .expect_err("too early");
    assert!(
        matches!(&early, AppError::Conflict { message, .. } if message.contains("JWKS max-age 300 s")),
        "{early:?}"
    );
    // An emergency needs the tenant typed.
    let untyped = keys::activate(&cli, policy, "acme", &second, "leak", true, "acm")
        .await
        .expect_err("untyped");
    assert!(untyped.field_message("confirmation").is_some());
    assert_eq!(
        states(&pool, "acme").await,
        vec![
            (first.clone(), "active".into()),
            (second.clone(), "staged".into())
        ]
    );

    published_ago(&pool, &second, 301).await;
    let changed = keys::activate(&cli, policy, "acme", &second, "rotation", false, "")
        .await
        .unwrap();
    assert_eq!(changed.activated.as_deref(), Some(second.as_str()));
    assert_eq!(changed.retired.as_deref(), Some(first.as_str()));
    assert_eq!(
        states(&pool, "acme").await,
        vec![
            (first.clone(), "retired".into()),
            (second.clone(), "active".into())
        ]
    );
    // verify_until = retired + token lifetime + JWKS max-age + skew: derived, not typed.
    let grace: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM verify_until - retired_at)::float8 FROM signing_keys WHERE kid = $1",
    )
    .bind(&first)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(grace, 930.0);
    let retired = common::audit(&pool, "signing_key.retired").await;
    assert_eq!(
        (
            retired[0].3["before"].as_str(),
            retired[0].3["after"].as_str()
        ),
        (Some("active"), Some("retired"))
    );
    let activated = common::audit(&pool, "signing_key.activated").await;
    assert_eq!(activated.last().unwrap().3["emergency"], false);

    // Both are published: the retired key still verifies tokens it signed.
    let published = kids(&jwks(&pool, "acme").await);
    assert_eq!(
        published,
        vec![second.clone(), first.clone()],
        "active first"
    );

    // An emergency activation of a fresh staged key skips the wait.
    let third = stage(&cli, "acme").await;
    keys::activate(&cli, policy, "acme", &third, "key leaked", true, "acme")
        .await
        .unwrap();
    assert_eq!(
        common::audit(&pool, "signing_key.activated")
            .await
            .last()
            .unwrap()
            .3["emergency"],
        true
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn illegal_transitions_and_unknown_kids_are_refused_as_such(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let policy = KeyPolicy::default();
    let active = create(&cli, "acme").await;
    create(&cli, "other").await;
    let again = keys::activate(&cli, policy, "acme", &active, "x", true, "acme")
        .await
        .expect_err("active already");
    assert!(
        matches!(&again, AppError::Conflict { message, .. } if message.contains("is active: only a staged key")),
        "{again:?}"
    );
    let unknown = "A".repeat(43);
    let err = keys::activate(&cli, policy, "acme", &unknown, "x", true, "acme")
        .await
        .expect_err("unknown");
    assert!(
        err.field_message("kid")
            .unwrap()
            .contains("no published key"),
        "{err:?}"
    );
    let err = keys::revoke(&cli, &master(), "acme", "short", "x", "short")
        .await
        .expect_err("shape");
    assert!(
        err.field_message("kid").unwrap().contains("43 characters"),
        "{err:?}"
    );
    // Another tenant's key is not this tenant's.
    let err = keys::revoke(&cli, &master(), "other", &active, "x", &active)
        .await
        .expect_err("other tenant");
    assert!(err.field_message("kid").is_some(), "{err:?}");
    // Too many staged keys.
    stage(&cli, "acme").await;
    stage(&cli, "acme").await;
    let err = keys::stage(&cli, &master(), "acme", "third")
        .await
        .expect_err("too many");
    assert!(
        matches!(&err, AppError::Conflict { message, .. } if message.contains("2 staged keys")),
        "{err:?}"
    );
    let reason = keys::stage(&cli, &master(), "other", " ")
        .await
        .expect_err("reason");
    assert!(reason.field_message("reason").is_some());
    assert_eq!(states(&pool, "acme").await.len(), 3);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_revoked_key_leaves_the_jwks_at_once_and_the_active_one_is_replaced(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let active = create(&cli, "acme").await;
    let staged = stage(&cli, "acme").await;
    let before = jwks(&pool, "acme").await;
    assert_eq!(kids(&before).len(), 2);

    let untyped = keys::revoke(&cli, &master(), "acme", &staged, "leak", "nope")
        .await
        .expect_err("confirm");
    assert!(untyped.field_message("confirmation").is_some());
    let changed = keys::revoke(&cli, &master(), "acme", &staged, "leaked in a log", &staged)
        .await
        .unwrap();
    assert_eq!(changed.revoked, vec![staged.clone()]);
    assert_eq!(changed.activated, None, "the active key was not touched");
    let after = jwks(&pool, "acme").await;
    assert_eq!(kids(&after), vec![active.clone()]);
    assert_ne!(after.header("etag"), before.header("etag"));
    let erased: bool = sqlx::query_scalar(
        "SELECT sealed IS NULL AND nonce IS NULL FROM signing_keys WHERE kid = $1",
    )
    .bind(&staged)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(erased, "a revoked key's private part is erased");

    // Revoking the active key activates a fresh one in the same change.
    let changed = keys::revoke(
        &cli,
        &master(),
        "acme",
        &active,
        "signing key compromise",
        &active,
    )
    .await
    .unwrap();
    let fresh = changed.activated.expect("a fresh key");
    assert_eq!(kids(&jwks(&pool, "acme").await), vec![fresh.clone()]);
    let revoked = common::audit(&pool, "signing_key.revoked").await;
    assert_eq!(revoked.len(), 2);
    assert_eq!(revoked[1].3["before"], "active");
    assert_eq!(revoked[1].3["replaced_by"], fresh);
    let again = keys::revoke(&cli, &master(), "acme", &active, "again", &active)
        .await
        .expect_err("gone");
    assert!(again.field_message("kid").is_some(), "{again:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn revoke_all_leaves_one_fresh_active_key_in_one_change(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let policy = KeyPolicy::default();
    let first = create(&cli, "acme").await;
    let second = stage(&cli, "acme").await;
    keys::activate(&cli, policy, "acme", &second, "rotation", true, "acme")
        .await
        .unwrap();
    let third = stage(&cli, "acme").await;

    let preview = keys::preview(&cli, KeyPolicy::default(), "acme", None)
        .await
        .unwrap();
    assert_eq!(preview.live_tokens, 0, "no delegated token was issued");
    assert_eq!(preview.keys.len(), 3);
    assert!(preview.replaces_active);
    let stale = keys::revoke_all(&cli, &master(), "acme", "JWKS compromise", "acme", 2)
        .await
        .expect_err("preview out of date");
    assert!(
        matches!(&stale, AppError::Conflict { message, .. } if message.contains("more than the 2")),
        "{stale:?}"
    );
    let untyped = keys::revoke_all(&cli, &master(), "acme", "JWKS compromise", "ACME", 3)
        .await
        .expect_err("typed");
    assert!(untyped.field_message("confirmation").is_some());
    assert_eq!(states(&pool, "acme").await.len(), 3, "nothing changed");

    let changed = keys::revoke_all(&cli, &master(), "acme", "JWKS compromise", "acme", 3)
        .await
        .unwrap();
    let fresh = changed.activated.unwrap();
    let mut revoked = changed.revoked.clone();
    revoked.sort();
    let mut expected = vec![first, second, third];
    expected.sort();
    assert_eq!(revoked, expected);
    let now: Vec<(String, String)> = states(&pool, "acme").await;
    assert_eq!(now.iter().filter(|(_, s)| s == "active").count(), 1);
    assert!(now.iter().any(|(k, s)| k == &fresh && s == "active"));
    assert_eq!(kids(&jwks(&pool, "acme").await), vec![fresh]);
    let last = common::audit(&pool, "signing_key.activated").await;
    assert_eq!(last.last().unwrap().3["revoke_all"], true);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_retired_key_is_removed_by_the_system_once_its_verify_until_passes(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let first = create(&cli, "acme").await;
    let second = stage(&cli, "acme").await;
    keys::activate(
        &cli,
        KeyPolicy::default(),
        "acme",
        &second,
        "rotation",
        true,
        "acme",
    )
    .await
    .unwrap();
    let system = Actor::system(pool.clone(), "signing key timer");
    assert!(
        keys::remove_expired(&system).await.unwrap().is_empty(),
        "not due yet"
    );
    sqlx::query(
        "UPDATE signing_keys SET retired_at = now() - interval '20 minutes', verify_until = now() - interval '1 second' WHERE kid = $1",
    )
    .bind(&first)
    .execute(&mut common::fixture(&pool).await)
    .await
    .unwrap();
    // Past verify_until it is unpublished even before the job runs.
    assert_eq!(kids(&jwks(&pool, "acme").await), vec![second.clone()]);
    assert_eq!(
        keys::remove_expired(&system).await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(
        states(&pool, "acme").await,
        vec![(first, "removed".into()), (second, "active".into())]
    );
    let removed = common::audit(&pool, "signing_key.removed").await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].2, "system");
    assert!(
        keys::remove_expired(&system).await.unwrap().is_empty(),
        "once"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_jwks_answers_304_to_its_etag(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    create(&cli, "acme").await;
    let app = common::app(pool.clone());
    let first = jwks(&pool, "acme").await;
    let tag = first.header("etag").to_owned();
    assert!(tag.starts_with('"'), "{tag}");
    let again = common::send(
        &app,
        Request::get("/a/acme/.well-known/jwks.json")
            .header("if-none-match", &tag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), tag);
    // A new key changes the document, so the old tag no longer matches (another instance,
    // or this one once its key set has reloaded: the tag is the document's, not the
    // instance's).
    stage(&cli, "acme").await;
    let changed = common::send(
        &common::app(pool.clone()),
        Request::get("/a/acme/.well-known/jwks.json")
            .header("if-none-match", &tag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(kids(&changed).len(), 2);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn tenants_without_a_key_get_one_at_start_and_a_wrong_master_key_is_caught(pool: PgPool) {
    common::tenant(&pool, "legacy", "Legacy").await;
    let system = Actor::system(pool.clone(), "signing keys");
    assert_eq!(
        keys::ensure_active_keys(&system, &master()).await.unwrap(),
        vec!["legacy"]
    );
    assert!(
        keys::ensure_active_keys(&system, &master())
            .await
            .unwrap()
            .is_empty(),
        "once"
    );
    assert_eq!(
        states(&pool, "legacy").await[0].1,
        SigningKeyState::Active.as_str()
    );
    assert_eq!(keys::check_all_open(&pool, &master()).await.unwrap(), 1);
    let wrong = MasterKey::new([0x11; 32]);
    let err = keys::check_all_open(&pool, &wrong)
        .await
        .expect_err("wrong key");
    assert!(err.to_string().contains("does not decrypt"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_forced_refresh_reloads_this_instance_for_its_token_only(pool: PgPool) {
    const TOKEN: &str = "refresh-token-of-the-tests-0123456789abcdef";
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let first = create(&cli, "acme").await;
    let refresh = |token: Option<&str>| {
        let mut req = Request::post("/internal/auth/jwks/refresh");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(Body::empty()).unwrap()
    };
    // Off unless configured.
    let off = common::send(&common::app(pool.clone()), refresh(Some(TOKEN))).await;
    assert_eq!(off.status, StatusCode::NOT_FOUND);

    let (app, verifier) = common::app_with_refresh_token(pool.clone(), TOKEN);
    verifier.keys().reload().await.unwrap();
    let epoch = verifier.keys().epoch();
    // A key staged elsewhere: this instance (no listener in the tests) does not know it.
    let second = stage(&cli, "acme").await;
    assert!(!verifier
        .keys()
        .snapshot()
        .keys
        .contains_key(second.as_str()));
    for wrong in [
        None,
        Some("refresh-token-of-the-tests-0123456789abcdeX"),
        Some("short"),
    ] {
        let answer = common::send(&app, refresh(wrong)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert_eq!(common::code(&answer), "REFRESH_TOKEN_INVALID");
    }
    assert!(
        !verifier
            .keys()
            .snapshot()
            .keys
            .contains_key(second.as_str()),
        "refused: nothing reloaded"
    );
    let answer = common::send(&app, refresh(Some(TOKEN))).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), "no-store");
    let json = answer.json();
    assert!(json["epoch"].as_i64().unwrap() > epoch);
    let held: Vec<(String, String)> = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(held.contains(&(first.clone(), "active".into())), "{held:?}");
    assert!(
        held.contains(&(second.clone(), "staged".into())),
        "{held:?}"
    );
    assert!(verifier
        .keys()
        .snapshot()
        .keys
        .contains_key(second.as_str()));
    // The refresh is audited with the epoch it reached (refusals are only logged: anyone may
    // call the route).
    assert!(common::audit(&pool, "jwks.refresh_refused")
        .await
        .is_empty());
    let refreshed = common::audit(&pool, "jwks.refreshed").await;
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].3["epoch"], json["epoch"]);
    assert!(!answer.body.contains(TOKEN));
}

/// An instance of the server for a test: its verifier and change listener, listed once it
/// listens.
async fn instance(
    pool: &PgPool,
) -> (
    std::sync::Arc<app::domain::gateway::verify::Verifier>,
    tokio::task::JoinHandle<()>,
) {
    let verifier = common::verifier(pool.clone());
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        verifier.clone(),
        common::controls(pool.clone()),
    ));
    verifier.until_listening().await;
    // The listener lists the instance right after LISTEN took effect.
    for _ in 0..200 {
        let listed: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM instances WHERE id = $1)")
                .bind(verifier.instance().id)
                .fetch_one(pool)
                .await
                .unwrap();
        if listed {
            return (verifier, listener);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the instance never listed itself");
}

/// Reads the request `id` until `n` instances answered (at most 10 s).
async fn answered(cli: &Actor, id: &str, n: usize) -> app::panels::keys::InstanceRequest {
    for _ in 0..500 {
        let request = keys::request(cli, "acme", id).await.unwrap();
        if request.acks.len() >= n {
            return request;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} instances answered request {id}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn refresh_and_verify_reach_every_live_instance_and_each_answer_is_audited(pool: PgPool) {
    use app::panels::keys::InstanceRequestKind::{Refresh, Verify};
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let first = create(&cli, "acme").await;
    let staged = stage(&cli, "acme").await;
    let (a, listen_a) = instance(&pool).await;
    let (b, listen_b) = instance(&pool).await;
    // The active key is revoked: a fresh one signs; the staged key is revoked too.
    let changed = keys::revoke(&cli, &master(), "acme", &first, "compromise", &first)
        .await
        .unwrap();
    let fresh = changed.activated.unwrap();
    keys::revoke(&cli, &master(), "acme", &staged, "compromise", &staged)
        .await
        .unwrap();
    let epoch: i64 = sqlx::query_scalar("SELECT epoch FROM signing_key_epoch")
        .fetch_one(&pool)
        .await
        .unwrap();

    let id = keys::ask_instances(&cli, "acme", Refresh).await.unwrap();
    // A second click at once joins the first request rather than asking again.
    assert_eq!(
        keys::ask_instances(&cli, "acme", Refresh).await.unwrap(),
        id
    );
    let refreshed = answered(&cli, &id, 2).await;
    let expected: Vec<String> = refreshed.expected.iter().map(|i| i.id.clone()).collect();
    for v in [&a, &b] {
        assert!(
            expected.contains(&v.instance().id.to_string()),
            "{expected:?}"
        );
    }
    assert!(refreshed.waiting().is_empty());
    for ack in &refreshed.acks {
        assert_eq!(
            ack.epoch, epoch,
            "each instance reloaded to the current epoch"
        );
        assert_eq!(ack.passed, None);
    }
    assert_eq!(
        common::audit(&pool, "keys.refresh_requested").await.len(),
        1
    );
    let acked = common::audit(&pool, "keys.refresh_acknowledged").await;
    assert_eq!(acked.len(), 2);
    assert_eq!(acked[0].3["epoch"], epoch);

    let id = keys::ask_instances(&cli, "acme", Verify).await.unwrap();
    let verified = answered(&cli, &id, 2).await;
    for ack in &verified.acks {
        assert_eq!(ack.passed, Some(true), "{:?}", ack.probes);
        let outcome = |kid: &str| {
            ack.probes
                .iter()
                .find(|p| p.kid == kid)
                .map(|p| (p.outcome.clone(), p.passed))
        };
        assert_eq!(outcome(&fresh), Some(("accepted".into(), true)));
        assert_eq!(
            outcome(&first),
            Some(("DELEGATED_KEY_REVOKED".into(), true))
        );
        assert_eq!(
            outcome(&staged),
            Some(("DELEGATED_KEY_REVOKED".into(), true))
        );
    }
    let events = common::audit(&pool, "keys.verified").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].3["passed"], true);
    assert_eq!(events[0].3["probes"].as_array().unwrap().len(), 3);

    // An instance that stops is no longer expected.
    listen_b.abort();
    app::domain::gateway::instances::deregister(&b)
        .await
        .unwrap();
    let live = app::panels::keys::queries::live_instances(&pool)
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, a.instance().id.to_string());
    listen_a.abort();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_instance_holding_an_old_key_set_fails_verification_and_says_why(pool: PgPool) {
    use app::panels::keys::InstanceRequestKind::Verify;
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let first = create(&cli, "acme").await;
    // This instance loaded its keys, then heard of no change (no listener).
    let stale = common::verifier(pool.clone());
    stale.keys().reload().await.unwrap();
    let changed = keys::revoke(&cli, &master(), "acme", &first, "compromise", &first)
        .await
        .unwrap();
    let fresh = changed.activated.unwrap();
    let id = keys::ask_instances(&cli, "acme", Verify).await.unwrap();
    app::domain::gateway::instances::answer(
        stale.clone(),
        Verify,
        uuid::Uuid::parse_str(&id).unwrap(),
        std::time::Instant::now(),
    )
    .await;
    let request = keys::request(&cli, "acme", &id).await.unwrap();
    assert_eq!(request.acks.len(), 1);
    let ack = &request.acks[0];
    assert_eq!(ack.passed, Some(false));
    let probe = |kid: &str| ack.probes.iter().find(|p| p.kid == kid).unwrap().clone();
    // Its private half is erased, so the probe names its kid with a throwaway key's
    // signature: an instance that still trusts the kid refuses it for the signature.
    let revoked = probe(&first);
    assert_eq!(
        (revoked.outcome.as_str(), revoked.passed),
        ("DELEGATED_SIGNATURE_INVALID", false)
    );
    assert!(revoked.note.contains("still trusts"), "{}", revoked.note);
    let new = probe(&fresh);
    assert_eq!(
        (new.outcome.as_str(), new.passed),
        ("DELEGATED_KEY_UNKNOWN", false)
    );
    assert!(new.note.contains("out of date"), "{}", new.note);
    assert_eq!(
        common::audit(&pool, "keys.verified").await[0].3["passed"],
        false
    );

    // Once it reloads, it passes.
    stale.keys().reload().await.unwrap();
    let (keys, agent_api) =
        app::domain::gateway::instances::tenant_keys(&stale, tenant_id(&pool, "acme").await)
            .await
            .unwrap();
    assert!(agent_api);
    let probes = app::domain::gateway::instances::probe(
        &stale.keys().snapshot(),
        common::ORIGIN,
        "acme",
        agent_api,
        &keys,
        time::OffsetDateTime::now_utc(),
    );
    assert!(probes.iter().all(|p| p.passed), "{probes:?}");

    // Bad input: another tenant's request, a made-up id, a kind that does not exist.
    assert!(matches!(
        keys::request(&cli, "acme", "not-a-uuid").await,
        Err(AppError::Validation { .. })
    ));
    assert!(matches!(
        keys::request(&cli, "acme", &uuid::Uuid::new_v4().to_string()).await,
        Err(AppError::NotFound { .. })
    ));
    create(&cli, "other").await;
    assert!(matches!(
        keys::request(&cli, "other", &id).await,
        Err(AppError::NotFound { .. })
    ));
}

async fn tenant_id(pool: &PgPool, slug: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn verification_expects_what_the_tenant_allows_and_requests_are_bounded(pool: PgPool) {
    use app::panels::keys::InstanceRequestKind::{Refresh, Verify};
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let active = create(&cli, "acme").await;
    // The tenant stops allowing the agent API: no delegated token of it is accepted, so an
    // up-to-date instance refuses the active key's probe for its audience, and passes.
    app::panels::tenants::ops::update_settings(&cli, "acme", "90", "billing", "ES256")
        .await
        .unwrap();
    let (a, listen_a) = instance(&pool).await;
    a.keys().reload().await.unwrap();
    let id = keys::ask_instances(&cli, "acme", Verify).await.unwrap();
    let verified = answered(&cli, &id, 1).await;
    let ack = &verified.acks[0];
    assert_eq!(ack.passed, Some(true), "{:?}", ack.probes);
    let probe = ack.probes.iter().find(|p| p.kid == active).unwrap();
    assert_eq!(probe.outcome, "DELEGATED_AUDIENCE_MISMATCH");
    assert!(!probe.expect_accepted);
    assert!(
        probe.note.contains("does not allow agent-api"),
        "{}",
        probe.note
    );

    // A burst of refreshes costs at most a couple of reloads, not one each.
    let before = a.keys().reloads();
    let id = keys::ask_instances(&cli, "acme", Refresh).await.unwrap();
    answered(&cli, &id, 1).await;
    let heard = std::time::Instant::now();
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let a = a.clone();
            tokio::spawn(async move { a.keys().reload_unless_since(heard).await.unwrap() })
        })
        .collect();
    for one in burst {
        one.await.unwrap();
    }
    assert!(
        a.keys().reloads() - before <= 3,
        "{} reloads",
        a.keys().reloads() - before
    );

    // Requests to every instance are bounded platform-wide.
    for n in 0..20 {
        let slug = format!("t{n}");
        create(&cli, &slug).await;
        match keys::ask_instances(&cli, &slug, Refresh).await {
            Ok(_) => assert!(n < 10, "request {n} went through"),
            Err(AppError::Conflict { message, .. }) => {
                assert!(message.contains("wait for their answers"), "{message}");
                assert!(n >= 8, "refused already at {n}");
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    // An instance that deregistered is not listed again by its heartbeat.
    app::domain::gateway::instances::deregister(&a)
        .await
        .unwrap();
    app::domain::gateway::instances::heartbeat(&a)
        .await
        .unwrap();
    assert!(app::panels::keys::queries::live_instances(&pool)
        .await
        .unwrap()
        .is_empty());
    listen_a.abort();
}
