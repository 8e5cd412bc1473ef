//! Delegated agent tokens (issue 16): the RFC 8693 exchange, the gateway's checks of the
//! JWTs it issues, revocation refusing at once, single use on payments, and every bad
//! token refused with its own code.

use crate::common;
use app::auth::{Actor, Role};
use app::domain::keys::{KeyPolicy, PrivateKey};
use app::domain::status::SigningAlgorithm;
use app::domain::tokens::pepper::MasterKey;
use app::panels::integrations::MintForm;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sqlx::PgPool;
use std::sync::Arc;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const PAT_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn master() -> MasterKey {
    MasterKey::new(common::MASTER_KEY)
}

struct World {
    app: Router,
    verifier: Arc<app::domain::gateway::verify::Verifier>,
    cli: Actor,
    pat: String,
    kid: String,
}

async fn world(pool: &PgPool, scopes: &[&str], audiences: &str) -> World {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    app::domain::tokens::pepper::create_first_if_none(
        &cli,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
    )
    .await
    .unwrap();
    let form = app::panels::tenants::NewTenantForm {
        slug: "acme".into(),
        name: "Acme".into(),
        retention_months: "12".into(),
        max_token_days: "90".into(),
        audiences: audiences.into(),
        algorithm: "".into(),
    };
    let (tenant, kid) = app::panels::tenants::ops::create(&cli, &master(), &form)
        .await
        .unwrap();
    let operator = common::staff(
        pool,
        "op@example.com",
        Role::Operator,
        common::PERSON_PASSWORD,
    )
    .await;
    let minted = app::panels::integrations::ops::mint(
        &cli,
        &tenant,
        &MintForm {
            name: "agent".into(),
            owner: format!("staff:{operator}"),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            lifetime_days: "7".into(),
        },
        &master(),
    )
    .await
    .unwrap();
    let (app, verifier) = common::app_and_verifier(pool.clone(), false);
    verifier.keys().reload().await.unwrap();
    World {
        app,
        verifier,
        cli,
        pat: minted.plaintext,
        kid,
    }
}

async fn exchange(app: &Router, tenant: &str, body: &str) -> common::Answer {
    let mut req = Request::post(format!("/a/{tenant}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [198, 51, 100, 23],
            50000,
        ))));
    common::send(app, req).await
}

fn body(pat: &str, extra: &str) -> String {
    format!(
        "grant_type={}&subject_token={}&subject_token_type={}{extra}",
        common::urlencode(GRANT),
        common::urlencode(pat),
        common::urlencode(PAT_TYPE)
    )
}

async fn delegated(w: &World, extra: &str) -> String {
    let answer = exchange(&w.app, "acme", &body(&w.pat, extra)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()["access_token"].as_str().unwrap().to_owned()
}

async fn whoami(app: &Router, token: &str) -> common::Answer {
    common::send(
        app,
        common::agent("GET", "/agent/v1/whoami", Some(token), ""),
    )
    .await
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A token with the same header and claims as `token`, re-signed by `key` under `kid`, with
/// `change` applied to the claims.
fn forged(
    token: &str,
    key: &PrivateKey,
    kid: &str,
    change: impl FnOnce(&mut serde_json::Value),
) -> String {
    let mut claims = claims(token);
    change(&mut claims);
    app::domain::keys::sign_compact(key, kid, "at+jwt", &claims)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_pat_is_exchanged_for_a_delegated_token_the_gateway_accepts(pool: PgPool) {
    let w = world(&pool, &["agent:read", "payments:write"], "agent-api").await;
    let answer = exchange(&w.app, "acme", &body(&w.pat, "&scope=agent%3Aread")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), "no-store");
    let json = answer.json();
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["issued_token_type"], PAT_TYPE);
    assert_eq!(json["expires_in"], 600);
    assert_eq!(json["scope"], "agent:read");
    let token = json["access_token"].as_str().unwrap();
    assert!(
        !token.contains(&w.pat),
        "the subject token is not in the answer"
    );
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], w.kid);
    let c = claims(token);
    assert_eq!(c["iss"], format!("{}/a/acme", common::ORIGIN));
    assert_eq!(c["aud"], "agent-api");
    assert_eq!(c["tenant"], "acme");
    assert!(c["sub"].as_str().unwrap().starts_with("staff:"));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert_eq!(c["pat"], w.pat.split('.').nth(1).unwrap());

    let me = whoami(&w.app, token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["tenant"], "acme");
    assert_eq!(me.json()["scopes"], serde_json::json!(["agent:read"]));
    assert_eq!(me.json()["delegated"]["kid"], w.kid);
    // Narrowed: the payments scope was not asked for.
    let pay = common::send(
        &w.app,
        common::agent(
            "POST",
            "/agent/v1/payments",
            Some(token),
            r#"{"amount_cents": 100, "currency": "EUR"}"#,
        ),
    )
    .await;
    assert_eq!(
        (pay.status, common::code(&pay).as_str()),
        (StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE")
    );

    w.verifier.ledger().flush().await.unwrap();
    let issued = common::audit(&pool, "delegated.issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].3["kid"], w.kid);
    assert_eq!(issued[0].3["jti"], c["jti"]);
    let used = common::audit(&pool, "delegated.used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].3["pat"], w.pat.split('.').nth(1).unwrap());
    // The keys panel counts them per kid.
    let tenant = app::domain::tenants::queries::find(&pool, "acme")
        .await
        .unwrap();
    let usage = app::panels::keys::queries::usage(&pool, tenant.id)
        .await
        .unwrap();
    assert_eq!(
        usage,
        vec![app::panels::keys::KeyUse {
            kid: w.kid.clone(),
            signed: 1,
            verified: 1
        }]
    );
    // A revocation's preview counts the delegated tokens the key signed that may be live.
    let preview =
        app::panels::keys::ops::preview(&w.cli, KeyPolicy::default(), "acme", Some(&w.kid))
            .await
            .unwrap();
    assert_eq!(preview.live_tokens, 1);
    let failed = common::audit(&pool, "delegated.failed_auth").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.as_deref(), Some("INSUFFICIENT_SCOPE"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_exchanges_answer_rfc_6749_errors_with_our_code(pool: PgPool) {
    let w = world(&pool, &["agent:read"], "agent-api, billing").await;
    common::tenant(&pool, "other", "Other").await;
    w.verifier.keys().reload().await.unwrap();
    let cases: Vec<(String, &str, StatusCode, &str, &str)> = vec![
        (
            body(&w.pat, "").replace("token-exchange", "client-credentials"),
            "acme",
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "DELEGATED_GRANT_UNSUPPORTED",
        ),
        (
            body(&w.pat, "").replace("access_token", "jwt"),
            "acme",
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "DELEGATED_REQUEST_INVALID",
        ),
        (
            body(&w.pat, "&audience=payments-api"),
            "acme",
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "DELEGATED_AUDIENCE_NOT_ALLOWED",
        ),
        (
            body(&w.pat, "&scope=agent%3Aread+payments%3Awrite"),
            "acme",
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "DELEGATED_SCOPE_TOO_WIDE",
        ),
        (
            body(&w.pat, ""),
            "other",
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "DELEGATED_SUBJECT_WRONG_TENANT",
        ),
        (
            body("mf_pat_v1.nope.nope", ""),
            "acme",
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PAT_MALFORMED",
        ),
        (
            body(&w.pat, ""),
            "nobody",
            StatusCode::NOT_FOUND,
            "invalid_request",
            "TENANT_NOT_FOUND",
        ),
        (
            format!("{}&scope=x&scope=y", body(&w.pat, "")),
            "acme",
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "DELEGATED_REQUEST_INVALID",
        ),
    ];
    for (form, tenant, status, error, code) in cases {
        let answer = exchange(&w.app, tenant, &form).await;
        assert_eq!(answer.status, status, "{code}: {}", answer.body);
        let json = answer.json();
        assert_eq!(
            (json["error"].as_str(), json["code"].as_str()),
            (Some(error), Some(code)),
            "{}",
            answer.body
        );
        assert!(json["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
        assert!(
            !answer.body.contains(&w.pat),
            "{code}: the token is never echoed"
        );
    }
    // An allowed other audience is issued, and the agent API refuses it.
    let billing = delegated(&w, "&audience=billing").await;
    let me = whoami(&w.app, &billing).await;
    assert_eq!(
        (me.status, common::code(&me).as_str()),
        (StatusCode::UNAUTHORIZED, "DELEGATED_AUDIENCE_MISMATCH")
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn forged_and_malformed_tokens_are_refused_with_their_own_code(pool: PgPool) {
    let w = world(&pool, &["agent:read"], "agent-api").await;
    let good = delegated(&w, "").await;
    let [header, payload, signature]: [&str; 3] =
        good.split('.').collect::<Vec<_>>().try_into().unwrap();
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let stranger = PrivateKey::generate(SigningAlgorithm::Es256);
    let stranger_kid = stranger.public().thumbprint();
    let cases: Vec<(String, &str)> = vec![
        // alg none, with and without a signature.
        (
            format!(
                "{}.{payload}.",
                b64(serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": w.kid}))
            ),
            "DELEGATED_MALFORMED",
        ),
        // HMAC keyed with the public key (the classic confusion).
        (
            format!(
                "{}.{payload}.{signature}",
                b64(serde_json::json!({"alg": "HS256", "kid": w.kid}))
            ),
            "DELEGATED_MALFORMED",
        ),
        // A kid no published key has.
        (
            forged(&good, &stranger, &stranger_kid, |_| {}),
            "DELEGATED_KEY_UNKNOWN",
        ),
        // Signed by a stranger under our kid.
        (
            forged(&good, &stranger, &w.kid, |_| {}),
            "DELEGATED_SIGNATURE_INVALID",
        ),
        // Our signature over other claims.
        (
            format!(
                "{header}.{}.{signature}",
                b64(serde_json::json!({"sub": "staff:x"}))
            ),
            "DELEGATED_SIGNATURE_INVALID",
        ),
        (
            format!("{header}.{payload}.{}", "A".repeat(86)),
            "DELEGATED_SIGNATURE_INVALID",
        ),
        (
            format!("{header}.{payload}.not*base64"),
            "DELEGATED_MALFORMED",
        ),
        (
            format!("eyJ{}.{payload}.{signature}", "A".repeat(5000)),
            "DELEGATED_MALFORMED",
        ),
        (
            format!("eyJhbGciOi.{payload}.{signature}"),
            "DELEGATED_MALFORMED",
        ),
        // No typ (RFC 9068 wants at+jwt), an extension we do not know, a kid not shaped
        // like a thumbprint: refused before any key is looked up.
        (
            format!(
                "{}.{payload}.{signature}",
                b64(serde_json::json!({"alg": "ES256", "kid": w.kid}))
            ),
            "DELEGATED_MALFORMED",
        ),
        (
            format!(
                "{}.{payload}.{signature}",
                b64(
                    serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": w.kid, "crit": ["exp"]})
                )
            ),
            "DELEGATED_MALFORMED",
        ),
        (
            format!(
                "{}.{payload}.{signature}",
                b64(serde_json::json!({"alg": "ES256", "typ": "at+jwt", "kid": "x".repeat(3000)}))
            ),
            "DELEGATED_MALFORMED",
        ),
    ];
    for (token, code) in cases {
        let me = whoami(&w.app, &token).await;
        assert_eq!(
            (me.status, common::code(&me).as_str()),
            (StatusCode::UNAUTHORIZED, code),
            "{token:.60}"
        );
    }
    // A jku / jwk header naming the stranger's key changes nothing.
    let with_jku = {
        let header = b64(serde_json::json!({
            "alg": "ES256", "typ": "at+jwt", "kid": w.kid,
            "jku": "https://attacker.example/jwks.json", "jwk": stranger.public().jwk(),
        }));
        let input = format!("{header}.{payload}");
        format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(stranger.sign(input.as_bytes()))
        )
    };
    let me = whoami(&w.app, &with_jku).await;
    assert_eq!(common::code(&me), "DELEGATED_SIGNATURE_INVALID");
    // The good one still works.
    assert_eq!(whoami(&w.app, &good).await.status, StatusCode::OK);
    // Expired beyond the skew, and not yet valid.
    let key = app::domain::keys::open(
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
        sqlx::query_scalar("SELECT tenant_id FROM signing_keys WHERE kid = $1")
            .bind(&w.kid)
            .fetch_one(&pool)
            .await
            .unwrap(),
        &w.kid,
        SigningAlgorithm::Es256,
        &sqlx::query_scalar::<_, Vec<u8>>("SELECT nonce FROM signing_keys WHERE kid = $1")
            .bind(&w.kid)
            .fetch_one(&pool)
            .await
            .unwrap(),
        &sqlx::query_scalar::<_, Vec<u8>>("SELECT sealed FROM signing_keys WHERE kid = $1")
            .bind(&w.kid)
            .fetch_one(&pool)
            .await
            .unwrap(),
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = forged(&good, &key, &w.kid, |c| c["exp"] = (now - 31).into());
    assert_eq!(
        common::code(&whoami(&w.app, &expired).await),
        "DELEGATED_EXPIRED"
    );
    let within_skew = forged(&good, &key, &w.kid, |c| c["exp"] = (now - 5).into());
    assert_eq!(whoami(&w.app, &within_skew).await.status, StatusCode::OK);
    let early = forged(&good, &key, &w.kid, |c| c["nbf"] = (now + 120).into());
    assert_eq!(
        common::code(&whoami(&w.app, &early).await),
        "DELEGATED_EXPIRED"
    );
    let other_issuer = forged(&good, &key, &w.kid, |c| {
        c["iss"] = "https://evil.example/a/acme".into()
    });
    assert_eq!(
        common::code(&whoami(&w.app, &other_issuer).await),
        "DELEGATED_MALFORMED"
    );

    // A staged key signs nothing: a token claiming it is refused (its private key would
    // have to have leaked).
    let staged = app::panels::keys::ops::stage(&w.cli, &master(), "acme", "next")
        .await
        .unwrap()
        .staged
        .unwrap();
    w.verifier.keys().reload().await.unwrap();
    let sealed: (uuid::Uuid, Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT tenant_id, nonce, sealed FROM signing_keys WHERE kid = $1")
            .bind(&staged)
            .fetch_one(&pool)
            .await
            .unwrap();
    let staged_key = app::domain::keys::open(
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
        sealed.0,
        &staged,
        SigningAlgorithm::Es256,
        &sealed.1,
        &sealed.2,
    )
    .unwrap();
    let by_staged = forged(&good, &staged_key, &staged, |_| {});
    assert_eq!(
        common::code(&whoami(&w.app, &by_staged).await),
        "DELEGATED_KEY_UNKNOWN"
    );

    // Taking agent-api from the tenant's audiences ends the tokens issued for it.
    app::panels::tenants::ops::update_settings(&w.cli, "acme", "90", "billing", "")
        .await
        .unwrap();
    w.verifier.keys().reload().await.unwrap();
    assert_eq!(
        common::code(&whoami(&w.app, &good).await),
        "DELEGATED_AUDIENCE_MISMATCH"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn revoking_the_key_or_the_pat_refuses_its_tokens_at_once(pool: PgPool) {
    let w = world(&pool, &["agent:read"], "agent-api").await;
    let token = delegated(&w, "").await;
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    // Cached now; the revocation must still refuse it.
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    app::panels::keys::ops::revoke(
        &w.cli,
        &master(),
        "acme",
        &w.kid,
        "signing key compromise",
        &w.kid,
    )
    .await
    .unwrap();
    w.verifier.keys().reload().await.unwrap();
    let me = whoami(&w.app, &token).await;
    assert_eq!(
        (me.status, common::code(&me).as_str()),
        (StatusCode::UNAUTHORIZED, "DELEGATED_KEY_REVOKED")
    );
    // A fresh exchange signs with the key that replaced it, and works.
    let fresh = delegated(&w, "").await;
    assert_ne!(claims(&fresh)["jti"], claims(&token)["jti"]);
    assert_eq!(whoami(&w.app, &fresh).await.status, StatusCode::OK);

    // Revoking the personal access token ends the delegated tokens made from it.
    let id = w.pat.split('.').nth(1).unwrap();
    let tenant = app::domain::tenants::queries::find(&pool, "acme")
        .await
        .unwrap();
    app::panels::integrations::ops::revoke(&w.cli, &tenant, id, "leaked")
        .await
        .unwrap();
    w.verifier.invalidate(id);
    let me = whoami(&w.app, &fresh).await;
    assert_eq!(common::code(&me), "PAT_REVOKED_OR_INVALID");
    assert_eq!(
        exchange(&w.app, "acme", &body(&w.pat, "")).await.json()["code"],
        "PAT_REVOKED_OR_INVALID"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_retired_key_verifies_until_its_verify_until_and_an_unknown_kid_reloads_once(
    pool: PgPool,
) {
    let w = world(&pool, &["agent:read"], "agent-api").await;
    let old = delegated(&w, "").await;
    let next = app::panels::keys::ops::stage(&w.cli, &master(), "acme", "rotation")
        .await
        .unwrap()
        .staged
        .unwrap();
    // Staged on another instance: this one has not reloaded, so the new kid is unknown
    // here until a token names it.
    app::panels::keys::ops::activate(
        &w.cli,
        KeyPolicy::default(),
        "acme",
        &next,
        "rotation",
        true,
        "acme",
    )
    .await
    .unwrap();
    // The old key is retired, still verifying: its token works.
    w.verifier.keys().reload().await.unwrap();
    assert_eq!(whoami(&w.app, &old).await.status, StatusCode::OK);
    let new = delegated(&w, "").await;
    assert_eq!(claims(&new)["iss"], claims(&old)["iss"]);
    assert_eq!(whoami(&w.app, &new).await.status, StatusCode::OK);
    // Past verify_until the retired key's tokens are refused.
    sqlx::query("UPDATE signing_keys SET verify_until = now() - interval '1 second', retired_at = now() - interval '1 hour' WHERE kid = $1")
        .bind(&w.kid)
        .execute(&mut common::fixture(&pool).await)
        .await
        .unwrap();
    w.verifier.keys().reload().await.unwrap();
    assert_eq!(
        common::code(&whoami(&w.app, &old).await),
        "DELEGATED_KEY_REVOKED"
    );

    // An unknown kid: one reload, then none for 30 s however many come.
    let stranger = PrivateKey::generate(SigningAlgorithm::Es256);
    let reloads = w.verifier.keys().reloads();
    for _ in 0..20 {
        let kid = PrivateKey::generate(SigningAlgorithm::Es256)
            .public()
            .thumbprint();
        let token = forged(&new, &stranger, &kid, |_| {});
        assert_eq!(
            common::code(&whoami(&w.app, &token).await),
            "DELEGATED_KEY_UNKNOWN"
        );
    }
    assert_eq!(w.verifier.keys().reloads() - reloads, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_delegated_token_pays_once(pool: PgPool) {
    let w = world(&pool, &["agent:read", "payments:write"], "agent-api").await;
    let token = delegated(&w, "").await;
    let pay = |token: String| {
        let app = w.app.clone();
        async move {
            common::send(
                &app,
                common::agent(
                    "POST",
                    "/agent/v1/payments",
                    Some(&token),
                    r#"{"amount_cents": 100, "currency": "EUR"}"#,
                ),
            )
            .await
        }
    };
    assert_eq!(pay(token.clone()).await.status, StatusCode::ACCEPTED);
    // Another instance sees the same table: a second router over the same database.
    let (other, other_verifier) = common::app_and_verifier(pool.clone(), false);
    other_verifier.keys().reload().await.unwrap();
    let replay = common::send(
        &other,
        common::agent(
            "POST",
            "/agent/v1/payments",
            Some(&token),
            r#"{"amount_cents": 100, "currency": "EUR"}"#,
        ),
    )
    .await;
    assert_eq!(
        (replay.status, common::code(&replay).as_str()),
        (StatusCode::UNAUTHORIZED, "DELEGATED_NONCE_REPLAY")
    );
    assert_eq!(
        common::code(&pay(token.clone()).await),
        "DELEGATED_NONCE_REPLAY"
    );
    // Reading is not single-use.
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    // A fresh token pays.
    assert_eq!(
        pay(delegated(&w, "").await).await.status,
        StatusCode::ACCEPTED
    );
    // Uses are kept well past their token's expiry (an instance whose clock runs behind
    // must not accept a replay after the record is gone), then purged.
    sqlx::query("UPDATE delegated_token_uses SET expires_at = now() - interval '1 minute'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        app::domain::gateway::delegated::purge_used(&pool)
            .await
            .unwrap(),
        0
    );
    sqlx::query("UPDATE delegated_token_uses SET expires_at = now() - interval '11 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        app::domain::gateway::delegated::purge_used(&pool)
            .await
            .unwrap(),
        2
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_smoke_command_exchanges_and_calls_whoami_with_the_delegated_token(pool: PgPool) {
    let w = world(&pool, &["agent:read"], "agent-api").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = w.app.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            served.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let smoke = |token: String| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || server::smoke::run_delegated(&url, &token))
    };
    let report = smoke(w.pat.clone()).await.unwrap().unwrap();
    assert!(report.passed, "{:?}", report.lines);
    let text = report.lines.join("\n");
    assert!(text.contains("/a/acme/oauth/token"), "{text}");
    assert!(
        text.contains("delegated token issued: expires in 600 s"),
        "{text}"
    );
    assert!(
        text.contains("PASS: the gateway accepted the delegated token"),
        "{text}"
    );
    assert!(
        !text.contains(&w.pat) && !text.contains("eyJ"),
        "no token printed: {text}"
    );

    // With the tenant's agent-api audience gone, the exchange refuses, and smoke says so.
    app::panels::tenants::ops::update_settings(&w.cli, "acme", "90", "billing", "")
        .await
        .unwrap();
    w.verifier.keys().reload().await.unwrap();
    let report = smoke(w.pat.clone()).await.unwrap().unwrap();
    assert!(!report.passed);
    let text = report.lines.join("\n");
    assert!(text.contains("DELEGATED_AUDIENCE_NOT_ALLOWED"), "{text}");
    server.abort();
}
