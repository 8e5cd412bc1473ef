//! `staff-console`: serves the console and gateway, and is the operators' command line.

use clap::{Parser, Subcommand};
use server::config::{Config, DatabaseConfig, ProcessEnv};
use server::{db, logging, serve};
use std::process::ExitCode;
use std::time::Duration;

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

fn config_error(err: &server::config::ConfigError) -> ExitCode {
    tracing::error!(error = %err, "configuration refused");
    eprintln!("staff-console: configuration error: {err}");
    ExitCode::from(EXIT_CONFIG)
}

fn failure(err: &dyn std::error::Error) -> ExitCode {
    let shown = logging::redact(&err.to_string()).into_owned();
    tracing::error!(error = %shown, "stopped");
    eprintln!("staff-console: {shown}");
    ExitCode::FAILURE
}
