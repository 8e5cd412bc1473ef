//! Liveness and readiness for load balancers and orchestrators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sqlx::{Connection as _, PgPool};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long readiness waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up and serving. Never touches the database, so a database
/// outage does not get healthy instances restarted.
pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// How long a readiness answer is reused. Load balancers poll every few seconds; anything
/// that calls faster (or a flood from outside) is served from memory.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// Readiness, probed at most once per [`READY_CACHE`] per instance.
///
/// `/readyz` needs no credential, so without this every call would take a connection and
/// make a round trip. The lock is held across the probe: a burst of callers waits for the
/// one probe in flight and shares its answer, even while the database hangs (at most
/// [`READY_TIMEOUT`]).
pub struct Readiness {
    pool: PgPool,
    last: tokio::sync::Mutex<Option<(Instant, Result<(), &'static str>)>>,
}

impl Readiness {
    /// Readiness of `pool`'s database, not yet probed.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The database's state: the last probe's if it is recent, else a new probe's.
    pub async fn check(&self) -> Result<(), &'static str> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < READY_CACHE {
                return answer;
            }
        }
        let answer = probe(&self.pool).await;
        *last = Some((Instant::now(), answer));
        answer
    }
}

/// One round trip to the database, bounded by [`READY_TIMEOUT`]; the refusal is the reason
/// callers are told (the detail goes to the log).
async fn probe(pool: &PgPool) -> Result<(), &'static str> {
    let check = async {
        let mut conn = pool.acquire().await?;
        conn.ping().await
    };
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            Err("database unreachable")
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = READY_TIMEOUT.as_millis() as u64,
                "readiness: database timed out"
            );
            Err("database did not answer in time")
        }
    }
}

/// `GET /readyz`: 200 when the database answered within [`READY_TIMEOUT`] (probed at most
/// once a second, see [`Readiness`]), else 503 with a short JSON reason.
pub async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    match readiness.check().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": reason })),
        )
            .into_response(),
    }
}
