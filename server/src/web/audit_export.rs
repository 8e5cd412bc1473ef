//! `GET /audit/export` (the panel's download) and `GET /a/{tenant}/admin/audit/export` (the
//! runbooks' route): the audit events matching the query, streamed as CSV or JSON Lines to
//! a signed-in auditor or above.

use app::auth::api::SignInPolicy;
use app::error::AppError;
use app::panels::audit::export::{self, Export};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

/// Chunks waiting between the database reader and the socket: with 64 KiB chunks, at most
/// a quarter MiB per export is held, whatever its size.
const IN_FLIGHT: usize = 4;

/// The panel's export: every tenant unless `tenant=` narrows it.
pub async fn console(
    State(pool): State<PgPool>,
    State(policy): State<SignInPolicy>,
    request: Request,
) -> Response {
    run(pool, policy, request, None).await
}

/// The admin API's export of one tenant (runbook 000): with an admin token of scope
/// `audit:read` (`Authorization: Bearer` or `x-admin-secret`), or a signed-in auditor's
/// session.
pub async fn admin(
    State(pool): State<PgPool>,
    State(policy): State<SignInPolicy>,
    State(api): State<crate::admin_api::AdminApi>,
    Path(tenant): Path<String>,
    request: Request,
) -> Response {
    if crate::admin_api::presented(request.headers()).is_none() {
        return run(pool, policy, request, Some(tenant)).await;
    }
    let (parts, _) = request.into_parts();
    let actor = match crate::admin_api::authorize(
        &api.verifier,
        &api.controls,
        &parts,
        app::domain::admin::Scope::AuditRead,
        &tenant,
    )
    .await
    {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let (query, format) = export::read_query(parts.uri.query().unwrap_or_default());
    match export::begin(&actor, &query, &format, Some(&tenant)).await {
        Ok(export) => stream(export),
        Err(error) => crate::admin_api::app_error(&error),
    }
}

async fn run(
    pool: PgPool,
    policy: SignInPolicy,
    request: Request,
    tenant: Option<String>,
) -> Response {
    let (parts, _) = request.into_parts();
    let (query, format) = export::read_query(parts.uri.query().unwrap_or_default());
    let started = async {
        let actor = export::authorize(parts, pool, policy).await?;
        export::begin(&actor, &query, &format, tenant.as_deref()).await
    };
    match started.await {
        Ok(export) => stream(export),
        Err(error) => refuse(&error),
    }
}

fn stream(export: Export) -> Response {
    let name = export.file_name();
    let content_type = if name.ends_with(".csv") {
        export::Format::Csv.content_type()
    } else {
        export::Format::Jsonl.content_type()
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let completed = export.completion();
    tokio::spawn(export.run(sender));
    // Once the chunks end, an export that was cut short (time limit, stall, failure) ends
    // the body with an error, so the client sees a broken download rather than a clean
    // end that passes a truncated file off as whole.
    let body = futures_util::stream::unfold(Some(receiver), move |receiver| {
        let completed = completed.clone();
        async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Some(chunk) => Some((chunk, Some(receiver))),
                None if completed.load(std::sync::atomic::Ordering::Acquire) => None,
                None => Some((Err(std::io::Error::other("the export was cut short")), None)),
            }
        }
    });
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A refusal as plain text with its status: the message is the one the panel would show.
fn refuse(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
    let message = match error {
        AppError::Validation { field, message } => format!("{field}: {message}\n"),
        other => format!("{other}\n"),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}
