//! End users (issue 17): sign-in with its throttle, lockout and captcha (a stand-in
//! siteverify server on loopback), refresh rotation with the grace window and reuse
//! detection, `/me` refusing an access token at once when its user's or its tenant's
//! revocation epoch moves, on another instance too.

use crate::common;
use app::auth::Actor;
use app::domain::endusers::{captcha::Captcha, ops, Policy};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery";

async fn tenant_with_user(pool: &PgPool, slug: &str, email: &str) -> uuid::Uuid {
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    app::domain::tokens::pepper::create_first_if_none(
        &cli,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
    )
    .await
    .unwrap();
    let form = app::panels::tenants::NewTenantForm {
        slug: slug.into(),
        name: "Acme".into(),
        retention_months: "12".into(),
        max_token_days: "90".into(),
        audiences: "agent-api".into(),
        algorithm: "".into(),
    };
    app::panels::tenants::ops::create(
        &cli,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
        &form,
    )
    .await
    .unwrap();
    ops::create_user(&cli, slug, email, PASSWORD).await.unwrap()
}

async fn sign_in(app: &Router, slug: &str, body: serde_json::Value) -> common::Answer {
    common::send(
        app,
        Request::post(format!("/a/{slug}/auth/sign-in"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", "203.0.113.9")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn refresh(app: &Router, slug: &str, token: &str) -> common::Answer {
    common::send(
        app,
        Request::post(format!("/a/{slug}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "grant_type=refresh_token&refresh_token={}",
                common::urlencode(token)
            )))
            .unwrap(),
    )
    .await
}

async fn me(app: &Router, slug: &str, access: &str) -> common::Answer {
    common::send(
        app,
        Request::get(format!("/a/{slug}/api/v1/me"))
            .header("authorization", format!("Bearer {access}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn field(answer: &common::Answer, name: &str) -> String {
    answer.json()[name].as_str().unwrap_or_default().to_owned()
}

fn code(answer: &common::Answer) -> String {
    let json = answer.json();
    json["error"]["code"]
        .as_str()
        .or(json["code"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_sign_in_gives_tokens_that_refresh_by_rotation_and_a_reuse_ends_the_session(
    pool: PgPool,
) {
    let user = tenant_with_user(&pool, "acme", "ada@example.com").await;
    let (app, verifier) = common::app_and_verifier(pool.clone(), false);
    let signed_in = sign_in(
        &app,
        "acme",
        json!({ "email": " Ada@Example.com ", "password": PASSWORD }),
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    assert_eq!(signed_in.header("cache-control"), "no-store");
    let access = field(&signed_in, "access_token");
    let first = field(&signed_in, "refresh_token");
    assert!(first.starts_with("mf_rt_v1."), "{first}");
    let who = me(&app, "acme", &access).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert_eq!(who.json()["user_id"], user.to_string());
    // Another tenant's route does not take it.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM refresh_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!first
        .as_bytes()
        .windows(16)
        .any(|w| stored.windows(16).any(|s| s == w)));
    let signed = common::audit(&pool, "end_user.signed_in").await;
    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].2, format!("end_user:{user}"));
    assert_eq!(signed[0].3["captcha"], "not_configured");

    // Rotation: a new pair; the first token used again within the grace window (a
    // parallel tab) gets the same successor.
    let rotated = refresh(&app, "acme", &first).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let second = field(&rotated, "refresh_token");
    assert_ne!(second, first);
    let again = refresh(&app, "acme", &first).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(field(&again, "refresh_token"), second);
    assert_eq!(
        me(&app, "acme", &field(&rotated, "access_token"))
            .await
            .status,
        StatusCode::OK
    );

    // After the grace window, the spent token is a reuse: the family is revoked.
    sqlx::query("UPDATE refresh_tokens SET used_at = now() - interval '11 seconds' WHERE used_at IS NOT NULL")
        .execute(&pool)
        .await
        .unwrap();
    let reused = refresh(&app, "acme", &first).await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&reused, "error"), "invalid_grant");
    assert_eq!(code(&reused), "REFRESH_TOKEN_REUSED");
    let detected = common::audit(&pool, "token.reuse_detected").await;
    assert_eq!(detected.len(), 1);
    assert_eq!(detected[0].0, "deny");
    assert_eq!(detected[0].1.as_deref(), Some("REFRESH_TOKEN_REUSED"));
    let successor = refresh(&app, "acme", &second).await;
    assert_eq!(code(&successor), "REFRESH_TOKEN_REVOKED");
    // The access tokens of the session are refused at once too, not at their expiry (the
    // poll here; the notification on a listening instance).
    verifier.epochs().poll(&pool).await.unwrap();
    let stolen_access = me(&app, "acme", &field(&rotated, "access_token")).await;
    assert_eq!(code(&stolen_access), "ACCESS_TOKEN_REVOKED");
    let ended: String = sqlx::query_scalar("SELECT end_reason FROM end_user_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ended, "reuse_detected");

    // Bad refresh input.
    for (token, expected) in [
        ("garbage", "REFRESH_TOKEN_INVALID"),
        ("mf_rt_v1.abc.def", "REFRESH_TOKEN_INVALID"),
        (
            &first.replace("mf_rt_v1", "mf_pat_v1"),
            "REFRESH_TOKEN_INVALID",
        ),
    ] {
        let answer = refresh(&app, "acme", token).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{token}");
        assert_eq!(code(&answer), expected, "{token}");
    }
    let missing = common::send(
        &app,
        Request::post("/a/acme/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=refresh_token"))
            .unwrap(),
    )
    .await;
    assert_eq!(field(&missing, "error"), "invalid_request");
    let wrong_grant = common::send(
        &app,
        Request::post("/a/acme/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=password"))
            .unwrap(),
    )
    .await;
    assert_eq!(field(&wrong_grant, "error"), "unsupported_grant_type");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn wrong_and_unknown_answer_alike_then_the_account_locks_and_bad_input_is_named(
    pool: PgPool,
) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    let app = common::app(pool.clone());
    let wrong = sign_in(
        &app,
        "acme",
        json!({ "email": "ada@example.com", "password": "not the password" }),
    )
    .await;
    let unknown = sign_in(
        &app,
        "acme",
        json!({ "email": "bob@example.com", "password": "not the password" }),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (wrong.status, wrong.body.clone()),
        (unknown.status, unknown.body.clone())
    );
    for _ in 0..3 {
        sign_in(
            &app,
            "acme",
            json!({ "email": "ada@example.com", "password": "not the password" }),
        )
        .await;
    }
    let fifth = sign_in(
        &app,
        "acme",
        json!({ "email": "ada@example.com", "password": "not the password" }),
    )
    .await;
    assert_eq!(code(&fifth), "ACCOUNT_TEMPORARILY_LOCKED");
    let right = sign_in(
        &app,
        "acme",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(
        right.status,
        StatusCode::LOCKED,
        "even the right password waits"
    );
    let failed = common::audit(&pool, "end_user.sign_in_failed").await;
    assert_eq!(failed.len(), 6);
    assert_eq!(failed[1].2, "anonymous", "the unknown email names nobody");
    assert_eq!(failed[5].1.as_deref(), Some("ACCOUNT_TEMPORARILY_LOCKED"));
    // An email nobody has locks exactly the same way: the lockout tells nothing.
    for n in 1..=5 {
        let answer = sign_in(
            &app,
            "acme",
            json!({ "email": "nobody@example.com", "password": "not the password" }),
        )
        .await;
        let expected = if n < 5 {
            "INVALID_CREDENTIALS"
        } else {
            "ACCOUNT_TEMPORARILY_LOCKED"
        };
        assert_eq!(code(&answer), expected, "attempt {n}");
    }
    let parallel = futures_util::future::join_all((0..10).map(|_| {
        sign_in(
            &app,
            "acme",
            json!({ "email": "carol@example.com", "password": "not the password" }),
        )
    }))
    .await;
    let tried = parallel
        .iter()
        .filter(|a| code(a) == "INVALID_CREDENTIALS")
        .count();
    assert!(tried < 5, "parallel guesses all count: {tried} were tried");

    for (body, status, field_name) in [
        (
            json!({ "email": "not-an-email", "password": PASSWORD }),
            StatusCode::BAD_REQUEST,
            Some("email"),
        ),
        (
            json!({ "email": "ada@example.com", "password": "short" }),
            StatusCode::BAD_REQUEST,
            Some("password"),
        ),
        (
            json!({ "email": "ada@example.com", "password": "x".repeat(129) }),
            StatusCode::BAD_REQUEST,
            Some("password"),
        ),
        (
            json!({ "password": PASSWORD }),
            StatusCode::BAD_REQUEST,
            Some("email"),
        ),
    ] {
        let answer = sign_in(&app, "acme", body.clone()).await;
        assert_eq!(answer.status, status, "{body}");
        assert_eq!(
            answer.json()["error"]["field"].as_str(),
            field_name,
            "{body}"
        );
    }
    let nowhere = sign_in(
        &app,
        "nowhere",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code(&nowhere), "TENANT_NOT_FOUND");
    let form = common::send(
        &app,
        Request::post("/a/acme/auth/sign-in")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("email=a"))
            .unwrap(),
    )
    .await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

/// A stand-in for Turnstile's siteverify on loopback: `success` for the token `good`,
/// refuses others, and hangs for the token `slow` (past the 2 s budget).
async fn siteverify() -> String {
    use axum::routing::post;
    let app = Router::new().route(
        "/siteverify",
        post(|body: String| async move {
            let fields: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
            assert_eq!(
                fields.get("secret").map(String::as_str),
                Some("test-secret")
            );
            match fields.get("response").map(String::as_str) {
                Some("slow") => {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    axum::Json(json!({ "success": true }))
                }
                Some("good") => axum::Json(json!({ "success": true })),
                _ => axum::Json(
                    json!({ "success": false, "error-codes": ["invalid-input-response"] }),
                ),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/siteverify")
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_captcha_is_checked_a_provider_outage_refuses_and_turnstile_disabled_lets_sign_ins_through(
    pool: PgPool,
) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    let url = siteverify().await;
    let policy = Arc::new(Policy::with_captcha(Captcha::new(
        Some(app::secret::SecretString::new("test-secret")),
        &url,
        false,
    )));
    let (app, _, controls) = common::app_with_identity(pool.clone(), policy);
    let body = |token: &str| json!({ "email": "ada@example.com", "password": PASSWORD, "captcha_token": token });
    let passed = sign_in(&app, "acme", body("good")).await;
    assert_eq!(passed.status, StatusCode::OK, "{}", passed.body);
    assert_eq!(
        common::audit(&pool, "end_user.signed_in").await[0].3["captcha"],
        "verified"
    );
    let rejected = sign_in(&app, "acme", body("forged")).await;
    assert_eq!(code(&rejected), "CAPTCHA_INVALID");
    let started = std::time::Instant::now();
    let slow = sign_in(&app, "acme", body("slow")).await;
    assert_eq!(slow.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&slow), "CAPTCHA_VERIFICATION_FAILED");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let none = sign_in(
        &app,
        "acme",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code(&none), "CAPTCHA_INVALID");

    // The runbook: flip TURNSTILE_DISABLED for the tenant, and sign-ins go through.
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    app::panels::switches::ops::flip(
        &cli,
        app::panels::switches::ops::FlipRequest {
            key: "TURNSTILE_DISABLED",
            tenant: "acme",
            value: "on",
            reason: "captcha provider outage",
            confirmation: "TURNSTILE_DISABLED",
            ..Default::default()
        },
    )
    .await
    .unwrap();
    controls.reload().await.unwrap();
    assert!(controls.switch(
        app::domain::gateway::controls::SwitchKey::TurnstileDisabled,
        tenant_id(&pool, "acme").await
    ));
    let through = sign_in(&app, "acme", body("slow")).await;
    assert_eq!(through.status, StatusCode::OK, "{}", through.body);
    let events = common::audit(&pool, "end_user.signed_in").await;
    assert_eq!(
        events.last().unwrap().3["captcha"],
        "disabled",
        "marked as without captcha"
    );
}

async fn tenant_id(pool: &PgPool, slug: &str) -> uuid::Uuid {
    sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Polls `/me` on `app` until it answers `code` (at most 2 s): how long it took.
async fn refused_within(
    app: &Router,
    slug: &str,
    access: &str,
    expected: &str,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let answer = me(app, slug, access).await;
        if answer.status == StatusCode::UNAUTHORIZED && code(&answer) == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{}",
            answer.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn revoking_a_users_or_a_tenants_sessions_refuses_their_tokens_at_once_on_another_instance(
    pool: PgPool,
) {
    let ada = tenant_with_user(&pool, "acme", "ada@example.com").await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let bob = ops::create_user(&cli, "acme", "bob@example.com", PASSWORD)
        .await
        .unwrap();
    let a = common::app(pool.clone());
    // Instance B listens for changes.
    let (b, b_verifier, b_controls) = common::app_parts(pool.clone(), false);
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        b_verifier.clone(),
        b_controls,
    ));
    b_verifier.until_listening().await;
    let tokens = |email: &'static str| {
        let a = a.clone();
        async move {
            let answer = sign_in(&a, "acme", json!({ "email": email, "password": PASSWORD })).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            (
                field(&answer, "access_token"),
                field(&answer, "refresh_token"),
            )
        }
    };
    let (ada_access, ada_refresh) = tokens("ada@example.com").await;
    let (bob_access, _) = tokens("bob@example.com").await;
    assert_eq!(me(&b, "acme", &ada_access).await.status, StatusCode::OK);

    ops::revoke_user_sessions(&cli, "acme", ada, "phished")
        .await
        .unwrap();
    let took = refused_within(&b, "acme", &ada_access, "ACCESS_TOKEN_REVOKED").await;
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    assert_eq!(
        me(&b, "acme", &bob_access).await.status,
        StatusCode::OK,
        "only Ada's"
    );
    assert_eq!(
        code(&refresh(&a, "acme", &ada_refresh).await),
        "REFRESH_TOKEN_REVOKED"
    );
    let revoked = common::audit(&pool, "end_user.sessions_revoked").await;
    assert_eq!(revoked[0].3["live_sessions"], 1);

    // A sign-in after the revocation (a second later: epochs are whole seconds) works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (fresh, _) = tokens("ada@example.com").await;
    assert_eq!(me(&b, "acme", &fresh).await.status, StatusCode::OK);

    // The tenant's epoch covers everyone, even a user whose own epoch is older or newer.
    let bad = ops::revoke_tenant_sessions(&cli, "acme", "compromise", "acm").await;
    assert!(bad.unwrap_err().field_message("confirmation").is_some());
    ops::revoke_tenant_sessions(&cli, "acme", "compromise", "acme")
        .await
        .unwrap();
    refused_within(&b, "acme", &fresh, "ACCESS_TOKEN_REVOKED").await;
    refused_within(&b, "acme", &bob_access, "ACCESS_TOKEN_REVOKED").await;
    // Marked ended in the background.
    let marked = ops::mark_revoked_sessions(&pool, 100).await.unwrap();
    assert!(marked >= 2, "{marked}");
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM end_user_sessions WHERE ended_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(live, 0);

    // Locking: sign-in refused with its own code.
    let options = ops::LockOptions {
        send_recovery: false,
        block: vec![],
        block_for: time::Duration::days(7),
    };
    ops::lock(&cli, "acme", bob, "suspicious sign-ins", &options)
        .await
        .unwrap();
    let locked = sign_in(
        &a,
        "acme",
        json!({ "email": "bob@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(code(&locked), "ACCOUNT_LOCKED");
    assert_eq!(
        common::audit(&pool, "end_user.locked").await[0].3["after"],
        "locked"
    );

    // Bad tokens at /me.
    let missing = common::send(
        &b,
        Request::get("/a/acme/api/v1/me")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code(&missing), "ACCESS_TOKEN_MISSING");
    assert!(missing.header("www-authenticate").starts_with("Bearer"));
    assert_eq!(
        code(&me(&b, "acme", "not.a.jwt").await),
        "ACCESS_TOKEN_INVALID"
    );
    assert_eq!(
        code(&me(&b, "other", &bob_access).await),
        "TENANT_NOT_FOUND"
    );
    listener.abort();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_spent_token_used_after_its_successor_moved_on_is_a_reuse_even_within_the_grace(
    pool: PgPool,
) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    let app = common::app(pool.clone());
    let signed_in = sign_in(
        &app,
        "acme",
        json!({ "email": "ada@example.com", "password": PASSWORD }),
    )
    .await;
    let first = field(&signed_in, "refresh_token");
    let second = field(&refresh(&app, "acme", &first).await, "refresh_token");
    let third = refresh(&app, "acme", &second).await;
    assert_eq!(third.status, StatusCode::OK);
    // The first again, seconds later: its successor was used, so this is a stolen copy.
    let stolen = refresh(&app, "acme", &first).await;
    assert_eq!(code(&stolen), "REFRESH_TOKEN_REUSED");
    assert_eq!(
        code(&refresh(&app, "acme", &field(&third, "refresh_token")).await),
        "REFRESH_TOKEN_REVOKED",
        "the whole family"
    );
}
