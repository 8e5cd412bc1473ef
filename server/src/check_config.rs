//! `staff-console check-config`: the environment read exactly as `serve` reads it, every
//! problem at once, and with `--database` what only the database can tell (reachable,
//! schema current, the serving role not the schema owner, the peppers open with this key).
//!
//! Nothing is written: development secrets that `serve` would generate are only noted.

use crate::config::{Config, DevSecrets, Env, Mode};
use crate::db;
use std::fmt::Write as _;
use std::time::Duration;

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    /// What stops `serve` (exit 2).
    pub problems: Vec<String>,
    /// What works but is probably a mistake.
    pub warnings: Vec<String>,
    /// What `serve` would do that the check did not.
    pub notes: Vec<String>,
    /// One line on the configuration that loaded, when it did.
    pub summary: Option<String>,
}

impl Report {
    /// Whether `serve` would start with this configuration.
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as printed: problems, then warnings, then notes, then the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.problems {
            let _ = writeln!(out, "problem: {line}");
        }
        for line in &self.warnings {
            let _ = writeln!(out, "warning: {line}");
        }
        for line in &self.notes {
            let _ = writeln!(out, "note: {line}");
        }
        match (&self.summary, self.problems.len()) {
            (Some(summary), 0) => {
                let _ = writeln!(out, "configuration ok: {summary}");
            }
            (_, n) => {
                let _ = writeln!(
                    out,
                    "configuration refused: {n} problem{}",
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        out
    }
}

/// Reads the configuration from `env`; with `database`, also connects and checks the
/// database (giving up after `patience`).
pub async fn check(env: &impl Env, database: bool, patience: Duration) -> Report {
    let mut report = Report::default();
    let checked = match Config::read(env, DevSecrets::ReadOnly) {
        Ok(checked) => checked,
        Err(errs) => {
            report.problems = errs.all().iter().map(ToString::to_string).collect();
            return report;
        }
    };
    let config = checked.config;
    report.warnings = checked.warnings;
    report.notes = checked.notes;
    report.summary = Some(format!(
        "{} mode, {} served at {}, listening on {}{}",
        match config.mode {
            Mode::Production => "production",
            Mode::Development => "development",
        },
        if config.https { "HTTPS" } else { "HTTP" },
        config.public_origin,
        config.listen_addr,
        if config.trusted_proxies.is_empty() {
            String::new()
        } else {
            format!(
                ", trusting {} proxy range{}",
                config.trusted_proxies.len(),
                if config.trusted_proxies.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )
        }
    ));
    // The front end `serve` would send (a release folder's hashed files, or the site).
    if let Err(err) = crate::serve::site_options(config.mode) {
        report.problems.push(err.to_string());
    }
    if !database {
        report
            .notes
            .push("the database was not contacted (add --database to check it)".into());
        return report;
    }
    check_database(&config, patience, &mut report).await;
    report
}

async fn check_database(config: &Config, patience: Duration, report: &mut Report) {
    let pool = match db::connect(&config.database, patience).await {
        Ok(pool) => pool,
        Err(err) => {
            report
                .problems
                .push(crate::logging::redact(&err.to_string()).into_owned());
            return;
        }
    };
    match db::require_current_schema(&pool).await {
        Ok(()) => {}
        Err(err @ db::DbError::Behind { .. }) if config.auto_migrate => report
            .notes
            .push(format!("{err}; AUTO_MIGRATE will apply them at start")),
        Err(err) => report.problems.push(err.to_string()),
    }
    let role = sqlx::query_as::<_, (String, bool, bool, bool)>(
        "SELECT current_user::text,
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
                pg_has_role(current_user, 'staff_console_app', 'MEMBER'),
                EXISTS (SELECT 1 FROM pg_tables
                         WHERE schemaname = 'public' AND tablename = 'audit_events'
                           AND tableowner = current_user)",
    )
    .fetch_one(&pool)
    .await;
    match role {
        Ok((user, superuser, member, owner)) => {
            let unsafe_role = if superuser {
                Some("a superuser")
            } else if owner {
                Some("the owner of the schema")
            } else {
                None
            };
            match (unsafe_role, config.mode) {
                (Some(what), Mode::Production) if !config.auto_migrate => {
                    report.problems.push(format!(
                        "DATABASE_URL connects as `{user}`, {what}: it could rewrite or truncate the audit log. Serve as a role granted staff_console_app (README, Production)."
                    ));
                }
                (Some(what), _) => report.warnings.push(format!(
                    "DATABASE_URL connects as `{user}`, {what}: fine for development or AUTO_MIGRATE, not for serving in production"
                )),
                (None, _) if !member => report.problems.push(format!(
                    "DATABASE_URL connects as `{user}`, which is not granted staff_console_app: `GRANT staff_console_app TO {user}` as the schema owner"
                )),
                (None, _) => {}
            }
        }
        // A role name that does not exist yet (a new database): the migrations create it.
        Err(err) => report.notes.push(format!(
            "the serving role could not be checked ({}); run `staff-console migrate` first",
            crate::logging::redact(&err.to_string())
        )),
    }
    match app::domain::tokens::pepper::load(&pool, &config.master_key()).await {
        Ok(ring) => report.notes.push(format!(
            "token pepper version {} opens with this ENCRYPTION_KEY",
            ring.current.version
        )),
        Err(app::domain::tokens::pepper::PepperError::NoCurrent) => report
            .notes
            .push("no token pepper yet: `serve` creates the first one".into()),
        Err(err @ app::domain::tokens::pepper::PepperError::Undecryptable(_)) => {
            report.problems.push(format!(
                "ENCRYPTION_KEY: {err}; it is not the key this database was set up with"
            ))
        }
        Err(err) => report.notes.push(format!(
            "the token peppers could not be read ({}); run `staff-console migrate` first",
            crate::logging::redact(&err.to_string())
        )),
    }
    pool.close().await;
}
