//! Delegated agent tokens (`cargo bench -p server --bench gateway -- delegated`):
//!
//! - ES256 verification of a delegated token from memory, one thread: every check of a
//!   fresh token (signature included), and a repeated token from the cache of verified
//!   signatures (the kid and expiry still checked on every call);
//! - revoking a key through instance A's console → instance B's gateway refuses a token it
//!   signed: p50 / p99 over 200 revocations;
//! - the token exchange over HTTP: throughput with 32 connections, and latency p50 / p99
//!   on one connection.

use super::{
    bench_db, connect, console_session, instance, mint, ms, request, send, sqlx_url, Checks,
    CONNECTIONS, KEY,
};
use app::domain::gateway::delegated::{self, Grant, SignatureCache};
use app::domain::gateway::keyset::{KnownKey, Snapshot, TenantKeys};
use app::domain::keys::PrivateKey;
use app::domain::status::{SigningAlgorithm, SigningKeyState};
use leptos::server_fn::ServerFn as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORIGIN: &str = "http://bench.example";

/// The form of an exchange of `pat`.
fn exchange_form(pat: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "grant_type={}&subject_token={}&subject_token_type={}",
        enc(delegated::TOKEN_EXCHANGE_GRANT),
        enc(pat),
        enc(delegated::ACCESS_TOKEN_TYPE)
    )
}

fn exchange_request(pat: &str) -> Vec<u8> {
    request(
        "POST",
        "/a/bench/oauth/token",
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        &exchange_form(pat),
    )
}

fn memory() {
    let key = PrivateKey::generate(SigningAlgorithm::Es256);
    let kid: Arc<str> = key.public().thumbprint().into();
    let tenant_id = uuid::Uuid::new_v4();
    let slug: Arc<str> = "bench".into();
    let tenant = Arc::new(TenantKeys {
        id: tenant_id,
        slug: slug.clone(),
        audiences: vec![delegated::AGENT_API_AUDIENCE.to_owned()],
        signer: None,
        jwks: Vec::new(),
    });
    let mut keys = HashMap::new();
    keys.insert(
        kid.clone(),
        KnownKey {
            tenant: tenant_id,
            public: key.public(),
            state: SigningKeyState::Active,
            verify_until: None,
        },
    );
    let snapshot = Snapshot {
        loaded_at: None,
        epoch: 1,
        keys,
        tenants: [(slug.clone(), tenant.clone())].into_iter().collect(),
        slugs: [(tenant_id, slug.clone())].into_iter().collect(),
    };
    let pat = app::domain::gateway::verify::cached_for_test(
        "benchpat00000001",
        "bench",
        &["agent:read"],
        [0; 32],
        1,
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    let (token, _) = delegated::issue(
        (&kid, &key),
        delegated::issuer(ORIGIN, &slug),
        &tenant,
        &pat,
        Grant {
            audience: delegated::AGENT_API_AUDIENCE,
            scopes: &["agent:read".to_owned()],
            ttl_secs: 600,
            now: time::OffsetDateTime::now_utc(),
        },
    );
    let now = time::OffsetDateTime::now_utc();
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        let checked = delegated::check_fresh(&snapshot, ORIGIN, std::hint::black_box(&token), now);
        assert!(checked.is_ok());
    }
    let raw = n as f64 / started.elapsed().as_secs_f64();
    let cache = SignatureCache::default();
    let n = 2_000_000;
    let started = Instant::now();
    for _ in 0..n {
        let checked =
            delegated::check(&snapshot, ORIGIN, &cache, std::hint::black_box(&token), now);
        assert!(checked.is_ok());
    }
    let cached = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "delegated token (ES256, {} bytes) checked from memory, one thread:",
        token.len()
    );
    println!(
        "  every check, signature included:         {raw:.0}/s ({:.1} µs each)",
        1e6 / raw
    );
    println!("  repeated token, verified-signature cache: {cached:.0}/s ({:.2} µs each; kid and exp still checked)", 1e6 / cached);
}

fn revoke() {
    const RUNS: usize = 200;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = bench_db().await;
        let system = app::auth::Actor::system(pool.clone(), "bench");
        app::panels::keys::ops::ensure_active_keys(&system, &app::domain::tokens::pepper::MasterKey::new(KEY))
            .await
            .unwrap();
        let url = sqlx_url(&pool);
        let (a, _) = instance(&url, Checks::Default).await;
        let (b, _) = instance(&url, Checks::Default).await;
        tokio::time::sleep(Duration::from_millis(500)).await; // listeners up
        let (_, pat) = mint(&pool).await;
        let cookie = console_session(a).await;
        let mut console = connect(a).await;
        let mut gateway_b = connect(b).await;
        let origin = ("origin", format!("http://{a}"));
        let form = ("content-type", "application/x-www-form-urlencoded".to_owned());
        let mut samples = Vec::with_capacity(RUNS);
        for i in 0..RUNS {
            let (status, _, body) = send(&mut gateway_b, exchange_request(&pat)).await;
            assert_eq!(status, 200, "{body}");
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
            let token = answer["access_token"].as_str().unwrap().to_owned();
            let header = token.split('.').next().unwrap();
            let header: serde_json::Value = serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
            )
            .unwrap();
            let kid = header["kid"].as_str().unwrap().to_owned();
            let whoami = super::get("/agent/v1/whoami", Some(&token));
            let (status, _, _) = send(&mut gateway_b, whoami.clone()).await;
            assert_eq!(status, 200);
            let revoke = request(
                "POST",
                app::panels::keys::api::RevokeSigningKey::PATH,
                &[origin.clone(), form.clone(), ("cookie", cookie.clone())],
                &format!("tenant=bench&kid={kid}&reason=bench+{i}&confirmation={kid}"),
            );
            let started = Instant::now();
            let (status, _, body) = send(&mut console, revoke).await;
            assert_eq!(status, 200, "{body}");
            loop {
                let (status, _, _) = send(&mut gateway_b, whoami.clone()).await;
                if status == 401 {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(5), "instance B never refused");
            }
            samples.push(started.elapsed());
        }
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        println!("key revocation to refusal across two instances on one database ({RUNS} revocations; from sending the revoke to instance A until instance B first answers 401 to a token the key signed):");
        println!(
            "  p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(pct(0.50)),
            ms(pct(0.95)),
            ms(pct(0.99)),
            ms(*samples.last().unwrap())
        );
    });
}

async fn hammer(addr: SocketAddr, req: Arc<[u8]>, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut conn = connect(addr).await;
    while !stop.load(Ordering::Relaxed) {
        let (status, _, body) = send(&mut conn, req.to_vec()).await;
        assert_eq!(status, 200, "{body}");
        done.fetch_add(1, Ordering::Relaxed);
    }
}

fn exchange() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = bench_db().await;
        let system = app::auth::Actor::system(pool.clone(), "bench");
        app::panels::keys::ops::ensure_active_keys(&system, &app::domain::tokens::pepper::MasterKey::new(KEY))
            .await
            .unwrap();
        let url = sqlx_url(&pool);
        let (addr, verifier) = instance(&url, Checks::Off).await;
        let (_, pat) = mint(&pool).await;
        let req: Arc<[u8]> = exchange_request(&pat).into();
        // Latency, one connection.
        let mut conn = connect(addr).await;
        for _ in 0..200 {
            send(&mut conn, req.to_vec()).await;
        }
        let lookups_before = verifier.counters().0;
        let mut samples = Vec::with_capacity(5_000);
        for _ in 0..5_000 {
            let started = Instant::now();
            let (status, _, _) = send(&mut conn, req.to_vec()).await;
            assert_eq!(status, 200);
            samples.push(started.elapsed());
        }
        let lookups = verifier.counters().0 - lookups_before;
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).saturating_sub(1)];
        // Throughput, many connections.
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            tasks.push(tokio::spawn(hammer(addr, req.clone(), stop.clone(), done.clone())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = done.load(Ordering::Relaxed);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let count = done.load(Ordering::Relaxed) - before;
        let rate = count as f64 / started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        println!("token exchange, POST /a/{{tenant}}/oauth/token over loopback (ES256; server and load generator share 2 worker threads):");
        println!(
            "  one connection, 5000 exchanges: p50 {:.2} ms, p99 {:.2} ms; token lookups in the database: {lookups}",
            ms(pct(0.50)),
            ms(pct(0.99))
        );
        println!("  {CONNECTIONS} connections for 5 s: {rate:.0} exchanges/s");
    });
}

/// The three benchmarks.
pub fn bench_delegated() {
    memory();
    exchange();
    revoke();
}
