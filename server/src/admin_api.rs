//! The admin API for runbook automation (issue 18): plain axum routes under
//! `/a/{tenant}/admin/...` that authenticate a staff member's admin token
//! (`Authorization: Bearer`, or the runbook's `x-admin-secret` header: the same token), check
//! the route's scope and the owner's current role, and call the same `ops` function as the
//! console's panel, so the change, its validation, its refusals and its audit event are the
//! panel's (source `admin_api`, naming the token).
//!
//! Runbook 000's routes, verbatim: `POST /a/{tenant}/admin/keys/revoke` (`{"kid"}`, or no
//! body for every published key), `POST /a/{tenant}/admin/revoke/sessions` (`{"user_id"}`,
//! or no body for the whole tenant), and `GET /a/{tenant}/admin/audit/export` (in
//! [`crate::web::audit_export`]).

use app::auth::{Actor, RequestMeta};
use app::domain::admin::tokens::{self, Caller, Refused};
use app::domain::admin::Scope;
use app::domain::gateway::controls::state::Controls;
use app::domain::gateway::verify::Verifier;
use app::error::AppError;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// Largest body read.
const MAX_BODY: usize = 64 * 1024;

/// What the admin API's routes work with.
#[derive(Clone)]
pub struct AdminApi {
    /// Keys, peppers, the master key, the pool.
    pub verifier: Arc<Verifier>,
    /// Switches and limits (changes apply to this instance at once).
    pub controls: Arc<Controls>,
}

/// The admin API's routes (the export is the console router's, beside the panel's).
pub fn router(api: AdminApi) -> Router {
    Router::new()
        .route("/a/{tenant}/admin/keys/revoke", post(revoke_keys))
        .route("/a/{tenant}/admin/revoke/sessions", post(revoke_sessions))
        .with_state(api)
}

/// `{"error": {"code", "message", "field"}}`, never cached.
fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (
        status,
        Json(json!({ "error": { "code": code, "message": message, "field": field } })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"admin\""),
        );
    }
    res
}

fn refusal(refused: &Refused) -> Response {
    error(refused.status, refused.code, refused.message, None)
}

/// The stable code of an error of an `ops` function, for the JSON answer.
pub(crate) fn app_error(err: &AppError) -> Response {
    let (code, field) = match err {
        AppError::Validation { field, .. } => ("INVALID_REQUEST", Some(field.as_str())),
        AppError::Conflict { field, .. } => ("CONFLICT", field.as_deref()),
        AppError::NotFound { .. } => ("NOT_FOUND", None),
        AppError::Frozen { .. } => ("FROZEN", None),
        AppError::Forbidden => ("FORBIDDEN", None),
        AppError::BadRequest { .. } => ("INVALID_REQUEST", None),
        AppError::Internal { .. } => ("INTERNAL", None),
        _ => ("REFUSED", None),
    };
    let message = match err {
        AppError::Validation { message, .. } => message.clone(),
        other => other.to_string(),
    };
    error(err.status_code(), code, &message, field)
}

/// The token a request carries: `Authorization: Bearer`, or the runbook's `x-admin-secret`.
pub(crate) fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-admin-secret").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn meta(parts: &axum::http::request::Parts) -> RequestMeta {
    let call = crate::gateway::call_meta(parts, "");
    RequestMeta {
        ip: call.ip,
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: call.request_id.map(|id| id.to_string()),
        path: Some(parts.uri.path().to_owned()),
    }
}

/// Authenticates the call and authorizes it for `scope` on the tenant `slug`: the actor
/// to run the route's `ops` function as. A genuine token's refusal is audited under its
/// owner; nothing else is (anonymous traffic does not write to the audit log).
pub(crate) async fn authorize(
    verifier: &Arc<Verifier>,
    controls: &Arc<Controls>,
    parts: &axum::http::request::Parts,
    scope: Scope,
    slug: &str,
) -> Result<Actor, Response> {
    let meta = meta(parts);
    let Some(raw) = presented(&parts.headers) else {
        return Err(refusal(&tokens::MISSING));
    };
    let ring = verifier
        .pepper_ring()
        .await
        .map_err(|e| app_error(&AppError::internal(&e)))?;
    let pool = verifier.pool().clone();
    let caller = match tokens::authenticate(&pool, &ring, raw).await {
        Ok(caller) => caller,
        Err((refused, genuine)) => {
            if let Some(caller) = genuine {
                audit_refusal(verifier, controls, &meta, &caller, &refused, scope).await;
            }
            return Err(refusal(&refused));
        }
    };
    // An unknown tenant is another tenant's to a tenant token (it learns nothing), and a
    // 404 to a platform token.
    let tenant = app::domain::tenants::queries::find(&pool, slug).await.ok();
    let asked = match (&tenant, caller.tenant) {
        (Some(t), _) => Some(t.id),
        (None, Some(_)) => Some(uuid::Uuid::nil()),
        (None, None) => None,
    };
    if let Err(refused) = tokens::authorize(&caller, scope, asked) {
        audit_refusal(verifier, controls, &meta, &caller, &refused, scope).await;
        return Err(refusal(&refused));
    }
    if tenant.is_none() {
        return Err(app_error(&AppError::not_found(format!("Tenant “{slug}”"))));
    }
    tokens::record_use(&pool, &caller, meta.ip).await;
    Ok(Actor::admin_token(
        pool,
        meta,
        caller.owner,
        caller.token_id,
        verifier.clone(),
        controls.clone(),
    ))
}

async fn audit_refusal(
    verifier: &Arc<Verifier>,
    controls: &Arc<Controls>,
    meta: &RequestMeta,
    caller: &Caller,
    refused: &Refused,
    scope: Scope,
) {
    let actor = Actor::admin_token(
        verifier.pool().clone(),
        meta.clone(),
        caller.owner.clone(),
        caller.token_id.clone(),
        verifier.clone(),
        controls.clone(),
    );
    let event = actor
        .event("admin_api.refused")
        .tenant(caller.tenant)
        .target(format!("admin_token:{}", caller.token_id))
        .denied(refused.code)
        .details(json!({ "scope": scope.as_str(), "path": meta.path }));
    let written = match actor.change().await {
        Ok(change) => change.commit(event).await.map(drop),
        Err(err) => Err(err),
    };
    if let Err(err) = written {
        tracing::warn!(error = %err, "recording an admin API refusal failed");
    }
}

/// The body as a JSON object with only `allowed` fields, each a non-empty string; an empty
/// body is an empty object (the runbook's "without body": the action on everything). A
/// field present but empty, of another type or misspelled is refused, never read as absent:
/// an unset shell variable must not turn one key's revocation into every key's.
async fn body(
    body: axum::body::Body,
    allowed: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, Response> {
    let fields = object(body).await?;
    for (name, value) in &fields {
        if !allowed.contains(&name.as_str()) {
            return Err(error(
                422,
                "INVALID_REQUEST",
                &format!(
                    "`{name}` is not a field of this route (it takes {}).",
                    allowed.join(", ")
                ),
                Some(name),
            ));
        }
        if value.as_str().is_none_or(|v| v.trim().is_empty()) {
            return Err(error(
                422,
                "INVALID_REQUEST",
                &format!("`{name}` must be a non-empty string; leave it out instead."),
                Some(name),
            ));
        }
    }
    Ok(fields)
}

async fn object(
    body: axum::body::Body,
) -> Result<serde_json::Map<String, serde_json::Value>, Response> {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Err(error(
            413,
            "INVALID_REQUEST",
            "The body is over 64 KiB.",
            None,
        ));
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        _ => Err(error(
            400,
            "INVALID_REQUEST",
            "The body is not a JSON object.",
            None,
        )),
    }
}

fn text<'a>(fields: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> Option<&'a str> {
    fields.get(name).and_then(serde_json::Value::as_str)
}

/// The reason of a call, or the runbook's step when the body gives none.
fn reason(fields: &serde_json::Map<String, serde_json::Value>, default: &str) -> String {
    text(fields, "reason")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or(default)
        .to_owned()
}

/// `POST /a/{tenant}/admin/keys/revoke` (`keys:write`): `{"kid"}` revokes that key; no
/// body (or no `kid`) every published key of the tenant (runbook 000 §1). A fresh key is
/// activated in the revoked active key's place, in the same change. Allowed during a freeze.
async fn revoke_keys(
    State(api): State<AdminApi>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, raw) = req.into_parts();
    let actor = match authorize(
        &api.verifier,
        &api.controls,
        &parts,
        Scope::KeysWrite,
        &slug,
    )
    .await
    {
        Ok(actor) => actor,
        Err(res) => return res,
    };
    let fields = match body(raw, &["kid", "reason"]).await {
        Ok(fields) => fields,
        Err(res) => return res,
    };
    let why = reason(
        &fields,
        "runbook 000 §1: signing key compromise (admin API)",
    );
    let master = api.verifier.master_key();
    let done = match text(&fields, "kid")
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(kid) => app::panels::keys::ops::revoke(&actor, master, &slug, kid, &why, kid).await,
        None => {
            app::panels::keys::ops::revoke_all(&actor, master, &slug, &why, &slug, i64::MAX).await
        }
    };
    match done {
        Ok(changed) => {
            // This instance's key set at once; the others on the notification.
            if let Err(err) = api.verifier.keys().reload().await {
                tracing::warn!(error = %err, "reloading the key set failed");
            }
            let mut res = Json(json!({
                "revoked": changed.revoked,
                "activated": changed.activated,
            }))
            .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(err) => app_error(&err),
    }
}

/// `POST /a/{tenant}/admin/revoke/sessions` (`sessions:write`): `{"user_id"}` revokes that
/// end user's sessions; no body every session and refresh token of the tenant (runbook 000
/// §1 and §2). Takes effect on every instance within a second.
async fn revoke_sessions(
    State(api): State<AdminApi>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, raw) = req.into_parts();
    let actor = match authorize(
        &api.verifier,
        &api.controls,
        &parts,
        Scope::SessionsWrite,
        &slug,
    )
    .await
    {
        Ok(actor) => actor,
        Err(res) => return res,
    };
    let fields = match body(raw, &["user_id", "reason"]).await {
        Ok(fields) => fields,
        Err(res) => return res,
    };
    let done = match text(&fields, "user_id").map(str::trim) {
        Some(user) => {
            let Ok(user) = uuid::Uuid::parse_str(user) else {
                return error(
                    422,
                    "INVALID_REQUEST",
                    "`user_id` is not a user id.",
                    Some("user_id"),
                );
            };
            let why = reason(&fields, "runbook 000 §2: token abuse (admin API)");
            app::domain::endusers::ops::revoke_user_sessions(&actor, &slug, user, &why)
                .await
                .map(|live| json!({ "scope": "user", "user_id": user, "live_sessions": live }))
        }
        None => {
            let why = reason(&fields, "runbook 000 §1: invalidate sessions (admin API)");
            app::domain::endusers::ops::revoke_tenant_sessions(&actor, &slug, &why, &slug)
                .await
                .map(|live| json!({ "scope": "tenant", "live_sessions": live }))
        }
    };
    match done {
        Ok(answer) => {
            let mut res = Json(answer).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(err) => app_error(&err),
    }
}
