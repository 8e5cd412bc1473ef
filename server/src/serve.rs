//! Running the server: start-up checks, listening, and graceful shutdown.

use crate::config::{Config, Mode};
use crate::db;
use crate::web::{self, middleware::SecurityPolicy, AppState};
use app::auth::api::SignInPolicy;
use app::domain::gateway::controls::state::Controls;
use app::domain::gateway::verify::Verifier;
use app::domain::tokens::pepper::MasterKey;
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
    Seed(String),
    /// The token peppers could not be created or opened.
    #[error("token peppers: {0}")]
    Pepper(#[from] app::domain::tokens::pepper::PepperError),
    /// The kill switches, rate limits or blocks could not be read.
    #[error("reading kill switches and rate limits failed: {0}")]
    Controls(#[source] sqlx::Error),
    /// `RL_OVERRIDES_JSON` named something that does not exist or a bad limit.
    #[error("{0}")]
    Import(String),
    /// Creating the first admin failed.
    #[error("creating the first admin failed: {0}")]
    Bootstrap(String),
}

/// Creates the first token pepper on a new database, then checks that every pepper still in
/// use opens with this ENCRYPTION_KEY: a wrong key stops the server here, not at the first
/// token check.
async fn load_peppers(pool: &sqlx::PgPool, key: &MasterKey) -> Result<(), ServeError> {
    use app::domain::tokens::pepper;
    let system = app::auth::Actor::system(pool.clone(), "first pepper");
    if pepper::create_first_if_none(&system, key).await? {
        tracing::info!("created token pepper version 1");
    }
    let ring = pepper::load(pool, key).await?;
    tracing::info!(
        current = ring.current.version,
        previous = ring.previous.as_ref().map(|(p, _)| p.version),
        "token peppers open with this ENCRYPTION_KEY"
    );
    Ok(())
}

/// Gives every tenant without an active signing key one, then checks that every stored
/// private key opens with this ENCRYPTION_KEY: a wrong key stops the server here.
async fn load_signing_keys(pool: &sqlx::PgPool, master: &MasterKey) -> Result<(), ServeError> {
    let system = app::auth::Actor::system(pool.clone(), "signing keys");
    let given = app::panels::keys::ops::ensure_active_keys(&system, master)
        .await
        .map_err(|e| ServeError::Bootstrap(format!("signing keys: {e}")))?;
    if !given.is_empty() {
        tracing::info!(tenants = ?given, "tenants without an active signing key got one");
    }
    let opened = app::panels::keys::ops::check_all_open(pool, master)
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    tracing::info!(keys = opened, "signing keys open with this ENCRYPTION_KEY");
    Ok(())
}

/// During an ENCRYPTION_KEY rotation, says what is still sealed under the previous key
/// (until `staff-console secrets reseal` has moved it); a secret that opens under neither
/// key stops the server.
async fn warn_while_resealing(pool: &sqlx::PgPool, master: &MasterKey) -> Result<(), ServeError> {
    let census = app::domain::secrets::census(pool, master)
        .await
        .map_err(|e| ServeError::Bootstrap(format!("secrets at rest: {e}")))?;
    if census.totp.unopened > 0 {
        tracing::error!(
            count = census.totp.unopened,
            first = census.totp.first_unopened.as_deref().unwrap_or_default(),
            "TOTP secrets that open under no ENCRYPTION_KEY: those staff cannot sign in with their authenticator app (reset their factors)"
        );
    }
    if let Some(unopened) = census.unopened_required() {
        return Err(ServeError::Bootstrap(format!(
            "{unopened} does not open with ENCRYPTION_KEY{}: it is not the key this database was set up with",
            if master.previous().is_some() { " nor ENCRYPTION_KEY_PREVIOUS" } else { "" }
        )));
    }
    if master.previous().is_none() {
        return Ok(());
    }
    if census.on_previous() == 0 {
        tracing::warn!(
            "ENCRYPTION_KEY_PREVIOUS is set but nothing is sealed under it any more{}: remove it",
            census.recovery_note()
        );
    } else {
        tracing::warn!(
            remaining = census.on_previous(),
            peppers = census.peppers.previous,
            signing_keys = census.signing_keys.previous,
            totp_secrets = census.totp.previous,
            "secrets are still sealed under ENCRYPTION_KEY_PREVIOUS: run `staff-console secrets reseal`"
        );
    }
    Ok(())
}

/// Development only: a few end users in the new demo tenant, with one one-time password
/// printed once to standard error.
async fn seed_demo_users(pool: &sqlx::PgPool, slug: &str) -> Result<(), ServeError> {
    let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "demo seed");
    let password = app::auth::password::generate_one_time_password();
    for email in ["ada@example.com", "bob@example.com", "eve@example.com"] {
        app::domain::endusers::ops::create_user(&actor, slug, email, &password)
            .await
            .map_err(|e| ServeError::Seed(e.to_string()))?;
    }
    eprintln!(
        "Demo end users of tenant “{slug}”: ada@, bob@ and eve@example.com, password {password} (shown only now)"
    );
    Ok(())
}

/// Email of the admin created on an empty development database.
pub const FIRST_ADMIN_EMAIL: &str = "admin@staff-console.local";

/// Development only: on a database without staff, creates an admin with a random
/// one-time password and prints it once, to standard error, outside the JSON log.
async fn bootstrap_first_admin(pool: &sqlx::PgPool, origin: &str) -> Result<(), ServeError> {
    let any = app::panels::staff::queries::any(pool)
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    if any {
        return Ok(());
    }
    let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "bootstrap");
    match app::panels::staff::ops::create(
        &actor,
        FIRST_ADMIN_EMAIL,
        "First admin",
        app::auth::Role::Admin,
        None,
    )
    .await
    {
        Ok((_, secret)) => {
            eprintln!(
                "\n================================================================\n \
                 First admin created: {}\n One-time password:   {}\n \
                 Shown only now. Sign in at {origin}/sign-in\n\
                 ================================================================\n",
                secret.email, secret.password
            );
            Ok(())
        }
        // Another instance created it first (its email is taken); any other refusal is
        // a real failure to report.
        Err(app::error::AppError::Validation { field, .. }) if field == "email" => Ok(()),
        Err(other) => Err(ServeError::Bootstrap(other.to_string())),
    }
}

/// Leptos's options for this process: from the `LEPTOS_*` variables cargo-leptos sets, or,
/// for a release folder (`make release`: the binary, `hash.txt` and `site/` side by side),
/// from what lies beside the binary. The site must hold the front end the pages will load:
/// a page whose WebAssembly is missing never becomes interactive, so production refuses
/// to start without it.
pub fn site_options(mode: Mode) -> Result<LeptosOptions, ServeError> {
    let conf =
        leptos::config::get_configuration(None).map_err(|e| ServeError::Leptos(e.to_string()))?;
    let mut options: LeptosOptions = conf.leptos_options;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf));
    if let Some(dir) = &beside {
        let site = dir.join("site");
        if std::env::var_os("LEPTOS_SITE_ROOT").is_none() && site.is_dir() {
            options.site_root = site.to_string_lossy().into_owned().into();
        }
        if std::env::var_os("LEPTOS_HASH_FILES").is_none()
            && dir.join(&*options.hash_file).is_file()
        {
            options.hash_files = true;
        }
    }
    let pkg = std::path::Path::new(&*options.site_root).join(&*options.site_pkg_dir);
    let problem = if options.hash_files {
        match beside.map(|dir| dir.join(&*options.hash_file)) {
            Some(path) => hashed_front_end(&path, &pkg, &options.output_name).err(),
            None => Some("file hashing is on but the binary's folder is unknown".into()),
        }
    } else {
        let wasm = pkg.join(format!("{}.wasm", options.output_name));
        (!wasm.is_file()).then(|| {
            format!(
                "the front end is not built: {} is missing (run `make release`, or set LEPTOS_SITE_ROOT to the site folder)",
                wasm.display()
            )
        })
    };
    match (problem, mode) {
        (Some(problem), Mode::Production) => return Err(ServeError::Leptos(problem)),
        (Some(problem), Mode::Development) => tracing::warn!("{problem}"),
        (None, _) => {}
    }
    Ok(options)
}

/// Checks a release folder's front end: `hashes` (cargo-leptos's `hash.txt`, which Leptos
/// reads on every page render and panics without) names the WebAssembly, JavaScript and
/// CSS, and each of those files is in `pkg`.
fn hashed_front_end(
    hashes: &std::path::Path,
    pkg: &std::path::Path,
    output: &str,
) -> Result<(), String> {
    let text = std::fs::read_to_string(hashes).map_err(|e| {
        format!(
            "file hashing is on but {} cannot be read ({e}): deploy the release folder whole",
            hashes.display()
        )
    })?;
    // The hash of a `kind: hash` line.
    let named = |kind: &str| {
        text.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(k, _)| k.trim() == kind)
            .map(|(_, hash)| hash.trim())
    };
    for ext in ["wasm", "js", "css"] {
        let hash = named(ext).ok_or_else(|| format!("{} names no {ext} file", hashes.display()))?;
        require_file(hashes, &pkg.join(format!("{output}.{hash}.{ext}")))?;
    }
    // A split build (lazy routes) also names the chunks' manifest and their loader.
    for (kind, prefix, ext) in [
        ("manifest", "__wasm_split_manifest", "json"),
        ("split", "__wasm_split", "js"),
    ] {
        if let Some(hash) = named(kind) {
            require_file(hashes, &pkg.join(format!("{prefix}.{hash}.{ext}")))?;
        }
    }
    Ok(())
}

fn require_file(hashes: &std::path::Path, file: &std::path::Path) -> Result<(), String> {
    if file.is_file() {
        return Ok(());
    }
    Err(format!(
        "the front end {} names is missing: {} (deploy the release folder whole, or set LEPTOS_SITE_ROOT to its site folder)",
        hashes.display(),
        file.display()
    ))
}

/// Starts the console and gateway, and returns once a shutdown signal was handled.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let mut leptos_options = site_options(config.mode)?;
    leptos_options.site_addr = config.listen_addr;

    let pool = db::connect(&config.database, Duration::from_secs(30)).await?;
    if config.auto_migrate {
        db::migrate(&pool).await?;
        tracing::info!("migrations applied");
    } else {
        db::require_current_schema(&pool).await?;
    }
    // Events of this month and the next ones need their partitions before anything writes.
    app::domain::audit::retention::ensure_partitions(&pool)
        .await
        .map_err(|e| ServeError::Bootstrap(format!("audit partitions: {e}")))?;
    if config.mode == Mode::Development {
        let seed = app::auth::Actor::system(pool.clone(), "demo seed");
        if let Some(tenant) = app::domain::tenants::queries::create_demo_if_empty(&seed)
            .await
            .map_err(|e| ServeError::Seed(e.to_string()))?
        {
            tracing::info!(tenant = %tenant.slug, "empty database: created the demo tenant");
            seed_demo_users(&pool, &tenant.slug).await?;
        }
        bootstrap_first_admin(&pool, &config.public_origin).await?;
    }
    let master = config.master_key();
    load_peppers(&pool, &master).await?;
    load_signing_keys(&pool, &master).await?;
    warn_while_resealing(&pool, &master).await?;
    let verifier =
        Arc::new(Verifier::new(pool.clone(), master).for_instance(&config.public_origin));
    verifier.reload_ring().await?;
    let epoch = verifier
        .keys()
        .reload()
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;
    tracing::info!(epoch, "key set loaded");
    let controls = Arc::new(Controls::new(
        pool.clone(),
        config.rate_limits.defaults,
        config.rate_limits.enabled,
    ));
    if !config.rate_limits.import.is_empty() {
        let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "RL_OVERRIDES_JSON");
        let written = app::panels::limits::ops::import(&actor, &config.rate_limits.import)
            .await
            .map_err(ServeError::Import)?;
        tracing::info!(
            entries = config.rate_limits.import.len(),
            written,
            "RL_OVERRIDES_JSON imported"
        );
    }
    // Fail closed: without its switches and limits the gateway does not start.
    controls.reload().await.map_err(ServeError::Controls)?;
    app::domain::gateway::sync::spawn(verifier.clone(), controls.clone());
    crate::jobs::spawn(pool.clone(), verifier.clone(), controls.clone());
    app::auth::password::warm_up()
        .await
        .map_err(|e| ServeError::Bootstrap(e.to_string()))?;

    let passkeys = app::domain::factors::passkey::RelyingParty::for_origin(&config.public_origin)
        .map_err(ServeError::Bootstrap)?;
    if !passkeys.available() {
        tracing::warn!(
            public_origin = %config.public_origin,
            "passkeys are off: browsers offer them only to a site reached by a domain name, and PUBLIC_URL is an IP address; staff can use an authenticator app"
        );
    }
    let end_users = Arc::new(
        config
            .end_users
            .policy(config.mode, &config.data_dir)
            .map_err(ServeError::Bootstrap)?,
    );
    tracing::info!(transport = end_users.mailer.describe(), "end users' mail");
    crate::jobs::spawn_mail_sender(
        pool.clone(),
        verifier.clone(),
        controls.clone(),
        end_users.clone(),
        config.public_origin.clone(),
    );
    let state = AppState {
        passkeys,
        key_policy: config.key_policy,
        jwks_refresh_token: config.internal_jwks_refresh_token.clone().map(Arc::new),
        end_users: end_users.clone(),
        leptos_options,
        pool: pool.clone(),
        security: Arc::new(SecurityPolicy {
            https: config.https,
            public_origin: config.public_origin.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
        }),
        sign_in_policy: SignInPolicy {
            mfa_required: config.mfa_required,
            step_up_secs: i64::from(config.step_up_secs),
            ..SignInPolicy::default()
        },
        verifier: verifier.clone(),
        controls,
        session_keys: Arc::new(web::session_keys::SessionKeys::new(
            config.session_signing_key.expose(),
            config
                .session_signing_key_previous
                .as_ref()
                .map(|k| k.expose()),
        )),
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
    // No longer listed as live: requests to every instance stop waiting for this one.
    if let Err(err) = app::domain::gateway::instances::deregister(&verifier).await {
        tracing::warn!(error = %err, "removing this instance from the instances list failed");
    }
    // Gateway decisions of the last second are still in memory: write them before closing.
    match verifier.ledger().flush().await {
        Ok(flushed) => tracing::info!(events = flushed.events, "gateway audit events written"),
        Err(err) => tracing::error!(error = %err, "writing the last gateway audit events failed"),
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests fail loudly by design.
mod tests {
    use super::hashed_front_end;

    #[test]
    fn a_split_front_end_needs_its_loader_and_manifest() {
        let root = std::env::temp_dir().join(format!("sc-hashes-{}", uuid::Uuid::new_v4()));
        let pkg = root.join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        let hashes = root.join("hash.txt");
        let h = "Pq3yZ1AS_M8lq8YKvCJhdw";
        std::fs::write(
            &hashes,
            format!("js: {h}\nwasm: {h}\ncss: {h}\nmanifest: {h}\nsplit: {h}\n"),
        )
        .unwrap();
        for ext in ["js", "wasm", "css"] {
            std::fs::write(pkg.join(format!("staff_console.{h}.{ext}")), b"x").unwrap();
        }
        std::fs::write(pkg.join(format!("__wasm_split_manifest.{h}.json")), b"{}").unwrap();
        let refused = hashed_front_end(&hashes, &pkg, "staff_console").unwrap_err();
        assert!(
            refused.contains(&format!("__wasm_split.{h}.js")),
            "{refused}"
        );
        std::fs::write(pkg.join(format!("__wasm_split.{h}.js")), b"x").unwrap();
        assert_eq!(hashed_front_end(&hashes, &pkg, "staff_console"), Ok(()));
        // A build without lazy routes names neither.
        std::fs::write(&hashes, format!("js: {h}\nwasm: {h}\ncss: {h}\n")).unwrap();
        assert_eq!(hashed_front_end(&hashes, &pkg, "staff_console"), Ok(()));
        std::fs::remove_dir_all(root).ok();
    }
}
