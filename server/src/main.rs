//! `staff-console`: serves the console and gateway, and is the operators' command line.

use app::auth::{Actor, Role};
use app::error::AppError;
use app::panels::staff::ops;
use app::secret::SecretString;
use clap::{Parser, Subcommand};
use server::config::{Config, DatabaseConfig, ProcessEnv};
use server::{db, logging, serve};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "staff-console",
    version,
    about = "Incident-containment console for the agent API platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console and the gateway (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Read the environment as `serve` would and print every problem at once (exit 0 when
    /// `serve` would start, 2 when not). Touches nothing, and contacts the database only
    /// with --database.
    CheckConfig {
        /// Also connect: schema current, serving role, peppers open with ENCRYPTION_KEY.
        #[arg(long)]
        database: bool,
    },
    /// The runbook's smoke test: call the gateway's /agent/v1/whoami with a token and say
    /// what happened (exit 0 when accepted, 1 when refused or unreachable).
    Smoke {
        /// The token; `-` reads it from standard input (keeps it out of shell history).
        /// Default: the STAFF_CONSOLE_PAT environment variable.
        #[arg(long)]
        pat: Option<String>,
        /// The console's address.
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
        /// Also exchange the token for a delegated token (the tenant's token endpoint) and
        /// call whoami with that.
        #[arg(long)]
        delegated: bool,
    },
    /// Manage staff accounts (audited as the command line).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Work on the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage the service tokens other services read `/api/v1/switches` with.
    ServiceToken {
        #[command(subcommand)]
        command: ServiceTokenCommand,
    },
    /// Create and list tenants (audited as the command line).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Freeze high-risk operations (runbook 001), or lift the freeze.
    Freeze {
        #[command(subcommand)]
        command: FreezeCommand,
    },
    /// Secrets at rest across an ENCRYPTION_KEY rotation (runbook 004).
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Say how many peppers, signing keys and TOTP secrets are sealed under
    /// ENCRYPTION_KEY and under ENCRYPTION_KEY_PREVIOUS (exit 1 while any is on the
    /// previous key).
    Status,
    /// Re-seal everything still under ENCRYPTION_KEY_PREVIOUS under ENCRYPTION_KEY, a
    /// batch per transaction (audited as `secrets.resealed`); safe to stop and run again.
    Reseal,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant with its first active signing key. Needs the server's
    /// configuration: the key is sealed under ENCRYPTION_KEY.
    Create {
        /// Its slug: 2 to 40 lowercase letters, digits and hyphens, starting with a letter.
        #[arg(long)]
        slug: String,
        /// Its display name.
        #[arg(long)]
        name: String,
        /// How long its audit events are kept, in months (1, 3, 6, 12, 24 or 84).
        #[arg(long, default_value = "12")]
        retention_months: String,
        /// The longest lifetime of its personal access tokens, in days.
        #[arg(long, default_value = "90")]
        max_token_days: String,
        /// Audiences its delegated tokens may be issued for, comma-separated.
        #[arg(long, default_value = "agent-api")]
        audiences: String,
        /// Its signing keys' algorithm: ES256 or EdDSA.
        #[arg(long, default_value = "ES256")]
        algorithm: String,
    },
    /// List every tenant with its settings and active key.
    List,
    /// Create an end user of a tenant; the password is read like `staff create`'s.
    CreateUser {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Revoke every session of every end user of a tenant at once (runbook 000 §1).
    RevokeSessions {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum FreezeCommand {
    /// Turn a freeze on: operations that add access or remove a protection are refused.
    Start {
        /// Why (recorded).
        #[arg(long)]
        reason: String,
        /// Lift it by itself after this many minutes (1 to 10080).
        #[arg(long)]
        expires_minutes: Option<u32>,
    },
    /// Lift the freeze.
    Lift {
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain and print the first event that does not hold, if any (exit 0
    /// when intact, 1 when broken). The run is recorded and audited.
    Verify {
        /// First event time to check (RFC 3339 or a UTC date); default the first event.
        #[arg(long)]
        from: Option<String>,
        /// Last event time to check; default the chain head.
        #[arg(long)]
        to: Option<String>,
    },
    /// Drop the audit partitions whose retention has passed (the server also does this
    /// every hour). Each drop is audited.
    Retention,
}

#[derive(Subcommand)]
enum ServiceTokenCommand {
    /// Mint a token; it is printed once.
    Create {
        /// A name saying which service holds it.
        #[arg(long)]
        name: String,
    },
    /// Revoke a token by name; its next call is refused.
    Revoke {
        /// Its name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Create a staff member. With --generate-password, a one-time password is printed once;
    /// otherwise the password comes from STAFF_CONSOLE_PASSWORD, else a prompt.
    Create {
        /// Sign-in email.
        #[arg(long)]
        email: String,
        /// viewer, auditor, operator, incident_commander or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Shown name (default: the part of the email before @).
        #[arg(long)]
        name: Option<String>,
        /// Generate a one-time password instead of reading one.
        #[arg(long)]
        generate_password: bool,
    },
    /// Set a new password (read like `create`) and clear any lockout.
    ResetPassword {
        /// Whose.
        #[arg(long)]
        email: String,
        /// Generate a one-time password instead of reading one.
        #[arg(long)]
        generate_password: bool,
    },
    /// Disable an account; its sessions end at once.
    Disable {
        /// Whose.
        #[arg(long)]
        email: String,
    },
    /// Delete someone's second factors (a lost phone, the last admin locked out); their
    /// sessions end and their next sign-in sets up an authenticator app again.
    ResetFactors {
        /// Whose.
        #[arg(long)]
        email: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
    /// End every staff session at once, everyone's (runbook 004: sessions believed stolen
    /// in bulk); each session is refused at its next request, on every instance.
    EndAllSessions {
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    Role::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role `{raw}`; use one of {}", names.join(", "))
    })
}

/// The password for a CLI command: the environment, a prompt, or none (generate one).
fn read_password(generate: bool) -> Result<Option<SecretString>, String> {
    if generate {
        return Ok(None);
    }
    if let Ok(given) = std::env::var("STAFF_CONSOLE_PASSWORD") {
        return Ok(Some(SecretString::new(given)));
    }
    if !std::io::stdin().is_terminal() {
        return Err("no password: set STAFF_CONSOLE_PASSWORD, run in a terminal, or pass --generate-password".into());
    }
    let first =
        SecretString::new(rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?);
    let again =
        SecretString::new(rpassword::prompt_password("Repeat it: ").map_err(|e| e.to_string())?);
    if first.expose() != again.expose() {
        return Err("the two passwords differ".into());
    }
    Ok(Some(first))
}

/// The command line's actor, over a fresh pool.
async fn command_line_actor() -> Result<(sqlx::PgPool, Actor), String> {
    let config = DatabaseConfig::from_env(&ProcessEnv).map_err(|e| e.to_string())?;
    let pool = db::connect(&config, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let actor = Actor::command_line_unchecked(pool.clone(), &user);
    Ok((pool, actor))
}

fn census_report(census: &app::domain::secrets::Census) -> String {
    let line = |name: &str, c: &app::domain::secrets::Count| {
        format!(
            "{name}: {} on ENCRYPTION_KEY, {} on ENCRYPTION_KEY_PREVIOUS{}",
            c.current,
            c.previous,
            if c.unopened > 0 {
                format!(", {} opening under neither", c.unopened)
            } else {
                String::new()
            }
        )
    };
    let mut out = [
        line("token peppers", &census.peppers),
        line("signing keys", &census.signing_keys),
        line("TOTP secrets", &census.totp),
    ]
    .join("\n");
    let recovery = census.recovery_note();
    if !recovery.is_empty() {
        out.push_str(&format!(
            "\nrecovery codes{}",
            recovery.replacen(';', ":", 1)
        ));
    }
    out
}

async fn secrets_command(command: SecretsCommand) -> Result<String, String> {
    let (pool, actor) = command_line_actor().await?;
    let result = async {
        let master = encryption_key(&pool).await?;
        let census = app::domain::secrets::census(&pool, &master)
            .await
            .map_err(|e| e.to_string())?;
        match command {
            SecretsCommand::Status => {
                let report = census_report(&census);
                if census.on_previous() > 0 || census.unopened().is_some() {
                    Err(format!("{report}\nrun `staff-console secrets reseal`"))
                } else {
                    Ok(report)
                }
            }
            SecretsCommand::Reseal => {
                let done = app::domain::secrets::reseal(&actor, &pool, &master, |kind, n| {
                    eprintln!("re-sealed {n} of {kind}");
                })
                .await
                .map_err(|e| e.to_string())?;
                let after = app::domain::secrets::census(&pool, &master)
                    .await
                    .map_err(|e| e.to_string())?;
                let summary = format!(
                    "re-sealed {} token pepper(s), {} signing key(s), {} TOTP secret(s){}\n{}",
                    done.peppers,
                    done.signing_keys,
                    done.totp,
                    if done.skipped > 0 {
                        format!("; {} changed meanwhile: run it again", done.skipped)
                    } else {
                        String::new()
                    },
                    census_report(&after)
                );
                if after.on_previous() > 0 || after.unopened().is_some() {
                    Err(format!("{summary}\nsome secrets are left: run it again"))
                } else {
                    Ok(format!(
                        "{summary}\nnothing is sealed under ENCRYPTION_KEY_PREVIOUS any more{}",
                        if after.recovery_staff_previous + after.recovery_staff_unknown == 0 {
                            ": remove it from the environment"
                        } else {
                            ""
                        }
                    ))
                }
            }
        }
    }
    .await;
    pool.close().await;
    result
}

async fn service_token_command(command: ServiceTokenCommand) -> Result<String, String> {
    use app::domain::gateway::controls::service_token;
    let (pool, actor) = command_line_actor().await?;
    let result = match command {
        ServiceTokenCommand::Create { name } => service_token::mint(&actor, &name)
            .await
            .map(|token| format!("service token “{name}” (shown once): {}", token.expose())),
        ServiceTokenCommand::Revoke { name } => service_token::revoke(&actor, &name)
            .await
            .map(|()| format!("service token “{name}” revoked")),
    };
    pool.close().await;
    result.map_err(|e| e.to_string())
}

async fn tenant_command(command: TenantCommand) -> Result<String, String> {
    use app::panels::tenants::{ops, NewTenantForm};
    let (pool, actor) = command_line_actor().await?;
    let result = match command {
        TenantCommand::Create {
            slug,
            name,
            retention_months,
            max_token_days,
            audiences,
            algorithm,
        } => {
            let form = NewTenantForm {
                slug,
                name,
                retention_months,
                max_token_days,
                audiences,
                algorithm,
            };
            match encryption_key(&pool).await {
                Ok(master) => ops::create(&actor, &master, &form)
                    .await
                    .map(|(tenant, kid)| {
                        format!("tenant “{}” created; its active signing key is {kid}", tenant.slug)
                    })
                    .map_err(|e| e.to_string()),
                Err(err) => Err(err),
            }
        }
        TenantCommand::CreateUser { tenant, email } => match read_password(false) {
            Ok(Some(password)) => {
                app::domain::endusers::ops::create_user(&actor, &tenant, &email, password.expose())
                    .await
                    .map(|id| format!("end user {id} created in tenant “{tenant}”"))
                    .map_err(|e| e.to_string())
            }
            Ok(None) => Err("no password given".into()),
            Err(err) => Err(err),
        },
        TenantCommand::RevokeSessions { tenant, reason } => {
            app::domain::endusers::ops::revoke_tenant_sessions(&actor, &tenant, &reason, &tenant)
                .await
                .map(|live| format!("every session of tenant “{tenant}” is revoked ({live} were live)"))
                .map_err(|e| e.to_string())
        }
        TenantCommand::List => ops::list(&actor)
            .await
            .map(|tenants| {
                let mut out = String::from("slug\tname\tretention_months\tmax_token_days\taudiences\talgorithm\tactive_kid");
                for t in tenants {
                    out.push_str(&format!(
                        "\n{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        t.slug,
                        t.name,
                        t.audit_retention_months,
                        t.max_token_lifetime_days,
                        t.allowed_audiences.join(","),
                        t.signing_algorithm,
                        t.active_kid.as_deref().unwrap_or("-"),
                    ));
                }
                out
            })
            .map_err(|e| e.to_string()),
    };
    pool.close().await;
    result
}

/// The server's ENCRYPTION_KEY, checked against the database before anything is sealed
/// under it: a key the server cannot open would stop it at its next start.
async fn encryption_key(
    pool: &sqlx::PgPool,
) -> Result<app::domain::tokens::pepper::MasterKey, String> {
    let config = Config::from_env(&ProcessEnv).map_err(|e| e.to_string())?;
    let master = config.master_key();
    app::domain::tokens::pepper::load(pool, &master)
        .await
        .map_err(|e| format!("ENCRYPTION_KEY does not match this database: {e}"))?;
    Ok(master)
}

async fn freeze_command(command: FreezeCommand) -> Result<String, String> {
    use app::panels::freeze::{ops, CONFIRM_LIFT};
    let (pool, actor) = command_line_actor().await?;
    let result = match command {
        FreezeCommand::Start {
            reason,
            expires_minutes,
        } => {
            let minutes = expires_minutes.map(|m| m.to_string()).unwrap_or_default();
            ops::start(&actor, &reason, &minutes).await.map(|freeze| {
                let until = freeze
                    .expires_at
                    .map(|at| {
                        format!(
                            "; it lifts by itself at {}",
                            app::components::time::utc_minutes(at)
                        )
                    })
                    .unwrap_or_default();
                format!("high-risk operations are frozen{until}")
            })
        }
        FreezeCommand::Lift { reason } => ops::lift(&actor, &reason, CONFIRM_LIFT)
            .await
            .map(|()| "the freeze is lifted".to_owned()),
    };
    pool.close().await;
    result.map_err(|e| e.to_string())
}

async fn audit_retention() -> Result<String, String> {
    let (pool, actor) = command_line_actor().await?;
    let result = app::domain::audit::retention::ensure_partitions(&pool)
        .await
        .map_err(|e| e.to_string());
    let dropped = match result {
        Ok(()) => app::domain::audit::retention::apply(&actor)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    pool.close().await;
    let dropped = dropped?;
    if dropped.is_empty() {
        return Ok("audit retention: no partition is due".into());
    }
    let lines: Vec<String> = dropped
        .iter()
        .map(|d| match d.seqs {
            Some((first, last)) => format!(
                "dropped {}: {} events ({first} to {last})",
                d.partition, d.removed
            ),
            None => format!("dropped {}: empty", d.partition),
        })
        .collect();
    Ok(lines.join("\n"))
}

async fn audit_command(command: AuditCommand) -> Result<String, String> {
    use app::domain::audit::chain;
    let (from, to) = match command {
        AuditCommand::Verify { from, to } => (from, to),
        AuditCommand::Retention => return audit_retention().await,
    };
    let parse = |raw: Option<String>, field| {
        raw.map(|r| chain::parse_time(&r, field))
            .transpose()
            .map_err(|e| format!("--{field}: {e}"))
    };
    let (from, to) = (parse(from, "from")?, parse(to, "to")?);
    let (pool, actor) = command_line_actor().await?;
    let (from_seq, to_seq) = chain::range(&pool, from, to)
        .await
        .map_err(|e| e.to_string())?;
    let started_at = time::OffsetDateTime::now_utc();
    let clock = std::time::Instant::now();
    eprintln!("staff-console: verifying audit events {from_seq} to {to_seq}");
    let total = to_seq - from_seq + 1;
    let report = chain::verify(&pool, from_seq, to_seq, |done| {
        eprintln!("  … {done} of about {total} checked");
    })
    .await
    .map_err(|e| e.to_string())?;
    let took = clock.elapsed().as_secs_f64();
    if report.by_database > 0 {
        eprintln!(
            "staff-console: warning: {} events matched only the database's audit_canonical(), not the text built here: check that the function was not redefined",
            report.by_database
        );
    }
    chain::record(&actor, &report, started_at)
        .await
        .map_err(|e| e.to_string())?;
    pool.close().await;
    let anchor: String = report
        .last_hash
        .iter()
        .flatten()
        .map(|b| format!("{b:02x}"))
        .collect();
    match report.broken {
        None => Ok(format!(
            "audit chain intact: {} events checked ({from_seq} to {to_seq}) in {took:.1} s; \
             hash of event {to_seq}: {anchor} (keep it outside the database to prove later \
             that nothing up to it was rewritten)",
            report.checked
        )),
        Some((seq, problem)) => Err(format!(
            "audit chain BROKEN at event {seq}: {problem} ({} events before it hold)",
            report.checked
        )),
    }
}

async fn staff_command(command: StaffCommand) -> Result<String, String> {
    let (pool, actor) = command_line_actor().await?;
    let shown = |e: AppError| e.to_string();
    let result = match command {
        StaffCommand::Create {
            email,
            role,
            name,
            generate_password,
        } => {
            let password = read_password(generate_password)?;
            let name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let (_, secret) = ops::create(
                &actor,
                &email,
                &name,
                role,
                password.as_ref().map(SecretString::expose),
            )
            .await
            .map_err(shown)?;
            let mut out = format!("created {} ({})", secret.email, role.as_str());
            if password.is_none() {
                out.push_str(&format!(
                    "\none-time password (shown once): {}",
                    secret.password
                ));
            }
            out
        }
        StaffCommand::ResetPassword {
            email,
            generate_password,
        } => {
            let password = read_password(generate_password)?;
            let id = ops::id_by_email(&actor, &email).await.map_err(shown)?;
            let secret =
                ops::reset_password(&actor, id, password.as_ref().map(SecretString::expose))
                    .await
                    .map_err(shown)?;
            let mut out = format!("password reset for {}", secret.email);
            if password.is_none() {
                out.push_str(&format!(
                    "\none-time password (shown once): {}",
                    secret.password
                ));
            }
            out
        }
        StaffCommand::EndAllSessions { reason } => {
            let (people, sessions) = ops::end_everyones_sessions(&actor, &reason)
                .await
                .map_err(shown)?;
            format!("every staff session has ended ({sessions} live, of {people} people); everyone signs in again")
        }
        StaffCommand::Disable { email } => {
            let id = ops::id_by_email(&actor, &email).await.map_err(shown)?;
            ops::set_active(&actor, id, false).await.map_err(shown)?;
            format!("disabled {email}; their sessions have ended")
        }
        StaffCommand::ResetFactors { email, reason } => {
            let id = ops::id_by_email(&actor, &email).await.map_err(shown)?;
            let secret = ops::reset_factors(&actor, id, &reason)
                .await
                .map_err(shown)?;
            format!(
                "second factors of {email} reset; their sessions have ended. Hand them this one-time password (shown once): {}\ntheir next sign-in replaces it, then sets up an authenticator app",
                secret.password
            )
        }
    };
    pool.close().await;
    Ok(result)
}

/// Exit code for configuration errors, distinct from runtime failures.
const EXIT_CONFIG: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let config = match Config::from_env(&ProcessEnv) {
                Ok(config) => config,
                Err(err) => return config_error(&err),
            };
            match serve::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => failure(&err),
            }
        }
        Command::Staff { command } => report(staff_command(command).await),
        Command::ServiceToken { command } => report(service_token_command(command).await),
        Command::Freeze { command } => report(freeze_command(command).await),
        Command::Secrets { command } => report(secrets_command(command).await),
        Command::Tenant { command } => report(tenant_command(command).await),
        Command::Audit { command } => report(audit_command(command).await),
        Command::Smoke {
            pat,
            url,
            delegated,
        } => smoke(pat, url, delegated).await,
        Command::CheckConfig { database } => {
            let report =
                server::check_config::check(&ProcessEnv, database, Duration::from_secs(5)).await;
            print!("{}", report.render());
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_CONFIG)
            }
        }
        Command::Migrate => {
            let config = match DatabaseConfig::from_env(&ProcessEnv) {
                Ok(config) => config,
                Err(err) => return config_error(&err),
            };
            let result = async {
                let pool = db::connect(&config, Duration::from_secs(10)).await?;
                db::migrate(&pool).await?;
                pool.close().await;
                Ok::<_, db::DbError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    println!("staff-console: migrations applied");
                    ExitCode::SUCCESS
                }
                Err(err) => failure(&err),
            }
        }
    }
}

async fn smoke(pat: Option<String>, url: String, delegated: bool) -> ExitCode {
    let token = match pat.as_deref() {
        Some("-") => {
            let mut line = Zeroizing::new(String::new());
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("staff-console smoke: cannot read the token from standard input");
                return ExitCode::from(EXIT_CONFIG);
            }
            line
        }
        Some(given) => Zeroizing::new(given.to_owned()),
        None => Zeroizing::new(std::env::var("STAFF_CONSOLE_PAT").unwrap_or_default()),
    };
    let report = tokio::task::spawn_blocking(move || {
        if delegated {
            server::smoke::run_delegated(&url, &token)
        } else {
            server::smoke::run(&url, &token)
        }
    })
    .await;
    match report {
        Ok(Ok(report)) => {
            for line in &report.lines {
                println!("smoke: {line}");
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Err(err @ server::smoke::SmokeError::Unreachable { .. })) => {
            eprintln!("staff-console smoke: {err}");
            ExitCode::FAILURE
        }
        Ok(Err(err)) => {
            eprintln!("staff-console smoke: {err}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(err) => {
            eprintln!("staff-console smoke: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's outcome; exit 0 on success, 1 on failure.
fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(message) => {
            println!("staff-console: {message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("staff-console: {message}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(err: &dyn std::fmt::Display) -> ExitCode {
    let shown = err.to_string();
    for line in shown.lines() {
        tracing::error!(error = %line, "configuration refused");
        eprintln!("staff-console: configuration error: {line}");
    }
    ExitCode::from(EXIT_CONFIG)
}

fn failure(err: &dyn std::error::Error) -> ExitCode {
    let shown = logging::redact(&err.to_string()).into_owned();
    tracing::error!(error = %shown, "stopped");
    eprintln!("staff-console: {shown}");
    ExitCode::FAILURE
}
