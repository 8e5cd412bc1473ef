//! Agent Ops end to end against PostgreSQL: API clients, kill switches (with timed revert
//! and a second instance), rate limits, IP blocks, the switches API, and the gateway's
//! refusal code for each.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use crate::common;

use app::auth::Role;
use app::domain::gateway::controls::state::Controls;
use app::domain::gateway::verify::Verifier;
use app::panels::agent_ops::api::{
    CreateClient, GetClient, PreviewClientRevoke, RevokeClient, RotateClientKey,
    SetClientAllowlisted, SetClientStatus,
};
use app::panels::integrations::api::MintToken;
use app::panels::limits::api::{BlockIp, GetLimits, RemoveRateLimit, SetRateLimit, UnblockIp};
use app::panels::switches::api::{FlipSwitch, ListSwitches, RemoveSwitchOverride};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use common::{agent, call, code, mint_body, person, send, tenant, urlencode, Answer};
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct World {
    pool: PgPool,
    app: Router,
    verifier: Arc<Verifier>,
    controls: Arc<Controls>,
    operator: String,
    commander: String,
}

async fn world(pool: PgPool) -> World {
    tenant(&pool, "acme", "Acme Agents").await;
    tenant(&pool, "globex", "Globex").await;
    let system = app::auth::Actor::system(pool.clone(), "test");
    app::domain::tokens::pepper::create_first_if_none(
        &system,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
    )
    .await
    .unwrap();
    let (app, verifier, controls) = common::app_parts(pool.clone(), false);
    controls.reload().await.unwrap();
    let (_, operator) = person(&pool, &app, Role::Operator).await;
    let (_, commander) = person(&pool, &app, Role::IncidentCommander).await;
    World {
        pool,
        app,
        verifier,
        controls,
        operator,
        commander,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Creates a client through the server function; returns (id, key).
async fn create_client(w: &World, name: &str, allowlisted: bool) -> (String, String) {
    let mut pairs = vec![("tenant", "acme"), ("name", name)];
    if allowlisted {
        pairs.push(("allowlisted", "on"));
    }
    let answer = call(&w.app, CreateClient::PATH, &w.operator, &form(&pairs)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body = answer.json();
    (
        body["client_id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

/// Mints a token owned by client `id`; returns the token text.
async fn client_token(w: &World, client: &str, scopes: &[&str]) -> String {
    let owner = format!("client:{client}");
    let answer = call(
        &w.app,
        MintToken::PATH,
        &w.operator,
        &mint_body("acme", "bot", &owner, scopes, "30"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()["plaintext"].as_str().unwrap().to_owned()
}

async fn whoami(app: &Router, token: &str) -> Answer {
    send(app, agent("GET", "/agent/v1/whoami", Some(token), "")).await
}

async fn pay(app: &Router, token: &str) -> Answer {
    send(
        app,
        agent(
            "POST",
            "/agent/v1/payments",
            Some(token),
            r#"{"amount_cents": 500, "currency": "EUR"}"#,
        ),
    )
    .await
}

async fn flip(w: &World, pairs: &[(&str, &str)]) -> Answer {
    call(&w.app, FlipSwitch::PATH, &w.commander, &form(pairs)).await
}

/// Count of audit events with `action` and `code`.
async fn events(pool: &PgPool, action: &str, code: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE action = $1 AND code IS NOT DISTINCT FROM $2",
    )
    .bind(action)
    .bind(code)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_api_kill_switch_refuses_every_call_and_comes_back(pool: PgPool) {
    let w = world(pool).await;
    let (client, _) = create_client(&w, "billing-bot", false).await;
    let token = client_token(&w, &client, &["agent:read", "payments:write"]).await;
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);

    // Turning it off adds protection: a reason is enough.
    let off = flip(
        &w,
        &[
            ("key", "agentApiEnabled"),
            ("value", "false"),
            ("reason", "INC-7 abuse spike"),
        ],
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    let refused = whoami(&w.app, &token).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&refused), "AGENT_API_DISABLED");
    // Refused before the token is even looked at: junk gets the same answer.
    assert_eq!(code(&whoami(&w.app, "junk").await), "AGENT_API_DISABLED");

    // Turning it back on removes a protection: the key must be typed.
    let unconfirmed = flip(
        &w,
        &[
            ("key", "agentApiEnabled"),
            ("value", "true"),
            ("reason", "spike over"),
        ],
    )
    .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unconfirmed.json()["field"], "confirmation");
    assert_eq!(
        whoami(&w.app, &token).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let on = flip(
        &w,
        &[
            ("key", "agentApiEnabled"),
            ("value", "true"),
            ("reason", "spike over"),
            ("confirmation", "agentApiEnabled"),
        ],
    )
    .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);

    w.verifier.ledger().flush().await.unwrap();
    assert_eq!(events(&w.pool, "switch.flipped", None).await, 2);
    // The refusals came before the token was read, from one address: the ledger writes
    // those of one second as one event standing for several calls.
    let calls: i64 = sqlx::query_scalar(
        "SELECT sum((details->>'count')::bigint)::bigint FROM audit_events
         WHERE action = 'agent_api.refused' AND code = 'AGENT_API_DISABLED'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(calls, 3);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn tenant_overrides_and_the_payments_switch(pool: PgPool) {
    let w = world(pool).await;
    let (client, _) = create_client(&w, "billing-bot", false).await;
    let token = client_token(&w, &client, &["agent:read", "payments:write"]).await;
    assert_eq!(pay(&w.app, &token).await.status, StatusCode::ACCEPTED);

    // Payments off for another tenant: acme is unaffected.
    let globex = flip(
        &w,
        &[
            ("key", "agentPaymentsEnabled"),
            ("tenant", "globex"),
            ("value", "off"),
            ("reason", "globex fraud"),
        ],
    )
    .await;
    assert_eq!(globex.status, StatusCode::OK, "{}", globex.body);
    assert_eq!(pay(&w.app, &token).await.status, StatusCode::ACCEPTED);

    // Off globally: payments refused, the rest of the API still answers.
    flip(
        &w,
        &[
            ("key", "agentPaymentsEnabled"),
            ("value", "off"),
            ("reason", "processor breach"),
        ],
    )
    .await;
    let refused = pay(&w.app, &token).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&refused), "AGENT_PAYMENTS_DISABLED");
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);

    // The whole API off for acme only.
    flip(
        &w,
        &[
            ("key", "agentApiEnabled"),
            ("tenant", "acme"),
            ("value", "off"),
            ("reason", "acme compromised"),
        ],
    )
    .await;
    assert_eq!(code(&whoami(&w.app, &token).await), "AGENT_API_DISABLED");
    // Removing the override needs a reason, then acme follows the global value again.
    let no_reason = call(
        &w.app,
        RemoveSwitchOverride::PATH,
        &w.commander,
        &form(&[
            ("key", "agentApiEnabled"),
            ("tenant", "acme"),
            ("reason", " "),
        ]),
    )
    .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The tenant would fall back to the API on: that removes a protection, so the key
    // must be typed.
    let unconfirmed = call(
        &w.app,
        RemoveSwitchOverride::PATH,
        &w.commander,
        &form(&[
            ("key", "agentApiEnabled"),
            ("tenant", "acme"),
            ("reason", "contained"),
        ]),
    )
    .await;
    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unconfirmed.json()["field"], "confirmation");
    assert_eq!(code(&whoami(&w.app, &token).await), "AGENT_API_DISABLED");
    let removed = call(
        &w.app,
        RemoveSwitchOverride::PATH,
        &w.commander,
        &form(&[
            ("key", "agentApiEnabled"),
            ("tenant", "acme"),
            ("reason", "contained"),
            ("confirmation", "agentApiEnabled"),
        ]),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_timed_flip_reverts_by_itself_as_the_system(pool: PgPool) {
    let w = world(pool).await;
    let flipped = flip(
        &w,
        &[
            ("key", "TURNSTILE_DISABLED"),
            ("value", "true"),
            ("reason", "Turnstile outage"),
            ("expires_minutes", "60"),
            ("confirmation", "TURNSTILE_DISABLED"),
        ],
    )
    .await;
    assert_eq!(flipped.status, StatusCode::OK, "{}", flipped.body);
    let listed = call(&w.app, ListSwitches::PATH, &w.operator, "").await;
    let row = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "TURNSTILE_DISABLED" && r["tenant"].is_null())
        .cloned()
        .unwrap();
    assert_eq!(row["value"], true);
    assert!(row["expires_at"].is_string(), "{row}");

    // A short expiry: the timer is moved to now, and the server's timer task reverts it.
    sqlx::query("UPDATE kill_switches SET expires_at = now() WHERE key = 'TURNSTILE_DISABLED'")
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    let timers = tokio::spawn(server::jobs::timers(w.pool.clone(), w.controls.clone()));
    let start = Instant::now();
    while w
        .controls
        .switches()
        .global(app::domain::gateway::controls::SwitchKey::TurnstileDisabled)
    {
        assert!(start.elapsed() < Duration::from_secs(5), "no revert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    timers.abort();
    let (value, expires): (bool, Option<time::OffsetDateTime>) = sqlx::query_as(
        "SELECT value, expires_at FROM kill_switches WHERE key = 'TURNSTILE_DISABLED'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert!(!value);
    assert_eq!(expires, None);
    let (actor, source): (String, String) = sqlx::query_as(
        "SELECT actor, source::text FROM audit_events WHERE action = 'switch.reverted'",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!((actor.as_str(), source.as_str()), ("system", "system"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_flip_on_one_instance_is_enforced_by_another_within_a_second(pool: PgPool) {
    let w = world(pool).await;
    let (client, _) = create_client(&w, "billing-bot", false).await;
    let token = client_token(&w, &client, &["agent:read"]).await;
    // The second instance: its own verifier and controls, listening.
    let (other, other_verifier, other_controls) = common::app_parts(w.pool.clone(), false);
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        other_verifier.clone(),
        other_controls,
    ));
    // Changes from here on reach the listener (no sleep: a slow machine waits longer).
    other_verifier.until_listening().await;
    assert_eq!(whoami(&other, &token).await.status, StatusCode::OK);

    for (value, extra, expected) in [
        ("off", None, StatusCode::SERVICE_UNAVAILABLE),
        (
            "on",
            Some(("confirmation", "agentApiEnabled")),
            StatusCode::OK,
        ),
    ] {
        let mut pairs = vec![
            ("key", "agentApiEnabled"),
            ("value", value),
            ("reason", "drill"),
        ];
        pairs.extend(extra);
        let flipped = flip(&w, &pairs).await;
        assert_eq!(flipped.status, StatusCode::OK, "{}", flipped.body);
        let start = Instant::now();
        loop {
            if whoami(&other, &token).await.status == expected {
                break;
            }
            // Only the listener runs on the other instance (no poll): the change reaches
            // it by notification or not at all. How fast is the benchmark's to measure.
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the other instance never heard of the change"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    listener.abort();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn client_status_allowlist_and_revoke_are_enforced(pool: PgPool) {
    let w = world(pool).await;
    let (client, _) = create_client(&w, "billing-bot", false).await;
    let (listed_client, _) = create_client(&w, "trusted-bot", true).await;
    let token = client_token(&w, &client, &["agent:read"]).await;
    let trusted = client_token(&w, &listed_client, &["agent:read"]).await;
    let status = |to: &str, reason: &str| {
        form(&[
            ("tenant", "acme"),
            ("id", &client),
            ("status", to),
            ("reason", reason),
        ])
    };

    // Suspend: 403 CLIENT_SUSPENDED; a reason is required.
    let no_reason = call(
        &w.app,
        SetClientStatus::PATH,
        &w.operator,
        &status("suspended", ""),
    )
    .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    let suspended = call(
        &w.app,
        SetClientStatus::PATH,
        &w.operator,
        &status("suspended", "abuse"),
    )
    .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    let refused = whoami(&w.app, &token).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&refused), "CLIENT_SUSPENDED");
    let back = call(
        &w.app,
        SetClientStatus::PATH,
        &w.operator,
        &status("active", "cleared"),
    )
    .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);

    // Strict allowlist: the unlisted client is refused, the listed one passes.
    flip(
        &w,
        &[
            ("key", "strictAllowlist"),
            ("value", "on"),
            ("reason", "INC-7 deny unknown"),
        ],
    )
    .await;
    let unlisted = whoami(&w.app, &token).await;
    assert_eq!(unlisted.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&unlisted), "CLIENT_NOT_ALLOWLISTED");
    assert_eq!(whoami(&w.app, &trusted).await.status, StatusCode::OK);
    let allow = call(
        &w.app,
        SetClientAllowlisted::PATH,
        &w.operator,
        &form(&[
            ("tenant", "acme"),
            ("id", &client),
            ("allowlisted", "true"),
            ("reason", "vetted"),
        ]),
    )
    .await;
    assert_eq!(allow.status, StatusCode::OK, "{}", allow.body);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);

    // Revoke: preview, typed name, then 401 CLIENT_REVOKED; final.
    let preview = call(
        &w.app,
        PreviewClientRevoke::PATH,
        &w.commander,
        &form(&[("tenant", "acme"), ("id", &client)]),
    )
    .await;
    assert_eq!(preview.json()["live_tokens"], 1);
    assert_eq!(preview.json()["live_keys"], 1);
    let revoke = |confirmation: &str| {
        form(&[
            ("tenant", "acme"),
            ("id", &client),
            ("reason", "compromised"),
            ("confirmation", confirmation),
            ("expected", "1"),
        ])
    };
    let mistyped = call(&w.app, RevokeClient::PATH, &w.commander, &revoke("billing")).await;
    assert_eq!(mistyped.status, StatusCode::UNPROCESSABLE_ENTITY);
    let revoked = call(
        &w.app,
        RevokeClient::PATH,
        &w.commander,
        &revoke("billing-bot"),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    let gone = whoami(&w.app, &token).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&gone), "CLIENT_REVOKED");
    let tokens_left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM personal_access_tokens WHERE owner_client_id = $1::uuid AND status = 'active'",
    )
    .bind(&client)
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(tokens_left, 0);
    let again = call(
        &w.app,
        SetClientStatus::PATH,
        &w.operator,
        &status("active", "oops"),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.body.contains("final"), "{}", again.body);

    let detail = call(
        &w.app,
        GetClient::PATH,
        &w.operator,
        &form(&[("tenant", "acme"), ("id", &client)]),
    )
    .await
    .json();
    assert_eq!(detail["client"]["status"], "revoked");
    let actions: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "client.revoked",
            "client.allowlisted",
            "client.reactivated",
            "client.suspended",
            "client.created"
        ]
    );
    w.verifier.ledger().flush().await.unwrap();
    let refreshed = call(
        &w.app,
        GetClient::PATH,
        &w.operator,
        &form(&[("tenant", "acme"), ("id", &client)]),
    )
    .await
    .json();
    let codes: Vec<&str> = refreshed["denials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["code"].as_str())
        .collect();
    for expected in [
        "CLIENT_REVOKED",
        "CLIENT_NOT_ALLOWLISTED",
        "CLIENT_SUSPENDED",
    ] {
        assert!(codes.contains(&expected), "{codes:?}");
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn key_rotation_shows_the_new_key_once_and_retires_the_old(pool: PgPool) {
    let w = world(pool).await;
    let (client, first) = create_client(&w, "billing-bot", false).await;
    let id = uuid::Uuid::parse_str(&client).unwrap();
    assert!(first.starts_with("mf_ck_v1."));
    assert!(app::panels::agent_ops::ops::key_works(&w.pool, id, &first)
        .await
        .unwrap());
    let rotate = |grace: &str| {
        form(&[
            ("tenant", "acme"),
            ("id", &client),
            ("grace_hours", grace),
            ("reason", "A.2"),
        ])
    };
    // With a grace period both keys work.
    let rotated = call(&w.app, RotateClientKey::PATH, &w.operator, &rotate("24")).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let second = rotated.json()["secret"].as_str().unwrap().to_owned();
    assert_eq!(rotated.json()["version"], 2);
    assert!(app::panels::agent_ops::ops::key_works(&w.pool, id, &first)
        .await
        .unwrap());
    assert!(app::panels::agent_ops::ops::key_works(&w.pool, id, &second)
        .await
        .unwrap());
    // When the grace period ends, the system retires it.
    sqlx::query("UPDATE client_keys SET retire_after = now() WHERE state = 'retiring'")
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    assert_eq!(
        app::panels::agent_ops::ops::retire_due_keys(&app::auth::Actor::system(
            w.pool.clone(),
            "test"
        ))
        .await
        .unwrap(),
        1
    );
    assert!(!app::panels::agent_ops::ops::key_works(&w.pool, id, &first)
        .await
        .unwrap());
    // At once: the old key stops now.
    let third = call(&w.app, RotateClientKey::PATH, &w.operator, &rotate("0"))
        .await
        .json();
    assert!(
        !app::panels::agent_ops::ops::key_works(&w.pool, id, &second)
            .await
            .unwrap()
    );
    let third = third["secret"].as_str().unwrap();
    assert!(app::panels::agent_ops::ops::key_works(&w.pool, id, third)
        .await
        .unwrap());
    // No key appears anywhere in the audit log or the detail.
    let detail = call(
        &w.app,
        GetClient::PATH,
        &w.operator,
        &form(&[("tenant", "acme"), ("id", &client)]),
    )
    .await;
    let log: String = sqlx::query_scalar(
        "SELECT string_agg(details::text || coalesce(reason, ''), ' ') FROM audit_events",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    for key in [first.as_str(), second.as_str(), third] {
        let secret = key.trim_start_matches("mf_ck_v1.");
        assert!(!log.contains(secret));
        assert!(!detail.body.contains(secret));
    }
    let bad = call(&w.app, RotateClientKey::PATH, &w.operator, &rotate("-1")).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["field"], "grace_hours");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn rate_limits_answer_429_with_retry_after_and_blocks_403(pool: PgPool) {
    let w = world(pool).await;
    let (client, _) = create_client(&w, "billing-bot", false).await;
    let token = client_token(&w, &client, &["agent:read"]).await;
    let set = form(&[
        ("form[scope]", "client"),
        ("form[tenant]", "acme"),
        ("form[client]", "billing-bot"),
        ("form[limit_per_minute]", "60"),
        ("form[burst]", "2"),
        ("form[reason]", "runbook 000: clamp abusive client"),
    ]);
    let answer = call(&w.app, SetRateLimit::PATH, &w.operator, &set).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    assert_eq!(whoami(&w.app, &token).await.status, StatusCode::OK);
    let limited = whoami(&w.app, &token).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(code(&limited), "RATE_LIMITED");
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");

    // An address limit counts every caller from it, before the token is read.
    let ip = form(&[
        ("form[scope]", "ip"),
        ("form[network]", "198.51.100.0/24"),
        ("form[limit_per_minute]", "60"),
        ("form[burst]", "1"),
        ("form[reason]", "scanner"),
    ]);
    assert_eq!(
        call(&w.app, SetRateLimit::PATH, &w.operator, &ip)
            .await
            .status,
        StatusCode::OK
    );
    // The calls above still count for a few milliseconds under the default limit.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let first = whoami(&w.app, "junk").await;
    assert_eq!(code(&first), "PAT_MALFORMED");
    assert_eq!(code(&whoami(&w.app, "junk").await), "RATE_LIMITED");

    // A block: 403 IP_BLOCKED for every call from the network, lifted with a reason.
    let block = form(&[
        ("network", "198.51.100.0/24"),
        ("reason", "runbook 004: block list"),
    ]);
    let answer = call(&w.app, BlockIp::PATH, &w.operator, &block).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let blocked = whoami(&w.app, &token).await;
    assert_eq!(blocked.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&blocked), "IP_BLOCKED");
    let lifted = call(
        &w.app,
        UnblockIp::PATH,
        &w.operator,
        &form(&[("network", "198.51.100.0/24"), ("reason", "false positive")]),
    )
    .await;
    assert_eq!(lifted.status, StatusCode::OK, "{}", lifted.body);
    assert_ne!(code(&whoami(&w.app, &token).await), "IP_BLOCKED");

    // The panel lists what is in force; removing an override needs its id and a reason.
    let overview = call(&w.app, GetLimits::PATH, &w.operator, "").await.json();
    let overrides = overview["overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 2);
    assert_eq!(overview["blocks"].as_array().unwrap().len(), 0);
    let id = overrides[0]["id"].as_str().unwrap();
    let removed = call(
        &w.app,
        RemoveRateLimit::PATH,
        &w.operator,
        &form(&[("id", id), ("reason", "incident over")]),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    w.verifier.ledger().flush().await.unwrap();
    assert!(events(&w.pool, "agent_api.refused", Some("RATE_LIMITED")).await >= 1);
    assert_eq!(
        events(&w.pool, "agent_api.refused", Some("IP_BLOCKED")).await,
        1
    );
    assert_eq!(events(&w.pool, "rate_limit.set", None).await, 2);
    assert_eq!(events(&w.pool, "ip_block.added", None).await, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn bad_input_gets_a_message_and_changes_nothing(pool: PgPool) {
    let w = world(pool).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            BlockIp::PATH,
            "operator",
            form(&[("network", "10.0.0.1/8"), ("reason", "x")]),
            "network",
        ),
        (
            BlockIp::PATH,
            "operator",
            form(&[("network", "10.0.0.0/33"), ("reason", "x")]),
            "network",
        ),
        (
            BlockIp::PATH,
            "operator",
            form(&[("network", "not-an-ip"), ("reason", "x")]),
            "network",
        ),
        (
            BlockIp::PATH,
            "operator",
            form(&[("network", "10.0.0.0/8"), ("reason", "")]),
            "reason",
        ),
        (
            BlockIp::PATH,
            "operator",
            form(&[
                ("network", "10.0.0.0/8"),
                ("reason", "x"),
                ("expires_minutes", "-5"),
            ]),
            "expires_minutes",
        ),
        (
            SetRateLimit::PATH,
            "operator",
            form(&[
                ("form[scope]", "ip"),
                ("form[network]", "10.0.0.0/8"),
                ("form[limit_per_minute]", "-1"),
                ("form[burst]", "5"),
                ("form[reason]", "x"),
            ]),
            "limit_per_minute",
        ),
        (
            SetRateLimit::PATH,
            "operator",
            form(&[
                ("form[scope]", "ip"),
                ("form[network]", "10.0.0.0/8"),
                ("form[limit_per_minute]", "999999999999"),
                ("form[burst]", "5"),
                ("form[reason]", "x"),
            ]),
            "limit_per_minute",
        ),
        (
            SetRateLimit::PATH,
            "operator",
            form(&[
                ("form[scope]", "client"),
                ("form[tenant]", "acme"),
                ("form[client]", "nobody"),
                ("form[limit_per_minute]", "60"),
                ("form[burst]", "5"),
                ("form[reason]", "x"),
            ]),
            "client",
        ),
        (
            FlipSwitch::PATH,
            "commander",
            form(&[
                ("key", "agentApiEnabled"),
                ("value", "off"),
                ("reason", "   "),
            ]),
            "reason",
        ),
        (
            FlipSwitch::PATH,
            "commander",
            form(&[
                ("key", "agentApiEnabled"),
                ("value", "off"),
                ("reason", "x"),
                ("expires_minutes", "0"),
            ]),
            "expires_minutes",
        ),
        (
            FlipSwitch::PATH,
            "commander",
            form(&[("key", "selfDestruct"), ("value", "off"), ("reason", "x")]),
            "key",
        ),
        (
            FlipSwitch::PATH,
            "commander",
            form(&[
                ("key", "agentApiEnabled"),
                ("tenant", "nope"),
                ("value", "off"),
                ("reason", "x"),
            ]),
            "tenant",
        ),
        (
            CreateClient::PATH,
            "operator",
            form(&[("tenant", "acme"), ("name", " ")]),
            "name",
        ),
    ];
    for (path, who, body, field) in cases {
        let cookie = if who == "operator" {
            &w.operator
        } else {
            &w.commander
        };
        let answer = call(&w.app, path, cookie, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {body}: {}",
            answer.body
        );
        assert_eq!(answer.json()["field"], field, "{path} {body}");
        assert!(!answer.json()["message"].as_str().unwrap().is_empty());
    }
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&w.pool)
        .await
        .unwrap();
    assert_eq!(before, after, "a refused input left a trace");
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM ip_blocks) + (SELECT count(*) FROM rate_limit_overrides)
              + (SELECT count(*) FROM api_clients) + (SELECT count(*) FROM kill_switches WHERE tenant_id IS NOT NULL)",
    )
    .fetch_one(&w.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0);
}

async fn switches_get(app: &Router, path: &str, token: &str, etag: Option<&str>) -> Answer {
    let mut builder = Request::get(path).header("authorization", format!("Bearer {token}"));
    if let Some(etag) = etag {
        builder = builder.header("if-none-match", etag);
    }
    send(app, builder.body(Body::empty()).unwrap()).await
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn services_read_switches_with_etags_and_a_push_stream(pool: PgPool) {
    let w = world(pool).await;
    let cli = app::auth::Actor::command_line_unchecked(w.pool.clone(), "test");
    let token = app::domain::gateway::controls::service_token::mint(&cli, "payments-service")
        .await
        .unwrap();
    let token = token.expose();

    let anonymous = switches_get(
        &w.app,
        "/api/v1/switches",
        "sc_svc_0000000000000000_x",
        None,
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let first = switches_get(&w.app, "/api/v1/switches", token, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.json()["switches"]["agentApiEnabled"]["value"], true);
    let etag = first.header("etag").to_owned();
    assert!(etag.starts_with('"'));
    let same = switches_get(&w.app, "/api/v1/switches", token, Some(&etag)).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert!(same.body.is_empty());

    flip(
        &w,
        &[
            ("key", "agentPaymentsEnabled"),
            ("tenant", "acme"),
            ("value", "off"),
            ("reason", "fraud"),
            ("expires_minutes", "30"),
        ],
    )
    .await;
    let changed = switches_get(&w.app, "/api/v1/switches", token, Some(&etag)).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header("etag"), etag);
    let acme = &changed.json()["switches"]["agentPaymentsEnabled"]["tenants"]["acme"];
    assert_eq!(acme["value"], false);
    assert!(acme["expires_at"].is_string());
    let for_acme = switches_get(&w.app, "/api/v1/switches?tenant=acme", token, None)
        .await
        .json();
    assert_eq!(for_acme["switches"]["agentPaymentsEnabled"]["value"], false);
    assert_eq!(
        for_acme["switches"]["agentPaymentsEnabled"]["scope"],
        "tenant"
    );
    assert_eq!(for_acme["switches"]["agentApiEnabled"]["scope"], "global");
    let unknown = switches_get(&w.app, "/api/v1/switches?tenant=nope", token, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // The push stream: the current document at once, the next one on a change.
    let res = tower::ServiceExt::oneshot(
        w.app.clone(),
        Request::get("/api/v1/switches/stream")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.into_body();
    let mut seen = String::new();
    let mut next_event = async || loop {
        let frame = http_body_util::BodyExt::frame(&mut body)
            .await
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
            if seen.contains("\n\n") {
                let (event, rest) = seen.split_once("\n\n").unwrap();
                let event = event.to_owned();
                seen = rest.to_owned();
                if event.starts_with(':') {
                    continue;
                }
                return event;
            }
        }
    };
    let event = tokio::time::timeout(Duration::from_secs(2), next_event())
        .await
        .unwrap();
    assert!(event.contains("event: switches"), "{event}");
    assert!(event.contains("\"agentPaymentsEnabled\""), "{event}");
    flip(
        &w,
        &[
            ("key", "strictAllowlist"),
            ("value", "on"),
            ("reason", "INC-7"),
        ],
    )
    .await;
    let event = tokio::time::timeout(Duration::from_secs(2), next_event())
        .await
        .unwrap();
    assert!(
        event.contains(r#""strictAllowlist":{"expires_at":null,"tenants":{},"value":true}"#),
        "{event}"
    );

    app::domain::gateway::controls::service_token::revoke(&cli, "payments-service")
        .await
        .unwrap();
    // The open stream ends at its next event: a revoked token hears nothing more.
    flip(
        &w,
        &[
            ("key", "strictAllowlist"),
            ("value", "off"),
            ("reason", "over"),
            ("confirmation", "strictAllowlist"),
        ],
    )
    .await;
    let ended = tokio::time::timeout(
        Duration::from_secs(2),
        http_body_util::BodyExt::frame(&mut body),
    )
    .await
    .unwrap();
    assert!(
        ended.is_none(),
        "the stream went on after its token was revoked"
    );
    let revoked = switches_get(&w.app, "/api/v1/switches", token, None).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn rl_overrides_json_is_imported_once(pool: PgPool) {
    let w = world(pool).await;
    create_client(&w, "billing-bot", false).await;
    let entries = app::panels::limits::ops::parse_import(
        r#"[{"scope":"ip","subject":"203.0.113.0/24","limit_per_minute":30},
            {"scope":"client","subject":"acme/billing-bot","limit_per_minute":600,"burst":20,"reason":"INC-9"},
            {"scope":"tenant","subject":"acme","limit_per_minute":6000}]"#,
    )
    .unwrap();
    let actor = app::auth::Actor::command_line_unchecked(w.pool.clone(), "RL_OVERRIDES_JSON");
    assert_eq!(
        app::panels::limits::ops::import(&actor, &entries).await,
        Ok(3)
    );
    // A second instance starting with the same variable changes nothing.
    assert_eq!(
        app::panels::limits::ops::import(&actor, &entries).await,
        Ok(0)
    );
    assert_eq!(events(&w.pool, "rate_limit.set", None).await, 3);
    let bad =
        app::panels::limits::ops::parse_import(r#"[{"scope":"ip","subject":"1.2.3.4","limit":5}]"#);
    assert!(bad.is_err());
    let missing = app::panels::limits::ops::parse_import(
        r#"[{"scope":"client","subject":"acme/ghost","limit_per_minute":5}]"#,
    )
    .unwrap();
    let err = app::panels::limits::ops::import(&actor, &missing)
        .await
        .unwrap_err();
    assert!(err.contains("ghost"), "{err}");
}

/// Sends one HTTP/1.1 request over `stream` and reads the whole answer.
async fn raw_http(mut stream: tokio::net::TcpStream, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_ipv4_caller_of_a_dual_stack_listener_meets_ipv4_blocks(pool: PgPool) {
    let w = world(pool).await;
    // The server bound as production binds it on `[::]`: IPv4 clients arrive IPv4-mapped.
    let listener = match tokio::net::TcpListener::bind("[::]:0").await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("SKIPPED: this sandbox cannot bind an IPv6 socket ({err})");
            return;
        }
    };
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve::serve(
        listener,
        w.app.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(2),
    ));
    let block = form(&[
        ("network", "127.0.0.0/8"),
        ("reason", "runbook 004: block list"),
    ]);
    let answer = call(&w.app, BlockIp::PATH, &w.operator, &block).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    let stream = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("SKIPPED: the `[::]` listener does not take IPv4 connections here ({err})");
            return;
        }
    };
    let answer = raw_http(
        stream,
        "GET /agent/v1/whoami HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer junk\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("\"IP_BLOCKED\""), "{answer}");
    // The refusal is recorded with the address an auditor filters by.
    w.verifier.ledger().flush().await.unwrap();
    let ips: Vec<String> = sqlx::query_scalar(
        "SELECT host(ip) FROM audit_events WHERE action = 'agent_api.refused' AND code = 'IP_BLOCKED'",
    )
    .fetch_all(&w.pool)
    .await
    .unwrap();
    assert_eq!(ips, ["127.0.0.1"]);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_block_stored_in_the_ipv4_mapped_form_still_refuses_its_ipv4_caller(pool: PgPool) {
    let w = world(pool).await;
    // As rows were written before addresses were canonicalised (the migration rewrites
    // those; this one arrives afterwards, as a restore or a hand-written row would).
    sqlx::query(
        "INSERT INTO ip_blocks (network, reason, created_by)
         VALUES ('::ffff:198.51.100.23/128', 'old row', 'test')",
    )
    .execute(&mut common::fixture(&w.pool).await)
    .await
    .unwrap();
    w.controls.reload().await.unwrap();
    let blocked = whoami(&w.app, "junk").await;
    assert_eq!(code(&blocked), "IP_BLOCKED", "{}", blocked.body);

    // The migration's rewrite: mapped networks become IPv4, duplicates collapse.
    let rewritten: Vec<String> =
        sqlx::query_scalar("SELECT network::text FROM ip_blocks ORDER BY 1")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    assert_eq!(rewritten, ["::ffff:198.51.100.23/128"]);
    let sql = include_str!("../../migrations/20261201000012_canonical_networks.sql");
    // Re-applied now that writes are audited: as a data migration, it says it is one.
    sqlx::raw_sql(sql)
        .execute(&mut common::fixture(&w.pool).await)
        .await
        .unwrap();
    let rewritten: Vec<String> =
        sqlx::query_scalar("SELECT network::text FROM ip_blocks ORDER BY 1")
            .fetch_all(&w.pool)
            .await
            .unwrap();
    assert_eq!(rewritten, ["198.51.100.23/32"]);
}
