//! The agent API gateway: plain axum routes under `/agent/v1`, for machines, guarded by
//! personal access tokens.
//!
//! Before the token, the caller's address is checked against the block list and its rate
//! limit, and a kill switch that is off everywhere refuses at once. Then the token guard
//! runs parse → checksum → lookup by id → HMAC → status and expiry → owner → scope
//! ([`app::domain::gateway::verify`]), and after it the tenant's switches, the allowlist
//! posture and the owner's and tenant's rate limits ([`app::domain::gateway::controls::state`]). A refusal
//! answers JSON with a stable code; every decision is recorded in the audit log as
//! `token.used`, `token.failed_auth` or `agent_api.refused`. The token itself never appears
//! in a response, a log line or an event.
//!
//! A delegated token (a JWT from the tenant's token endpoint, [`crate::exchange`]) is
//! accepted beside personal access tokens: checked from memory against the instance's key
//! set, then as the personal access token it came from (`delegated.used`,
//! `delegated.failed_auth`, with its kid and jti).

use app::domain::gateway::controls::state::{Controls, Denied};
use app::domain::gateway::decision::Refusal;
use app::domain::gateway::delegated::{self, Delegated};
use app::domain::gateway::ledger::GatewayEvent;
use app::domain::gateway::verify::{CallMeta, Verified, Verifier};
use app::request::{ClientIp, RequestId};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The scope the payments route needs.
pub const PAYMENTS_SCOPE: &str = "payments:write";
/// Largest request body the agent API reads.
const MAX_BODY: usize = 16 * 1024;

/// What the gateway decides with: the token verifier (and its key set) and the controls.
#[derive(Clone)]
pub struct Gateway {
    /// Tokens.
    pub verifier: Arc<Verifier>,
    /// Switches, limits, blocks.
    pub controls: Arc<Controls>,
    /// `PUBLIC_URL`'s origin: delegated tokens' issuers are built on it.
    pub public_origin: Arc<str>,
    /// The delegated tokens' lifetime.
    pub key_policy: app::domain::keys::KeyPolicy,
    /// End users' token lifetimes and captcha.
    pub identity: Arc<app::domain::endusers::Policy>,
}

/// A call the guard let through: the personal access token it rests on, and the delegated
/// token it came as, if it did.
pub(crate) struct Authorized {
    verified: Verified,
    delegated: Option<Arc<Delegated>>,
}

/// The gateway's routes.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/agent/v1/whoami", get(whoami))
        .route("/agent/v1/payments", post(payments))
        .route("/agent/v1/{*rest}", any(not_found))
        .route("/a/{tenant}/oauth/token", post(crate::exchange::token))
        .route("/a/{tenant}/auth/sign-in", post(crate::endusers::sign_in))
        .route(
            "/a/{tenant}/auth/magic-link",
            post(crate::endusers::request_magic_link).get(crate::endusers::magic_link_page),
        )
        .route(
            "/a/{tenant}/auth/magic-link/verify",
            post(crate::endusers::verify_magic_link),
        )
        .route(
            "/a/{tenant}/auth/recovery",
            post(crate::endusers::request_recovery).get(crate::endusers::recovery_page),
        )
        .route(
            "/a/{tenant}/auth/recovery/complete",
            post(crate::endusers::complete_recovery),
        )
        .route("/a/{tenant}/api/v1/me", get(crate::endusers::me))
        .with_state(gateway)
}

/// A JSON error answer with a stable code: `{"error": {"code", "message"}}`. A 401 says
/// which bearer `realm` to authenticate to.
pub(crate) fn json_error(
    status: StatusCode,
    code: &str,
    message: &str,
    realm: &'static str,
) -> Response {
    let mut res = (
        status,
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(realm));
    }
    res
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_error(
        status,
        code,
        message,
        r#"Bearer realm="agent", error="invalid_token""#,
    )
}

pub(crate) fn refusal(denied: Denied) -> Response {
    let refusal = denied.refusal;
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut res = error(status, refusal.code(), refusal.message());
    if let Some(secs) = denied.retry_after {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "No such agent API route.",
    )
}

/// The bearer token of `headers`, or an empty string (which the guard refuses as malformed).
pub(crate) fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default()
}

pub(crate) fn call_meta(parts: &axum::http::request::Parts, route: &'static str) -> CallMeta {
    CallMeta {
        ip: parts.extensions.get::<ClientIp>().map(|ip| ip.0),
        request_id: parts.extensions.get::<RequestId>().map(|id| id.0.clone()),
        route,
    }
}

/// Checks the caller, then the request's token for `scope` (a personal access token, or a
/// delegated token), then the controls that depend on the token; the refusal is the
/// response to send.
async fn guard(
    gateway: &Gateway,
    parts: &axum::http::request::Parts,
    scope: Option<&str>,
    route: &'static str,
    payments: bool,
) -> Result<Authorized, Response> {
    let call = call_meta(parts, route);
    let now = time::OffsetDateTime::now_utc();
    let secs = now.unix_timestamp();
    if let Err(denied) = gateway.controls.admit_caller(call.ip, payments, secs) {
        gateway.verifier.ledger().record_at(
            GatewayEvent::refused(denied.refusal, None, None, &call),
            now,
        );
        return Err(refusal(denied));
    }
    let raw = bearer(&parts.headers);
    if delegated::looks_like_jwt(raw) {
        return guard_delegated(gateway, raw, scope, &call, payments, now).await;
    }
    // Retry-After of a rate limit met after the token check (0: none).
    let retry_after = AtomicU64::new(0);
    gateway
        .verifier
        .verify_with(raw, scope, &call, |token| {
            gateway
                .controls
                .admit_token(token, payments, secs)
                .map_err(|denied| {
                    retry_after.store(denied.retry_after.unwrap_or(0), Ordering::Relaxed);
                    denied.refusal
                })
        })
        .await
        .map(|verified| Authorized {
            verified,
            delegated: None,
        })
        .map_err(|refused| {
            let secs = retry_after.load(Ordering::Relaxed);
            refusal(Denied {
                refusal: refused,
                retry_after: (secs > 0).then_some(secs),
            })
        })
}

/// A delegated token: its own checks from memory ([`delegated::check`]), then the scope,
/// the personal access token it came from, the controls, and on a route that changes
/// state its single use. Every decision goes to the ledger with the kid, jti and token.
async fn guard_delegated(
    gateway: &Gateway,
    raw: &str,
    scope: Option<&str>,
    call: &CallMeta,
    payments: bool,
    now: time::OffsetDateTime,
) -> Result<Authorized, Response> {
    let verifier = &gateway.verifier;
    let check = || {
        delegated::check(
            &verifier.keys().snapshot(),
            &gateway.public_origin,
            verifier.signatures(),
            raw,
            now,
        )
    };
    let mut checked = check();
    if matches!(&checked, Err(r) if r.refusal == Refusal::DelegatedKeyUnknown)
        && verifier.keys().reload_for_unknown_kid().await
    {
        checked = check();
    }
    let token = match checked {
        Ok(token) => token,
        Err(rejected) => {
            verifier.ledger().record_at(
                GatewayEvent::delegated_refused(
                    rejected.refusal,
                    None,
                    rejected.tenant,
                    rejected.kid,
                    rejected.jti,
                    call,
                ),
                now,
            );
            return Err(refusal(Denied {
                refusal: rejected.refusal,
                retry_after: None,
            }));
        }
    };
    let jti: Arc<str> = token.claims.jti.to_string().into();
    let refuse = |denied: Denied, pat: Option<&app::domain::gateway::decision::CachedToken>| {
        verifier.ledger().record_at(
            GatewayEvent::delegated_refused(
                denied.refusal,
                pat,
                Some(token.tenant),
                Some(token.kid.clone()),
                Some(jti.clone()),
                call,
            ),
            now,
        );
        refusal(denied)
    };
    let denied = |refusal| Denied {
        refusal,
        retry_after: None,
    };
    if scope.is_some_and(|scope| !token.claims.has_scope(scope)) {
        return Err(refuse(denied(Refusal::InsufficientScope), None));
    }
    // The personal access token behind it: revoked, expired, its client suspended or its
    // owner demoted since the exchange, and the delegated token goes with it.
    let pat = match verifier.token_by_id(&token.claims.pat).await {
        Ok(Some(pat)) if pat.tenant_id == token.tenant => pat,
        Ok(_) => return Err(refuse(denied(Refusal::RevokedOrInvalid), None)),
        // Fail closed, and say the server could not check rather than that the token is bad.
        Err(()) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "The token behind this delegated token could not be checked; try again.",
            ))
        }
    };
    if let Err(refused) = app::domain::gateway::verify::standing(&pat, None, now) {
        return Err(refuse(denied(refused), Some(&pat)));
    }
    if let Err(limited) = gateway
        .controls
        .admit_token(&pat, payments, now.unix_timestamp())
    {
        return Err(refuse(limited, Some(&pat)));
    }
    if payments {
        let expires = time::OffsetDateTime::from_unix_timestamp(token.claims.exp).unwrap_or(now);
        match verifier.first_use_of(token.claims.jti, expires).await {
            Ok(true) => {}
            Ok(false) => return Err(refuse(denied(Refusal::DelegatedNonceReplay), Some(&pat))),
            Err(err) => {
                // Fail closed: a use that cannot be recorded as the first is refused.
                tracing::error!(error = %err, "recording a delegated token's use failed: refusing");
                return Err(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "The call could not be checked for replay; try again with a fresh token.",
                ));
            }
        }
    }
    verifier.ledger().record_at(
        GatewayEvent::delegated("delegated.used", &pat, token.kid.clone(), jti, call),
        now,
    );
    Ok(Authorized {
        verified: Verified {
            token: pat,
            rehash: None,
        },
        delegated: Some(token),
    })
}

/// `GET /agent/v1/whoami`: who this token is. Any valid token may ask.
async fn whoami(State(gateway): State<Gateway>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    match guard(&gateway, &parts, None, "GET /agent/v1/whoami", false).await {
        Ok(Authorized {
            delegated: Some(delegated),
            verified,
        }) => delegated_whoami(&verified, &delegated),
        Ok(Authorized { verified, .. }) => {
            let token = &verified.token;
            let body = token.whoami.get_or_init(|| {
                let (kind, id, client) = match token.owner {
                    app::domain::tokens::Owner::Staff(id) => ("staff", id, None),
                    app::domain::tokens::Owner::Client(id) => ("client", id, Some(id)),
                };
                let answer = Whoami {
                    tenant: &token.tenant_slug,
                    tenant_id: token.tenant_id,
                    client,
                    owner: WhoamiOwner { kind, id },
                    token_id: &token.id,
                    scopes: &token.scopes,
                };
                serde_json::to_vec(&answer).unwrap_or_default().into()
            });
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body.clone(),
            )
                .into_response()
        }
        Err(res) => res,
    }
}

/// `POST /agent/v1/payments` (scope `payments:write`): accepts a payment instruction. It
/// stands in for the platform's payments API: authorization and validation are real, no
/// money moves.
async fn payments(State(gateway): State<Gateway>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let verified = match guard(
        &gateway,
        &parts,
        Some(PAYMENTS_SCOPE),
        "POST /agent/v1/payments",
        true,
    )
    .await
    {
        Ok(authorized) => authorized.verified,
        Err(res) => return res,
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            "The request body is over 16 KiB.",
        );
    };
    let parsed: Result<PaymentRequest, _> = serde_json::from_slice(&bytes);
    let payment = match parsed {
        Ok(p) if p.amount_cents > 0 && p.currency.len() == 3 && p.currency.chars().all(|c| c.is_ascii_uppercase()) => p,
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_PAYMENT",
                "Send JSON {\"amount_cents\": a positive integer, \"currency\": an ISO 4217 code such as \"EUR\"}.",
            )
        }
    };
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "accepted",
            "payment_id": uuid::Uuid::new_v4(),
            "amount_cents": payment.amount_cents,
            "currency": payment.currency,
            "tenant": &*verified.token.tenant_slug,
            "token_id": &*verified.token.id,
        })),
    )
        .into_response()
}

/// `whoami` for a delegated token: the personal access token's facts, with the delegated
/// token's own scopes, kid, jti and expiry.
fn delegated_whoami(verified: &Verified, delegated: &Delegated) -> Response {
    let token = &verified.token;
    let client = match token.owner {
        app::domain::tokens::Owner::Client(id) => Some(id),
        app::domain::tokens::Owner::Staff(_) => None,
    };
    let claims = &delegated.claims;
    Json(json!({
        "tenant": &*token.tenant_slug,
        "tenant_id": token.tenant_id,
        "client": client,
        "owner": claims.sub,
        "token_id": &*token.id,
        "scopes": claims.scope.split(' ').collect::<Vec<_>>(),
        "delegated": {
            "kid": &*delegated.kid,
            "jti": claims.jti,
            "aud": claims.aud,
            "exp": claims.exp,
        },
    }))
    .into_response()
}

/// `whoami`'s answer.
#[derive(serde::Serialize)]
struct Whoami<'a> {
    tenant: &'a str,
    tenant_id: uuid::Uuid,
    client: Option<uuid::Uuid>,
    owner: WhoamiOwner,
    token_id: &'a str,
    scopes: &'a [String],
}

#[derive(serde::Serialize)]
struct WhoamiOwner {
    kind: &'static str,
    id: uuid::Uuid,
}

#[derive(serde::Deserialize)]
struct PaymentRequest {
    amount_cents: i64,
    currency: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_required() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), "");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), "");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  mf_pat_v1.a.b "),
        );
        assert_eq!(bearer(&headers), "mf_pat_v1.a.b");
    }
}
