//! HTTP-level tests: the real router, driven in-process, against a real PostgreSQL.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{
    admin_cookie, app, app_with, call, csp_nonce, get, get_as, post_form, send, some_session,
    tenant, unreachable_pool,
};
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn healthz_answers_ok(pool: PgPool) {
    let res = get(&app(pool), "/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "ok");
}

#[tokio::test]
async fn healthz_stays_ok_when_the_database_is_unreachable() {
    let res = get(&app(unreachable_pool()), "/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn readyz_is_ready_with_the_database(pool: PgPool) {
    let res = get(&app(pool), "/readyz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "ready");
}

#[tokio::test]
async fn readyz_is_503_with_a_reason_when_the_database_is_unreachable() {
    let res = get(&app(unreachable_pool()), "/readyz").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = res.json();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["reason"], "database unreachable");
    assert!(
        !res.body.contains("127.0.0.1"),
        "no connection detail: {}",
        res.body
    );
}

#[tokio::test]
async fn readyz_turns_503_when_the_database_is_dropped_under_it() {
    let admin_url = std::env::var("DATABASE_URL").expect("DATABASE_URL for tests");
    let admin = PgPool::connect(&admin_url).await.expect("admin connection");
    let name = format!("sc_gone_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    let base = admin_url.rsplit_once('/').expect("url with a database").0;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(1))
        .connect(&format!("{base}/{name}"))
        .await
        .expect("connect to the new database");
    let router = app(pool.clone());
    assert_eq!(get(&router, "/readyz").await.status, StatusCode::OK);

    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop database");
    // The answer is reused for up to READY_CACHE; the next one after that probes again.
    tokio::time::sleep(server::web::health::READY_CACHE + std::time::Duration::from_millis(100))
        .await;
    let res = get(&router, "/readyz").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json()["status"], "unavailable");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_response_carries_security_headers_with_a_fresh_nonce(pool: PgPool) {
    let router = app(pool);
    let mut nonces = Vec::new();
    // Each kind of route the router has: pages (signed out, redirecting, missing), probes,
    // a server function, the gateway, the switches API and the static files.
    let function = format!("POST {}", app::auth::api::Whoami::PATH);
    let requests = [
        "/sign-in",
        "/sign-in",
        "/",
        "/no-such-page",
        "/healthz",
        "/readyz",
        function.as_str(),
        "/agent/v1/whoami",
        "/api/v1/switches",
        "/pkg/no-such-file.js",
    ];
    for path in requests {
        let res = match path.strip_prefix("POST ") {
            Some(function) => send(&router, post_form(function, None, "")).await,
            None => get(&router, path).await,
        };
        let csp = res.header("content-security-policy");
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        assert_eq!(res.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(res.header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(
            res.header("strict-transport-security"),
            "",
            "{path}: no HSTS over http"
        );
        nonces.push(csp_nonce(csp).expect("nonce in CSP"));
    }
    let mut unique = nonces.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), nonces.len(), "nonces repeat: {nonces:?}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn hsts_is_sent_when_served_over_https(pool: PgPool) {
    let res = get(&app_with(pool, true), "/healthz").await;
    assert!(res
        .header("strict-transport-security")
        .starts_with("max-age="));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_page_scripts_carry_the_nonce_of_their_own_response(pool: PgPool) {
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;
    let res = get_as(&router, "/", &cookie).await;
    assert_eq!(res.status, StatusCode::OK);
    let nonce = csp_nonce(res.header("content-security-policy")).expect("nonce");
    let scripts = res.body.matches("<script").count();
    assert!(scripts > 0, "the page has hydration scripts");
    let with_nonce = res.body.matches(&format!("nonce=\"{nonce}\"")).count();
    assert!(with_nonce >= 1, "hydration script carries the CSP nonce");
    let without = res
        .body
        .match_indices("<script")
        .filter(|(i, _)| {
            let tag_end = res.body[*i..].find('>').map_or(res.body.len(), |e| i + e);
            !res.body[*i..tag_end].contains("nonce=")
        })
        .count();
    assert_eq!(
        without, 0,
        "every inline script needs the nonce: {}",
        res.body
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn responses_carry_a_request_id(pool: PgPool) {
    let router = app(pool.clone());
    let first = get(&router, "/healthz").await;
    let id = first.header("x-request-id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_ne!(get(&router, "/healthz").await.header("x-request-id"), id);

    // From a plain client, an offered id is not taken: anyone could plant ids in the audit log.
    let from_client = |peer: [u8; 4], id: &str| {
        let mut req = Request::get("/healthz")
            .header("x-request-id", id)
            .body(Body::empty())
            .expect("request");
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                peer, 4000,
            ))));
        req
    };
    let ignored = send(&router, from_client([198, 51, 100, 1], "lb-abc123")).await;
    assert_eq!(ignored.header("x-request-id").len(), 36);

    // From a trusted proxy, a well-formed id is kept and a malformed one replaced.
    let behind_proxy = server::web::router(server::web::AppState {
        leptos_options: leptos::prelude::LeptosOptions::builder()
            .output_name("staff_console")
            .site_root("target/site")
            .build(),
        pool: pool.clone(),
        security: std::sync::Arc::new(server::web::middleware::SecurityPolicy {
            https: false,
            public_origin: common::ORIGIN.to_owned(),
            trusted_proxies: vec!["10.0.0.0/8".parse().expect("net")],
        }),
        sign_in_policy: app::auth::api::SignInPolicy {
            mfa_required: false,
            ..Default::default()
        },
        verifier: common::verifier(pool.clone()),
        controls: common::controls(pool.clone()),
        session_keys: common::session_keys(),
        passkeys: common::relying_party(),
        key_policy: app::domain::keys::KeyPolicy::default(),
        jwks_refresh_token: None,
        end_users: common::end_users(),
    });
    let echoed = send(&behind_proxy, from_client([10, 0, 0, 2], "lb-abc123")).await;
    assert_eq!(echoed.header("x-request-id"), "lb-abc123");
    let replaced = send(
        &behind_proxy,
        from_client([10, 0, 0, 2], "bad id; with spaces"),
    )
    .await;
    assert_eq!(replaced.header("x-request-id").len(), 36);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn home_lists_the_tenants_from_the_database(pool: PgPool) {
    tenant(&pool, "acme", "Acme Payments").await;
    tenant(&pool, "globex", "Globex Agents").await;
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;
    let res = get_as(&router, "/", &cookie).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("Acme Payments"));
    assert!(res.body.contains("Globex Agents"));
    assert!(res.body.contains("href=\"/t/globex\""));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn home_explains_an_empty_database(pool: PgPool) {
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;
    let res = get_as(&router, "/", &cookie).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("No tenants yet"), "{}", res.body);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn tenant_overview_shows_the_tenant_or_a_clear_error(pool: PgPool) {
    tenant(&pool, "acme", "Acme Payments").await;
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;

    let res = get_as(&router, "/t/acme", &cookie).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("Acme Payments"));

    let missing = get_as(&router, "/t/nobody", &cookie).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("was not found"), "{}", missing.body);

    let malformed = get_as(&router, "/t/NOT_A_SLUG", &cookie).await;
    assert_eq!(malformed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        malformed.body.contains("lowercase letters"),
        "{}",
        malformed.body
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn unknown_pages_answer_404_with_a_readable_page(pool: PgPool) {
    let res = get(&app(pool), "/definitely/not/here").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.body.contains("Page not found"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn server_functions_answer_post_and_refuse_get(pool: PgPool) {
    tenant(&pool, "acme", "Acme Payments").await;
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;
    let path = app::panels::overview::api::ListTenants::PATH;

    let res = call(&router, path, &cookie, "").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.json()[0]["slug"], "acme");

    let res = get_as(&router, path, &cookie).await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn server_function_errors_carry_their_status_and_no_internal_detail(pool: PgPool) {
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;
    let res = call(
        &router,
        app::panels::overview::api::GetTenant::PATH,
        &cookie,
        "slug=Bad%20Slug",
    )
    .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(res.json()["kind"], "validation");
    assert_eq!(res.json()["field"], "tenant");
}

#[tokio::test]
async fn database_failures_reach_the_browser_as_a_reference_only() {
    let router = app(unreachable_pool());
    // A session cookie makes the request consult the session store, on the dead database.
    let res = send(
        &router,
        post_form(
            app::panels::overview::api::ListTenants::PATH,
            Some(&some_session()),
            "",
        ),
    )
    .await;
    assert_eq!(
        res.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        res.body
    );
    let body = res.json();
    assert_eq!(body["kind"], "internal");
    assert_eq!(body["ref_id"].as_str().map(str::len), Some(16));
    assert!(!res.body.contains("127.0.0.1") && !res.body.to_lowercase().contains("pool"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn signed_out_visitors_are_sent_to_sign_in_and_back(pool: PgPool) {
    let router = app(pool);
    let home = get(&router, "/").await;
    assert_eq!(home.status, StatusCode::FOUND);
    assert_eq!(home.header("location"), "/sign-in");
    let deep = get(&router, "/t/acme").await;
    assert_eq!(deep.header("location"), "/sign-in?next=/t/acme");
}

#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_token_pasted_into_the_id_filter_is_redirected_out_of_the_url(pool: PgPool) {
    tenant(&pool, "acme", "Acme").await;
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;
    let minted = app::domain::tokens::token::mint();
    let token = minted.plaintext.to_string();
    let secret = token.rsplit('.').next().unwrap().to_owned();
    let captured = Captured::default();
    // Every line the requests below log, through the real subscriber (set while the
    // requests are polled, whichever thread the test runtime polls them on).
    let requests = async {
        // As the form submits it by GET before the page is interactive: the other filters
        // around it, and the same token with its dots percent-encoded.
        for id in [token.clone(), token.replace('.', "%2E")] {
            let path = format!("/t/acme/integrations?status=active&id={id}&used=7d");
            let answer = get_as(&router, &path, &cookie).await;
            assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
            let location = answer.header("location").to_owned();
            assert_eq!(
                location,
                format!(
                    "/t/acme/integrations?status=active&id={}&used=7d",
                    minted.id
                )
            );
            assert!(!location.contains(&secret));
            assert!(!answer.body.contains(&secret));
            // The page it leads to filters by the id.
            let page = get_as(&router, &location, &cookie).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            assert!(!page.body.contains(&secret));
        }
        // Signed out, the URL is cleaned before the sign-in redirect could carry it on.
        let anonymous = get(&router, &format!("/t/acme/integrations?id={token}")).await;
        assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
        assert!(!anonymous.header("location").contains(&secret));
        // A URL without a token is served as it is.
        let plain = get_as(&router, "/t/acme/integrations?id=abc", &cookie).await;
        assert_eq!(plain.status, StatusCode::OK);
    };
    tracing::instrument::WithSubscriber::with_subscriber(
        requests,
        common::capturing_subscriber(captured.clone()),
    )
    .await;
    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("request finished"), "{logged}");
    assert!(!logged.contains(&secret), "the secret was logged: {logged}");
}

/// A request from `peer`, as the server's listener would hand it over.
fn from_peer(mut req: Request<Body>, peer: [u8; 4]) -> Request<Body> {
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            peer, 40000,
        ))));
    req
}

/// A random, well-formed session id cookie that names no session.
fn random_session_cookie() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    format!(
        "sc_session={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_burst_of_readyz_calls_costs_one_probe(pool: PgPool) {
    let (pool, acquired) = common::counting_pool(&pool).await;
    let router = app(pool);
    let before = common::count(&acquired);
    let calls = (0..100).map(|_| get(&router, "/readyz"));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    let used = common::count(&acquired) - before;
    assert!(used <= 2, "100 readiness calls took {used} connections");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn random_service_tokens_cannot_load_the_database(pool: PgPool) {
    let (pool, acquired) = common::counting_pool(&pool).await;
    let (router, _, controls) = common::app_parts(pool.clone(), false);
    controls.reload().await.unwrap();
    let cli = app::auth::Actor::command_line_unchecked(pool.clone(), "test");
    let good = app::domain::gateway::controls::service_token::mint(&cli, "payments-service")
        .await
        .unwrap();
    let switches = |token: &str, peer: [u8; 4]| {
        from_peer(
            Request::get("/api/v1/switches")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
            peer,
        )
    };
    // The real service has used its token from this address before the flood.
    let flood_from = [192, 0, 2, 80];
    let first_lookup = std::time::Instant::now();
    assert_eq!(
        send(&router, switches(good.expose(), flood_from))
            .await
            .status,
        StatusCode::OK
    );

    let before = common::count(&acquired);
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..200 {
        let mut id = [0u8; 8];
        rand::fill(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let answer = send(&router, switches(&format!("sc_svc_{id}_guess"), flood_from)).await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            last = Some(answer);
        }
    }
    let used = common::count(&acquired) - before;
    // The address's burst, less the one lookup the real token's first use took, and what
    // the budget refilled while the flood ran.
    let limit = app::domain::gateway::controls::anonymous::SERVICE_TOKEN_LOOKUPS;
    let budget = limit.burst as usize - 1;
    let refilled = common::refilled_since(limit, first_lookup);
    assert!(
        used <= (budget + refilled) as u64 + 1,
        "200 bad tokens took {used} connections"
    );
    assert!(statuses[..budget].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        statuses[budget..].iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    let looked_up = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        looked_up <= budget + refilled,
        "{refilled} refilled: {statuses:?}"
    );
    let last = last.unwrap();
    assert_eq!(common::code(&last), "RATE_LIMITED");
    assert!(last.header("retry-after").parse::<u64>().unwrap() >= 1);

    // The service keeps working from the flooding address, and other addresses are not
    // touched.
    assert_eq!(
        send(&router, switches(good.expose(), flood_from))
            .await
            .status,
        StatusCode::OK
    );
    let elsewhere = send(
        &router,
        switches("sc_svc_0123456789abcdef_guess", [192, 0, 2, 81]),
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
    assert_eq!(common::code(&elsewhere), "SERVICE_TOKEN_INVALID");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn random_session_cookies_cannot_load_the_database(pool: PgPool) {
    use app::auth::api::Whoami;
    let (pool, acquired) = common::counting_pool(&pool).await;
    let router = app(pool.clone());
    let peer = std::net::SocketAddr::from(([192, 0, 2, 90], 40000));
    common::staff(
        &pool,
        "pat@example.com",
        app::auth::Role::Viewer,
        "a password long enough",
    )
    .await;
    let whoami = |cookie: &str| common::post_form_from(Whoami::PATH, Some(cookie), "", peer);

    // Junk cookies (random ids, unsigned or wrongly signed) never reach the session store.
    let before = common::count(&acquired);
    for i in 0..200 {
        let junk = random_session_cookie();
        let cookie = if i % 2 == 0 {
            junk
        } else {
            format!("{junk}.{}", &junk[11..])
        };
        let answer = send(&router, whoami(&cookie)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(answer.json().is_null(), "signed out");
    }
    let used = common::count(&acquired) - before;
    assert_eq!(used, 0, "200 junk session cookies took {used} connections");

    // Meanwhile, from that same address, people sign in and keep working.
    let (_, signed_in) =
        common::sign_in_from(&router, "pat@example.com", "a password long enough", peer).await;
    let signed_in = signed_in.unwrap();
    assert_eq!(
        send(&router, whoami(&signed_in)).await.json()["email"],
        "pat@example.com"
    );
    // A correctly signed id of no session is looked up (once per request) and signed out.
    assert!(send(&router, whoami(&common::some_session()))
        .await
        .json()
        .is_null());
}

/// Stops the router builders of [`pages_render_while_other_runtimes_build_routers`] however
/// the test ends.
struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Pages render while routers are built on other runtimes of the process, as the parallel
/// tests of one binary do. Building a router used to generate leptos's route list each
/// time, which leptos does under a process-wide "suppress resource loads" flag
/// (leptos-rs/leptos#4773): a resource first polled anywhere in the process while the flag
/// was up never loaded, and its page stalled until the 30 s request timeout (503).
#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn pages_render_while_other_runtimes_build_routers(pool: PgPool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    tenant(&pool, "acme", "Acme Payments").await;
    let router = app(pool.clone());
    let cookie = admin_cookie(&pool, &router).await;

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(stop.clone());
    let builders: Vec<_> = (0..2)
        .map(|_| {
            let (stop, pool) = (stop.clone(), pool.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let mut built = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        drop(app(pool.clone()));
                        built += 1;
                        tokio::task::yield_now().await;
                    }
                    built
                })
            })
        })
        .collect();

    let pages = ["/", "/t/acme", "/t/acme/integrations"];
    for (i, path) in pages.iter().cycle().take(24).enumerate() {
        let rendered = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            get_as(&router, path, &cookie),
        )
        .await
        .unwrap_or_else(|_| panic!("render {i} of {path} stalled past 5 s"));
        assert_eq!(rendered.status, StatusCode::OK, "{path}: {}", rendered.body);
    }
    stop.store(true, Ordering::Relaxed);
    let built: u32 = builders
        .into_iter()
        .map(|b| b.join().expect("builder"))
        .sum();
    assert!(built > 0, "routers were built meanwhile");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn rotating_the_session_signing_key_keeps_sessions_only_with_the_previous_one(pool: PgPool) {
    use app::auth::api::Whoami;
    use server::web::session_keys::SessionKeys;
    const OLD: [u8; 32] = common::SESSION_KEY;
    const NEW: [u8; 32] = [0x77; 32];
    let before = common::app(pool.clone());
    common::staff(
        &pool,
        "rot@example.com",
        app::auth::Role::Viewer,
        common::PERSON_PASSWORD,
    )
    .await;
    let (_, cookie) = common::sign_in(&before, "rot@example.com", common::PERSON_PASSWORD).await;
    let cookie = cookie.unwrap();
    let whoami = |router: &axum::Router, cookie: &str| {
        let router = router.clone();
        let cookie = cookie.to_owned();
        async move { common::call(&router, Whoami::PATH, &cookie, "").await }
    };

    // During the rotation: the old cookie still works, and comes back signed with the new key.
    let rotating = common::app_with_session_keys(pool.clone(), SessionKeys::new(&NEW, Some(&OLD)));
    let answer = whoami(&rotating, &cookie).await;
    assert_eq!(answer.json()["email"], "rot@example.com", "{}", answer.body);
    let resigned = common::session_cookie(&answer).expect("the cookie is re-signed");
    let id = cookie.split_once('=').unwrap().1;
    let id = &id[id.len() - 22..];
    assert_eq!(resigned, common::signed_session_cookie_with(&NEW, id));

    // After it: the re-signed cookie works with the new key alone; the old one does not,
    // and is dropped without a look-up (as every cookie whose signature fails).
    let after = common::app_with_session_keys(pool.clone(), SessionKeys::new(&NEW, None));
    assert_eq!(
        whoami(&after, &resigned).await.json()["email"],
        "rot@example.com"
    );
    let (counted, acquired) = common::counting_pool(&pool).await;
    let after_counted = common::app_with_session_keys(counted, SessionKeys::new(&NEW, None));
    let start = common::count(&acquired);
    assert!(whoami(&after_counted, &cookie).await.json().is_null());
    assert_eq!(
        common::count(&acquired) - start,
        0,
        "a stale cookie reached the store"
    );
}
