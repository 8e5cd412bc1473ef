//! Kill-switch state for other services: `GET /api/v1/switches` (JSON with an `ETag`;
//! `If-None-Match` gets 304) and `GET /api/v1/switches/stream` (server-sent events: the
//! document at once, then again on every change). Both need a service token
//! (`Authorization: Bearer sc_svc_...`, minted with `staff-console service-token create`).
//!
//! `?tenant=<slug>` answers the values in force for that tenant (its overrides, else the
//! global values) instead of the whole table.
//!
//! A well-formed token costs a database lookup, so each caller address may look up only a
//! few tokens this instance has not seen valid ([`app::domain::gateway::controls::anonymous`]); past that,
//! 429 `RATE_LIMITED` with `Retry-After`, without touching the database.

use app::domain::gateway::controls::state::{etag, Controls, SwitchState};
use app::domain::gateway::controls::SwitchKey;
use app::request::ClientIp;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The routes.
pub fn router(controls: Arc<Controls>) -> Router {
    Router::new()
        .route("/api/v1/switches", get(document))
        .route("/api/v1/switches/stream", get(stream))
        .with_state(controls)
}

#[derive(serde::Deserialize)]
struct Params {
    tenant: Option<String>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    crate::gateway::json_error(status, code, message, r#"Bearer realm="switches""#)
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "Switch state cannot be served right now.",
    )
}

/// Checks the service token of a caller at `ip`; the refusal is the response to send.
///
/// A token shaped like one is looked up in the database, which random tokens must not be
/// able to do without limit: unless this token proved valid here recently, the lookup
/// spends from the address's budget, and an address out of budget gets 429 at once.
async fn authorize(
    controls: &Controls,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<String, Response> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let guard = &controls.anonymous().service_tokens;
    if app::domain::gateway::controls::service_token::needs_lookup(raw) {
        if let Err(retry_after) = guard.admit(ip, raw.as_bytes()) {
            let mut res = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "Too many unknown service tokens from this address. Retry after the number of seconds in Retry-After.",
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return Err(res);
        }
    }
    match app::domain::gateway::controls::service_token::verify(&controls.reader(), raw).await {
        Ok(Some(name)) => {
            guard.proved(raw.as_bytes());
            Ok(name)
        }
        Ok(None) => {
            guard.refuted(raw.as_bytes());
            Err(error(
                StatusCode::UNAUTHORIZED,
                "SERVICE_TOKEN_INVALID",
                "Send a service token as `Authorization: Bearer sc_svc_...`.",
            ))
        }
        Err(err) => {
            tracing::error!(error = %err, "service token check failed");
            Err(unavailable())
        }
    }
}

/// The tenant `slug` names; the refusal is the response to send.
async fn find_tenant(
    controls: &Controls,
    slug: Option<&str>,
) -> Result<Option<app::domain::tenants::Tenant>, Response> {
    let Some(slug) = slug else {
        return Ok(None);
    };
    match app::domain::tenants::queries::find(&controls.reader(), slug).await {
        Ok(tenant) => Ok(Some(tenant)),
        Err(app::error::AppError::NotFound { .. } | app::error::AppError::Validation { .. }) => {
            Err(error(
                StatusCode::NOT_FOUND,
                "TENANT_NOT_FOUND",
                "No such tenant.",
            ))
        }
        Err(_) => Err(unavailable()),
    }
}

/// The body and entity tag for `tenant` (its values in force) or the whole table.
fn body_for(
    state: &SwitchState,
    tenant: Option<&app::domain::tenants::Tenant>,
) -> (Arc<str>, Arc<str>) {
    let Some(tenant) = tenant else {
        return (state.document.clone(), state.etag.clone());
    };
    let mut switches = serde_json::Map::new();
    for key in SwitchKey::ALL {
        let row = state
            .rows
            .iter()
            .find(|r| r.key == key && r.tenant.as_deref() == Some(tenant.slug.as_str()))
            .or_else(|| {
                state
                    .rows
                    .iter()
                    .find(|r| r.key == key && r.tenant.is_none())
            });
        let expires_at = row.and_then(|r| r.expires_at).map(|t| t.unix_timestamp());
        switches.insert(
            key.as_str().to_owned(),
            json!({
                "value": state.value(key, tenant.id),
                "scope": if row.is_some_and(|r| r.tenant.is_some()) { "tenant" } else { "global" },
                "expires_at": expires_at,
            }),
        );
    }
    let body = json!({
        "tenant": tenant.slug,
        "switches": switches,
        "freeze": app::domain::gateway::controls::state::freeze_json(state.freeze.as_ref()),
    })
    .to_string();
    let tag = etag(&body);
    (body.into(), tag.into())
}

async fn document(
    State(controls): State<Arc<Controls>>,
    Query(params): Query<Params>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
) -> Response {
    let ip = ip.map(|Extension(ClientIp(ip))| ip);
    if let Err(res) = authorize(&controls, &headers, ip).await {
        return res;
    }
    let tenant = match find_tenant(&controls, params.tenant.as_deref()).await {
        Ok(tenant) => tenant,
        Err(res) => return res,
    };
    let (body, tag) = body_for(&controls.switches(), tenant.as_ref());
    let etag_header = HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\""));
    let mut res = if crate::web::etag_matches(&headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    };
    res.headers_mut().insert(header::ETAG, etag_header);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// How often an open stream checks that its service token is still valid.
const RECHECK_EVERY: Duration = Duration::from_secs(30);

async fn stream(
    State(controls): State<Arc<Controls>>,
    Query(params): Query<Params>,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
) -> Response {
    let ip = ip.map(|Extension(ClientIp(ip))| ip);
    if let Err(res) = authorize(&controls, &headers, ip).await {
        return res;
    }
    // The tenant is resolved once, before the stream starts.
    let tenant = match find_tenant(&controls, params.tenant.as_deref()).await {
        Ok(tenant) => tenant,
        Err(res) => return res,
    };
    let receiver = controls.subscribe();
    let events = futures_util::stream::unfold(
        (receiver, controls, headers, tenant, true),
        move |(mut receiver, controls, headers, tenant, first)| async move {
            if !first {
                // Wait for a change; every RECHECK_EVERY, and before sending, the token
                // must still be valid: a revoked service token ends its open streams.
                loop {
                    match tokio::time::timeout(RECHECK_EVERY, receiver.changed()).await {
                        Ok(Ok(())) => break,
                        Ok(Err(_)) => return None,
                        Err(_) => {
                            authorize(&controls, &headers, ip).await.ok()?;
                        }
                    }
                }
                authorize(&controls, &headers, ip).await.ok()?;
            }
            let state = receiver.borrow_and_update().clone();
            let (body, tag) = body_for(&state, tenant.as_ref());
            let event = Event::default().event("switches").id(&*tag).data(&*body);
            Some((
                Ok::<_, Infallible>(event),
                (receiver, controls, headers, tenant, false),
            ))
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
