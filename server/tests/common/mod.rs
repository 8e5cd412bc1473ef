//! Helpers shared by the server's integration tests.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.
#![allow(dead_code)] // Each test binary uses a different subset.

use app::auth::api::SignInPolicy;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
#[allow(unused_imports)]
use axum::Router;
use http_body_util::BodyExt as _;
use leptos::prelude::LeptosOptions;
use server::web::middleware::SecurityPolicy;
use server::web::{router, AppState};
use sqlx::PgPool;
use std::sync::Arc;
use tower::ServiceExt as _;

pub mod authenticator;

/// The console's origin in tests; requests that change state send it.
pub const ORIGIN: &str = "http://127.0.0.1:3000";

/// The real router over `pool`, as `serve` builds it.
pub fn app(pool: PgPool) -> Router {
    app_with(pool, false)
}

/// The real router, optionally as if served over HTTPS.
pub fn app_with(pool: PgPool, https: bool) -> Router {
    app_and_verifier(pool, https).0
}

/// The real router and its token verifier (to flush the gateway's ledger in tests).
pub fn app_and_verifier(
    pool: PgPool,
    https: bool,
) -> (
    Router,
    std::sync::Arc<app::domain::gateway::verify::Verifier>,
) {
    let (router, verifier, _) = app_parts(pool, https);
    (router, verifier)
}

/// The gateway controls of a test instance: defaults, rate limiting on.
pub fn controls(pool: PgPool) -> Arc<app::domain::gateway::controls::state::Controls> {
    Arc::new(app::domain::gateway::controls::state::Controls::new(
        pool,
        app::domain::gateway::controls::state::Defaults::default(),
        true,
    ))
}

/// The real router with its verifier and controls.
pub fn app_parts(
    pool: PgPool,
    https: bool,
) -> (
    Router,
    Arc<app::domain::gateway::verify::Verifier>,
    Arc<app::domain::gateway::controls::state::Controls>,
) {
    app_parts_with_site(pool, https, "target/site", false)
}

/// [`app_parts`] serving the site in `site_root`, with hashed file names or not.
pub fn app_parts_with_site(
    pool: PgPool,
    https: bool,
    site_root: &str,
    hash_files: bool,
) -> (
    Router,
    Arc<app::domain::gateway::verify::Verifier>,
    Arc<app::domain::gateway::controls::state::Controls>,
) {
    app_parts_full(
        pool,
        https,
        site_root,
        hash_files,
        false,
        session_keys(),
        None,
    )
}

/// The router with `POST /internal/auth/jwks/refresh` on, answering `token`.
pub fn app_with_refresh_token(
    pool: PgPool,
    token: &str,
) -> (Router, Arc<app::domain::gateway::verify::Verifier>) {
    let (router, verifier, _) = app_parts_full(
        pool,
        false,
        "target/site",
        false,
        false,
        session_keys(),
        Some(token),
    );
    (router, verifier)
}

/// The router as production builds it: every person must have a second factor.
pub fn app_requiring_mfa(pool: PgPool) -> Router {
    app_parts_full(
        pool,
        false,
        "target/site",
        false,
        true,
        session_keys(),
        None,
    )
    .0
}

fn app_parts_full(
    pool: PgPool,
    https: bool,
    site_root: &str,
    hash_files: bool,
    mfa: bool,
    keys: Arc<server::web::session_keys::SessionKeys>,
    refresh_token: Option<&str>,
) -> (
    Router,
    Arc<app::domain::gateway::verify::Verifier>,
    Arc<app::domain::gateway::controls::state::Controls>,
) {
    app_parts_identity(
        pool,
        https,
        site_root,
        hash_files,
        mfa,
        keys,
        refresh_token,
        end_users(),
    )
}

/// The router, its verifier and controls, with end users' `identity` policy.
pub fn app_with_identity(
    pool: PgPool,
    identity: Arc<app::domain::endusers::Policy>,
) -> (
    Router,
    Arc<app::domain::gateway::verify::Verifier>,
    Arc<app::domain::gateway::controls::state::Controls>,
) {
    app_parts_identity(
        pool,
        false,
        "target/site",
        false,
        false,
        session_keys(),
        None,
        identity,
    )
}

#[allow(clippy::too_many_arguments)]
fn app_parts_identity(
    pool: PgPool,
    https: bool,
    site_root: &str,
    hash_files: bool,
    mfa: bool,
    keys: Arc<server::web::session_keys::SessionKeys>,
    refresh_token: Option<&str>,
    identity: Arc<app::domain::endusers::Policy>,
) -> (
    Router,
    Arc<app::domain::gateway::verify::Verifier>,
    Arc<app::domain::gateway::controls::state::Controls>,
) {
    let controls = controls(pool.clone());
    let leptos_options = LeptosOptions::builder()
        .output_name("staff_console")
        .site_root(site_root)
        .hash_files(hash_files)
        .build();
    let verifier = verifier(pool.clone());
    let router = router(AppState {
        leptos_options,
        pool,
        security: Arc::new(SecurityPolicy {
            https,
            public_origin: ORIGIN.to_owned(),
            trusted_proxies: Vec::new(),
        }),
        // Second factors optional, as in development: people made by the fixtures sign in
        // with a password. The factor tests build their router with `app_requiring_mfa`.
        sign_in_policy: SignInPolicy {
            mfa_required: mfa,
            ..SignInPolicy::default()
        },
        verifier: verifier.clone(),
        controls: controls.clone(),
        session_keys: keys,
        passkeys: relying_party(),
        key_policy: app::domain::keys::KeyPolicy::default(),
        jwks_refresh_token: refresh_token.map(|t| Arc::new(app::secret::SecretString::new(t))),
        end_users: identity,
    });
    (router, verifier, controls)
}

/// The origin passkeys answer to in tests (browsers refuse an IP address as the RP id, so
/// not [`ORIGIN`]'s host: the test authenticator signs for this one).
pub const PASSKEY_ORIGIN: &str = "http://localhost:3000";

/// The tests' WebAuthn relying party, at [`PASSKEY_ORIGIN`].
pub fn relying_party() -> app::domain::factors::passkey::RelyingParty {
    app::domain::factors::passkey::RelyingParty::for_origin(PASSKEY_ORIGIN).expect("relying party")
}

/// The tests' SESSION_SIGNING_KEY.
pub const SESSION_KEY: [u8; 32] = [0x3c; 32];

/// The session cookie keys of the tests' routers: [`SESSION_KEY`], no previous one.
pub fn session_keys() -> Arc<server::web::session_keys::SessionKeys> {
    Arc::new(server::web::session_keys::SessionKeys::new(
        &SESSION_KEY,
        None,
    ))
}

/// The router with these session cookie keys (a key rotation).
pub fn app_with_session_keys(pool: PgPool, keys: server::web::session_keys::SessionKeys) -> Router {
    app_parts_full(
        pool,
        false,
        "target/site",
        false,
        false,
        Arc::new(keys),
        None,
    )
    .0
}

/// The ENCRYPTION_KEY of the tests.
pub const MASTER_KEY: [u8; 32] = [0x5a; 32];

/// A verifier over `pool` with the tests' key; its ring loads on first use.
pub fn verifier(pool: PgPool) -> std::sync::Arc<app::domain::gateway::verify::Verifier> {
    std::sync::Arc::new(
        app::domain::gateway::verify::Verifier::new(
            pool,
            app::domain::tokens::pepper::MasterKey::new(MASTER_KEY),
        )
        .for_instance(ORIGIN),
    )
}

/// A pool whose server never answers: the database is unreachable.
pub fn unreachable_pool() -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nothing")
        .expect("lazy pool")
}

/// A finished response: status, headers, body as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// Sends `req` through `app` in-process and collects the answer.
pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.expect("infallible router");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET path`, asking for HTML like a browser.
pub async fn get(app: &Router, path: &str) -> Answer {
    send(
        app,
        Request::get(path)
            .header("accept", "text/html")
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

/// A connection of its own for a test's fixture: it writes audited tables directly, with
/// no audit event, which the database otherwise refuses (migration `audit_obligation`). It
/// says so with the one setting that allows it; the pool the server under test uses is
/// untouched, so the rule still holds for every code path the test exercises.
pub async fn fixture(pool: &PgPool) -> sqlx::PgConnection {
    use sqlx::ConnectOptions as _;
    pool.connect_options()
        .as_ref()
        .clone()
        .options([("staff_console.unaudited", "test-fixture")])
        .connect()
        .await
        .expect("fixture connection")
}

/// Seeds audit events through the one way to write them.
pub async fn record_events(pool: &PgPool, events: &[app::domain::audit::NewEvent]) {
    let seeder = app::auth::Actor::command_line_unchecked(pool.clone(), "test");
    seeder
        .change()
        .await
        .expect("change")
        .commit_all(events)
        .await
        .expect("seed events");
}

/// Inserts a tenant for a test.
pub async fn tenant(pool: &PgPool, slug: &str, name: &str) {
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ($1, $2)")
        .bind(slug)
        .bind(name)
        .execute(&mut fixture(pool).await)
        .await
        .expect("insert tenant");
}

/// The nonce in a CSP header value.
pub fn csp_nonce(csp: &str) -> Option<String> {
    let start = csp.find("'nonce-")? + "'nonce-".len();
    let end = csp[start..].find('\'')? + start;
    Some(csp[start..end].to_owned())
}

/// Creates a staff member directly (as the command line would) with a known password, as
/// if they had since chosen it themselves (a created account must otherwise change its
/// handed-over password first: see [`staff_handed_over`]).
pub async fn staff(
    pool: &PgPool,
    email: &str,
    role: app::auth::Role,
    password: &str,
) -> uuid::Uuid {
    let id = staff_handed_over(pool, email, role, password).await;
    sqlx::query("UPDATE staff SET must_change_password = false WHERE id = $1")
        .bind(id)
        .execute(&mut fixture(pool).await)
        .await
        .expect("mark the password as chosen");
    id
}

/// Creates a staff member as the command line does: their first sign-in must replace
/// `password`.
pub async fn staff_handed_over(
    pool: &PgPool,
    email: &str,
    role: app::auth::Role,
    password: &str,
) -> uuid::Uuid {
    let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "test");
    let (id, _) =
        app::panels::staff::ops::create(&actor, email, "Test Person", role, Some(password))
            .await
            .expect("create staff");
    id
}

/// A POST to a server function, form-encoded, from the console's own origin, from
/// 203.0.113.7.
pub fn post_form(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
    post_form_from(
        path,
        cookie,
        body,
        std::net::SocketAddr::from(([203, 0, 113, 7], 40000)),
    )
}

/// [`post_form`] from the peer `peer`. Tests that count per-address throttling use an
/// address of their own: the "one throttle event per window" memory is per process.
pub fn post_form_from(
    path: &str,
    cookie: Option<&str>,
    body: &str,
    peer: std::net::SocketAddr,
) -> Request<Body> {
    let mut builder = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", ORIGIN);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let mut req = builder.body(Body::from(body.to_owned())).expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    req
}

/// The `name=value` of the session cookie a response sets, if any.
pub fn session_cookie(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sc_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Signs in through the real server function; returns the answer and the session cookie.
pub async fn sign_in(app: &Router, email: &str, password: &str) -> (Answer, Option<String>) {
    let body = format!(
        "email={}&password={}",
        urlencode(email),
        urlencode(password)
    );
    let answer = send(app, post_form(app::auth::api::SignIn::PATH, None, &body)).await;
    let cookie = session_cookie(&answer);
    (answer, cookie)
}

/// [`sign_in`] from the peer `peer`.
pub async fn sign_in_from(
    app: &Router,
    email: &str,
    password: &str,
    peer: std::net::SocketAddr,
) -> (Answer, Option<String>) {
    let body = format!(
        "email={}&password={}",
        urlencode(email),
        urlencode(password)
    );
    let answer = send(
        app,
        post_form_from(app::auth::api::SignIn::PATH, None, &body, peer),
    )
    .await;
    let cookie = session_cookie(&answer);
    (answer, cookie)
}

/// Minimal form encoding for test values.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Calls a server function with a session cookie.
pub async fn call(app: &Router, path: &str, cookie: &str, body: &str) -> Answer {
    send(app, post_form(path, Some(cookie), body)).await
}

/// Audit events with this action, oldest first: (outcome, code, actor, details).
pub async fn audit(
    pool: &PgPool,
    action: &str,
) -> Vec<(String, Option<String>, String, serde_json::Value)> {
    sqlx::query_as::<_, (String, Option<String>, String, serde_json::Value)>(
        "SELECT outcome::text, code, actor, details FROM audit_events WHERE action = $1 ORDER BY seq",
    )
    .bind(action)
    .fetch_all(pool)
    .await
    .expect("audit query")
}

/// The audit events with this action once there are `n` of them (written after a response
/// ends, as an export's last event is): polled, at most 30 s.
pub async fn audit_when(
    pool: &PgPool,
    action: &str,
    n: usize,
) -> Vec<(String, Option<String>, String, serde_json::Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let events = audit(pool, action).await;
        if events.len() >= n || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

use leptos::server_fn::ServerFn as _;

/// A signed-in admin's session cookie.
pub async fn admin_cookie(pool: &PgPool, app: &Router) -> String {
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    staff(
        pool,
        &email,
        app::auth::Role::Admin,
        "admin password long enough",
    )
    .await;
    let (answer, cookie) = sign_in(app, &email, "admin password long enough").await;
    cookie.unwrap_or_else(|| panic!("admin sign-in failed: {} {}", answer.status, answer.body))
}

/// `GET path` like a browser carrying `cookie`.
pub async fn get_as(app: &Router, path: &str, cookie: &str) -> Answer {
    send(
        app,
        Request::get(path)
            .header("accept", "text/html")
            .header("cookie", cookie)
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

/// A correctly signed session cookie for a session that does not exist: the session store
/// is consulted, which is how tests reach the database through a signed-out request.
/// (An unsigned or forged cookie never reaches the store.)
pub fn some_session() -> String {
    signed_session_cookie("AAAAAAAAAAAAAAAAAAAAAA")
}

/// `sc_session=<id, signed with the tests' SESSION_SIGNING_KEY>`, as the session layer
/// would set.
pub fn signed_session_cookie(id: &str) -> String {
    signed_session_cookie_with(&SESSION_KEY, id)
}

/// `sc_session=<id>` signed with the session key `secret`.
pub fn signed_session_cookie_with(secret: &[u8; 32], id: &str) -> String {
    use tower_sessions::cookie::{Cookie, CookieJar, Key};
    let key = app::domain::tokens::pepper::MasterKey::new(*secret)
        .derive(app::auth::session::COOKIE_KEY_PURPOSE);
    let key = Key::from(&key[..]);
    let mut jar = CookieJar::new();
    jar.signed_mut(&key)
        .add(Cookie::new("sc_session", id.to_owned()));
    let cookie = jar.get("sc_session").expect("signed cookie");
    format!("sc_session={}", cookie.value())
}

/// The password of people made by [`person`].
pub const PERSON_PASSWORD: &str = "integration test password";

/// A signed-in staff member of `role`: their id and session cookie.
pub async fn person(pool: &PgPool, app: &Router, role: app::auth::Role) -> (uuid::Uuid, String) {
    let email = format!(
        "{}-{}@example.com",
        role.as_str(),
        uuid::Uuid::new_v4().simple()
    );
    let id = staff(pool, &email, role, PERSON_PASSWORD).await;
    let (answer, cookie) = sign_in(app, &email, PERSON_PASSWORD).await;
    (
        id,
        cookie.unwrap_or_else(|| panic!("sign-in failed: {} {}", answer.status, answer.body)),
    )
}

/// A request to the agent API from 198.51.100.23, with a bearer token.
pub fn agent(method: &str, path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json");
    }
    let mut req = builder.body(Body::from(body.to_owned())).unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [198, 51, 100, 23],
            50000,
        ))));
    req
}

/// The `error.code` of a gateway answer.
pub fn code(answer: &Answer) -> String {
    answer.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The body of the mint server function (form keys as the panel sends them).
pub fn mint_body(tenant: &str, name: &str, owner: &str, scopes: &[&str], days: &str) -> String {
    let mut parts = vec![
        format!("tenant={}", urlencode(tenant)),
        format!("{}={}", urlencode("form[name]"), urlencode(name)),
        format!("{}={}", urlencode("form[owner]"), urlencode(owner)),
        format!("{}={}", urlencode("form[lifetime_days]"), urlencode(days)),
    ];
    for (i, scope) in scopes.iter().enumerate() {
        parts.push(format!(
            "{}={}",
            urlencode(&format!("form[scopes][{i}]")),
            urlencode(scope)
        ));
    }
    parts.join("&")
}

/// A pool on `pool`'s database that counts every connection it hands out (a reused idle
/// one or a new one): each request's trips to the database, observed from outside the code.
pub async fn counting_pool(pool: &PgPool) -> (PgPool, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let handed_out = Arc::new(AtomicU64::new(0));
    let (fresh, reused) = (handed_out.clone(), handed_out.clone());
    let counted = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .after_connect(move |_, _| {
            let fresh = fresh.clone();
            Box::pin(async move {
                fresh.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        })
        .before_acquire(move |_, _| {
            let reused = reused.clone();
            Box::pin(async move {
                reused.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            })
        })
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("counting pool");
    (counted, handed_out)
}

/// The count of a [`counting_pool`].
pub fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    counter.load(std::sync::atomic::Ordering::SeqCst)
}

/// [`server::logging::subscriber`] over `writer`, for a test that captures what it logs.
///
/// tracing caches one interest per callsite for the whole process. While exactly one
/// `Dispatch` exists, tracing-core 0.1 computes a callsite's interest from the default
/// dispatcher of whichever thread reaches it first (tokio-rs/tracing#3611, #2874): a
/// parallel test without a subscriber then caches `never` for a line this test's capture
/// was waiting for (seen as no "request finished" line). A second dispatcher, alive for the
/// whole process, keeps tracing on its general path, which asks every live dispatcher.
pub fn capturing_subscriber<M>(writer: M) -> impl tracing::Subscriber + Send + Sync
where
    M: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    server::logging::subscriber(writer)
}

/// How many more lookups `limit` has let through since `since` than its burst: its budget
/// refills with time, and a loaded machine can take a second over a flood.
pub fn refilled_since(
    limit: app::domain::gateway::controls::Limit,
    since: std::time::Instant,
) -> usize {
    (since.elapsed().as_secs_f64() * f64::from(limit.per_minute) / 60.0).ceil() as usize
}

/// Gives `staff` a confirmed authenticator app (written directly, as a fixture) and
/// returns its secret, to compute codes with.
pub async fn enrol_totp(
    pool: &PgPool,
    staff: uuid::Uuid,
) -> app::domain::factors::totp::TotpSecret {
    let secret = app::domain::factors::totp::TotpSecret::generate();
    let master = app::domain::tokens::pepper::MasterKey::new(MASTER_KEY);
    let (nonce, sealed) = secret.seal(&master, staff);
    sqlx::query(
        "INSERT INTO staff_totp (staff_id, nonce, secret_sealed, confirmed_at)
         VALUES ($1, $2, $3, now())",
    )
    .bind(staff)
    .bind(&nonce[..])
    .bind(&sealed)
    .execute(&mut fixture(pool).await)
    .await
    .expect("enrol totp");
    secret
}

/// The code `secret`'s app shows `steps_ahead` steps of 30 s from now (0: now; 1: the next
/// one, which the server also accepts, for a second code within one step).
pub fn totp_code(secret: &app::domain::factors::totp::TotpSecret, steps_ahead: u64) -> String {
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).expect("time");
    secret.code_at(now + 30 * steps_ahead)
}

/// The second step of signing in, with the cookie the password step set.
pub async fn verify_code(app: &Router, cookie: &str, code: &str) -> (Answer, Option<String>) {
    let body = format!("code={}", urlencode(code));
    let answer = send(
        app,
        post_form(
            app::auth::api::VerifySecondFactor::PATH,
            Some(cookie),
            &body,
        ),
    )
    .await;
    let cookie = session_cookie(&answer);
    (answer, cookie)
}

/// Signs in with the password, then `code`: the answer of the second step and the
/// signed-in cookie.
pub async fn sign_in_with_code(
    app: &Router,
    email: &str,
    password: &str,
    code: &str,
) -> (Answer, Option<String>) {
    let (first, cookie) = sign_in(app, email, password).await;
    let cookie = cookie.unwrap_or_else(|| panic!("password step: {} {}", first.status, first.body));
    verify_code(app, &cookie, code).await
}

/// A staff member of `role` with an authenticator app, signed in with it on `app` (which
/// counts as a step-up): their id, cookie and secret.
pub async fn person_with_totp(
    pool: &PgPool,
    app: &Router,
    role: app::auth::Role,
) -> (uuid::Uuid, String, app::domain::factors::totp::TotpSecret) {
    let email = format!(
        "{}-mfa-{}@example.com",
        role.as_str(),
        uuid::Uuid::new_v4().simple()
    );
    let id = staff(pool, &email, role, PERSON_PASSWORD).await;
    let secret = enrol_totp(pool, id).await;
    let (answer, cookie) =
        sign_in_with_code(app, &email, PERSON_PASSWORD, &totp_code(&secret, 0)).await;
    let cookie = cookie.unwrap_or_else(|| panic!("second step: {} {}", answer.status, answer.body));
    (id, cookie, secret)
}

/// Moves every session of `staff` to having stepped up `secs_ago` seconds ago.
pub async fn stepped_up_ago(pool: &PgPool, staff: uuid::Uuid, secs_ago: f64) {
    sqlx::query(
        "UPDATE staff_sessions SET stepped_up_at = now() - make_interval(secs => $2)
         WHERE staff_id = $1",
    )
    .bind(staff)
    .bind(secs_ago)
    .execute(&mut fixture(pool).await)
    .await
    .expect("age the step-up");
}

/// Returns once a session of `pool`'s database waits for a lock (a step of a test that
/// drives two transactions into a given interleaving); fails with `what` after 30 s.
pub async fn until_a_session_waits_for_a_lock(pool: &PgPool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(pool)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// End users' policy in tests: the defaults, the captcha not configured (development).
pub fn end_users() -> Arc<app::domain::endusers::Policy> {
    Arc::new(app::domain::endusers::Policy::with_captcha(
        app::domain::endusers::captcha::Captcha::new(None, "http://127.0.0.1:9/", true),
    ))
}
