//! Gateway benchmarks. They print figures; they assert nothing.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p server --bench gateway [-- verify|http|revoke|switch|flip|controls|passkey|delegated|endusers]
//! ```
//!
//! - `verify`: in-process verification of a valid token from the cache (parse, checksum,
//!   cache hit, HMAC, scope), one thread.
//! - `http`: `GET /agent/v1/whoami` with a valid token against the unguarded `GET /healthz`
//!   of the same server, over loopback, alternating rounds in one run.
//! - `revoke`: two server instances on one database; a token warmed on instance B is revoked
//!   through instance A's console endpoint; the time until B first refuses it.
//!
//! - `switch`: reading a kill switch from memory, as the gateway does on every call, and
//!   the whole per-call check (switches, blocks, rate limits), one thread.
//! - `flip`: two server instances on one database; `agentApiEnabled` flipped through
//!   instance A's console endpoint; the time until instance B's gateway answers the new
//!   value (503, then 200 again).
//! - `controls`: `GET /agent/v1/whoami` with switches, blocks and rate limits checked
//!   against the same route with the checks off, alternating rounds in one run.
//! - `passkey`: the server's check of a staff passkey assertion (webauthn-rs: client data,
//!   origin, RP id hash, user verification, P-256 signature), one thread, alone and with
//!   the JSON reading a request does (the browser's answer, the stored ceremony state).
//! - `delegated`: delegated agent tokens: ES256 verification from memory, fresh and from
//!   the verified-signature cache; key revocation on instance A to refusal on B; the token
//!   exchange's throughput and latency (see `gateway/delegated.rs`).
//! - `endusers`: end users' `/me` against `/healthz`, refresh rotations, sign-ins, and a
//!   tenant's revocation among 1,000,000 sessions (see `gateway/endusers.rs`).
//!
//! - `router` (not run by default): the router driven in-process, no sockets, per-request
//!   cost of each route.
//! - `audit` (not run by default: it seeds 10 million events first): the audit panel's
//!   pages, histogram and export, and `audit verify`, at scale; see `gateway/audit.rs`.
//!
//! The server logs as in production (JSON lines at `info`, redacted), into a sink.
//! Knobs for investigating: `BENCH_ONLY=<path>` (http: one route, for a profiler),
//! `BENCH_NO_PIN` (http: leave thread placement to the scheduler), `BENCH_ROUTER_SYNC`
//! (router: run the cache sync tasks too), `BENCH_ROUTER_N`, `BENCH_LOG_STDERR`.
//! `http` and `revoke` make a fresh database `staff_console_bench` on DATABASE_URL's server.
#![allow(clippy::expect_used, clippy::unwrap_used)] // A benchmark fails loudly.

use app::auth::{Actor, Role};
use app::domain::gateway::verify::{self, Checked, Verifier};
use app::domain::tokens::pepper::{MasterKey, Pepper, PepperRing};
use app::panels::integrations::MintForm;
use leptos::server_fn::ServerFn as _;
use server::web::{middleware::SecurityPolicy, router, AppState};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "gateway/audit.rs"]
mod audit;
#[path = "../tests/common/authenticator.rs"]
mod authenticator;
#[path = "gateway/delegated.rs"]
mod delegated;
#[path = "gateway/endusers.rs"]
mod endusers;

const KEY: [u8; 32] = [0x42; 32];

fn main() {
    // The server logs a JSON line per request in production; so does the benchmarked one
    // (formatted and redacted as always, then dropped instead of printed).
    if std::env::var("BENCH_LOG_STDERR").is_ok() {
        let _ =
            tracing::subscriber::set_global_default(server::logging::subscriber(std::io::stderr));
    } else {
        let _ = tracing::subscriber::set_global_default(server::logging::subscriber(std::io::sink));
    }
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if wants("verify") {
        bench_verify();
    }
    if wants("http") {
        bench_http();
    }
    if wants("revoke") {
        bench_revoke();
    }
    if wants("switch") {
        bench_switch_read();
    }
    if wants("flip") {
        bench_flip();
    }
    if wants("controls") {
        bench_controls_http();
    }
    if wants("passkey") {
        bench_passkey();
    }
    if wants("delegated") {
        delegated::bench_delegated();
    }
    if wants("endusers") {
        endusers::bench_endusers();
    }
    if which.iter().any(|w| w == "router") {
        bench_router();
    }
    if which.iter().any(|w| w == "audit") {
        audit::bench_audit();
    }
}

/// The server's cost of checking a passkey assertion: webauthn-rs's checks alone, and with
/// the JSON a request reads (the browser's answer, the ceremony state stored as JSONB).
fn bench_passkey() {
    use webauthn_rs::prelude::{
        PasskeyAuthentication, PublicKeyCredential, RegisterPublicKeyCredential,
    };
    const ORIGIN: &str = "https://console.example.com";
    let rp = app::domain::factors::passkey::RelyingParty::for_origin(ORIGIN).unwrap();
    let webauthn = rp.webauthn().unwrap();
    let mut key = authenticator::SoftAuthenticator::new(ORIGIN);
    let (creation, registration) = webauthn
        .start_passkey_registration(uuid::Uuid::new_v4(), "bench@example.com", "Bench", None)
        .unwrap();
    let made: RegisterPublicKeyCredential =
        serde_json::from_str(&key.register(&serde_json::to_string(&creation).unwrap())).unwrap();
    let passkey = webauthn
        .finish_passkey_registration(&made, &registration)
        .unwrap();
    let (request, state) = webauthn.start_passkey_authentication(&[passkey]).unwrap();
    let answer_json = key.assert(&serde_json::to_string(&request).unwrap());
    let state_json = serde_json::to_value(&state).unwrap();
    let answer: PublicKeyCredential = serde_json::from_str(&answer_json).unwrap();
    let check_only = |n: u32| {
        let started = Instant::now();
        for _ in 0..n {
            let result =
                webauthn.finish_passkey_authentication(std::hint::black_box(&answer), &state);
            std::hint::black_box(result.unwrap());
        }
        started.elapsed() / n
    };
    let with_json = |n: u32| {
        let started = Instant::now();
        for _ in 0..n {
            let answer: PublicKeyCredential =
                serde_json::from_str(std::hint::black_box(&answer_json)).unwrap();
            let state: PasskeyAuthentication =
                serde_json::from_value(std::hint::black_box(state_json.clone())).unwrap();
            std::hint::black_box(
                webauthn
                    .finish_passkey_authentication(&answer, &state)
                    .unwrap(),
            );
        }
        started.elapsed() / n
    };
    check_only(200);
    let mut alone: Vec<Duration> = (0..7).map(|_| check_only(2000)).collect();
    let mut read: Vec<Duration> = (0..7).map(|_| with_json(2000)).collect();
    alone.sort();
    read.sort();
    println!(
        "passkey assertion check: median {:.1} µs (min {:.1}); with the request's JSON reading: median {:.1} µs (7 rounds of 2000, one thread)",
        alone[3].as_secs_f64() * 1e6,
        alone[0].as_secs_f64() * 1e6,
        read[3].as_secs_f64() * 1e6,
    );
}

/// Server-side cost per request, without sockets: the router driven in-process.
fn bench_router() {
    use tower::ServiceExt as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = bench_db().await;
        let (_, token) = mint(&pool).await;
        let verifier = Arc::new(Verifier::new(pool.clone(), MasterKey::new(KEY)));
        verifier.reload_ring().await.unwrap();
        let controls = bench_controls(&pool, false).await;
        if std::env::var("BENCH_ROUTER_SYNC").is_ok() {
            app::domain::gateway::sync::spawn(verifier.clone(), controls.clone());
        }
        let app = router(AppState {
            leptos_options: leptos::prelude::LeptosOptions::builder()
                .output_name("staff_console")
                .site_root("target/site")
                .build(),
            pool,
            security: Arc::new(SecurityPolicy::default()),
            // Second factors optional, as in development: the bench signs in with a password.
            sign_in_policy: app::auth::api::SignInPolicy {
                mfa_required: false,
                ..Default::default()
            },
            verifier: verifier.clone(),
            controls,
            session_keys: Arc::new(server::web::session_keys::SessionKeys::new(&KEY, None)),
            passkeys: app::domain::factors::passkey::RelyingParty::unavailable(),
            key_policy: app::domain::keys::KeyPolicy::default(),
            jwks_refresh_token: None,
            end_users: std::sync::Arc::new(app::domain::endusers::Policy::with_captcha(
                app::domain::endusers::captcha::Captcha::new(None, "http://127.0.0.1:9/", true),
            )),
        });
        for (path, auth) in [
            ("/healthz", None),
            ("/agent/v1/whoami", Some(token.clone())),
            ("/healthz", None),
            ("/agent/v1/whoami", Some(token.clone())),
        ] {
            let n: u32 = std::env::var("BENCH_ROUTER_N")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(200_000);
            let started = Instant::now();
            for _ in 0..n {
                let mut b = http::Request::get(path);
                if let Some(t) = &auth {
                    b = b.header("authorization", format!("Bearer {t}"));
                }
                let res = app
                    .clone()
                    .oneshot(b.body(axum::body::Body::empty()).unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                let _ = http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .unwrap();
            }
            println!(
                "router in-process {path}: {:.2} µs per request",
                started.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        }
    });
}

fn bench_verify() {
    // The pool is never used (every check hits the cache), but making one needs a runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://unused@127.0.0.1:1/none")
        .unwrap();
    let verifier = Verifier::new(pool, MasterKey::new(KEY));
    let pepper = [7u8; 32];
    let minted = app::domain::tokens::token::mint();
    let hash = app::domain::tokens::token::hash(&pepper, minted.secret());
    verifier.prime_for_test(
        PepperRing {
            current: Pepper::new(1, pepper),
            previous: None,
        },
        verify::cached_for_test(
            &minted.id,
            "bench",
            &["agent:read"],
            hash,
            1,
            time::OffsetDateTime::now_utc() + time::Duration::days(1),
        ),
    );
    let token: &str = &minted.plaintext;
    let now = time::OffsetDateTime::now_utc();
    let run = |n: u64| {
        let started = Instant::now();
        for _ in 0..n {
            match verifier.check(std::hint::black_box(token), Some("agent:read"), now) {
                Checked::Decided(Ok(v)) => {
                    std::hint::black_box(v);
                }
                _ => panic!("the benchmark token must verify from the cache"),
            }
        }
        started.elapsed()
    };
    run(50_000); // warm-up
    let mut rates = Vec::new();
    for _ in 0..5 {
        let n = 1_000_000;
        let took = run(n);
        rates.push(n as f64 / took.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let parse_only = {
        let n = 1_000_000;
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(
                app::domain::tokens::token::parse(std::hint::black_box(token)).is_ok(),
            );
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    println!("verify (one thread, cache hit): median {:.0}/s, min {:.0}/s, max {:.0}/s over 5 x 1,000,000", rates[2], rates[0], rates[4]);
    println!("  of which parse + checksum alone: {parse_only:.0}/s");
    println!("  per verification: {:.2} µs", 1e6 / rates[2]);
}

/// A fresh bench database on DATABASE_URL's server, migrated, with a tenant, a staff owner
/// and the first pepper.
async fn bench_db() -> PgPool {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL: a PostgreSQL server to make the bench database on");
    let admin = PgPool::connect(&admin_url).await.unwrap();
    sqlx::query("DROP DATABASE IF EXISTS staff_console_bench WITH (FORCE)")
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE staff_console_bench")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let base = admin_url
        .split('?')
        .next()
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&format!("{base}/staff_console_bench"))
        .await
        .unwrap();
    server::db::migrate(&pool).await.unwrap();
    // A seed, not a change anyone made: said so, or the database refuses it unaudited.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL staff_console.unaudited = 'benchmark seed'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ('bench', 'Bench')")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let system = Actor::system(pool.clone(), "bench");
    app::domain::tokens::pepper::create_first_if_none(
        &system,
        &app::domain::tokens::pepper::MasterKey::new(KEY),
    )
    .await
    .unwrap();
    let actor = Actor::command_line_unchecked(pool.clone(), "bench");
    app::panels::staff::ops::create(
        &actor,
        "bench@example.com",
        "Bench",
        Role::IncidentCommander,
        Some("gateway load test passphrase"),
    )
    .await
    .unwrap();
    // As if the person had since chosen the password: a handed-over one opens nothing else.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL staff_console.unaudited = 'benchmark seed'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE staff SET must_change_password = false")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    pool
}

async fn mint(pool: &PgPool) -> (String, String) {
    let actor = Actor::command_line_unchecked(pool.clone(), "bench");
    let tenant = app::domain::tenants::queries::by_slug(pool, "bench")
        .await
        .unwrap()
        .unwrap();
    let owner: uuid::Uuid = sqlx::query_scalar("SELECT id FROM staff LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap();
    let minted = app::panels::integrations::ops::mint(
        &actor,
        &tenant,
        &MintForm {
            name: "bench".into(),
            owner: format!("staff:{owner}"),
            scopes: vec!["agent:read".into()],
            lifetime_days: "30".into(),
        },
        &MasterKey::new(KEY),
    )
    .await
    .unwrap();
    (minted.id, minted.plaintext)
}

/// One server instance: its own pool, verifier, listener, poll and flusher.
/// Which gateway checks an instance makes.
#[derive(Clone, Copy)]
enum Checks {
    /// Switches and blocks; rate limits off (the token benchmarks).
    Default,
    /// Switches, blocks and rate limits (limits set far above the load).
    Enforced,
    /// None at all: the baseline.
    Off,
}

async fn instance(db_url: &str, checks: Checks) -> (SocketAddr, Arc<Verifier>) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(db_url)
        .await
        .unwrap();
    let verifier = Arc::new(Verifier::new(pool.clone(), MasterKey::new(KEY)));
    verifier.reload_ring().await.unwrap();
    verifier.keys().reload().await.unwrap();
    let controls = match checks {
        Checks::Default => bench_controls(&pool, false).await,
        Checks::Enforced => bench_controls(&pool, true).await,
        Checks::Off => Arc::new(app::domain::gateway::controls::state::Controls::unenforced(
            pool.clone(),
        )),
    };
    app::domain::gateway::sync::spawn(verifier.clone(), controls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState {
        leptos_options: leptos::prelude::LeptosOptions::builder()
            .output_name("staff_console")
            .site_root("target/site")
            .site_addr(addr)
            .build(),
        pool,
        security: Arc::new(SecurityPolicy {
            https: false,
            public_origin: format!("http://{addr}"),
            trusted_proxies: Vec::new(),
        }),
        // Second factors optional, as in development: the bench signs in with a password.
        sign_in_policy: app::auth::api::SignInPolicy {
            mfa_required: false,
            ..Default::default()
        },
        verifier: verifier.clone(),
        controls,
        session_keys: Arc::new(server::web::session_keys::SessionKeys::new(&KEY, None)),
        passkeys: app::domain::factors::passkey::RelyingParty::unavailable(),
        key_policy: app::domain::keys::KeyPolicy::default(),
        jwks_refresh_token: None,
        end_users: std::sync::Arc::new(app::domain::endusers::Policy::with_captcha(
            app::domain::endusers::captcha::Captcha::new(None, "http://127.0.0.1:9/", true),
        )),
    };
    let app = router(state);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, verifier)
}

/// A keep-alive HTTP/1.1 connection: the smallest client that serves a load generator
/// (hyper's client feature would change the server build's feature set).
struct Conn {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
}

async fn connect(addr: SocketAddr) -> Conn {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    Conn {
        stream: tokio::io::BufReader::new(stream),
    }
}

/// A request's bytes.
fn request(method: &str, path: &str, headers: &[(&str, String)], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

fn get(path: &str, token: Option<&str>) -> Vec<u8> {
    let headers: Vec<(&str, String)> = token
        .map(|t| vec![("authorization", format!("Bearer {t}"))])
        .unwrap_or_default();
    request("GET", path, &headers, "")
}

/// Sends one request and reads the answer: (status, headers, body).
async fn send(conn: &mut Conn, req: Vec<u8>) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    conn.stream.get_mut().write_all(&req).await.unwrap();
    let mut line = String::new();
    conn.stream.read_line(&mut line).await.unwrap();
    let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        conn.stream.read_line(&mut line).await.unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        conn.stream.read_exact(&mut body).await.unwrap();
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            line.clear();
            conn.stream.read_line(&mut line).await.unwrap();
            let size = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; size + 2];
            conn.stream.read_exact(&mut chunk).await.unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The server runtime (one worker thread, its threads recorded for pinning and CPU
/// accounting) and the load generator's (one thread), pinned to separate cores unless
/// `BENCH_NO_PIN`: the scheduler otherwise moves both threads between the two cores and
/// each evicts the other's caches.
fn runtimes() -> (tokio::runtime::Runtime, tokio::runtime::Runtime) {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| {
            if let Some(tid) = thread_id() {
                SERVER_THREADS.lock().unwrap().push(tid);
            }
        })
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (server_rt, client_rt)
}

fn pin_apart() -> bool {
    std::env::var("BENCH_NO_PIN").is_err()
        && pin(thread_id(), 0)
        && SERVER_THREADS
            .lock()
            .unwrap()
            .iter()
            .all(|tid| pin(Some(*tid), 1))
}

const CONNECTIONS: usize = 32;
const ROUND: Duration = Duration::from_secs(3);
const ROUNDS: usize = 6;

/// One round of load on `path` at `addr`: requests per second, and the server's CPU time per
/// request in µs.
fn round(
    client_rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    path: &'static str,
    token: Option<&str>,
) -> (f64, f64) {
    client_rt.block_on(async {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        let req: Arc<[u8]> = get(path, token).into();
        for _ in 0..CONNECTIONS {
            let (done, stop, req) = (done.clone(), stop.clone(), req.clone());
            tasks.push(tokio::spawn(hammer(addr, req, stop, done)));
        }
        tokio::time::sleep(Duration::from_millis(500)).await; // warm-up
        let before = done.load(Ordering::Relaxed);
        let cpu_before = server_cpu_ns();
        let started = Instant::now();
        tokio::time::sleep(ROUND).await;
        let count = done.load(Ordering::Relaxed) - before;
        let secs = started.elapsed().as_secs_f64();
        let cpu = server_cpu_ns() - cpu_before;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        (count as f64 / secs, cpu as f64 / 1000.0 / count as f64)
    })
}

/// Medians: this machine's neighbours make single rounds swing by 20%.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
}

fn bench_http() {
    let (server_rt, client_rt) = runtimes();
    let (addr, token, verifier) = server_rt.block_on(async {
        let pool = bench_db().await;
        let (_, token) = mint(&pool).await;
        let url = sqlx_url(&pool);
        let (addr, verifier) = instance(&url, Checks::Default).await;
        (addr, token, verifier)
    });
    let pinned = pin_apart();
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        // For profiling one route: `BENCH_ONLY=/agent/v1/whoami`.
        let token = (only != "/healthz" || std::env::var("BENCH_WITH_TOKEN").is_ok())
            .then(|| token.clone());
        let path: &'static str = Box::leak(only.into_boxed_str());
        println!(
            "{path}: {:.0} req/s",
            round(&client_rt, addr, path, token.as_deref()).0
        );
        return;
    }
    let (mut guarded, mut unguarded, mut cpu_guarded, mut cpu_unguarded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (rate, cpu) = round(&client_rt, addr, "/healthz", None);
        unguarded.push(rate);
        cpu_unguarded.push(cpu);
        let (rate, cpu) = round(&client_rt, addr, "/agent/v1/whoami", Some(&token));
        guarded.push(rate);
        cpu_guarded.push(cpu);
    }
    let (g, u) = (median(&guarded), median(&unguarded));
    println!(
        "http over loopback, {CONNECTIONS} keep-alive connections, {ROUNDS} alternating rounds of {}s per route, medians (server: 1 worker thread; load generator: 1 thread; {}):",
        ROUND.as_secs(),
        if pinned { "pinned to separate cores" } else { "not pinned" }
    );
    println!(
        "  unguarded GET /healthz:          {u:.0} req/s  (rounds: {})",
        fmt_rounds(&unguarded)
    );
    println!(
        "  guarded GET /agent/v1/whoami:    {g:.0} req/s  (rounds: {})",
        fmt_rounds(&guarded)
    );
    println!("  ratio guarded / unguarded:       {:.2}", g / u);
    let (cg, cu) = (median(&cpu_guarded), median(&cpu_unguarded));
    let (lookups, invalidations) = verifier.counters();
    println!("  token lookups in the database during the run: {lookups} (invalidations: {invalidations})");
    println!("  server CPU per request (worker thread, all middleware and I/O): unguarded {cu:.1} µs, guarded {cg:.1} µs; capacity ratio {:.2}", cu / cg);
    drop(server_rt);
}

/// `GET /agent/v1/whoami` on two instances in one server runtime: one checking switches,
/// blocks and rate limits (every call counted against limits it never reaches), one with
/// the checks off; alternating rounds.
fn bench_controls_http() {
    let (server_rt, client_rt) = runtimes();
    let (on, off, token) = server_rt.block_on(async {
        let pool = bench_db().await;
        let (_, token) = mint(&pool).await;
        let url = sqlx_url(&pool);
        // A block list and overrides to search, as during an incident.
        let actor = Actor::command_line_unchecked(pool.clone(), "bench");
        for i in 0..20 {
            app::panels::limits::ops::add_block(&actor, &format!("203.0.{i}.0/24"), "bench", "")
                .await
                .unwrap();
        }
        let (on, _) = instance(&url, Checks::Enforced).await;
        let (off, _) = instance(&url, Checks::Off).await;
        (on, off, token)
    });
    let pinned = pin_apart();
    let (mut with, mut without, mut cpu_with, mut cpu_without) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (rate, cpu) = round(&client_rt, off, "/agent/v1/whoami", Some(&token));
        without.push(rate);
        cpu_without.push(cpu);
        let (rate, cpu) = round(&client_rt, on, "/agent/v1/whoami", Some(&token));
        with.push(rate);
        cpu_with.push(cpu);
    }
    let (w, wo) = (median(&with), median(&without));
    println!(
        "gateway checks over loopback, GET /agent/v1/whoami, {CONNECTIONS} keep-alive connections, {ROUNDS} alternating rounds of {}s, medians ({}):",
        ROUND.as_secs(),
        if pinned { "pinned to separate cores" } else { "not pinned" }
    );
    println!(
        "  switches, 20 blocked networks and rate limits checked: {w:.0} req/s  (rounds: {})",
        fmt_rounds(&with)
    );
    println!(
        "  checks off:                                            {wo:.0} req/s  (rounds: {})",
        fmt_rounds(&without)
    );
    println!(
        "  ratio on / off:                                        {:.2}",
        w / wo
    );
    let (cw, cwo) = (median(&cpu_with), median(&cpu_without));
    println!(
        "  server CPU per request: on {cw:.1} µs, off {cwo:.1} µs; capacity ratio {:.2}",
        cwo / cw
    );
    drop(server_rt);
}

/// One load-generating connection: the same request again and again, answers parsed just
/// enough to find their end and check the status, without allocating. Kept lean so the
/// server, not the generator, is what runs out of CPU.
async fn hammer(addr: SocketAddr, req: Arc<[u8]>, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut filled = 0;
    while !stop.load(Ordering::Relaxed) {
        stream.write_all(&req).await.unwrap();
        loop {
            if let Some(end) = find(&buf[..filled], b"\r\n\r\n") {
                let head = &buf[..end];
                assert_eq!(&head[9..12], b"200", "{}", String::from_utf8_lossy(head));
                let len = content_length(head);
                let total = end + 4 + len;
                if filled >= total {
                    buf.copy_within(total..filled, 0);
                    filled -= total;
                    break;
                }
            }
            let n = stream.read(&mut buf[filled..]).await.unwrap();
            assert!(n > 0, "connection closed");
            filled += n;
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn content_length(head: &[u8]) -> usize {
    head.split(|b| *b == b'\n')
        .find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|b| *b == b':')?;
            line[..colon]
                .eq_ignore_ascii_case(b"content-length")
                .then(|| {
                    std::str::from_utf8(&line[colon + 1..])
                        .ok()?
                        .trim()
                        .parse()
                        .ok()
                })
                .flatten()
        })
        .unwrap_or(0)
}

static SERVER_THREADS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// This thread's kernel id.
fn thread_id() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

/// Pins thread `tid` to `cpu` with taskset; false when that is not possible here.
fn pin(tid: Option<u32>, cpu: usize) -> bool {
    let Some(tid) = tid else { return false };
    std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &tid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// CPU time the server's threads have used, in nanoseconds (Linux schedstat).
fn server_cpu_ns() -> u64 {
    SERVER_THREADS
        .lock()
        .unwrap()
        .iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn fmt_rounds(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sqlx_url(_pool: &PgPool) -> String {
    let admin_url = std::env::var("DATABASE_URL").unwrap();
    let base = admin_url
        .split('?')
        .next()
        .unwrap()
        .rsplit_once('/')
        .unwrap()
        .0;
    format!("{base}/staff_console_bench")
}

fn bench_revoke() {
    const RUNS: usize = 200;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = bench_db().await;
        let url = sqlx_url(&pool);
        let (a, _) = instance(&url, Checks::Default).await;
        let (b, b_verifier) = instance(&url, Checks::Default).await;
        tokio::time::sleep(Duration::from_millis(500)).await; // listeners up

        // Sign in to instance A like a browser would.
        let cookie = console_session(a).await;
        let mut console = connect(a).await;
        let origin = ("origin", format!("http://{a}"));
        let form = ("content-type", "application/x-www-form-urlencoded".to_owned());

        let mut gateway_b = connect(b).await;
        let mut samples = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let (id, token) = mint(&pool).await;
            let (status, _, _) = send(&mut gateway_b, get("/agent/v1/whoami", Some(&token))).await;
            assert_eq!(status, 200);
            assert!(b_verifier.cached_len() >= 1);
            let revoke = request(
                "POST",
                app::panels::integrations::api::RevokeToken::PATH,
                &[origin.clone(), form.clone(), ("cookie", cookie.clone())],
                &format!("tenant=bench&token_id={id}&reason=bench+{i}"),
            );
            let started = Instant::now();
            let (status, _, body) = send(&mut console, revoke).await;
            assert_eq!(status, 200, "{body}");
            loop {
                let (status, _, _) = send(&mut gateway_b, get("/agent/v1/whoami", Some(&token))).await;
                if status == 401 {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(5), "instance B never refused");
            }
            samples.push(started.elapsed());
        }
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!("revoke-to-refusal across two instances on one database ({RUNS} tokens; from sending the revoke to instance A until instance B first answers 401):");
        println!(
            "  p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(pct(0.50)),
            ms(pct(0.95)),
            ms(pct(0.99)),
            ms(*samples.last().unwrap())
        );
    });
}

/// Signs in to the console at `addr` as the bench's incident commander; the session cookie.
async fn console_session(addr: SocketAddr) -> String {
    let mut console = connect(addr).await;
    let (_, headers, _) = send(
        &mut console,
        request(
            "POST",
            app::auth::api::SignIn::PATH,
            &[
                ("origin", format!("http://{addr}")),
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned(),
                ),
            ],
            "email=bench%40example.com&password=gateway+load+test+passphrase",
        ),
    )
    .await;
    headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with("sc_session="))
        .and_then(|v| v.split(';').next())
        .expect("signed in on the console")
        .to_owned()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Gateway controls read from the bench database; `limiting` turns rate limits on (with
/// limits far above what the bench sends, so every call is counted and none refused).
async fn bench_controls(
    pool: &sqlx::PgPool,
    limiting: bool,
) -> Arc<app::domain::gateway::controls::state::Controls> {
    let huge = app::domain::gateway::controls::Limit {
        per_minute: app::domain::gateway::controls::MAX_PER_MINUTE,
        burst: app::domain::gateway::controls::MAX_BURST,
    };
    let controls = Arc::new(app::domain::gateway::controls::state::Controls::new(
        pool.clone(),
        app::domain::gateway::controls::state::Defaults {
            owner: huge,
            ip: huge,
        },
        limiting,
    ));
    controls.reload().await.unwrap();
    controls
}

/// Reading a switch from memory, and the whole per-call check of the gateway's controls.
fn bench_switch_read() {
    const N: u32 = 10_000_000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let controls = rt.block_on(async {
        let pool = bench_db().await;
        // A tenant override in the table, so the lookup is not the empty-map shortcut.
        let actor = Actor::command_line_unchecked(pool.clone(), "bench");
        app::panels::switches::ops::flip(
            &actor,
            app::panels::switches::ops::FlipRequest {
                key: "agentPaymentsEnabled",
                tenant: "bench",
                value: "off",
                reason: "bench",
                ..Default::default()
            },
        )
        .await
        .unwrap();
        bench_controls(&pool, true).await
    });
    let tenant = uuid::Uuid::new_v4();
    let key = app::domain::gateway::controls::SwitchKey::AgentApiEnabled;
    let started = Instant::now();
    let mut on = 0u32;
    for _ in 0..N {
        on += u32::from(controls.switch(std::hint::black_box(key), std::hint::black_box(tenant)));
    }
    let per_read = started.elapsed().as_nanos() as f64 / f64::from(N);
    assert_eq!(on, N);
    let token = verify::cached_for_test(
        "benchtoken",
        "bench",
        &["agent:read"],
        [0; 32],
        1,
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    let ip: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Fewer than the burst of the (huge) limits: every call is counted and none refused.
    const CHECKS: u32 = 500_000;
    let started = Instant::now();
    for _ in 0..CHECKS {
        controls
            .admit_caller(Some(std::hint::black_box(ip)), false, now)
            .unwrap();
        controls
            .admit_token(std::hint::black_box(&token), false, now)
            .unwrap();
    }
    let per_check = started.elapsed().as_nanos() as f64 / f64::from(CHECKS);
    println!("kill switch read from memory (one thread, {N} reads): {per_read:.1} ns per read");
    println!("whole gateway control check per call (block list, 6 switches, address and owner rate limits; {CHECKS} calls): {per_check:.0} ns");
}

/// Flip-to-enforcement across two instances on one database.
fn bench_flip() {
    const RUNS: usize = 100;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = bench_db().await;
        let (_, token) = mint(&pool).await;
        let url = sqlx_url(&pool);
        let (a, _) = instance(&url, Checks::Default).await;
        let (b, _) = instance(&url, Checks::Default).await;
        tokio::time::sleep(Duration::from_millis(500)).await; // listeners up
        let cookie = console_session(a).await;
        let mut console = connect(a).await;
        let mut gateway_b = connect(b).await;
        let origin = ("origin", format!("http://{a}"));
        let form = ("content-type", "application/x-www-form-urlencoded".to_owned());
        let mut samples = Vec::with_capacity(2 * RUNS);
        for i in 0..RUNS {
            for (value, expected) in [("off", 503), ("on", 200)] {
                let flip = request(
                    "POST",
                    app::panels::switches::api::FlipSwitch::PATH,
                    &[origin.clone(), form.clone(), ("cookie", cookie.clone())],
                    &format!(
                        "key=agentApiEnabled&value={value}&reason=bench+{i}&confirmation=agentApiEnabled"
                    ),
                );
                let started = Instant::now();
                let (status, _, body) = send(&mut console, flip).await;
                assert_eq!(status, 200, "{body}");
                loop {
                    let (status, _, _) =
                        send(&mut gateway_b, get("/agent/v1/whoami", Some(&token))).await;
                    if status == expected {
                        break;
                    }
                    assert!(started.elapsed() < Duration::from_secs(10), "instance B never followed");
                }
                samples.push(started.elapsed());
            }
        }
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!("flip-to-enforcement across two instances on one database ({} flips of agentApiEnabled, off and on; from sending the flip to instance A until instance B's gateway answers the new value):", samples.len());
        println!(
            "  p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(pct(0.50)),
            ms(pct(0.95)),
            ms(pct(0.99)),
            ms(*samples.last().unwrap())
        );
    });
}
