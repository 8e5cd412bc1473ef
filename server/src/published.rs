//! What relying services read without credentials: each tenant's JWKS and its
//! authorization-server metadata (runbook 001). Plain axum routes, no session.
//!
//! - `GET /a/{tenant}/.well-known/jwks.json`: the staged, active and retired keys (never a
//!   revoked or removed one), cacheable for `JWKS_MAX_AGE_SECONDS`, with an `ETag` and
//!   `304` on `If-None-Match`. A revoked key leaves the document at once; caches that
//!   still hold it are why the gateway, not the JWKS, is what refuses its tokens.
//!
//! Both answer from the instance's key set in memory (reloaded on every key change), never
//! from the database: anyone may ask, as often as they like.
//! - `GET /a/{tenant}/.well-known/openid-configuration`: issuer, `jwks_uri`, the token
//!   endpoint and its grant, supported algorithms and audiences.

use app::domain::keys::KeyPolicy;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

/// What the published routes need.
#[derive(Clone)]
pub struct Published {
    /// The verifier, whose key set they read.
    pub verifier: std::sync::Arc<app::domain::gateway::verify::Verifier>,
    /// The database, for the refresh's audit events.
    pub pool: sqlx::PgPool,
    /// `PUBLIC_URL`'s origin: issuers and URLs are built on it.
    pub public_origin: String,
    /// The JWKS max-age.
    pub policy: KeyPolicy,
    /// `INTERNAL_JWKS_REFRESH_TOKEN`, when the forced refresh is on.
    pub refresh_token: Option<std::sync::Arc<app::secret::SecretString>>,
}

/// The routes.
pub fn router(published: Published) -> Router {
    Router::new()
        .route("/a/{tenant}/.well-known/jwks.json", get(jwks))
        .route(
            "/a/{tenant}/.well-known/openid-configuration",
            get(configuration),
        )
        .route("/internal/auth/jwks/refresh", axum::routing::post(refresh))
        .with_state(published)
}

fn not_found(slug: &str) -> Response {
    crate::gateway::json_error(
        StatusCode::NOT_FOUND,
        "TENANT_NOT_FOUND",
        &format!("No tenant “{slug}”."),
        "Bearer",
    )
}

fn unavailable() -> Response {
    crate::gateway::json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The key set could not be read; try again.",
        "Bearer",
    )
}

/// A slug that could name a tenant (anything else is not looked up).
fn plausible(slug: &str) -> bool {
    app::domain::tenants::validate_slug(slug).is_ok()
}

async fn jwks(
    State(published): State<Published>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !plausible(&slug) {
        return not_found(&slug);
    }
    let snapshot = match published.verifier.keys().loaded().await {
        Ok(snapshot) => snapshot,
        Err(err) => {
            tracing::error!(error = %err, "the key set could not be loaded");
            return unavailable();
        }
    };
    let Some(jwks) = snapshot.jwks(&slug, time::OffsetDateTime::now_utc()) else {
        return not_found(&slug);
    };
    let body = jwks.to_string();
    let tag = app::domain::gateway::controls::state::etag(&body);
    let mut res = if crate::web::etag_matches(&headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response()
    };
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        res.headers_mut().insert(header::ETAG, tag);
    }
    let cache = format!("public, max-age={}", published.policy.jwks_max_age_secs);
    if let Ok(cache) = HeaderValue::from_str(&cache) {
        res.headers_mut().insert(header::CACHE_CONTROL, cache);
    }
    res
}

async fn configuration(State(published): State<Published>, Path(slug): Path<String>) -> Response {
    if !plausible(&slug) {
        return not_found(&slug);
    }
    let snapshot = match published.verifier.keys().loaded().await {
        Ok(snapshot) => snapshot,
        Err(err) => {
            tracing::error!(error = %err, "the key set could not be loaded");
            return unavailable();
        }
    };
    let Some(tenant) = snapshot.tenants.get(slug.as_str()) else {
        return not_found(&slug);
    };
    let issuer = app::domain::gateway::delegated::issuer(&published.public_origin, &tenant.slug);
    let algorithms: Vec<&str> = app::domain::status::SigningAlgorithm::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "grant_types_supported": [app::domain::gateway::delegated::TOKEN_EXCHANGE_GRANT],
        // The subject token is the credential: a personal access token of the tenant.
        "token_endpoint_auth_methods_supported": ["none"],
        "access_token_signing_alg_values_supported": algorithms,
        "id_token_signing_alg_values_supported": algorithms,
        "audiences_supported": tenant.audiences,
    });
    let mut res = axum::Json(body).into_response();
    let cache = format!("public, max-age={}", published.policy.jwks_max_age_secs);
    if let Ok(cache) = HeaderValue::from_str(&cache) {
        res.headers_mut().insert(header::CACHE_CONTROL, cache);
    }
    res
}

/// `POST /internal/auth/jwks/refresh` (runbook 001): reloads this instance's key set now and
/// answers the kids it holds and their epoch. Only when `INTERNAL_JWKS_REFRESH_TOKEN` is set
/// (404 otherwise), with that token as the bearer, compared in constant time. Each refresh is
/// audited (so the runbook's timestamps are in the log); a refused one is logged.
async fn refresh(State(published): State<Published>, headers: HeaderMap) -> Response {
    use subtle::ConstantTimeEq as _;
    let Some(expected) = &published.refresh_token else {
        return crate::gateway::json_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "No such route.",
            "Bearer",
        );
    };
    let given = crate::gateway::bearer(&headers);
    let matches: bool = given.as_bytes().ct_eq(expected.expose().as_bytes()).into();
    if !matches {
        // Logged, not audited: anyone can call this route, and an audit event each would let
        // them queue writes on the audit chain.
        tracing::warn!(
            bearer_present = !given.is_empty(),
            "a JWKS refresh with a wrong token was refused"
        );
        return crate::gateway::json_error(
            StatusCode::UNAUTHORIZED,
            "REFRESH_TOKEN_INVALID",
            "Send INTERNAL_JWKS_REFRESH_TOKEN as the bearer token.",
            r#"Bearer realm="internal""#,
        );
    }
    let actor = app::auth::Actor::system(published.pool.clone(), "jwks refresh");
    let keys = published.verifier.keys();
    let epoch = match keys.reload().await {
        Ok(epoch) => epoch,
        Err(err) => {
            tracing::error!(error = %err, "a forced key set refresh failed");
            return unavailable();
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let snapshot = keys.snapshot();
    let mut held: Vec<serde_json::Value> = snapshot
        .keys
        .iter()
        .map(|(kid, key)| {
            json!({
                "kid": &**kid,
                "tenant": snapshot.slugs.get(&key.tenant).map(|s| &**s),
                "state": key.state.as_str(),
                "verifies": key.verifies_at(now),
            })
        })
        .collect();
    held.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
    let event = actor.event("jwks.refreshed").details(json!({
        "epoch": epoch,
        "keys": held.len(),
    }));
    if let Err(err) = record(&actor, event).await {
        tracing::error!(error = %err, "recording a JWKS refresh failed");
    }
    let mut res = axum::Json(json!({
        "epoch": epoch,
        "refreshed_at": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "keys": held,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn record(
    actor: &app::auth::Actor,
    event: app::domain::audit::NewEvent,
) -> Result<i64, app::error::AppError> {
    actor.change().await?.commit(event).await
}
