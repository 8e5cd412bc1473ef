//! End users' routes, per tenant (issue 17): `POST /a/{tenant}/auth/sign-in`, the
//! `refresh_token` grant of `POST /a/{tenant}/oauth/token` (in [`crate::exchange`]), and
//! `GET /a/{tenant}/api/v1/me`, the protected resource whose access token is checked from
//! memory (keys and revocation epochs) on every call.

use crate::gateway::{call_meta, Gateway};
use app::domain::endusers::access;
use app::domain::endusers::sessions::{self, Caller, Identity, RefreshError, SignInError, Tokens};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Largest sign-in body read.
const MAX_BODY: usize = 8 * 1024;

/// `{"error": {"code", "message", "field"}}`, never cached.
pub(crate) fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    field: Option<&str>,
) -> Response {
    let mut res = (
        status,
        Json(json!({ "error": { "code": code, "message": message, "field": field } })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The block list and the caller's rate limit, before anything else: the refusal to send,
/// if any.
pub(crate) fn refused(gateway: &Gateway, parts: &axum::http::request::Parts) -> Option<Response> {
    let ip = call_meta(parts, "").ip;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    gateway
        .controls
        .admit_identity_caller(ip, now)
        .err()
        .map(|denied| {
            let status = StatusCode::from_u16(denied.refusal.status())
                .unwrap_or(StatusCode::TOO_MANY_REQUESTS);
            let mut res = error(
                status,
                denied.refusal.code(),
                denied.refusal.message(),
                None,
            );
            if let Some(secs) = denied.retry_after {
                if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            res
        })
}

pub(crate) fn identity(gateway: &Gateway) -> Identity<'_> {
    Identity {
        pool: gateway.verifier.pool(),
        verifier: &gateway.verifier,
        controls: &gateway.controls,
        policy: &gateway.identity,
        public_origin: &gateway.public_origin,
    }
}

pub(crate) fn caller(parts: &axum::http::request::Parts, route: &'static str) -> Caller {
    let call = call_meta(parts, route);
    Caller {
        ip: call.ip,
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: call.request_id.map(|id| id.to_string()),
    }
}

/// The tokens' JSON (RFC 6749 §5.1 for the refresh grant, the same for a sign-in).
pub(crate) fn tokens(tokens: &Tokens) -> Response {
    let mut res = Json(json!({
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token.as_str(),
        "session_id": tokens.session_id,
        "user_id": tokens.user_id,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `POST /a/{tenant}/auth/sign-in` with `{"email", "password", "captcha_token"}`.
pub async fn sign_in(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    if let Some(refused) = refused(&gateway, &parts) {
        return refused;
    }
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            "Send the sign-in as application/json.",
            None,
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_REQUEST",
            "The request body is over 8 KiB.",
            None,
        );
    };
    let Ok(fields) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The body is not JSON.",
            None,
        );
    };
    let text = |name: &str| fields.get(name).and_then(serde_json::Value::as_str);
    let (Some(email), Some(password)) = (text("email"), text("password")) else {
        let field = if text("email").is_none() {
            "email"
        } else {
            "password"
        };
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            &format!("`{field}` is missing."),
            Some(field),
        );
    };
    let captcha = text("captcha_token").unwrap_or_default();
    let caller = caller(&parts, "POST /a/{tenant}/auth/sign-in");
    match sessions::sign_in(identity(&gateway), &slug, email, password, captcha, &caller).await {
        Ok(signed_in) => tokens(&signed_in),
        Err(err) => sign_in_error(&err),
    }
}

fn sign_in_error(err: &SignInError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = error(status, err.code(), &err.message(), err.field());
    if matches!(
        err,
        SignInError::Throttled | SignInError::CaptchaUnavailable
    ) {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    }
    res
}

/// The refresh grant's answer: the tokens, or RFC 6749's error with our code beside.
pub(crate) async fn refresh(
    gateway: &Gateway,
    slug: &str,
    token: Option<&str>,
    caller: &Caller,
) -> Response {
    let oauth = crate::exchange::oauth_error;
    let Some(token) = token else {
        return oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "REFRESH_TOKEN_MISSING",
            "refresh_token is missing.",
        );
    };
    match sessions::refresh(identity(gateway), slug, token, caller).await {
        Ok(rotated) => tokens(&rotated),
        Err(RefreshError::Invalid(code, message)) => {
            oauth(StatusCode::BAD_REQUEST, "invalid_grant", code, message)
        }
        Err(RefreshError::NoSigningKey) => oauth(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "NO_ACTIVE_SIGNING_KEY",
            "Tokens cannot be issued right now.",
        ),
        Err(RefreshError::Internal) => oauth(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "INTERNAL",
            "Something failed on our side.",
        ),
    }
}

/// `GET /a/{tenant}/api/v1/me`: who the access token is, checked from memory.
pub async fn me(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, _) = req.into_parts();
    if let Some(refused) = refused(&gateway, &parts) {
        return refused;
    }
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let refuse = |status: StatusCode, code: &str, message: &str, error: &str| {
        let mut res = crate::endusers::error(status, code, message, None);
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer error=\"{error}\"")) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        res
    };
    let Some(bearer) = bearer.filter(|b| !b.is_empty()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "ACCESS_TOKEN_MISSING",
            "Send the access token as Authorization: Bearer <token>.",
            "invalid_request",
        );
    };
    let Ok(snapshot) = gateway.verifier.keys().loaded().await else {
        return crate::endusers::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "KEYS_UNAVAILABLE",
            "The signing keys could not be read.",
            None,
        );
    };
    if !snapshot.tenants.contains_key(slug.as_str()) {
        return crate::endusers::error(
            StatusCode::NOT_FOUND,
            "TENANT_NOT_FOUND",
            "No such tenant.",
            None,
        );
    }
    match access::check(
        &snapshot,
        gateway.verifier.epochs(),
        gateway.verifier.access_tokens(),
        &gateway.public_origin,
        &slug,
        bearer,
        time::OffsetDateTime::now_utc(),
    ) {
        Ok(claims) => {
            let mut res = Json(json!({
                "user_id": claims.sub,
                "session_id": claims.sid,
                "tenant": claims.tenant,
                "issued_at": claims.iat,
                "expires_at": claims.exp,
            }))
            .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(refusal) => refuse(
            StatusCode::UNAUTHORIZED,
            refusal.code(),
            refusal.message(),
            "invalid_token",
        ),
    }
}
