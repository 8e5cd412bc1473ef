//! End users' routes, per tenant (issue 17): `POST /a/{tenant}/auth/sign-in`, the
//! `refresh_token` grant of `POST /a/{tenant}/oauth/token` (in [`crate::exchange`]),
//! magic links (`POST /a/{tenant}/auth/magic-link`, then `…/magic-link/verify`), recovery
//! (`POST /a/{tenant}/auth/recovery`, then `…/recovery/complete`), and
//! `GET /a/{tenant}/api/v1/me`, the protected resource whose access token is checked from
//! memory (keys and revocation epochs) on every call.
//!
//! The links in the mail open `GET …/magic-link?token=` and `GET …/recovery?token=`: a
//! page with a form that posts the token (a GET never uses a link, so a mail scanner that
//! follows links spends nothing). Tenants' own apps post the same fields as JSON.

use crate::gateway::{call_meta, Gateway};
use app::domain::endusers::access;
use app::domain::endusers::links;
use app::domain::endusers::mail::Kind;
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

/// The body's fields: JSON (`application/json`), or with `forms` a form too (the links'
/// pages post one; a link's token in it is what a cross-site post cannot have), at most
/// [`MAX_BODY`]; or the answer refusing it.
async fn read_fields(
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
    forms: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, Response> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_json = content_type.starts_with("application/json");
    let is_form = forms && content_type.starts_with("application/x-www-form-urlencoded");
    if !is_json && !is_form {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_REQUEST",
            "Send the request as application/json.",
            None,
        ));
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "INVALID_REQUEST",
            "The request body is over 8 KiB.",
            None,
        ));
    };
    if is_form {
        return Ok(url::form_urlencoded::parse(&bytes)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect());
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The body is not a JSON object.",
            None,
        )),
    }
}

/// A request past the block list and the caller's rate limit, with its fields read (see
/// [`read_fields`]); or the answer refusing it.
async fn admitted(
    gateway: &Gateway,
    req: Request,
    forms: bool,
) -> Result<
    (
        axum::http::request::Parts,
        serde_json::Map<String, serde_json::Value>,
    ),
    Response,
> {
    let (parts, body) = req.into_parts();
    if let Some(refused) = refused(gateway, &parts) {
        return Err(refused);
    }
    let fields = read_fields(&parts, body, forms).await?;
    Ok((parts, fields))
}

/// The text fields `names` of `fields`, or the name of the first one missing.
fn required<'a, const N: usize>(
    fields: &'a serde_json::Map<String, serde_json::Value>,
    names: [&'static str; N],
) -> Result<[&'a str; N], &'static str> {
    let mut out = [""; N];
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = fields
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or(name)?;
    }
    Ok(out)
}

/// The answer to a request without the field `name`.
fn missing(name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST",
        &format!("`{name}` is missing."),
        Some(name),
    )
}

/// `POST /a/{tenant}/auth/sign-in` with `{"email", "password", "captcha_token"}`.
pub async fn sign_in(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, fields) = match admitted(&gateway, req, false).await {
        Ok(read) => read,
        Err(res) => return res,
    };
    let [email, password] = match required(&fields, ["email", "password"]) {
        Ok(found) => found,
        Err(name) => return missing(name),
    };
    let captcha = fields
        .get("captcha_token")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let caller = caller(&parts, "POST /a/{tenant}/auth/sign-in");
    match sessions::sign_in(identity(&gateway), &slug, email, password, captcha, &caller).await {
        Ok(signed_in) => tokens(&signed_in),
        Err(err) => sign_in_error(&err),
    }
}

/// `POST /a/{tenant}/auth/magic-link` or `…/recovery` with `{"email", "captcha_token"}`:
/// 202 whether or not the address has an account.
async fn request_link(gateway: Gateway, slug: String, req: Request, kind: Kind) -> Response {
    let (parts, fields) = match admitted(&gateway, req, false).await {
        Ok(read) => read,
        Err(res) => return res,
    };
    let [email] = match required(&fields, ["email"]) {
        Ok(found) => found,
        Err(name) => return missing(name),
    };
    let captcha = fields
        .get("captcha_token")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let route = match kind {
        Kind::MagicLink => "POST /a/{tenant}/auth/magic-link",
        Kind::Recovery => "POST /a/{tenant}/auth/recovery",
    };
    let caller = caller(&parts, route);
    match links::request(identity(&gateway), &slug, kind, email, captcha, &caller).await {
        Ok(()) => {
            let message = match kind {
                Kind::MagicLink => {
                    "If this address has an account that may sign in, a sign-in link is on its way."
                }
                Kind::Recovery => {
                    "If this address has an account, a link to set a new password is on its way."
                }
            };
            let mut res = (
                StatusCode::ACCEPTED,
                Json(json!({ "status": "accepted", "message": message })),
            )
                .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(err) => sign_in_error(&err),
    }
}

/// `POST /a/{tenant}/auth/magic-link` with `{"email", "captcha_token"}`.
pub async fn request_magic_link(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    request_link(gateway, slug, req, Kind::MagicLink).await
}

/// `POST /a/{tenant}/auth/recovery` with `{"email", "captcha_token"}`.
pub async fn request_recovery(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    request_link(gateway, slug, req, Kind::Recovery).await
}

/// `POST /a/{tenant}/auth/magic-link/verify` with `{"token"}`: the session's tokens.
pub async fn verify_magic_link(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, fields) = match admitted(&gateway, req, true).await {
        Ok(read) => read,
        Err(res) => return res,
    };
    let [token] = match required(&fields, ["token"]) {
        Ok(found) => found,
        Err(name) => return missing(name),
    };
    let caller = caller(&parts, "POST /a/{tenant}/auth/magic-link/verify");
    match links::sign_in_with_link(identity(&gateway), &slug, token, &caller).await {
        Ok(signed_in) => tokens(&signed_in),
        Err(err) => sign_in_error(&err),
    }
}

/// `POST /a/{tenant}/auth/recovery/complete` with `{"token", "password"}`: the account is
/// active again with the new password, and every session it had is ended.
pub async fn complete_recovery(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, fields) = match admitted(&gateway, req, true).await {
        Ok(read) => read,
        Err(res) => return res,
    };
    let [token, password] = match required(&fields, ["token", "password"]) {
        Ok(found) => found,
        Err(name) => return missing(name),
    };
    let caller = caller(&parts, "POST /a/{tenant}/auth/recovery/complete");
    match links::recover(identity(&gateway), &slug, token, password, &caller).await {
        Ok(ended) => {
            let mut res = Json(json!({
                "status": "recovered",
                "message": "Your new password is set and every other session is signed out. Sign in with it.",
                "sessions_ended": ended,
            }))
            .into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(err) => sign_in_error(&err),
    }
}

fn escape(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The page a link opens: a form that posts its token (plain HTML, no script). Never
/// cached, never sent as a referrer.
fn link_page(title: &str, action: &str, token: &str, password: bool) -> Response {
    let password_field = if password {
        r#"<p><label for="password">New password (12 to 128 characters)</label><br><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" maxlength="128" required></p>"#
    } else {
        ""
    };
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"><title>{title}</title></head><body><main><h1>{title}</h1><form method="post" action="{action}"><input type="hidden" name="token" value="{token}">{password_field}<p><button type="submit">{title}</button></p></form></main></body></html>"#,
        title = escape(title),
        action = escape(action),
        token = escape(token),
    );
    let mut res = axum::response::Html(html).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The token of a link's `?token=`, if it has the shape of `kind`'s.
fn link_token(query: &Option<String>, kind: Kind) -> Option<String> {
    let query = query.as_deref()?;
    let token = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())?;
    app::domain::tokens::token::parse_as(kind.prefix(), token.trim()).ok()?;
    Some(token.trim().to_owned())
}

fn bad_link() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        SignInError::LinkInvalid.code(),
        &SignInError::LinkInvalid.message(),
        Some("token"),
    )
}

/// `GET /a/{tenant}/auth/magic-link?token=`: the page that signs in with the link.
pub async fn magic_link_page(Path(slug): Path<String>, req: Request) -> Response {
    match link_token(&req.uri().query().map(str::to_owned), Kind::MagicLink) {
        Some(token) => link_page(
            "Sign in",
            &format!("/a/{slug}/auth/magic-link/verify"),
            &token,
            false,
        ),
        None => bad_link(),
    }
}

/// `GET /a/{tenant}/auth/recovery?token=`: the page that sets a new password.
pub async fn recovery_page(Path(slug): Path<String>, req: Request) -> Response {
    match link_token(&req.uri().query().map(str::to_owned), Kind::Recovery) {
        Some(token) => link_page(
            "Set a new password",
            &format!("/a/{slug}/auth/recovery/complete"),
            &token,
            true,
        ),
        None => bad_link(),
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
