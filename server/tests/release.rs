//! What a release build serves and how it starts: the front end's caching and precompressed
//! variants, pages never compressed, and `check-config` as the operator runs it.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{send, Answer};
use sqlx::PgPool;
use std::process::Command;

const HASHED: &str = "staff_console.Pq3yZ1AS_M8lq8YKvCJhdw.wasm";

/// A site folder like a release build's: a hashed file with its `.br` and `.gz` copies,
/// and a file without a hash.
fn site() -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("sc-site-{}", uuid::Uuid::new_v4()));
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join(HASHED), b"the wasm itself").unwrap();
    std::fs::write(pkg.join(format!("{HASHED}.br")), b"brotli bytes").unwrap();
    std::fs::write(pkg.join(format!("{HASHED}.gz")), b"gzip bytes").unwrap();
    std::fs::write(pkg.join("staff_console.css"), b"body{}").unwrap();
    root
}

async fn fetch(app: &axum::Router, path: &str, accept: &str) -> Answer {
    send(
        app,
        Request::get(path)
            .header("accept-encoding", accept)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn hashed_assets_are_cached_for_a_year_and_sent_precompressed(pool: PgPool) {
    let root = site();
    let (app, _, _) = common::app_parts_with_site(pool, true, root.to_str().unwrap(), true);
    let path = format!("/pkg/{HASHED}");

    let br = fetch(&app, &path, "gzip, br").await;
    assert_eq!(br.status, StatusCode::OK);
    assert_eq!(br.header("content-encoding"), "br");
    assert_eq!(br.body, "brotli bytes");
    assert_eq!(
        br.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(br.header("vary"), "accept-encoding");
    assert_eq!(br.header("content-type"), "application/wasm");

    let gz = fetch(&app, &path, "gzip").await;
    assert_eq!(gz.header("content-encoding"), "gzip");
    assert_eq!(gz.body, "gzip bytes");
    let plain = fetch(&app, &path, "identity").await;
    assert_eq!(plain.header("content-encoding"), "");
    assert_eq!(plain.body, "the wasm itself");
    assert_eq!(
        plain.header("cache-control"),
        "public, max-age=31536000, immutable"
    );

    // A name without a hash may change under the same name: revalidated, not kept.
    let css = fetch(&app, "/pkg/staff_console.css", "br").await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("cache-control"), "no-cache");
    // A name that is not there is never cached (the next build may have it).
    let missing = fetch(&app, "/pkg/staff_console.AAAAAAAAAAAAAAAAAAAAAA.wasm", "br").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("cache-control"), "no-store");
    std::fs::remove_dir_all(root).ok();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn pages_and_server_functions_are_never_compressed_nor_cached(pool: PgPool) {
    let root = site();
    let (app, _, _) = common::app_parts_with_site(pool, true, root.to_str().unwrap(), false);
    // Without file hashing (a development build) no name is taken for a hashed one.
    let asset = fetch(&app, &format!("/pkg/{HASHED}"), "br").await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(asset.header("cache-control"), "no-cache");
    let page = fetch(&app, "/sign-in", "br, gzip").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-encoding"), "");
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.body.contains("Sign in"), "{}", page.body);
    // A server function's answer (here a refused sign-in) is not compressed either.
    let mut req = common::post_form(
        <app::auth::api::SignIn as leptos::server_fn::ServerFn>::PATH,
        None,
        "email=nobody%40example.com&password=wrong",
    );
    req.headers_mut()
        .insert("accept-encoding", "br, gzip".parse().unwrap());
    let answer = send(&app, req).await;
    assert_eq!(answer.header("content-encoding"), "");
    assert_eq!(answer.header("cache-control"), "no-store");
    std::fs::remove_dir_all(root).ok();
}

/// Runs `staff-console check-config` with only `env`, and a development site (an unhashed
/// front end) as `serve` would find it.
fn check_config(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let site = std::env::temp_dir().join(format!("sc-check-site-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/staff_console.wasm"), b"wasm").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_staff-console"));
    command
        .arg("check-config")
        .args(args)
        .env_clear()
        .env("LEPTOS_SITE_ROOT", &site)
        .env("LEPTOS_OUTPUT_NAME", "staff_console");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("run staff-console");
    std::fs::remove_dir_all(site).ok();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

const KEY: &str = "q83vEjRWeJq8/xEiM0RVZneImaq7zN3u/wABAgMEBQY=";
const SESSION_KEY: &str = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo=";

#[test]
fn check_config_lists_every_problem_and_exits_2() {
    let (code, out) = check_config(
        &[
            ("DATABASE_URL", "mysql://db/x"),
            ("ENCRYPTION_KEY", "c2hvcnQ="),
            ("TRUSTED_PROXIES", "proxy.internal"),
        ],
        &[],
    );
    assert_eq!(code, 2, "{out}");
    for variable in [
        "DATABASE_URL",
        "PUBLIC_URL",
        "ENCRYPTION_KEY",
        "SESSION_SIGNING_KEY",
        "TRUSTED_PROXIES",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("problem: {variable}"))),
            "{variable} not reported: {out}"
        );
    }
    assert!(out.contains("configuration refused: 5 problems"), "{out}");
    assert!(!out.contains("c2hvcnQ="), "a secret was echoed: {out}");
}

#[test]
fn check_config_passes_a_good_environment_without_a_database() {
    // The database named here does not exist: without --database it is not contacted.
    let (code, out) = check_config(
        &[
            ("DATABASE_URL", "postgres://app@127.0.0.1:1/none"),
            ("ENCRYPTION_KEY", KEY),
            ("SESSION_SIGNING_KEY", SESSION_KEY),
            ("PUBLIC_URL", "https://console.example.com"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
            ("TURNSTILE_SECRET", "0x4AAAAAAA-site-secret"),
            ("SMTP_URL", "smtps://mailer:pw@smtp.example.com:465"),
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "configuration ok: production mode, HTTPS served at https://console.example.com"
        ),
        "{out}"
    );
    assert!(out.contains("the database was not contacted"), "{out}");
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn check_config_refuses_a_missing_front_end() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_staff-console"));
    let out = command
        .arg("check-config")
        .env_clear()
        .env("LEPTOS_SITE_ROOT", "/nonexistent/site")
        .env("LEPTOS_OUTPUT_NAME", "staff_console")
        .env("DATABASE_URL", "postgres://app@127.0.0.1:1/none")
        .env("ENCRYPTION_KEY", KEY)
        .env("SESSION_SIGNING_KEY", SESSION_KEY)
        .env("PUBLIC_URL", "https://console.example.com")
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .output()
        .expect("run staff-console");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("the front end is not built"), "{text}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn check_config_with_the_database_refuses_to_serve_as_a_superuser(pool: PgPool) {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let good = [
        ("DATABASE_URL", url.as_str()),
        ("ENCRYPTION_KEY", KEY),
        ("SESSION_SIGNING_KEY", SESSION_KEY),
        ("PUBLIC_URL", "https://console.example.com"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let (code, out) = check_config(&good, &["--database"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("a superuser"), "{out}");
    assert!(out.contains("no token pepper yet"), "{out}");

    // Unreachable: one problem, the password in the URL not shown.
    let (code, out) = check_config(
        &[
            (
                "DATABASE_URL",
                "postgres://app:Hunter2-Secret@127.0.0.1:1/none",
            ),
            ("ENCRYPTION_KEY", KEY),
            ("SESSION_SIGNING_KEY", SESSION_KEY),
            ("PUBLIC_URL", "https://console.example.com"),
            ("TRUSTED_PROXIES", "127.0.0.1"),
        ],
        &["--database"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("could not connect"), "{out}");
    assert!(!out.contains("Hunter2-Secret"), "{out}");
}
