//! End users (`cargo bench -p server --bench gateway -- endusers`):
//!
//! - `GET /a/{tenant}/api/v1/me` with a valid access token (ES256 signature, claims and
//!   revocation epochs, all in memory) against the unguarded `GET /healthz`, alternating
//!   rounds over loopback;
//! - refresh-token rotations over HTTP: throughput with 32 connections (each its own
//!   session), and latency p50 / p99 on one connection;
//! - sign-ins per second (Argon2id on the end users' own permits), and a staff password
//!   check's latency meanwhile (the end users never take the staff console's permits);
//! - revoking every session of one tenant among 1,000,000 sessions over 20 tenants: the
//!   change's commit time, and the time until another instance refuses an access token of
//!   that tenant, once per tenant.

use super::{
    bench_db, connect, fmt_rounds, instance, median, ms, request, round, runtimes, send, sqlx_url,
    Checks, Conn, CONNECTIONS, KEY, ROUNDS,
};
use app::auth::Actor;
use app::domain::endusers::{access, ops};
use app::domain::tokens::pepper::MasterKey;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

fn sign_in_request(email: &str) -> Vec<u8> {
    request(
        "POST",
        "/a/bench/auth/sign-in",
        &[("content-type", "application/json".to_owned())],
        &serde_json::json!({ "email": email, "password": PASSWORD }).to_string(),
    )
}

fn refresh_request(token: &str) -> Vec<u8> {
    let enc = url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>();
    request(
        "POST",
        "/a/bench/oauth/token",
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        )],
        &format!("grant_type=refresh_token&refresh_token={enc}"),
    )
}

/// Signs `email` in over `conn`: (access token, refresh token).
async fn sign_in(conn: &mut Conn, email: &str) -> (String, String) {
    let (status, _, body) = send(conn, sign_in_request(email)).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    (
        json["access_token"].as_str().unwrap().to_owned(),
        json["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Refreshes over `conn`: the successor.
async fn rotate(conn: &mut Conn, token: &str) -> String {
    let (status, _, body) = send(conn, refresh_request(token)).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["refresh_token"].as_str().unwrap().to_owned()
}

async fn users(pool: &sqlx::PgPool, n: usize) {
    let actor = Actor::command_line_unchecked(pool.clone(), "bench");
    app::panels::keys::ops::ensure_active_keys(
        &Actor::system(pool.clone(), "bench"),
        &MasterKey::new(KEY),
    )
    .await
    .unwrap();
    for i in 0..n {
        ops::create_user(&actor, "bench", &format!("user{i}@example.com"), PASSWORD)
            .await
            .unwrap();
    }
}

pub fn bench_endusers() {
    let (server_rt, client_rt) = runtimes();
    let (addr, pool) = server_rt.block_on(async {
        let pool = bench_db().await;
        users(&pool, CONNECTIONS).await;
        let (addr, _) = instance(&sqlx_url(&pool), Checks::Default).await;
        (addr, pool)
    });
    me_against_healthz(&client_rt, addr);
    rotations(&client_rt, addr);
    sign_ins(&client_rt, &server_rt, addr, &pool);
    drop(client_rt);
    server_rt.block_on(revoke_at_scale(&pool));
    drop(server_rt);
}

fn me_against_healthz(client_rt: &tokio::runtime::Runtime, addr: SocketAddr) {
    let access = client_rt.block_on(async {
        let mut conn = connect(addr).await;
        sign_in(&mut conn, "user0@example.com").await.0
    });
    let (mut guarded, mut unguarded) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        unguarded.push(round(client_rt, addr, "/healthz", None).0);
        guarded.push(round(client_rt, addr, "/a/bench/api/v1/me", Some(&access)).0);
    }
    let (g, u) = (median(&guarded), median(&unguarded));
    println!("end users' access tokens over loopback, {CONNECTIONS} connections, {ROUNDS} alternating rounds, medians:");
    println!(
        "  unguarded GET /healthz:           {u:.0} req/s  (rounds: {})",
        fmt_rounds(&unguarded)
    );
    println!(
        "  GET /a/{{tenant}}/api/v1/me:        {g:.0} req/s  (rounds: {})",
        fmt_rounds(&guarded)
    );
    println!("  ratio /me / unguarded:            {:.2}", g / u);
}

fn rotations(client_rt: &tokio::runtime::Runtime, addr: SocketAddr) {
    client_rt.block_on(async {
        // One session per connection, each rotating its own chain.
        let mut chains = Vec::new();
        for i in 0..CONNECTIONS {
            let mut conn = connect(addr).await;
            let (_, refresh) = sign_in(&mut conn, &format!("user{i}@example.com")).await;
            chains.push((conn, refresh));
        }
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (mut conn, mut token) in chains.drain(1..) {
            let (done, stop) = (done.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    token = rotate(&mut conn, &token).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
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
        // Latency alone, on one connection.
        let (mut conn, mut token) = chains.pop().unwrap();
        let mut took = Vec::new();
        for _ in 0..500 {
            let started = Instant::now();
            token = rotate(&mut conn, &token).await;
            took.push(ms(started.elapsed()));
        }
        took.sort_by(f64::total_cmp);
        println!(
            "refresh-token rotations over HTTP (each one transaction: the token's row locked, marked used, its successor inserted and sealed for the grace window, the session touched):"
        );
        println!("  {} connections, 5 s: {rate:.0} rotations/s", CONNECTIONS - 1);
        println!(
            "  one connection, 500 rotations: p50 {:.2} ms, p99 {:.2} ms",
            took[took.len() / 2],
            took[took.len() * 99 / 100]
        );
    });
}

fn sign_ins(
    client_rt: &tokio::runtime::Runtime,
    server_rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    pool: &sqlx::PgPool,
) {
    let staff_hash: String = server_rt.block_on(async {
        sqlx::query_scalar("SELECT password_hash FROM staff LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    // A staff password check on the server's runtime, ten times: (p50, max) in ms.
    let staff_check = move |rt: &tokio::runtime::Runtime| {
        let hash = staff_hash.clone();
        rt.spawn(async move {
            let mut took = Vec::new();
            for _ in 0..10 {
                let started = Instant::now();
                app::auth::password::verify("gateway load test passphrase", Some(&hash))
                    .await
                    .unwrap();
                took.push(ms(started.elapsed()));
            }
            took.sort_by(f64::total_cmp);
            (took[5], took[9])
        })
    };
    let idle = server_rt.block_on(staff_check(server_rt)).unwrap();
    let (rate, busy) = client_rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (stop, done) = (stop.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = connect(addr).await;
                while !stop.load(Ordering::Relaxed) {
                    sign_in(&mut conn, &format!("user{i}@example.com")).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = done.load(Ordering::Relaxed);
        let started = Instant::now();
        let busy = staff_check(server_rt).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let count = done.load(Ordering::Relaxed) - before;
        let rate = count as f64 / started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        (rate, busy)
    });
    println!("end users' sign-ins over HTTP, 8 connections (Argon2id m=19 MiB t=2 on the end users' own permits):");
    println!("  {rate:.1} sign-ins/s");
    println!(
        "  a staff password check meanwhile: p50 {:.1} ms, max {:.1} ms (idle: p50 {:.1} ms, max {:.1} ms)",
        busy.0, busy.1, idle.0, idle.1
    );
}

/// 1,000,000 sessions (and as many refresh tokens) over 20 tenants of 1,000 users each.
async fn seed_million(pool: &sqlx::PgPool) {
    let started = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL staff_console.unaudited = 'benchmark seed'")
        .execute(&mut *tx)
        .await
        .unwrap();
    for statement in [
        "INSERT INTO tenants (slug, name) SELECT 'scale-' || t, 'Scale ' || t FROM generate_series(0, 19) t",
        "INSERT INTO end_users (tenant_id, email, password_hash)
         SELECT t.id, 'u' || u || '@example.com', 'x' FROM tenants t, generate_series(0, 999) u
         WHERE t.slug LIKE 'scale-%'",
        "INSERT INTO end_user_sessions (tenant_id, user_id, created_at, last_used_at)
         SELECT u.tenant_id, u.id, now() - interval '1 hour', now() - interval '1 minute'
         FROM end_users u, generate_series(1, 50) s
         WHERE u.email LIKE 'u%@example.com'",
        "INSERT INTO refresh_tokens (id, session_id, secret_hash, pepper_version, expires_at)
         SELECT substr(md5(s.id::text), 1, 20), s.id, sha256(s.id::text::bytea), 1, now() + interval '30 days'
         FROM end_user_sessions s",
    ] {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("ANALYZE end_user_sessions, refresh_tokens, end_users")
        .execute(pool)
        .await
        .unwrap();
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM end_user_sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    println!(
        "seeded {sessions} sessions and refresh tokens over 20 tenants in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

async fn revoke_at_scale(pool: &sqlx::PgPool) {
    seed_million(pool).await;
    app::panels::keys::ops::ensure_active_keys(
        &Actor::system(pool.clone(), "bench"),
        &MasterKey::new(KEY),
    )
    .await
    .unwrap();
    // Instance B: its own verifier, listening.
    let url = sqlx_url(pool);
    let b_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let b = Arc::new(app::domain::gateway::verify::Verifier::new(
        b_pool.clone(),
        MasterKey::new(KEY),
    ));
    b.keys().reload().await.unwrap();
    let controls = Arc::new(app::domain::gateway::controls::state::Controls::unenforced(
        b_pool,
    ));
    tokio::spawn(app::domain::gateway::sync::listen(b.clone(), controls));
    b.until_listening().await;
    let origin = "http://bench.example";
    let cli = Actor::command_line_unchecked(pool.clone(), "bench");
    let (mut commits, mut refusals) = (Vec::new(), Vec::new());
    for t in 0..20 {
        let slug = format!("scale-{t}");
        let (user, session): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
            "SELECT s.user_id, s.id FROM end_user_sessions s JOIN tenants t ON t.id = s.tenant_id
             WHERE t.slug = $1 LIMIT 1",
        )
        .bind(&slug)
        .fetch_one(pool)
        .await
        .unwrap();
        let snapshot = b.keys().snapshot();
        let tenant = snapshot.tenants.get(slug.as_str()).unwrap().clone();
        let (kid, key) = tenant.signer.clone().unwrap();
        let issued = time::OffsetDateTime::now_utc() - time::Duration::seconds(2);
        let (token, _) = access::issue((&kid, &key), origin, &slug, user, session, 300, issued);
        let check = || {
            access::check(
                &b.keys().snapshot(),
                b.epochs(),
                b.access_tokens(),
                origin,
                &slug,
                &token,
                time::OffsetDateTime::now_utc(),
            )
        };
        assert!(check().is_ok());
        let started = Instant::now();
        ops::revoke_tenant_sessions(&cli, &slug, "bench: mass revocation", &slug)
            .await
            .unwrap();
        commits.push(ms(started.elapsed()));
        while check().is_ok() {
            tokio::task::yield_now().await;
        }
        refusals.push(ms(started.elapsed()));
    }
    commits.sort_by(f64::total_cmp);
    refusals.sort_by(f64::total_cmp);
    println!("revoking every session of one tenant (50,000 sessions each, 1,000,000 in all), 20 tenants:");
    println!(
        "  commit (the tenant's epoch row, the live-session count, the audit event): p50 {:.1} ms, max {:.1} ms",
        commits[10], commits[19]
    );
    println!(
        "  until instance B refuses an access token of the tenant: p50 {:.1} ms, max (p99 of 20) {:.1} ms",
        refusals[10], refusals[19]
    );
    let started = Instant::now();
    let mut marked = 0;
    loop {
        let n = ops::mark_revoked_sessions(pool, 10_000).await.unwrap();
        marked += n;
        if n < 10_000 {
            break;
        }
    }
    println!(
        "  the background marking of the {marked} revoked sessions: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
