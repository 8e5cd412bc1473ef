//! Personal access tokens end to end: mint in the console, use at the gateway, revoke, and
//! the refusals and audit events that follow. Real router, real PostgreSQL.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use app::auth::Role;
use app::domain::gateway::verify::Verifier;
use app::panels::integrations::api::{
    GetToken, ListTokens, MintToken, PreviewRevokeAll, RevokeAllTokens, RevokeToken,
};
use axum::http::StatusCode;
use axum::Router;
use common::{
    agent, app_and_verifier, call, code, mint_body, person, send, tenant, urlencode, Answer,
};
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;
use std::sync::Arc;

struct World {
    pool: PgPool,
    app: Router,
    verifier: Arc<Verifier>,
    operator: String,
    operator_id: uuid::Uuid,
}

async fn world(pool: PgPool) -> World {
    tenant(&pool, "acme", "Acme Agents").await;
    let system = app::auth::Actor::system(pool.clone(), "test");
    app::domain::tokens::pepper::create_first_if_none(
        &system,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
    )
    .await
    .unwrap();
    let (app, verifier) = app_and_verifier(pool.clone(), false);
    let (operator_id, operator) = person(&pool, &app, Role::Operator).await;
    World {
        pool,
        app,
        verifier,
        operator,
        operator_id,
    }
}

/// Mints through the real server function; returns (id, plaintext).
async fn mint(w: &World, scopes: &[&str]) -> (String, String) {
    let owner = format!("staff:{}", w.operator_id);
    let answer = call(
        &w.app,
        MintToken::PATH,
        &w.operator,
        &mint_body("acme", "ci deploy", &owner, scopes, "30"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body = answer.json();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["plaintext"].as_str().unwrap().to_owned(),
    )
}

async fn whoami(w: &World, token: &str) -> Answer {
    send(&w.app, agent("GET", "/agent/v1/whoami", Some(token), "")).await
}

/// (action, outcome, code, count) of a token's events, oldest first.
async fn history(pool: &PgPool, id: &str) -> Vec<(String, String, Option<String>, i64)> {
    sqlx::query_as(
        "SELECT action, outcome::text, code, coalesce((details->>'count')::bigint, 1)
         FROM audit_events WHERE target = 'pat:' || $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn mint_use_revoke_then_refused_with_the_right_code(pool: PgPool) {
    let w = world(pool).await;
    let (id, token) = mint(&w, &["agent:read"]).await;
    assert!(token.starts_with(&format!("mf_pat_v1.{id}.")));

    let ok = whoami(&w, &token).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let me = ok.json();
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["token_id"], id.as_str());
    assert_eq!(me["scopes"], serde_json::json!(["agent:read"]));
    assert!(!ok.body.contains(&token), "the token is never echoed");
    // A second call within the same second is counted into the same event.
    assert_eq!(whoami(&w, &token).await.status, StatusCode::OK);
    w.verifier.ledger().flush().await.unwrap();

    let events = history(&w.pool, &id).await;
    assert_eq!(events[0].0, "token.created");
    let used: i64 = events
        .iter()
        .filter(|e| e.0 == "token.used")
        .map(|e| e.3)
        .sum();
    assert_eq!(used, 2, "{events:?}");
    let (last_used, ip): (Option<time::OffsetDateTime>, Option<String>) = sqlx::query_as(
        "SELECT last_used_at, host(last_used_ip) FROM personal_access_tokens WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert!(last_used.is_some());
    assert_eq!(ip.as_deref(), Some("198.51.100.23"));

    let revoked = call(
        &w.app,
        RevokeToken::PATH,
        &w.operator,
        &format!("tenant=acme&token_id={id}&reason=leaked+in+a+CI+log"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    // The revoke happened on this instance: its cache entry is gone at once, with no
    // listener running (the notification covers other instances).
    let refused = whoami(&w, &token).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&refused), "PAT_REVOKED_OR_INVALID");
    assert!(refused.header("www-authenticate").starts_with("Bearer"));
    w.verifier.ledger().flush().await.unwrap();

    let events = history(&w.pool, &id).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    let revoked_at = kinds.iter().position(|k| *k == "token.revoked").unwrap();
    assert!(
        !kinds[revoked_at..].contains(&"token.used"),
        "no use after the revoke: {kinds:?}"
    );
    let failed = events.last().unwrap();
    assert_eq!(failed.0, "token.failed_auth");
    assert_eq!(failed.1, "deny");
    assert_eq!(failed.2.as_deref(), Some("PAT_REVOKED_OR_INVALID"));

    // Nothing stored anywhere holds the token's secret.
    let secret = token.rsplit('.').next().unwrap().to_owned();
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE details::text LIKE '%' || $1 || '%'
            OR coalesce(reason, '') LIKE '%' || $1 || '%'",
    )
    .bind(&secret)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_refusal_has_its_code_and_an_audit_event(pool: PgPool) {
    let w = world(pool).await;
    let (id, token) = mint(&w, &["agent:read"]).await;

    // No header, junk, a typo (checksum): malformed, before any lookup.
    let none = send(&w.app, agent("GET", "/agent/v1/whoami", None, "")).await;
    assert_eq!(
        (none.status, code(&none).as_str()),
        (StatusCode::UNAUTHORIZED, "PAT_MALFORMED")
    );
    let swapped = if token.ends_with('x') { 'y' } else { 'x' };
    let typo = format!("{}{swapped}", &token[..token.len() - 1]);
    assert_eq!(code(&whoami(&w, &typo).await), "PAT_MALFORMED");
    assert_eq!(
        code(&whoami(&w, "mf_pat_v1.abc def.ghi").await),
        "PAT_MALFORMED"
    );

    // Well-formed but unknown: a token minted elsewhere.
    let stranger = app::domain::tokens::token::mint();
    let missing = whoami(&w, &stranger.plaintext).await;
    assert_eq!(code(&missing), "PAT_TOKEN_NOT_FOUND");

    // The scope the route needs.
    let pay = send(
        &w.app,
        agent(
            "POST",
            "/agent/v1/payments",
            Some(&token),
            r#"{"amount_cents": 1200, "currency": "EUR"}"#,
        ),
    )
    .await;
    assert_eq!(pay.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&pay), "INSUFFICIENT_SCOPE");

    // Hashed under another pepper (as if the pepper were swapped under it).
    let other = app::domain::tokens::token::hash(&[7u8; 32], &[1u8; 32]);
    sqlx::query("UPDATE personal_access_tokens SET secret_hash = $2 WHERE id = $1")
        .bind(&id)
        .bind(&other[..])
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    w.verifier.invalidate(&id);
    assert_eq!(code(&whoami(&w, &token).await), "PAT_HASH_MISMATCH");

    // Expired.
    let (id2, token2) = mint(&w, &["agent:read"]).await;
    sqlx::query(
        "UPDATE personal_access_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1",
    )
    .bind(&id2)
    .execute(&mut common::fixture(&w.pool).await)
    .await
    .unwrap();
    let expired = whoami(&w, &token2).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&expired), "PAT_EXPIRED");

    w.verifier.ledger().flush().await.unwrap();
    let codes: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT code, host(ip) FROM audit_events WHERE action = 'token.failed_auth' ORDER BY seq",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    for expected in [
        "PAT_MALFORMED",
        "PAT_TOKEN_NOT_FOUND",
        "INSUFFICIENT_SCOPE",
        "PAT_HASH_MISMATCH",
        "PAT_EXPIRED",
    ] {
        assert!(
            codes
                .iter()
                .any(|(c, ip)| c.as_deref() == Some(expected)
                    && ip.as_deref() == Some("198.51.100.23")),
            "{expected} missing from {codes:?}"
        );
    }
    let malformed: i64 = sqlx::query_scalar(
        "SELECT sum((details->>'count')::bigint)::bigint FROM audit_events WHERE code = 'PAT_MALFORMED'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(malformed, 3, "each malformed call is counted");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_payments_route_accepts_a_token_with_its_scope(pool: PgPool) {
    let w = world(pool).await;
    let (_, token) = mint(&w, &["agent:read", "payments:write"]).await;
    let ok = send(
        &w.app,
        agent(
            "POST",
            "/agent/v1/payments",
            Some(&token),
            r#"{"amount_cents": 1200, "currency": "EUR"}"#,
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::ACCEPTED, "{}", ok.body);
    assert_eq!(ok.json()["status"], "accepted");
    let bad = send(
        &w.app,
        agent(
            "POST",
            "/agent/v1/payments",
            Some(&token),
            r#"{"amount_cents": -5}"#,
        ),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(code(&bad), "INVALID_PAYMENT");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_input_gets_a_clear_message_and_changes_nothing(pool: PgPool) {
    let w = world(pool).await;
    let owner = format!("staff:{}", w.operator_id);
    let long = "n".repeat(101);
    let cases: [(String, &str, &str); 6] = [
        (
            mint_body("acme", "  ", &owner, &["agent:read"], "30"),
            "name",
            "name",
        ),
        (
            mint_body("acme", &long, &owner, &["agent:read"], "30"),
            "name",
            "at most 100",
        ),
        (
            mint_body("acme", "x", &owner, &["root:all"], "30"),
            "scopes",
            "Unknown scope",
        ),
        (
            mint_body("acme", "x", &owner, &[], "30"),
            "scopes",
            "at least one",
        ),
        (
            mint_body("acme", "x", &owner, &["agent:read"], "0"),
            "lifetime_days",
            "future",
        ),
        (
            mint_body("acme", "x", &owner, &["agent:read"], "400"),
            "lifetime_days",
            "at most 90",
        ),
    ];
    for (body, field, says) in cases {
        let answer = call(&w.app, MintToken::PATH, &w.operator, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.body
        );
        let err = answer.json();
        assert_eq!(err["field"], field, "{body}");
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{}",
            answer.body
        );
    }
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM personal_access_tokens")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0, "nothing half-written");

    // Revoking twice: the second is told, and nothing changes.
    let (id, _) = mint(&w, &["agent:read"]).await;
    let revoke = |reason: &str| format!("tenant=acme&token_id={id}&reason={}", urlencode(reason));
    let no_reason = call(&w.app, RevokeToken::PATH, &w.operator, &revoke(" ")).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.json()["field"], "reason");
    let first = call(&w.app, RevokeToken::PATH, &w.operator, &revoke("rotating")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    let again = call(&w.app, RevokeToken::PATH, &w.operator, &revoke("again")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.json()["message"]
        .as_str()
        .unwrap()
        .contains("already revoked"));
    let (reason,): (String,) =
        sqlx::query_as("SELECT revoke_reason FROM personal_access_tokens WHERE id = $1")
            .bind(&id)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(reason, "rotating");
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(events_before, events_after);

    // A pasted token with spaces in the id filter.
    let filtered = call(
        &w.app,
        ListTokens::PATH,
        &w.operator,
        &format!(
            "tenant=acme&{}={}",
            urlencode("filter[id]"),
            urlencode("mf_pat_v1.ab cd.ef")
        ),
    )
    .await;
    assert_eq!(filtered.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(filtered.json()["message"]
        .as_str()
        .unwrap()
        .contains("spaces"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_list_filters_and_pages_without_gaps(pool: PgPool) {
    let w = world(pool).await;
    let mut ids = Vec::new();
    for _ in 0..53 {
        ids.push(mint(&w, &["agent:read"]).await.0);
    }
    let (pay_id, _) = mint(&w, &["payments:write"]).await;
    let page = |extra: String| {
        let app = w.app.clone();
        let cookie = w.operator.clone();
        async move {
            let answer = call(
                &app,
                ListTokens::PATH,
                &cookie,
                &format!("tenant=acme{extra}"),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.json()
        }
    };
    let first = page(String::new()).await;
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0]["id"], pay_id.as_str(), "newest first");
    let cursor = first["next"].as_str().unwrap().to_owned();
    let second = page(format!("&after={}", urlencode(&cursor))).await;
    let mut seen: Vec<String> = rows
        .iter()
        .chain(second["rows"].as_array().unwrap())
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(second["next"].is_null());
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 54, "every token once");

    let scoped = page(format!("&{}=payments%3Awrite", urlencode("filter[scope]"))).await;
    assert_eq!(scoped["rows"].as_array().unwrap().len(), 1);
    let prefix = &ids[0][..6];
    let by_prefix = page(format!("&{}={prefix}", urlencode("filter[id]"))).await;
    assert!(by_prefix["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"].as_str().unwrap().starts_with(prefix)));
    let never = page(format!("&{}=never", urlencode("filter[used]"))).await;
    assert_eq!(never["rows"].as_array().unwrap().len(), 50);

    // The detail view carries the history.
    let detail = call(
        &w.app,
        GetToken::PATH,
        &w.operator,
        &format!("tenant=acme&token_id={pay_id}"),
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert_eq!(detail.json()["events"][0]["kind"], "created");
    // Another tenant's token is not found through this tenant.
    tenant(&w.pool, "other", "Other").await;
    let elsewhere = call(
        &w.app,
        GetToken::PATH,
        &w.operator,
        &format!("tenant=other&token_id={pay_id}"),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn two_revoke_alls_at_once_revoke_each_token_once(pool: PgPool) {
    let w = world(pool).await;
    for _ in 0..20 {
        mint(&w, &["agent:read"]).await;
    }
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let (_, commander2) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let preview = call(
        &w.app,
        PreviewRevokeAll::PATH,
        &commander,
        "tenant=acme&scope=tenant",
    )
    .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert_eq!(preview.json()["active_tokens"], 20);
    assert_eq!(preview.json()["confirm_with"], "acme");

    let body = "tenant=acme&scope=tenant&reason=pepper+leak&confirmation=acme&expected=20";
    let wrong = call(
        &w.app,
        RevokeAllTokens::PATH,
        &commander,
        "tenant=acme&scope=tenant&reason=x&confirmation=ACME&expected=20",
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.json()["field"], "confirmation");

    let (a, b) = tokio::join!(
        call(&w.app, RevokeAllTokens::PATH, &commander, body),
        call(&w.app, RevokeAllTokens::PATH, &commander2, body),
    );
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let mut counts = [
        a.json()["revoked"].as_i64().unwrap(),
        b.json()["revoked"].as_i64().unwrap(),
    ];
    counts.sort();
    assert_eq!(counts, [0, 20]);
    let per_token: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'token.revoked'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(per_token, 20, "one revoked event per token");
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM personal_access_tokens WHERE status = 'active'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(active, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_mass_revoke_refuses_when_more_tokens_appeared_since_the_preview(pool: PgPool) {
    let w = world(pool).await;
    for _ in 0..3 {
        mint(&w, &["agent:read"]).await;
    }
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let answer = call(
        &w.app,
        RevokeAllTokens::PATH,
        &commander,
        &format!(
            "tenant=acme&scope=owner:{}&reason=offboarding&confirmation={}&expected=2",
            w.operator_id,
            urlencode(
                &sqlx::query_scalar::<_, String>("SELECT email FROM staff WHERE id = $1")
                    .bind(w.operator_id)
                    .fetch_one(&w.pool)
                    .await
                    .unwrap()
            )
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    let active: i64 =
        sqlx::query_scalar("SELECT count(*) FROM personal_access_tokens WHERE status = 'active'")
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(active, 3, "nothing revoked");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_revoke_on_one_instance_is_enforced_by_another_through_notify(pool: PgPool) {
    let w = world(pool).await;
    let (id, token) = mint(&w, &["agent:read"]).await;
    // A second instance: its own verifier and cache, listening for changes.
    let (other, other_verifier, other_controls) = common::app_parts(w.pool.clone(), false);
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        other_verifier.clone(),
        other_controls,
    ));
    // Changes from here on reach the listener (no sleep: a slow machine waits longer).
    other_verifier.until_listening().await;
    let warm = send(&other, agent("GET", "/agent/v1/whoami", Some(&token), "")).await;
    assert_eq!(warm.status, StatusCode::OK);
    assert_eq!(other_verifier.cached_len(), 1);

    let revoked = call(
        &w.app,
        RevokeToken::PATH,
        &w.operator,
        &format!("tenant=acme&token_id={id}&reason=compromised"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let started = std::time::Instant::now();
    loop {
        let answer = send(&other, agent("GET", "/agent/v1/whoami", Some(&token), "")).await;
        if answer.status == StatusCode::UNAUTHORIZED {
            assert_eq!(code(&answer), "PAT_REVOKED_OR_INVALID");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the other instance still accepts the token after a second"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    listener.abort();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn revalidation_catches_a_change_whose_notification_was_missed(pool: PgPool) {
    let w = world(pool).await;
    let (id, token) = mint(&w, &["agent:read"]).await;
    assert_eq!(whoami(&w, &token).await.status, StatusCode::OK);
    // Revoked behind the cache's back, with no listener running.
    sqlx::query(
        "UPDATE personal_access_tokens SET status = 'revoked', revoked_at = now(),
                revoked_by = 'test', revoke_reason = 'missed notification' WHERE id = $1",
    )
    .bind(&id)
    .execute(&mut common::fixture(&w.pool).await)
    .await
    .unwrap();
    assert_eq!(
        whoami(&w, &token).await.status,
        StatusCode::OK,
        "still cached"
    );
    let dropped = app::domain::gateway::sync::revalidate(&w.verifier)
        .await
        .unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(code(&whoami(&w, &token).await), "PAT_REVOKED_OR_INVALID");
}

use app::panels::pepper::api::{
    PepperVersions, PreviewPepperCompromise, RotatePepper, RotatePepperCompromised,
};

/// What every instance does on the `pepper` notification.
async fn peppers_changed(w: &World) {
    w.verifier.reload_ring().await.unwrap();
    w.verifier.invalidate_all();
}

async fn pepper_of(pool: &PgPool, id: &str) -> i32 {
    sqlx::query_scalar("SELECT pepper_version FROM personal_access_tokens WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_staged_rotation_keeps_old_tokens_working_and_rehashes_them_on_use(pool: PgPool) {
    let w = world(pool).await;
    let (old_id, old_token) = mint(&w, &["agent:read"]).await;
    let (idle_id, _) = mint(&w, &["agent:read"]).await;
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let rotated = call(
        &w.app,
        RotatePepper::PATH,
        &commander,
        "grace_hours=24&reason=quarterly+rotation&confirmation=rotate",
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.json()["version"], 2);

    // During the grace period the old token still works, and moves to version 2.
    assert_eq!(whoami(&w, &old_token).await.status, StatusCode::OK);
    let flushed = w.verifier.ledger().flush().await.unwrap();
    assert_eq!(flushed.rehashed, 1);
    assert_eq!(pepper_of(&w.pool, &old_id).await, 2);
    w.verifier.invalidate(&old_id);
    assert_eq!(
        whoami(&w, &old_token).await.status,
        StatusCode::OK,
        "verifies under v2"
    );
    let (new_id, _) = mint(&w, &["agent:read"]).await;
    assert_eq!(pepper_of(&w.pool, &new_id).await, 2);

    // The panel shows how many are still on the old version: the one never used.
    let versions = call(&w.app, PepperVersions::PATH, &w.operator, "")
        .await
        .json();
    let v1 = versions
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == 1)
        .unwrap()
        .clone();
    assert_eq!(v1["state"], "previous");
    assert_eq!(v1["active_tokens"], 1);
    assert_eq!(pepper_of(&w.pool, &idle_id).await, 1);

    // A second staged rotation while tokens wait on the previous version is refused.
    let again = call(
        &w.app,
        RotatePepper::PATH,
        &commander,
        "grace_hours=24&reason=again&confirmation=rotate",
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE target = 'pat:' || $1 ORDER BY seq",
    )
    .bind(&old_id)
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert!(events.contains(&"token.rehashed".to_owned()), "{events:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn after_the_grace_period_old_tokens_fail_and_are_revoked(pool: PgPool) {
    let w = world(pool).await;
    let (old_id, old_token) = mint(&w, &["agent:read"]).await;
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let rotated = call(
        &w.app,
        RotatePepper::PATH,
        &commander,
        "grace_hours=1&reason=scheduled&confirmation=rotate",
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    sqlx::query("UPDATE token_peppers SET grace_until = now() - interval '1 second' WHERE state = 'previous'")
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    peppers_changed(&w).await;
    let refused = whoami(&w, &old_token).await;
    assert_eq!(code(&refused), "PAT_REVOKED_OR_INVALID");

    let retired =
        app::panels::pepper::ops::retire_expired(&app::auth::Actor::system(w.pool.clone(), "test"))
            .await
            .unwrap();
    assert_eq!(retired, Some((1, 1)));
    assert_eq!(
        app::panels::pepper::ops::retire_expired(&app::auth::Actor::system(w.pool.clone(), "test"))
            .await
            .unwrap(),
        None
    );
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM personal_access_tokens WHERE id = $1")
            .bind(&old_id)
            .fetch_one(&w.pool)
            .await
            .unwrap();
    assert_eq!(status, "revoked");
    let retired_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = 'pepper.retired' AND source = 'system'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(retired_events, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_compromise_rotation_revokes_every_token_and_new_ones_work(pool: PgPool) {
    let w = world(pool).await;
    let (old_id, old_token) = mint(&w, &["agent:read"]).await;
    mint(&w, &["agent:read"]).await;
    // Cached before the rotation: the rotation itself must drop it on this instance.
    assert_eq!(whoami(&w, &old_token).await.status, StatusCode::OK);
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let preview = call(&w.app, PreviewPepperCompromise::PATH, &commander, "").await;
    assert_eq!(preview.status, StatusCode::OK);
    assert_eq!(preview.json()["total"], 2);
    assert_eq!(preview.json()["tenants"][0]["slug"], "acme");

    let unconfirmed = call(
        &w.app,
        RotatePepperCompromised::PATH,
        &commander,
        "reason=leak&confirmation=yes&expected=2",
    )
    .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rotated = call(
        &w.app,
        RotatePepperCompromised::PATH,
        &commander,
        "reason=pepper+in+a+leaked+env+file&confirmation=revoke+all+tokens&expected=2",
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_eq!(rotated.json()["revoked"], 2);

    // The runbook's verification: old tokens fail with failed_auth, new ones log used.
    assert_eq!(
        code(&whoami(&w, &old_token).await),
        "PAT_REVOKED_OR_INVALID"
    );
    let (new_id, new_token) = mint(&w, &["agent:read"]).await;
    assert_eq!(pepper_of(&w.pool, &new_id).await, 2);
    assert_eq!(whoami(&w, &new_token).await.status, StatusCode::OK);
    w.verifier.ledger().flush().await.unwrap();
    let old = history(&w.pool, &old_id).await;
    assert_eq!(old.last().unwrap().0, "token.failed_auth");
    let new = history(&w.pool, &new_id).await;
    assert_eq!(new.last().unwrap().0, "token.used");
    let states: Vec<(i32, String)> =
        sqlx::query_as("SELECT version, state FROM token_peppers ORDER BY version")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [(1, "retired".to_owned()), (2, "current".to_owned())]
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_smoke_command_reports_pass_then_fail_after_a_revoke(pool: PgPool) {
    let w = world(pool).await;
    let (id, token) = mint(&w, &["agent:read"]).await;
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
        tokio::task::spawn_blocking(move || server::smoke::run(&url, &token))
    };
    let report = smoke(format!(" {token}\n")).await.unwrap().unwrap();
    assert!(report.passed, "{:?}", report.lines);
    assert!(
        report.lines.iter().any(|l| l.contains("tenant acme")),
        "{:?}",
        report.lines
    );
    assert!(
        !report.lines.iter().any(|l| l.contains(&token)),
        "never printed"
    );

    let revoked = call(
        &w.app,
        RevokeToken::PATH,
        &w.operator,
        &format!("tenant=acme&token_id={id}&reason=smoke+test"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let report = smoke(token.clone()).await.unwrap().unwrap();
    assert!(!report.passed);
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("PAT_REVOKED_OR_INVALID")),
        "{:?}",
        report.lines
    );
    server.abort();
}

/// Waits up to a second for `check` to pass, polling.
async fn within_a_second(mut check: impl AsyncFnMut() -> bool, what: &str) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn tokens_of_a_disabled_owner_or_suspended_client_are_refused(pool: PgPool) {
    let w = world(pool).await;
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        w.verifier.clone(),
        common::controls(w.pool.clone()),
    ));
    // Changes from here on reach the listener (no sleep: a slow machine waits longer).
    w.verifier.until_listening().await;

    // A staff owner disabled: their token stops working.
    let (_, token) = mint(&w, &["agent:read"]).await;
    assert_eq!(whoami(&w, &token).await.status, StatusCode::OK);
    let admin = app::auth::Actor::command_line_unchecked(w.pool.clone(), "test");
    app::panels::staff::ops::set_active(&admin, w.operator_id, false)
        .await
        .unwrap();
    within_a_second(
        async || code(&whoami(&w, &token).await) == "PAT_REVOKED_OR_INVALID",
        "a disabled owner's token still works",
    )
    .await;

    // A client suspended: 403 CLIENT_SUSPENDED; revoked: 401 CLIENT_REVOKED.
    let client: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO api_clients (tenant_id, name) SELECT id, 'ci-bot' FROM tenants WHERE slug = 'acme' RETURNING id",
    )
    .fetch_one(&mut common::fixture(&w.pool).await)
    .await
    .unwrap();
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let minted = call(
        &w.app,
        MintToken::PATH,
        &commander,
        &mint_body(
            "acme",
            "bot",
            &format!("client:{client}"),
            &["agent:read"],
            "30",
        ),
    )
    .await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    let bot = minted.json()["plaintext"].as_str().unwrap().to_owned();
    let me = whoami(&w, &bot).await;
    assert_eq!(me.json()["client"], client.to_string());
    for (status, wanted) in [
        ("suspended", "CLIENT_SUSPENDED"),
        ("revoked", "CLIENT_REVOKED"),
    ] {
        sqlx::query("UPDATE api_clients SET status = $2::client_status WHERE id = $1")
            .bind(client)
            .bind(status)
            .execute(&mut common::fixture(&w.pool).await)
            .await
            .unwrap();
        within_a_second(
            async || code(&whoami(&w, &bot).await) == wanted,
            "the client's status is not enforced",
        )
        .await;
    }
    listener.abort();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_operator_cannot_mint_a_token_owned_by_someone_else(pool: PgPool) {
    let w = world(pool).await;
    let (other, _) = person(&w.pool, &w.app, Role::Admin).await;
    let answer = call(
        &w.app,
        MintToken::PATH,
        &w.operator,
        &mint_body(
            "acme",
            "x",
            &format!("staff:{other}"),
            &["agent:read"],
            "30",
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["field"], "owner");
    // A client of another tenant is not an owner here, and the database would refuse it too.
    tenant(&w.pool, "other", "Other").await;
    let foreign: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO api_clients (tenant_id, name) SELECT id, 'theirs' FROM tenants WHERE slug = 'other' RETURNING id",
    )
    .fetch_one(&mut common::fixture(&w.pool).await)
    .await
    .unwrap();
    let answer = call(
        &w.app,
        MintToken::PATH,
        &w.operator,
        &mint_body(
            "acme",
            "x",
            &format!("client:{foreign}"),
            &["agent:read"],
            "30",
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let tokens: i64 = sqlx::query_scalar("SELECT count(*) FROM personal_access_tokens")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(tokens, 0);
}

/// (status, revoke reason) of a token row.
async fn token_state(pool: &PgPool, id: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT status::text, revoke_reason FROM personal_access_tokens WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_password_reset_revokes_the_owners_tokens(pool: PgPool) {
    use app::panels::staff::api::ResetStaffPassword;
    let w = world(pool).await;
    let (id, token) = mint(&w, &["agent:read"]).await;
    assert_eq!(whoami(&w, &token).await.status, StatusCode::OK);
    // Someone else's token is not touched.
    let (other_id, other) = person(&w.pool, &w.app, Role::Operator).await;
    let minted = call(
        &w.app,
        MintToken::PATH,
        &other,
        &mint_body(
            "acme",
            "theirs",
            &format!("staff:{other_id}"),
            &["agent:read"],
            "30",
        ),
    )
    .await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.body);
    let theirs = minted.json()["plaintext"].as_str().unwrap().to_owned();

    // The admin resets the operator's password: the suspected-compromise step.
    let admin = common::admin_cookie(&w.pool, &w.app).await;
    let reset = call(
        &w.app,
        ResetStaffPassword::PATH,
        &admin,
        &format!("staff_id={}", w.operator_id),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);

    // The very next call with the token is refused as revoked.
    let refused = whoami(&w, &token).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(code(&refused), "PAT_REVOKED_OR_INVALID");
    assert_eq!(
        token_state(&w.pool, &id).await,
        ("revoked".to_owned(), Some("password reset".to_owned()))
    );
    let revoked: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT actor_name, reason FROM audit_events WHERE action = 'token.revoked' AND target = $1",
    )
    .bind(format!("pat:{id}"))
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].1.as_deref(), Some("password reset"));
    assert_eq!(whoami(&w, &theirs).await.status, StatusCode::OK);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_demoted_owners_tokens_are_refused_from_the_next_call(pool: PgPool) {
    use app::panels::staff::api::ChangeStaffRole;
    let w = world(pool).await;
    let (_, token) = mint(&w, &["agent:read"]).await;
    assert_eq!(whoami(&w, &token).await.status, StatusCode::OK);

    // Demoted in the console to a role below what tokens need: refused at once.
    let admin = common::admin_cookie(&w.pool, &w.app).await;
    let demote = call(
        &w.app,
        ChangeStaffRole::PATH,
        &admin,
        &format!("staff_id={}&role=viewer", w.operator_id),
    )
    .await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.body);
    let refused = whoami(&w, &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(code(&refused), "OWNER_ROLE_INSUFFICIENT");

    // A role change made elsewhere (here the command line, with no cache of its own)
    // reaches this instance through the notification.
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        w.verifier.clone(),
        common::controls(w.pool.clone()),
    ));
    // Changes from here on reach the listener (no sleep: a slow machine waits longer).
    w.verifier.until_listening().await;
    let cli = app::auth::Actor::command_line_unchecked(w.pool.clone(), "test");
    app::panels::staff::ops::change_role(&cli, w.operator_id, Role::Operator)
        .await
        .unwrap();
    within_a_second(
        async || whoami(&w, &token).await.status == StatusCode::OK,
        "promoted back, the token does not work again",
    )
    .await;
    app::panels::staff::ops::change_role(&cli, w.operator_id, Role::Auditor)
        .await
        .unwrap();
    within_a_second(
        async || code(&whoami(&w, &token).await) == "OWNER_ROLE_INSUFFICIENT",
        "a demotion made elsewhere is not enforced",
    )
    .await;
    listener.abort();

    // Without any notification, the revalidation poll finds the changed role.
    sqlx::query("UPDATE staff SET role = 'operator' WHERE id = $1")
        .bind(w.operator_id)
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    sqlx::query("UPDATE staff SET role = 'viewer' WHERE id = $1")
        .bind(w.operator_id)
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    w.verifier.invalidate_all();
    assert_eq!(code(&whoami(&w, &token).await), "OWNER_ROLE_INSUFFICIENT");
    sqlx::query("UPDATE staff SET role = 'operator' WHERE id = $1")
        .bind(w.operator_id)
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    assert_eq!(
        code(&whoami(&w, &token).await),
        "OWNER_ROLE_INSUFFICIENT",
        "cached until revalidated"
    );
    assert_eq!(
        app::domain::gateway::sync::revalidate(&w.verifier)
            .await
            .unwrap(),
        1
    );
    assert_eq!(whoami(&w, &token).await.status, StatusCode::OK);

    // The refusals are audited with their code.
    w.verifier.ledger().flush().await.unwrap();
    let refusals: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(coalesce((details->>'count')::bigint, 1)), 0)::bigint FROM audit_events
         WHERE action = 'token.failed_auth' AND code = 'OWNER_ROLE_INSUFFICIENT'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert!(refusals >= 4, "{refusals}");

    // Nobody can mint a token for someone whose role could not use it.
    let (viewer_id, _) = person(&w.pool, &w.app, Role::Viewer).await;
    let (_, commander) = person(&w.pool, &w.app, Role::IncidentCommander).await;
    let answer = call(
        &w.app,
        MintToken::PATH,
        &commander,
        &mint_body(
            "acme",
            "x",
            &format!("staff:{viewer_id}"),
            &["agent:read"],
            "30",
        ),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert_eq!(answer.json()["field"], "owner");
}
