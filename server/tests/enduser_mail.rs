//! End users' mail (issue 17): recovery and magic links asked for through the routes,
//! queued, held while `emailSendingEnabled` is off and released when it is on, dropped by
//! an operator; links used once; recovery ending every session; the lock's recovery mail
//! and address block; the tenant's email domains; SMTP through a stand-in server on
//! loopback; state changes and the platform-wide revocation.

use crate::common;
use app::auth::Actor;
use app::domain::endusers::mail::{self, Mailer, Pass};
use app::domain::endusers::ops;
use app::domain::gateway::controls::state::Controls;
use app::domain::gateway::verify::Verifier;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::json;
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a much better passphrase";

async fn tenant_with_user(pool: &PgPool, slug: &str, email: &str) -> uuid::Uuid {
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    let master = app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY);
    app::domain::tokens::pepper::create_first_if_none(&cli, &master)
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
    app::panels::tenants::ops::create(&cli, &master, &form)
        .await
        .unwrap();
    ops::create_user(&cli, slug, email, PASSWORD).await.unwrap()
}

/// The attacker's address in these tests.
const FROM: [u8; 4] = [203, 0, 113, 9];

/// A JSON POST from [`FROM`].
async fn post_json(app: &Router, path: &str, body: serde_json::Value) -> common::Answer {
    let mut req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            FROM, 40000,
        ))));
    common::send(app, req).await
}

async fn post_form(app: &Router, path: &str, body: &str) -> common::Answer {
    common::send(
        app,
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
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

fn code(answer: &common::Answer) -> String {
    let json = answer.json();
    json["error"]["code"]
        .as_str()
        .or(json["code"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn field(answer: &common::Answer, name: &str) -> String {
    answer.json()[name].as_str().unwrap_or_default().to_owned()
}

/// An instance that hears of revocation epochs (as every served instance does).
async fn listening(
    pool: &PgPool,
) -> (
    Router,
    Arc<Verifier>,
    Arc<Controls>,
    tokio::task::JoinHandle<()>,
) {
    let (app, verifier, controls) = common::app_parts(pool.clone(), false);
    controls.reload().await.unwrap();
    let listener = tokio::spawn(app::domain::gateway::sync::listen(
        verifier.clone(),
        controls.clone(),
    ));
    verifier.until_listening().await;
    (app, verifier, controls, listener)
}

/// Polls `/me` until it answers `expected` (at most 2 s).
async fn refused(app: &Router, slug: &str, access: &str, expected: &str) {
    let started = std::time::Instant::now();
    loop {
        let answer = me(app, slug, access).await;
        if answer.status == StatusCode::UNAUTHORIZED && code(&answer) == expected {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{}",
            answer.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn sign_in(app: &Router, email: &str, password: &str) -> common::Answer {
    post_json(
        app,
        "/a/acme/auth/sign-in",
        json!({ "email": email, "password": password }),
    )
    .await
}

/// A fresh outbox directory.
fn outbox() -> PathBuf {
    std::env::temp_dir().join(format!("sc-outbox-{}", uuid::Uuid::new_v4()))
}

/// Every message in the outbox.
fn messages(dir: &PathBuf) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| mail::readable(&std::fs::read_to_string(e.path()).unwrap()))
        .collect()
}

/// Empties the outbox (it stays in place for the next mail).
fn clear(dir: &PathBuf) {
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
}

/// The link token in a message.
fn token_in(message: &str) -> String {
    let at = message.find("token=").expect("a link in the mail") + "token=".len();
    message[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
        .collect()
}

async fn pass(pool: &PgPool, verifier: &Verifier, controls: &Controls, mailer: &Mailer) -> Pass {
    mail::send_due(
        &mail::Sender {
            pool,
            verifier,
            controls,
            mailer,
            public_origin: "http://console.test",
        },
        50,
    )
    .await
    .unwrap()
}

async fn flip(pool: &PgPool, controls: &Controls, key: &str, value: &str) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    app::panels::switches::ops::flip(
        &cli,
        app::panels::switches::ops::FlipRequest {
            key,
            tenant: "acme",
            value,
            reason: "SMTP account breach",
            confirmation: key,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    controls.reload().await.unwrap();
}

async fn mail_states(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT state::text FROM outbound_mail ORDER BY created_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn recovery_is_held_while_sending_is_off_sent_when_on_and_its_link_sets_a_password_once_ending_every_session(
    pool: PgPool,
) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    let (app, verifier, controls, _listener) = listening(&pool).await;
    let dir = outbox();
    let mailer = Mailer::outbox(dir.clone(), "no-reply@console.test").unwrap();
    let signed_in = sign_in(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    let access = field(&signed_in, "access_token");
    let refresh = field(&signed_in, "refresh_token");

    // Runbook 000 §3: emailing off. Mail asked for now is held, not lost.
    flip(&pool, &controls, "emailSendingEnabled", "off").await;
    let asked = post_json(
        &app,
        "/a/acme/auth/recovery",
        json!({ "email": "Ada@Example.com" }),
    )
    .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    // An unknown address gets the same answer, and no mail.
    let unknown = post_json(
        &app,
        "/a/acme/auth/recovery",
        json!({ "email": "nobody@example.com" }),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.json()["message"], asked.json()["message"]);
    let held = pass(&pool, &verifier, &controls, &mailer).await;
    assert_eq!((held.held, held.sent), (1, 0));
    assert!(messages(&dir).is_empty(), "nothing sent while off");
    assert_eq!(mail_states(&pool).await, ["pending"]);
    // Another tenant's mail is not held behind it.
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let master = app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY);
    app::panels::tenants::ops::create(
        &cli,
        &master,
        &app::panels::tenants::NewTenantForm {
            slug: "globex".into(),
            name: "Globex".into(),
            retention_months: "12".into(),
            max_token_days: "90".into(),
            audiences: "agent-api".into(),
            algorithm: "".into(),
        },
    )
    .await
    .unwrap();
    let hank = ops::create_user(&cli, "globex", "hank@example.com", PASSWORD)
        .await
        .unwrap();
    ops::send_recovery(&cli, "globex", hank, "user asked")
        .await
        .unwrap();
    let other = pass(&pool, &verifier, &controls, &mailer).await;
    assert_eq!((other.held, other.sent), (1, 1));
    assert!(messages(&dir)[0].contains("To: hank@example.com"));
    clear(&dir);
    let requests = common::audit(&pool, "end_user.recovery_requested").await;
    assert_eq!(requests[0].3["queued"], true);
    assert_eq!(requests[1].3["not_sent"], "unknown_email");

    // Back on: sent, with a link made now.
    flip(&pool, &controls, "emailSendingEnabled", "on").await;
    let sent = pass(&pool, &verifier, &controls, &mailer).await;
    assert_eq!(sent.sent, 1);
    // A link that went out is not taken while emailing is off again (an SMTP breach).
    flip(&pool, &controls, "emailSendingEnabled", "off").await;
    let suspended = post_json(
        &app,
        "/a/acme/auth/recovery/complete",
        json!({ "token": token_in(&messages(&dir)[0]), "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(code(&suspended), "EMAIL_LINKS_SUSPENDED");
    flip(&pool, &controls, "emailSendingEnabled", "on").await;
    let sent_mail = messages(&dir);
    assert_eq!(sent_mail.len(), 1);
    assert!(
        sent_mail[0].contains("To: ada@example.com"),
        "{}",
        sent_mail[0]
    );
    assert!(sent_mail[0].contains("Subject: Set a new password"));
    assert!(sent_mail[0].contains("http://console.test/a/acme/auth/recovery?token=mf_rc_v1."));
    let token = token_in(&sent_mail[0]);
    assert_eq!(
        common::audit(&pool, "mail.sent").await.len(),
        2,
        "Hank's and Ada's"
    );

    // The link's page: a form posting the token; GET spends nothing.
    let page = common::send(
        &app,
        Request::get(format!("/a/acme/auth/recovery?token={token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&token) && page.body.contains("/a/acme/auth/recovery/complete"));
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    // The answer page the form shows names no icon: the browser's /favicon.ico finds one.
    let icon = common::send(
        &app,
        Request::get("/favicon.ico").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(icon.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(icon.header("location"), "/favicon.svg");
    let garbled = common::send(
        &app,
        Request::get("/a/acme/auth/recovery?token=mf_rc_v1.nope")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code(&garbled), "LINK_INVALID");

    // A short password is named, and the link still works after it.
    let short = post_form(
        &app,
        "/a/acme/auth/recovery/complete",
        &format!("token={token}&password=short"),
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert_eq!(short.json()["error"]["field"], "password");
    let missing = post_json(
        &app,
        "/a/acme/auth/recovery/complete",
        json!({ "token": token }),
    )
    .await;
    assert_eq!(missing.json()["error"]["field"], "password");
    let done = post_form(
        &app,
        "/a/acme/auth/recovery/complete",
        &format!("token={token}&password={}", common::urlencode(NEW_PASSWORD)),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.json()["sessions_ended"], 1);

    // Every session it had is over: the access token at once, the refresh token too.
    refused(&app, "acme", &access, "ACCESS_TOKEN_REVOKED").await;
    let refreshed = post_form(
        &app,
        "/a/acme/oauth/token",
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            common::urlencode(&refresh)
        ),
    )
    .await;
    assert_eq!(refreshed.json()["error"], "invalid_grant");
    // Used once.
    let again = post_form(
        &app,
        "/a/acme/auth/recovery/complete",
        &format!("token={token}&password={}", common::urlencode(NEW_PASSWORD)),
    )
    .await;
    assert_eq!(code(&again), "LINK_INVALID");
    assert_eq!(
        code(&sign_in(&app, "ada@example.com", PASSWORD).await),
        "INVALID_CREDENTIALS"
    );
    assert_eq!(
        sign_in(&app, "ada@example.com", NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    let recovered = common::audit(&pool, "end_user.recovered").await;
    assert_eq!(recovered[0].3["sessions_ended"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_lock_queues_recovery_and_blocks_the_address_held_mail_is_dropped_with_a_reason_and_domains_limit_where_mail_goes(
    pool: PgPool,
) {
    let ada = tenant_with_user(&pool, "acme", "ada@example.com").await;
    let (app, verifier, controls, _listener) = listening(&pool).await;
    let dir = outbox();
    let mailer = Mailer::outbox(dir.clone(), "no-reply@console.test").unwrap();
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    // The attacker's guess, from 203.0.113.9.
    assert_eq!(
        code(&sign_in(&app, "ada@example.com", "wrong password guess").await),
        "INVALID_CREDENTIALS"
    );
    let signed_in = sign_in(&app, "ada@example.com", PASSWORD).await;
    let access = field(&signed_in, "access_token");

    // An address never seen on the account is refused, and nothing is written.
    let options = |block: Vec<&str>| ops::LockOptions {
        send_recovery: true,
        block: block.into_iter().map(str::to_owned).collect(),
        block_for: time::Duration::days(7),
    };
    let unseen = ops::lock(
        &cli,
        "acme",
        ada,
        "stuffing",
        &options(vec!["198.51.100.1"]),
    )
    .await
    .unwrap_err();
    assert!(unseen.field_message("block").is_some(), "{unseen:?}");
    let garbled = ops::lock(&cli, "acme", ada, "stuffing", &options(vec!["nope"]))
        .await
        .unwrap_err();
    assert!(garbled.field_message("block").is_some());
    assert!(mail_states(&pool).await.is_empty());
    assert_eq!(me(&app, "acme", &access).await.status, StatusCode::OK);

    flip(&pool, &controls, "emailSendingEnabled", "off").await;
    let locked = ops::lock(&cli, "acme", ada, "stuffing", &options(vec!["203.0.113.9"]))
        .await
        .unwrap();
    assert_eq!(locked.live_sessions, 1);
    assert!(locked.recovery_mail.is_some());
    assert_eq!(locked.blocked, ["203.0.113.9"]);
    refused(&app, "acme", &access, "ACCESS_TOKEN_REVOKED").await;
    controls.reload_limits().await.unwrap();
    let blocked = sign_in(&app, "ada@example.com", PASSWORD).await;
    assert_eq!(code(&blocked), "IP_BLOCKED", "{}", blocked.body);
    let event = &common::audit(&pool, "end_user.locked").await[0].3;
    assert_eq!(event["blocked"][0], "203.0.113.9");

    // Held; an operator drops it with a reason, and it is never sent.
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.held, 1);
    let no_reason = ops::drop_mail(&cli, "acme", None, " ").await.unwrap_err();
    assert!(no_reason.field_message("reason").is_some());
    assert_eq!(
        ops::drop_mail(&cli, "acme", None, "queued during the breach")
            .await
            .unwrap(),
        1
    );
    assert_eq!(mail_states(&pool).await, ["dropped"]);
    assert!(ops::drop_mail(&cli, "acme", None, "again").await.is_err());
    flip(&pool, &controls, "emailSendingEnabled", "on").await;
    assert_eq!(
        pass(&pool, &verifier, &controls, &mailer).await,
        Pass::default()
    );
    assert!(messages(&dir).is_empty());
    let dropped = common::audit(&pool, "mail.dropped").await;
    assert_eq!(dropped[0].3["dropped"], 1);

    // Email domains: bad input named; outside them, no recovery mail is queued or sent.
    let bad = ops::set_email_domains(&cli, "acme", "example.org, not a domain", "breach")
        .await
        .unwrap_err();
    assert!(bad.field_message("domains").is_some());
    let set = ops::set_email_domains(&cli, "acme", "Example.org\n@corp.example.org", "breach")
        .await
        .unwrap();
    assert_eq!(set, ["corp.example.org", "example.org"]);
    let refused = ops::send_recovery(&cli, "acme", ada, "user asked").await;
    assert!(matches!(
        refused,
        Err(app::error::AppError::Conflict { .. })
    ));
    let asked = post_json(
        &app,
        "/a/acme/auth/recovery",
        json!({ "email": "ada@example.com" }),
    )
    .await;
    // The caller's address is blocked now: refused before anything else.
    assert_eq!(code(&asked), "IP_BLOCKED");
    let asked = common::send(
        &app,
        Request::post("/a/acme/auth/recovery")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({ "email": "ada@example.com" }).to_string(),
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED);
    assert_eq!(
        common::audit(&pool, "end_user.recovery_requested").await[0].3["not_sent"],
        "domain_not_allowed"
    );
    // Back to any domain: a staff recovery goes.
    ops::set_email_domains(&cli, "acme", "", "breach over")
        .await
        .unwrap();
    ops::send_recovery(&cli, "acme", ada, "user asked")
        .await
        .unwrap();
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.sent, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_magic_link_signs_in_once_is_refused_while_magic_links_are_off_and_requests_are_limited(
    pool: PgPool,
) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    let (app, verifier, controls, _listener) = listening(&pool).await;
    let dir = outbox();
    let mailer = Mailer::outbox(dir.clone(), "no-reply@console.test").unwrap();
    let ask = || {
        post_json(
            &app,
            "/a/acme/auth/magic-link",
            json!({ "email": "ada@example.com" }),
        )
    };
    assert_eq!(ask().await.status, StatusCode::ACCEPTED);
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.sent, 1);
    let token = token_in(&messages(&dir)[0]);
    assert!(token.starts_with("mf_ml_v1."));
    // A recovery token is not a sign-in link, nor the reverse.
    let wrong_kind = post_json(
        &app,
        "/a/acme/auth/recovery/complete",
        json!({ "token": token, "password": NEW_PASSWORD }),
    )
    .await;
    assert_eq!(code(&wrong_kind), "LINK_INVALID");
    let signed_in = post_json(
        &app,
        "/a/acme/auth/magic-link/verify",
        json!({ "token": token }),
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{}", signed_in.body);
    assert_eq!(
        me(&app, "acme", &field(&signed_in, "access_token"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        common::audit(&pool, "end_user.signed_in").await[0].3["method"],
        "magic_link"
    );
    let twice = post_json(
        &app,
        "/a/acme/auth/magic-link/verify",
        json!({ "token": token }),
    )
    .await;
    assert_eq!(code(&twice), "LINK_INVALID");
    let missing = post_json(&app, "/a/acme/auth/magic-link/verify", json!({})).await;
    assert_eq!(missing.json()["error"]["field"], "token");

    // A link made before the account's sessions are revoked does not open one after.
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let ada: uuid::Uuid = sqlx::query_scalar("SELECT id FROM end_users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(ask().await.status, StatusCode::ACCEPTED);
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.sent, 1);
    let before: Vec<String> = messages(&dir).iter().map(|m| token_in(m)).collect();
    ops::revoke_user_sessions(&cli, "acme", ada, "phished")
        .await
        .unwrap();
    for old in &before {
        let refused = post_json(
            &app,
            "/a/acme/auth/magic-link/verify",
            json!({ "token": old }),
        )
        .await;
        assert_eq!(code(&refused), "LINK_INVALID", "{old}");
    }
    clear(&dir);

    // Three of a kind per 15 minutes for one account: the fourth is not queued.
    assert_eq!(ask().await.status, StatusCode::ACCEPTED);
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.sent, 1);
    clear(&dir);
    assert_eq!(ask().await.status, StatusCode::ACCEPTED);
    let requests = common::audit(&pool, "end_user.magic_link_requested").await;
    assert_eq!(requests.last().unwrap().3["not_sent"], "too_many_requests");

    // A link sent, then magic links turned off: asking and using are both refused, and
    // mail queued before is dropped when its turn comes (Bob, who has asked for none).
    ops::create_user(&cli, "acme", "bob@example.com", PASSWORD)
        .await
        .unwrap();
    let ask_bob = || {
        post_json(
            &app,
            "/a/acme/auth/magic-link",
            json!({ "email": "bob@example.com" }),
        )
    };
    assert_eq!(ask_bob().await.status, StatusCode::ACCEPTED);
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.sent, 1);
    let bobs = token_in(&messages(&dir)[0]);
    assert_eq!(ask_bob().await.status, StatusCode::ACCEPTED);
    flip(&pool, &controls, "magicLinkEnabled", "off").await;
    let off = ask_bob().await;
    assert_eq!(off.status, StatusCode::FORBIDDEN);
    assert_eq!(code(&off), "MAGIC_LINK_DISABLED");
    let used_off = post_json(
        &app,
        "/a/acme/auth/magic-link/verify",
        json!({ "token": bobs }),
    )
    .await;
    assert_eq!(code(&used_off), "MAGIC_LINK_DISABLED");
    assert_eq!(pass(&pool, &verifier, &controls, &mailer).await.dropped, 1);
    flip(&pool, &controls, "magicLinkEnabled", "on").await;
    let bad_email = post_json(
        &app,
        "/a/acme/auth/magic-link",
        json!({ "email": "not-an-email" }),
    )
    .await;
    assert_eq!(bad_email.json()["error"]["field"], "email");
    let unknown_tenant = post_json(
        &app,
        "/a/nope/auth/magic-link",
        json!({ "email": "ada@example.com" }),
    )
    .await;
    assert_eq!(code(&unknown_tenant), "TENANT_NOT_FOUND");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in SMTP server on loopback: accepts every message and keeps it.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 stand-in ESMTP\r\n").await.unwrap();
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            kept.lock().unwrap().push(std::mem::take(body));
                            data = None;
                            write
                                .write_all(b"250 2.0.0 queued as 42\r\n")
                                .await
                                .unwrap();
                        } else {
                            body.push_str(&line);
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split(' ').next().unwrap_or_default().to_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-stand-in\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 OK\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn mail_goes_out_through_smtp_and_a_server_out_of_reach_is_retried_then_given_up(
    pool: PgPool,
) {
    let ada = tenant_with_user(&pool, "acme", "ada@example.com").await;
    let (_, verifier, controls) = common::app_parts(pool.clone(), false);
    controls.reload().await.unwrap();
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let (port, got) = smtp_server().await;
    let smtp = Mailer::smtp(
        &format!("smtp://127.0.0.1:{port}"),
        None,
        "Acme <no-reply@acme.example>",
    )
    .unwrap();
    assert!(Mailer::smtp("http://127.0.0.1", None, "a@b.example").is_err());
    assert!(Mailer::smtp("smtp://127.0.0.1:25", Some("pw"), "a@b.example").is_err());
    ops::send_recovery(&cli, "acme", ada, "user asked")
        .await
        .unwrap();
    assert_eq!(pass(&pool, &verifier, &controls, &smtp).await.sent, 1);
    let kept: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|m| mail::readable(m))
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].contains("To: ada@example.com"), "{}", kept[0]);
    assert!(kept[0].contains("/a/acme/auth/recovery?token=mf_rc_v1."));
    let transport: String = sqlx::query_scalar("SELECT transport FROM outbound_mail")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(transport, "smtp");

    // A server out of reach: the attempt fails, is recorded, and waits to be retried.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = Mailer::smtp(
        &format!("smtp://127.0.0.1:{closed}"),
        None,
        "no-reply@acme.example",
    )
    .unwrap();
    ops::send_recovery(&cli, "acme", ada, "user asked again")
        .await
        .unwrap();
    let failed = pass(&pool, &verifier, &controls, &down).await;
    assert_eq!(failed.failed, 1);
    let (state, attempts, error): (String, i32, Option<String>) = sqlx::query_as(
        "SELECT state::text, attempts, last_error FROM outbound_mail WHERE state <> 'sent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().starts_with("SMTP"));
    // Not due again at once.
    assert_eq!(
        pass(&pool, &verifier, &controls, &down).await,
        Pass::default()
    );
    let failures = common::audit(&pool, "mail.send_failed").await;
    assert_eq!(failures[0].0, "error");
    assert_eq!(failures[0].1.as_deref(), Some("MAIL_SEND_FAILED"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn forcing_a_reset_deleting_restoring_and_unlocking_change_what_the_account_may_do(
    pool: PgPool,
) {
    let ada = tenant_with_user(&pool, "acme", "ada@example.com").await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let bob = ops::create_user(&cli, "acme", "bob@example.com", PASSWORD)
        .await
        .unwrap();
    let (app, _, _, _listener) = listening(&pool).await;
    use ops::StateChange::*;
    let change = |user, what, send| ops::change_state(&cli, "acme", user, what, "incident 7", send);

    let reset = change(ada, ForcePasswordReset, true).await.unwrap();
    assert_eq!(
        (reset.before.as_str(), reset.after),
        ("active", "needs_password_reset")
    );
    assert!(reset.recovery_mail.is_some());
    assert_eq!(
        code(&sign_in(&app, "ada@example.com", PASSWORD).await),
        "PASSWORD_RESET_REQUIRED"
    );
    assert!(
        change(ada, ForcePasswordReset, false).await.is_err(),
        "already"
    );
    assert!(change(ada, Unlock, false).await.is_err(), "not locked");
    assert!(change(ada, Restore, false).await.is_err(), "not deleted");

    change(bob, Delete, false).await.unwrap();
    // A deleted account answers as an unknown one.
    assert_eq!(
        code(&sign_in(&app, "bob@example.com", PASSWORD).await),
        "INVALID_CREDENTIALS"
    );
    assert!(ops::send_recovery(&cli, "acme", bob, "asked")
        .await
        .is_err());
    let restored = change(bob, Restore, false).await.unwrap();
    assert_eq!(restored.after, "needs_password_reset");

    // Unlocking gives access back: refused during a freeze (the refusal audited).
    let options = ops::LockOptions {
        send_recovery: false,
        block: vec![],
        block_for: time::Duration::days(7),
    };
    let carol = ops::create_user(&cli, "acme", "carol@example.com", PASSWORD)
        .await
        .unwrap();
    ops::lock(&cli, "acme", carol, "stuffing", &options)
        .await
        .unwrap();
    app::panels::freeze::ops::start(&cli, "incident 7", "")
        .await
        .unwrap();
    let frozen = change(carol, Unlock, false).await.unwrap_err();
    assert!(
        matches!(frozen, app::error::AppError::Frozen { .. }),
        "{frozen:?}"
    );
    app::panels::freeze::ops::lift(&cli, "contained", "lift")
        .await
        .unwrap();
    change(carol, Unlock, false).await.unwrap();
    assert_eq!(
        sign_in(&app, "carol@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_events WHERE action LIKE 'end_user.%ed' AND source = 'console'
         OR action IN ('end_user.password_reset_forced', 'end_user.unlocked', 'end_user.restored', 'end_user.deleted')
         ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for expected in [
        "end_user.password_reset_forced",
        "end_user.deleted",
        "end_user.restored",
        "end_user.unlocked",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_platform_wide_revocation_needs_its_words_and_ends_every_tenants_sessions(
    pool: PgPool,
) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    tenant_with_user(&pool, "globex", "hank@example.com").await;
    let (app, _, _, _listener) = listening(&pool).await;
    let ada = sign_in(&app, "ada@example.com", PASSWORD).await;
    let hank = post_json(
        &app,
        "/a/globex/auth/sign-in",
        json!({ "email": "hank@example.com", "password": PASSWORD }),
    )
    .await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let reader = cli.reader().clone();
    assert_eq!(ops::platform_preview(&reader).await.unwrap(), (2, 2));
    let wrong = ops::revoke_platform_sessions(&cli, "systemic compromise", "yes")
        .await
        .unwrap_err();
    assert!(wrong.field_message("confirmation").is_some());
    assert_eq!(
        me(&app, "acme", &field(&ada, "access_token")).await.status,
        StatusCode::OK
    );
    let (live, tenants) =
        ops::revoke_platform_sessions(&cli, "systemic compromise", ops::PLATFORM_CONFIRMATION)
            .await
            .unwrap();
    assert_eq!((live, tenants), (2, 2));
    refused(
        &app,
        "acme",
        &field(&ada, "access_token"),
        "ACCESS_TOKEN_REVOKED",
    )
    .await;
    refused(
        &app,
        "globex",
        &field(&hank, "access_token"),
        "ACCESS_TOKEN_REVOKED",
    )
    .await;
    assert_eq!(
        common::audit(&pool, "platform.sessions_revoked").await[0].3["live_sessions"],
        2
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_csv_import_checks_every_line_first_and_creates_all_or_none(pool: PgPool) {
    tenant_with_user(&pool, "acme", "ada@example.com").await;
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let csv = "email\nbob@example.com\nnot-an-email\nada@example.com\nBob@Example.com\ncarol@example.com,secret\n\n";
    let checked = ops::import_users(&cli, "acme", csv, true, false, "")
        .await
        .unwrap();
    let problems: Vec<(u64, Option<String>)> = checked
        .lines
        .iter()
        .map(|l| (l.line, l.problem.clone()))
        .collect();
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert_eq!(problems[0], (2, None));
    assert!(
        problems[1].1.as_deref().unwrap().contains("email address"),
        "{problems:?}"
    );
    assert_eq!(
        problems[2].1.as_deref(),
        Some("the tenant already has this user")
    );
    assert_eq!(problems[3].1.as_deref(), Some("the same email as line 2"));
    assert!(problems[4].1.as_deref().unwrap().contains("one column"));
    assert_eq!(checked.created, 0);
    // Nothing half-written: the import of a file with a wrong line creates nobody.
    let refused = ops::import_users(&cli, "acme", csv, false, true, "onboarding")
        .await
        .unwrap_err();
    assert!(refused.field_message("csv").unwrap().contains("4 line(s)"));
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM end_users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 1);
    assert!(ops::import_users(&cli, "acme", "\n\n", true, false, "")
        .await
        .unwrap_err()
        .field_message("csv")
        .is_some());

    let good = "bob@example.com\ncarol@example.com\n";
    let done = ops::import_users(&cli, "acme", good, false, true, "onboarding")
        .await
        .unwrap();
    assert_eq!((done.created, done.mailed), (2, 2));
    let states: Vec<(String, String)> = sqlx::query_as(
        "SELECT email, state::text FROM end_users WHERE email <> 'ada@example.com' ORDER BY email",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        states,
        [
            (
                "bob@example.com".to_owned(),
                "needs_password_reset".to_owned()
            ),
            (
                "carol@example.com".to_owned(),
                "needs_password_reset".to_owned()
            )
        ]
    );
    assert_eq!(mail_states(&pool).await, ["pending", "pending"]);
    assert_eq!(
        common::audit(&pool, "end_user.imported").await[0].3["created"],
        2
    );

    // A locked account does not recover by itself: no mail is queued for it.
    let (app, _, _, _listener) = listening(&pool).await;
    let ada: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM end_users WHERE email = 'ada@example.com'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let options = ops::LockOptions {
        send_recovery: false,
        block: vec![],
        block_for: time::Duration::days(7),
    };
    assert_eq!(
        ops::lock(&cli, "acme", ada, "stuffing", &options)
            .await
            .unwrap()
            .after,
        "locked"
    );
    let asked = post_json(
        &app,
        "/a/acme/auth/recovery",
        json!({ "email": "ada@example.com" }),
    )
    .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED);
    assert_eq!(
        common::audit(&pool, "end_user.recovery_requested").await[0].3["not_sent"],
        "locked"
    );
    assert!(ops::send_recovery(&cli, "acme", ada, "asked")
        .await
        .is_err());
}
