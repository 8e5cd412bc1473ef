//! Connecting to PostgreSQL and keeping its schema current.

use crate::config::DatabaseConfig;
use sqlx::migrate::{Migrate as _, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::time::Duration;

/// The schema, compiled into the binary from `migrations/`.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Why the database could not be used at start.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Never reached the server.
    #[error("could not connect to PostgreSQL (DATABASE_URL): {0}")]
    Connect(#[source] sqlx::Error),
    /// The connection sets `staff_console.unaudited` for the whole session.
    #[error(
        "the database connection sets staff_console.unaudited, which would let changes commit \
         without their audit events: remove it from DATABASE_URL and the role's settings"
    )]
    Unaudited,
    /// Applying migrations failed.
    #[error("applying migrations failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Reading the applied migrations failed.
    #[error("reading the schema version failed: {0}")]
    Query(#[source] sqlx::Error),
    /// Production start with migrations not applied.
    #[error("the database schema is behind this binary ({pending} migration(s) pending): run `staff-console migrate` first")]
    Behind {
        /// How many migrations are missing.
        pending: usize,
    },
}

/// The escape from "no change without its audit event" is for a migration's transaction or
/// a test fixture's own connection: set for every session (say, `options=-c
/// staff_console.unaudited=...` in `DATABASE_URL`, or a role setting), it would switch the
/// rule off for this server. Such a database is refused. (Every connection of the pool has
/// the same URL and role, so checking one checks them all.)
async fn refuse_unaudited_sessions(pool: PgPool) -> Result<PgPool, DbError> {
    let unaudited: Option<String> =
        sqlx::query_scalar("SELECT nullif(current_setting('staff_console.unaudited', true), '')")
            .fetch_one(&pool)
            .await
            .map_err(DbError::Connect)?;
    if unaudited.is_some() {
        pool.close().await;
        return Err(DbError::Unaudited);
    }
    Ok(pool)
}

/// Connects, retrying for up to `patience` so a server started together with its database
/// does not fail on the first refused connection.
pub async fn connect(config: &DatabaseConfig, patience: Duration) -> Result<PgPool, DbError> {
    let options = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(5));
    let deadline = tokio::time::Instant::now() + patience;
    let mut delay = Duration::from_millis(200);
    loop {
        match options.clone().connect(config.url.expose()).await {
            Ok(pool) => return refuse_unaudited_sessions(pool).await,
            Err(err) if tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "database not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            Err(err) => return Err(DbError::Connect(err)),
        }
    }
}

/// Applies pending migrations. Safe with several instances starting at once: sqlx takes an
/// advisory lock around the run.
///
/// Migrations applied by a newer binary are left alone: during a rolling upgrade the
/// schema is migrated first, and an old instance restarting meanwhile must still start
/// (README, Production). A migration this binary knows whose text changed still stops it.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    let mut migrator = sqlx::migrate!("../migrations");
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.map_err(DbError::Migrate)
}

/// Refuses to go on when migrations this binary knows are not applied.
pub async fn require_current_schema(pool: &PgPool) -> Result<(), DbError> {
    let table_exists: bool = sqlx::query_scalar!(
        r#"SELECT to_regclass('public._sqlx_migrations') IS NOT NULL AS "exists!""#
    )
    .fetch_one(pool)
    .await
    .map_err(DbError::Query)?;
    let applied: Vec<i64> = if table_exists {
        let mut conn = pool.acquire().await.map_err(DbError::Query)?;
        conn.list_applied_migrations()
            .await
            .map_err(DbError::Migrate)?
            .into_iter()
            .map(|m| m.version)
            .collect()
    } else {
        Vec::new()
    };
    let pending = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .filter(|m| !applied.contains(&m.version))
        .count();
    if pending > 0 {
        return Err(DbError::Behind { pending });
    }
    Ok(())
}
