//! `POST /a/{tenant}/oauth/token`: RFC 8693 token exchange. A personal access token of the
//! tenant (the subject token) is exchanged for a delegated agent token, a JWT the tenant's
//! active key signs, for an audience the tenant allows and at most the token's scopes.
//!
//! The personal access token is checked as the gateway checks it (status, owner, client,
//! switches, limits), from its cache; the key set is in memory: an exchange costs no
//! database round trip beyond that check. Errors are RFC 6749 JSON (`error`,
//! `error_description`) with our stable `code` beside.

use crate::gateway::{call_meta, Gateway};
use app::domain::gateway::delegated::{self, Grant, ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT};
use app::domain::gateway::ledger::GatewayEvent;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest form body read.
const MAX_FORM: usize = 8 * 1024;

/// An RFC 6749 §5.2 error, with our code beside.
pub(crate) fn oauth_error(
    status: StatusCode,
    error: &str,
    code: &str,
    description: &str,
) -> Response {
    let mut res = (
        status,
        Json(json!({ "error": error, "error_description": description, "code": code })),
    )
        .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn invalid_request(code: &str, description: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        code,
        description,
    )
}

/// The form's fields; a field given twice is refused (RFC 6749 §3.2: parameters must not
/// repeat): `Err` names it.
fn form(bytes: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut fields = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(bytes) {
        if fields
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(name.into_owned());
        }
    }
    Ok(fields)
}

/// The handler.
pub async fn token(
    State(gateway): State<Gateway>,
    Path(slug): Path<String>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let route = "POST /a/{tenant}/oauth/token";
    let call = call_meta(&parts, route);
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return invalid_request(
            "DELEGATED_REQUEST_INVALID",
            "Send the request as application/x-www-form-urlencoded (RFC 8693).",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return invalid_request(
            "DELEGATED_REQUEST_INVALID",
            "The request body is over 8 KiB.",
        );
    };
    let fields = match form(&bytes) {
        Ok(fields) => fields,
        Err(name) => {
            return invalid_request(
                "DELEGATED_REQUEST_INVALID",
                &format!("The parameter `{name}` is given more than once."),
            )
        }
    };
    let field = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    // End users' refresh tokens (RFC 6749 §6), beside the token exchange.
    if field("grant_type") == Some("refresh_token") {
        if let Some(refused) = crate::endusers::refused(&gateway, &parts) {
            return refused;
        }
        let caller = crate::endusers::caller(&parts, route);
        return crate::endusers::refresh(&gateway, &slug, field("refresh_token"), &caller).await;
    }
    if field("grant_type") != Some(TOKEN_EXCHANGE_GRANT) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "DELEGATED_GRANT_UNSUPPORTED",
            &format!("grant_type must be {TOKEN_EXCHANGE_GRANT} or refresh_token."),
        );
    }
    let Some(subject) = field("subject_token") else {
        return invalid_request(
            "DELEGATED_REQUEST_INVALID",
            "subject_token is missing: send a personal access token of this tenant.",
        );
    };
    if field("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
        return invalid_request(
            "DELEGATED_REQUEST_INVALID",
            &format!("subject_token_type must be {ACCESS_TOKEN_TYPE} (a personal access token)."),
        );
    }
    let snapshot = match gateway.verifier.keys().loaded().await {
        Ok(snapshot) => snapshot,
        Err(err) => {
            tracing::error!(error = %err, "the key set could not be loaded");
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "UNAVAILABLE",
                "The key set could not be read; try again.",
            );
        }
    };
    let Some(tenant) = snapshot.tenants.get(slug.as_str()).cloned() else {
        return oauth_error(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "TENANT_NOT_FOUND",
            &format!("No tenant “{slug}”."),
        );
    };
    drop(snapshot);

    // The personal access token, checked as the gateway checks it.
    let now = time::OffsetDateTime::now_utc();
    let secs = now.unix_timestamp();
    if let Err(denied) = gateway.controls.admit_caller(call.ip, false, secs) {
        gateway.verifier.ledger().record_at(
            GatewayEvent::refused(denied.refusal, None, None, &call),
            now,
        );
        return crate::gateway::refusal(denied);
    }
    let verified = gateway
        .verifier
        .verify_with(subject, None, &call, |token| {
            gateway
                .controls
                .admit_token(token, false, secs)
                .map_err(|denied| denied.refusal)
        })
        .await;
    let pat = match verified {
        Ok(verified) => verified.token,
        Err(refused) => {
            let status = match refused.status() {
                429 => StatusCode::TOO_MANY_REQUESTS,
                503 => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            };
            return oauth_error(status, "invalid_grant", refused.code(), refused.message());
        }
    };
    if pat.tenant_id != tenant.id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "DELEGATED_SUBJECT_WRONG_TENANT",
            &format!("This personal access token belongs to another tenant than “{slug}”."),
        );
    }
    let audience = field("audience").unwrap_or(delegated::AGENT_API_AUDIENCE);
    if !tenant.audiences.iter().any(|a| a == audience) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "DELEGATED_AUDIENCE_NOT_ALLOWED",
            &format!(
                "Tenant “{slug}” does not allow the audience “{audience}”; it allows: {}.",
                tenant.audiences.join(", ")
            ),
        );
    }
    let scopes: Vec<String> = match field("scope") {
        None => pat.scopes.clone(),
        Some(asked) => {
            let asked: Vec<String> = asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(wider) = asked.iter().find(|s| !pat.scopes.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "DELEGATED_SCOPE_TOO_WIDE",
                    &format!(
                        "The scope “{wider}” is not one of the personal access token's ({}); a delegated token may only narrow them.",
                        pat.scopes.join(" ")
                    ),
                );
            }
            if asked.is_empty() {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "DELEGATED_SCOPE_TOO_WIDE",
                    "scope is empty: name at least one of the personal access token's scopes, or leave it out.",
                );
            }
            asked
        }
    };
    let Some((kid, key)) = tenant.signer.clone() else {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "DELEGATED_NO_ACTIVE_KEY",
            "The tenant has no active signing key right now; try again in a moment.",
        );
    };
    // Never past the personal access token's own expiry.
    let ttl = gateway
        .key_policy
        .token_ttl_secs
        .min(pat.expires_at() - secs)
        .max(1);
    let (jwt, claims) = delegated::issue(
        (&kid, &key),
        delegated::issuer(&gateway.public_origin, &tenant.slug),
        &tenant,
        &pat,
        Grant {
            audience,
            scopes: &scopes,
            ttl_secs: ttl,
            now,
        },
    );
    let jti: Arc<str> = claims.jti.to_string().into();
    gateway.verifier.ledger().record_at(
        GatewayEvent::delegated("delegated.issued", &pat, kid.clone(), jti, &call),
        now,
    );
    let mut res = Json(json!({
        "access_token": jwt,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": claims.scope,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
