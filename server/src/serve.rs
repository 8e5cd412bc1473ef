//! Running the server: start-up checks, listening, and graceful shutdown.

use crate::config::{Config, Mode};
use crate::db;
use crate::web::{self, middleware::SecurityPolicy, AppState};
use axum::Router;
use leptos::prelude::LeptosOptions;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be prepared.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// Leptos's own settings (output name, site root) were unusable.
    #[error("leptos configuration: {0}")]
    Leptos(String),
    /// Binding or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Seeding the demo data failed.
    #[error("creating the demo tenant failed: {0}")]
    Seed(#[source] sqlx::Error),
}

/// Starts the console and gateway, and returns once a shutdown signal was handled.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let conf =
        leptos::config::get_configuration(None).map_err(|e| ServeError::Leptos(e.to_string()))?;
    let mut leptos_options: LeptosOptions = conf.leptos_options;
    leptos_options.site_addr = config.listen_addr;

    let pool = db::connect(&config.database, Duration::from_secs(30)).await?;
    if config.auto_migrate {
        db::migrate(&pool).await?;
        tracing::info!("migrations applied");
    } else {
        db::require_current_schema(&pool).await?;
    }
    if config.mode == Mode::Development {
        if let Some(tenant) = app::tenants::queries::create_demo_if_empty(&pool)
            .await
            .map_err(ServeError::Seed)?
        {
            tracing::info!(tenant = %tenant.slug, "empty database: created the demo tenant");
        }
    }

    let state = AppState {
        leptos_options,
        pool: pool.clone(),
        security: Arc::new(SecurityPolicy {
            https: config.https,
        }),
    };
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen_addr,
            source,
        })?;
    tracing::info!(
        addr = %config.listen_addr,
        public_origin = %config.public_origin,
        mode = ?config.mode,
        "staff-console listening"
    );
    serve(
        listener,
        web::router(state),
        shutdown_signal(),
        config.shutdown_grace,
    )
    .await
    .map_err(|source| ServeError::Listen {
        addr: config.listen_addr,
        source,
    })?;
    pool.close().await;
    tracing::info!("database pool closed; bye");
    Ok(())
}

/// Serves `router` until `shutdown` completes, then stops accepting connections and lets
/// in-flight requests finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!(
            grace_s = grace.as_secs(),
            "shutting down: finishing in-flight requests"
        );
        let _ = stopping_tx.send(true);
    });
    let grace_expired = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!("shutdown grace period over: dropping requests still in flight");
            Ok(())
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
