//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sqlx::{Connection as _, PgPool};
use std::time::Duration;

/// How long readiness waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up and serving. Never touches the database, so a database
/// outage does not get healthy instances restarted.
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `GET /readyz`: 200 when the database answers within [`READY_TIMEOUT`], else 503 with a
/// short JSON reason (the detail goes to the log, not to the caller).
pub async fn readyz(State(pool): State<PgPool>) -> Response {
    let check = async {
        let mut conn = pool.acquire().await?;
        conn.ping().await
    };
    let reason = match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => return Json(json!({ "status": "ready" })).into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            "database unreachable"
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = READY_TIMEOUT.as_millis() as u64,
                "readiness: database timed out"
            );
            "database did not answer in time"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
        .into_response()
}
