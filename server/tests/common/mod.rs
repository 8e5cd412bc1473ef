//! Helpers shared by the server's integration tests.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.
#![allow(dead_code)] // Each test binary uses a different subset.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use leptos::prelude::LeptosOptions;
use server::web::middleware::SecurityPolicy;
use server::web::{router, AppState};
use sqlx::PgPool;
use std::sync::Arc;
use tower::ServiceExt as _;

/// The real router over `pool`, as `serve` builds it.
pub fn app(pool: PgPool) -> Router {
    app_with(pool, false)
}

/// The real router, optionally as if served over HTTPS.
pub fn app_with(pool: PgPool, https: bool) -> Router {
    let leptos_options = LeptosOptions::builder()
        .output_name("staff_console")
        .site_root("target/site")
        .build();
    router(AppState {
        leptos_options,
        pool,
        security: Arc::new(SecurityPolicy { https }),
    })
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

/// Inserts a tenant for a test.
pub async fn tenant(pool: &PgPool, slug: &str, name: &str) {
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ($1, $2)")
        .bind(slug)
        .bind(name)
        .execute(pool)
        .await
        .expect("insert tenant");
}

/// The nonce in a CSP header value.
pub fn csp_nonce(csp: &str) -> Option<String> {
    let start = csp.find("'nonce-")? + "'nonce-".len();
    let end = csp[start..].find('\'')? + start;
    Some(csp[start..end].to_owned())
}
