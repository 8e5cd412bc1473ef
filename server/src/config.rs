//! Configuration from environment variables, checked once at start.
//!
//! A missing or malformed value stops the server with a message naming the variable.
//! Production mode refuses weak secrets; development mode generates what is missing and
//! keeps it in the data folder, with a loud warning.

use base64::Engine as _;
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use zeroize::Zeroizing;

/// How strictly the server treats its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Local work: missing secrets are generated and kept under the data folder.
    Development,
    /// Real deployments: every secret must be given, and weak ones are refused.
    Production,
}

/// Why the configuration was refused. Each variant names the variable at fault and never
/// echoes a secret's value.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set.
    #[error("{name} is not set. {hint}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// How to set it.
        hint: &'static str,
    },
    /// A variable is set but cannot be used.
    #[error("{name} is malformed: {reason}")]
    Malformed {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret that production mode refuses.
    #[error("{name} is too weak for production: {reason}")]
    Weak {
        /// The variable.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The data folder could not hold a generated development secret.
    #[error("cannot keep a generated {name} in {path}: {reason}")]
    DataDir {
        /// The secret being generated.
        name: &'static str,
        /// Where it was to be written.
        path: String,
        /// The I/O error.
        reason: String,
    },
}

/// The 32-byte key that encrypts secrets at rest (peppers, private signing keys).
///
/// Never printed: `Debug` is redacted and the bytes are wiped when dropped.
#[derive(Clone)]
pub struct EncryptionKey(Zeroizing<[u8; 32]>);

impl EncryptionKey {
    /// The raw key bytes, for the cipher that uses them.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([redacted])")
    }
}

/// A database URL, which may hold a password: shown without it.
#[derive(Clone)]
pub struct DatabaseUrl(Zeroizing<String>);

impl DatabaseUrl {
    /// The full URL, for the connection pool only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::logging::redact(&self.0))
    }
}

/// What every command that touches the database needs.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `DATABASE_URL`.
    pub url: DatabaseUrl,
    /// `DB_MAX_CONNECTIONS`, default 10.
    pub max_connections: u32,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STAFF_CONSOLE_ENV`: `production` (default) or `development`.
    pub mode: Mode,
    /// The database settings.
    pub database: DatabaseConfig,
    /// `ENCRYPTION_KEY`: 32 bytes, base64 or hex.
    pub encryption_key: EncryptionKey,
    /// `PUBLIC_URL`'s origin (`https://console.example.com`), used for HSTS, cookies and
    /// the Origin check. Development default: `http://` + the listen address.
    pub public_origin: String,
    /// Whether the console is served over HTTPS (from `PUBLIC_URL`).
    pub https: bool,
    /// `LEPTOS_SITE_ADDR`: where to listen.
    pub listen_addr: SocketAddr,
    /// `DATA_DIR`, default `.data`: development secrets live here.
    pub data_dir: PathBuf,
    /// `AUTO_MIGRATE`: apply migrations at start. Default on in development, off in production.
    pub auto_migrate: bool,
    /// `SHUTDOWN_GRACE_SECONDS`, default 30: how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
    /// `TRUSTED_PROXIES`: addresses or CIDR ranges of the proxies in front of the server,
    /// whose `X-Forwarded-For` is believed. Empty: the peer address is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The gateway's rate limits.
    pub rate_limits: RateLimitConfig,
    /// `MFA_REQUIRED`, default true: every person must enrol a second factor at their first
    /// sign-in. `false` is refused in production.
    pub mfa_required: bool,
    /// `STEP_UP_SECONDS`, default 600: how long a second factor counts as recent for
    /// dangerous actions.
    pub step_up_secs: u32,
    /// `SESSION_SIGNING_KEY`: 32 bytes, base64 or hex; signs the session cookie.
    pub session_signing_key: EncryptionKey,
    /// `SESSION_SIGNING_KEY_PREVIOUS`: during a rotation, the key replaced; cookies signed
    /// with it are still accepted (and re-signed with the new one).
    pub session_signing_key_previous: Option<EncryptionKey>,
    /// `ENCRYPTION_KEY_PREVIOUS`: during a rotation, the key replaced; secrets still sealed
    /// under it open until `staff-console secrets reseal` moved them.
    pub encryption_key_previous: Option<EncryptionKey>,
    /// `JWKS_MAX_AGE_SECONDS` (default 300, 60 to 86400) and `DELEGATED_TOKEN_TTL_SECONDS`
    /// (default 600, 60 to 900): how long relying services may cache a JWKS (and a staged
    /// key waits before it may sign), and how long a delegated token lives.
    pub key_policy: app::domain::keys::KeyPolicy,
    /// `INTERNAL_JWKS_REFRESH_TOKEN` (at least 32 characters): the bearer token of
    /// `POST /internal/auth/jwks/refresh` (runbook 001). Unset: that route answers 404.
    pub internal_jwks_refresh_token: Option<app::secret::SecretString>,
    /// End users: `ACCESS_TOKEN_TTL_SECONDS` (default 300, 60 to 3600),
    /// `REFRESH_TOKEN_TTL_DAYS` (default 30, 1 to 365), `TURNSTILE_SECRET` and
    /// `TURNSTILE_VERIFY_URL` (default Cloudflare's siteverify).
    pub end_users: EndUserConfig,
}

/// End users' token lifetimes and captcha provider.
#[derive(Debug, Clone)]
pub struct EndUserConfig {
    /// `ACCESS_TOKEN_TTL_SECONDS`.
    pub access_ttl_secs: u32,
    /// `REFRESH_TOKEN_TTL_DAYS`.
    pub refresh_ttl_days: u32,
    /// `TURNSTILE_SECRET`: without it, development skips the captcha (each sign-in says so)
    /// and production refuses sign-ins unless `TURNSTILE_DISABLED` is on.
    pub turnstile_secret: Option<app::secret::SecretString>,
    /// `TURNSTILE_VERIFY_URL`.
    pub turnstile_verify_url: String,
    /// `SMTP_URL` (`smtp://` or `smtps://`; it may hold the credentials).
    pub smtp_url: Option<app::secret::SecretString>,
    /// `SMTP_PASSWORD`, with the user named in `SMTP_URL`.
    pub smtp_password: Option<app::secret::SecretString>,
    /// `MAIL_FROM`, default `no-reply@` the public host (`localhost` for an address).
    pub mail_from: String,
}

impl EndUserConfig {
    /// The policy the gateway runs with: mail through SMTP, or in development without
    /// `SMTP_URL` to `data_dir/outbox`, or nowhere (queued) in production without it.
    pub fn policy(
        &self,
        mode: Mode,
        data_dir: &Path,
    ) -> Result<app::domain::endusers::Policy, String> {
        use app::domain::endusers::mail::Mailer;
        let mailer = match (&self.smtp_url, mode) {
            (Some(url), _) => Mailer::smtp(
                url.expose(),
                self.smtp_password.as_ref().map(|p| p.expose()),
                &self.mail_from,
            )?,
            (None, Mode::Development) => Mailer::outbox(data_dir.join("outbox"), &self.mail_from)?,
            (None, Mode::Production) => Mailer::unconfigured(),
        };
        Ok(app::domain::endusers::Policy {
            access_ttl_secs: i64::from(self.access_ttl_secs),
            refresh_ttl_days: i64::from(self.refresh_ttl_days),
            captcha: app::domain::endusers::captcha::Captcha::new(
                self.turnstile_secret.clone(),
                &self.turnstile_verify_url,
                mode == Mode::Development,
            ),
            mailer: std::sync::Arc::new(mailer),
        })
    }
}

/// The gateway's rate limits: defaults per token owner and per address, and the runbook's
/// `RL_OVERRIDES_JSON` import.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// `RL_ENABLED`, default on: off leaves kill switches and blocks in force but no limits.
    pub enabled: bool,
    /// `RL_OWNER_PER_MINUTE` (default 6000) and `RL_OWNER_BURST` (default 300).
    /// `RL_IP_PER_MINUTE` (default 12000) and `RL_IP_BURST` (default 600).
    pub defaults: app::domain::gateway::controls::state::Defaults,
    /// `RL_OVERRIDES_JSON`: overrides applied at start, parsed.
    pub import: Vec<app::panels::limits::ops::ImportEntry>,
}

impl RateLimitConfig {
    /// Reads the `RL_*` variables.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Self::from_env_all(env).map_err(|mut errs| errs.remove(0))
    }

    /// Like [`RateLimitConfig::from_env`], with every problem (never an empty list).
    fn from_env_all(env: &impl Env) -> Result<Self, Vec<ConfigError>> {
        use app::domain::gateway::controls::{Limit, MAX_BURST, MAX_PER_MINUTE};
        let mut problems = Vec::new();
        let enabled = match env.get("RL_ENABLED").as_deref() {
            None | Some("true" | "1" | "on") => true,
            Some("false" | "0" | "off") => false,
            Some(other) => {
                problems.push(ConfigError::Malformed {
                    name: "RL_ENABLED",
                    reason: format!("`{other}` is not true or false"),
                });
                true
            }
        };
        let defaults = app::domain::gateway::controls::state::Defaults::default();
        let mut number = |name: &'static str, default: u32, max: u32| {
            parse_number(env, name, default, 1..=max).unwrap_or_else(|err| {
                problems.push(err);
                default
            })
        };
        let defaults = app::domain::gateway::controls::state::Defaults {
            owner: Limit {
                per_minute: number(
                    "RL_OWNER_PER_MINUTE",
                    defaults.owner.per_minute,
                    MAX_PER_MINUTE,
                ),
                burst: number("RL_OWNER_BURST", defaults.owner.burst, MAX_BURST),
            },
            ip: Limit {
                per_minute: number("RL_IP_PER_MINUTE", defaults.ip.per_minute, MAX_PER_MINUTE),
                burst: number("RL_IP_BURST", defaults.ip.burst, MAX_BURST),
            },
        };
        let import = match env.get("RL_OVERRIDES_JSON") {
            None => Vec::new(),
            Some(raw) => app::panels::limits::ops::parse_import(&raw).unwrap_or_else(|reason| {
                problems.push(ConfigError::Malformed {
                    name: "RL_OVERRIDES_JSON",
                    reason,
                });
                Vec::new()
            }),
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            enabled,
            defaults,
            import,
        })
    }
}

/// Reads variables through `lookup`, so tests need not touch the process environment.
pub trait Env {
    /// The variable's value, `None` when unset. Empty counts as unset.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name).filter(|v| !v.trim().is_empty())
    }
}

impl DatabaseConfig {
    /// Reads `DATABASE_URL` and `DB_MAX_CONNECTIONS`.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Self::from_env_all(env).map_err(|mut errs| errs.remove(0))
    }

    /// Like [`DatabaseConfig::from_env`], with every problem (never an empty list).
    fn from_env_all(env: &impl Env) -> Result<Self, Vec<ConfigError>> {
        let url = match env.get("DATABASE_URL") {
            None => Err(ConfigError::Missing {
                name: "DATABASE_URL",
                hint: "Set it to a PostgreSQL URL such as postgres://user@host:5432/staff_console (the Makefile's `make run` sets it for you).",
            }),
            Some(url) if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) => {
                Err(ConfigError::Malformed {
                    name: "DATABASE_URL",
                    reason: "it must start with postgres:// or postgresql://".into(),
                })
            }
            Some(url) => Ok(url),
        };
        let max_connections = parse_number(env, "DB_MAX_CONNECTIONS", 10, 1..=1000);
        match (url, max_connections) {
            (Ok(url), Ok(max_connections)) => Ok(Self {
                url: DatabaseUrl(Zeroizing::new(url)),
                max_connections,
            }),
            (url, max) => Err([url.err(), max.err()].into_iter().flatten().collect()),
        }
    }
}

/// Every problem found in one reading of the environment, in the order the variables are
/// read.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// The first problem (there is always one).
    pub fn first(&self) -> Option<&ConfigError> {
        self.0.first()
    }

    /// All of them.
    pub fn all(&self) -> &[ConfigError] {
        &self.0
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(err: ConfigError) -> Self {
        Self(vec![err])
    }
}

/// Problems gathered while reading, so that one bad variable does not hide the next.
struct Problems(Vec<ConfigError>);

impl Problems {
    fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|err| self.0.push(err)).ok()
    }
}

/// What reading the configuration may do to the data folder in development mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevSecrets {
    /// `serve`: a missing development secret is generated and kept.
    Generate,
    /// `check-config`: nothing is written; a missing development secret is reported as a
    /// note and stood in for by a throwaway key.
    ReadOnly,
}

/// A configuration that loaded, with what is worth a look but stops nothing.
#[derive(Debug)]
pub struct Checked {
    /// The configuration `serve` would run with.
    pub config: Config,
    /// Settings that work but are probably not what a production deployment wants.
    pub warnings: Vec<String>,
    /// Things reading would have done (development secrets it would generate).
    pub notes: Vec<String>,
}

impl Config {
    /// `ENCRYPTION_KEY`, with `ENCRYPTION_KEY_PREVIOUS` beside it during a rotation: what
    /// every secret at rest is sealed (current) and opened (either) with.
    pub fn master_key(&self) -> app::domain::tokens::pepper::MasterKey {
        app::domain::tokens::pepper::MasterKey::with_previous(
            *self.encryption_key.expose(),
            self.encryption_key_previous.as_ref().map(|k| *k.expose()),
        )
    }

    /// Reads and checks every variable `serve` uses; the error lists every problem found.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigErrors> {
        Self::read(env, DevSecrets::Generate).map(|checked| checked.config)
    }

    /// Reads the environment exactly as [`Config::from_env`] does and reports every
    /// problem at once: missing, malformed and weak values, each naming its variable and
    /// never echoing a secret. With [`DevSecrets::ReadOnly`] nothing is written anywhere.
    pub fn read(env: &impl Env, secrets: DevSecrets) -> Result<Checked, ConfigErrors> {
        let mut problems = Problems(Vec::new());
        let mut notes = Vec::new();
        // An unreadable mode is reported, and the rest is checked as production would.
        let mode = problems.take(match env.get("STAFF_CONSOLE_ENV").as_deref() {
            None | Some("production") => Ok(Mode::Production),
            Some("development") => Ok(Mode::Development),
            Some(other) => Err(ConfigError::Malformed {
                name: "STAFF_CONSOLE_ENV",
                reason: format!("expected `production` or `development`, got `{other}`"),
            }),
        });
        let strict = mode.unwrap_or(Mode::Production);
        let database = DatabaseConfig::from_env_all(env);
        let database = match database {
            Ok(database) => Some(database),
            Err(errs) => {
                problems.0.extend(errs);
                None
            }
        };

        let listen_raw = env
            .get("LEPTOS_SITE_ADDR")
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen_addr =
            problems.take(
                listen_raw
                    .parse::<SocketAddr>()
                    .map_err(|_| ConfigError::Malformed {
                        name: "LEPTOS_SITE_ADDR",
                        reason: format!("`{listen_raw}` is not an address such as 127.0.0.1:3000"),
                    }),
            );

        let public = problems.take(match env.get("PUBLIC_URL") {
            Some(raw) => parse_public_url(&raw),
            None if strict == Mode::Development => {
                // Listening on every interface: browsers reach it as 127.0.0.1.
                let mut shown = listen_addr.unwrap_or_else(|| ([127, 0, 0, 1], 3000).into());
                if shown.ip().is_unspecified() {
                    shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                Ok((format!("http://{shown}"), false))
            }
            None => Err(ConfigError::Missing {
                name: "PUBLIC_URL",
                hint: "Set it to the address staff use to reach the console, such as https://console.example.com.",
            }),
        });

        let data_dir = PathBuf::from(env.get("DATA_DIR").unwrap_or_else(|| ".data".into()));

        let encryption_key = problems.take(key_setting(
            env,
            KeySetting {
                name: "ENCRYPTION_KEY",
                file: "encryption.key",
                hint: "Set it to 32 random bytes, base64-encoded (`openssl rand -base64 32`). For local work only, STAFF_CONSOLE_ENV=development generates one.",
            },
            strict,
            secrets,
            &data_dir,
            &mut notes,
        ));
        // The session cookie's own key (runbook 004): refused missing or weak in
        // production, and never the ENCRYPTION_KEY (rotating one must not force the other).
        let session_key = problems.take(
            key_setting(
                env,
                KeySetting {
                    name: "SESSION_SIGNING_KEY",
                    file: "session-signing.key",
                    hint: "Set it to 32 random bytes, base64-encoded (`openssl rand -base64 32`), different from ENCRYPTION_KEY. For local work only, STAFF_CONSOLE_ENV=development generates one.",
                },
                strict,
                secrets,
                &data_dir,
                &mut notes,
            )
            .and_then(|key| match &encryption_key {
                Some(encryption) if strict == Mode::Production && encryption.expose() == key.expose() => {
                    Err(ConfigError::Weak {
                        name: "SESSION_SIGNING_KEY",
                        reason: "it is the same as ENCRYPTION_KEY. Give the session cookie a key of its own (`openssl rand -base64 32`).".into(),
                    })
                }
                _ => Ok(key),
            }),
        );
        let session_key_previous = problems.take(match env.get("SESSION_SIGNING_KEY_PREVIOUS") {
            None => Ok(None),
            Some(raw) if raw.trim().is_empty() => Ok(None),
            Some(raw) => parse_key("SESSION_SIGNING_KEY_PREVIOUS", &raw).and_then(|key| {
                // Anyone holding it can make cookies that pass the signature check.
                if strict == Mode::Production {
                    check_strength("SESSION_SIGNING_KEY_PREVIOUS", &key)?;
                }
                if session_key.as_ref().is_some_and(|current| current.expose() == key.expose()) {
                    return Err(ConfigError::Malformed {
                        name: "SESSION_SIGNING_KEY_PREVIOUS",
                        reason: "it is the same as SESSION_SIGNING_KEY: during a rotation it holds the key that was replaced".into(),
                    });
                }
                Ok(Some(key))
            }),
        });

        // ENCRYPTION_KEY rotation (runbook 004): secrets sealed under the key replaced still
        // open until `staff-console secrets reseal` has moved them to the new one.
        let encryption_key_previous = problems.take(match env.get("ENCRYPTION_KEY_PREVIOUS") {
            None => Ok(None),
            Some(raw) if raw.trim().is_empty() => Ok(None),
            Some(raw) => parse_key("ENCRYPTION_KEY_PREVIOUS", &raw).and_then(|key| {
                if encryption_key.as_ref().is_some_and(|current| current.expose() == key.expose()) {
                    return Err(ConfigError::Malformed {
                        name: "ENCRYPTION_KEY_PREVIOUS",
                        reason: "it is the same as ENCRYPTION_KEY: during a rotation it holds the key that was replaced".into(),
                    });
                }
                Ok(Some(key))
            }),
        });

        let auto_migrate = problems.take(match env.get("AUTO_MIGRATE").as_deref() {
            None => Ok(strict == Mode::Development),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(other) => Err(ConfigError::Malformed {
                name: "AUTO_MIGRATE",
                reason: format!("expected true or false, got `{other}`"),
            }),
        });
        let grace = problems.take(parse_number(env, "SHUTDOWN_GRACE_SECONDS", 30, 0..=3600));
        let mfa_required = problems.take(match env.get("MFA_REQUIRED").as_deref() {
            None | Some("true" | "1") => Ok(true),
            Some("false" | "0") if strict == Mode::Development => Ok(false),
            Some("false" | "0") => Err(ConfigError::Malformed {
                name: "MFA_REQUIRED",
                reason: "false is allowed in development only (STAFF_CONSOLE_ENV=development): in production every account needs a second factor".to_owned(),
            }),
            Some(other) => Err(ConfigError::Malformed {
                name: "MFA_REQUIRED",
                reason: format!("expected true or false, got `{other}`"),
            }),
        });
        let step_up_secs = problems.take(parse_number(env, "STEP_UP_SECONDS", 600, 30..=3600));
        let jwks_max_age =
            problems.take(parse_number(env, "JWKS_MAX_AGE_SECONDS", 300, 60..=86_400));
        let token_ttl = problems.take(parse_number(
            env,
            "DELEGATED_TOKEN_TTL_SECONDS",
            600,
            60..=900,
        ));
        let refresh_token = problems.take(match env.get("INTERNAL_JWKS_REFRESH_TOKEN") {
            None => Ok(None),
            Some(token) if token.trim().is_empty() => Ok(None),
            Some(token)
                if token.trim().chars().count() < 32
                    || token.trim().chars().any(char::is_whitespace) =>
            {
                Err(ConfigError::Malformed {
                    name: "INTERNAL_JWKS_REFRESH_TOKEN",
                    reason: "use at least 32 characters without spaces (`openssl rand -base64 32`)"
                        .into(),
                })
            }
            Some(token) => Ok(Some(app::secret::SecretString::new(
                token.trim().to_owned(),
            ))),
        });
        let access_ttl = problems.take(parse_number(
            env,
            "ACCESS_TOKEN_TTL_SECONDS",
            300,
            60..=3600,
        ));
        let refresh_days = problems.take(parse_number(env, "REFRESH_TOKEN_TTL_DAYS", 30, 1..=365));
        let verify_url = problems.take(
            match env
                .get("TURNSTILE_VERIFY_URL")
                .filter(|v| !v.trim().is_empty())
            {
                None => Ok(app::domain::endusers::captcha::TURNSTILE_VERIFY_URL.to_owned()),
                Some(raw) => match url::Url::parse(raw.trim()) {
                    Ok(url) if url.scheme() == "https" => Ok(raw.trim().to_owned()),
                    // The secret travels in it: http only to a stand-in in development.
                    Ok(url) if url.scheme() == "http" && strict == Mode::Development => {
                        Ok(raw.trim().to_owned())
                    }
                    _ => Err(ConfigError::Malformed {
                        name: "TURNSTILE_VERIFY_URL",
                        reason: "expected an https:// URL (http:// only in development): the secret is sent in it".into(),
                    }),
                },
            },
        );
        let smtp_url = problems.take(parse_smtp_url(env.get("SMTP_URL"), strict));
        let mail_from = env
            .get("MAIL_FROM")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                let host = public
                    .as_ref()
                    .and_then(|(origin, _)| url::Url::parse(origin).ok())
                    .and_then(|u| u.domain().map(str::to_owned))
                    .unwrap_or_else(|| "localhost".to_owned());
                format!("no-reply@{host}")
            });
        let end_users = access_ttl
            .zip(refresh_days)
            .zip(verify_url)
            .zip(smtp_url)
            .map(
                |(((access_ttl_secs, refresh_ttl_days), turnstile_verify_url), smtp_url)| {
                    EndUserConfig {
                        access_ttl_secs,
                        refresh_ttl_days,
                        turnstile_secret: env
                            .get("TURNSTILE_SECRET")
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .map(app::secret::SecretString::new),
                        turnstile_verify_url,
                        smtp_url,
                        smtp_password: env
                            .get("SMTP_PASSWORD")
                            .filter(|s| !s.is_empty())
                            .map(app::secret::SecretString::new),
                        mail_from: mail_from.clone(),
                    }
                },
            );
        let key_policy =
            jwks_max_age
                .zip(token_ttl)
                .map(|(max_age, ttl)| app::domain::keys::KeyPolicy {
                    jwks_max_age_secs: i64::from(max_age),
                    token_ttl_secs: i64::from(ttl),
                });
        let trusted_proxies = problems.take(parse_proxies(
            env.get("TRUSTED_PROXIES").as_deref().unwrap_or(""),
        ));
        let rate_limits = match RateLimitConfig::from_env_all(env) {
            Ok(limits) => Some(limits),
            Err(errs) => {
                problems.0.extend(errs);
                None
            }
        };

        let (
            Some(mode),
            Some(database),
            Some(listen_addr),
            Some((public_origin, https)),
            Some(encryption_key),
            Some(auto_migrate),
            Some(grace),
            Some(trusted_proxies),
            Some(rate_limits),
            Some(mfa_required),
            Some(step_up_secs),
            Some(session_signing_key),
            Some(session_signing_key_previous),
            Some(key_policy),
            Some(internal_jwks_refresh_token),
            Some(encryption_key_previous),
            Some(end_users),
        ) = (
            mode,
            database,
            listen_addr,
            public,
            encryption_key,
            auto_migrate,
            grace,
            trusted_proxies,
            rate_limits,
            mfa_required,
            step_up_secs,
            session_key,
            session_key_previous,
            key_policy,
            refresh_token,
            encryption_key_previous,
            end_users,
        )
        else {
            return Err(ConfigErrors(problems.0));
        };
        let config = Self {
            mode,
            database,
            encryption_key,
            encryption_key_previous,
            public_origin,
            https,
            listen_addr,
            data_dir,
            auto_migrate,
            shutdown_grace: Duration::from_secs(u64::from(grace)),
            trusted_proxies,
            rate_limits,
            mfa_required,
            step_up_secs,
            session_signing_key,
            session_signing_key_previous,
            key_policy,
            internal_jwks_refresh_token,
            end_users,
        };
        let warnings = config.warnings();
        Ok(Checked {
            config,
            warnings,
            notes,
        })
    }

    /// Settings that work but are probably a mistake in production.
    fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.mode == Mode::Development {
            out.push(
                "STAFF_CONSOLE_ENV=development: secrets are generated, demo data is created and weak keys are accepted. Never use it in production.".to_owned(),
            );
            if !self.mfa_required {
                out.push(
                    "MFA_REQUIRED=false: second factors are OPTIONAL. An account without one opens with its password alone and is never asked to step up before dangerous actions. Development only.".to_owned(),
                );
            }
            return out;
        }
        if self.end_users.smtp_url.is_none() {
            out.push(
                "SMTP_URL is not set: recovery and magic-link mail is queued but never sent (the Users panel's mail queue shows it). Set it to smtps://user:password@host:465 or smtp://host:587?tls=required.".to_owned(),
            );
        }
        if self.end_users.turnstile_secret.is_none() {
            out.push(
                "TURNSTILE_SECRET is not set: end users' sign-ins are refused with CAPTCHA_VERIFICATION_FAILED unless a tenant's TURNSTILE_DISABLED switch is on. Set it to the Turnstile site's secret key.".to_owned(),
            );
        }
        if self.encryption_key_previous.is_some() {
            out.push(
                "ENCRYPTION_KEY_PREVIOUS is set: secrets sealed under the replaced key still open. Run `staff-console secrets reseal`, then remove it.".to_owned(),
            );
        }
        if self.session_signing_key_previous.is_some() {
            out.push(
                "SESSION_SIGNING_KEY_PREVIOUS is set: cookies signed with the replaced key are still accepted. Remove it once the rotation is done (after 12 hours no session of the old key is left).".to_owned(),
            );
        }
        let local_listener = self.listen_addr.ip().is_loopback();
        if !self.https {
            out.push(format!(
                "PUBLIC_URL is {}: without HTTPS the session cookie is not Secure and no HSTS is sent. Serve the console over HTTPS (see deploy/Caddyfile).",
                self.public_origin
            ));
        }
        if self.https && local_listener && self.trusted_proxies.is_empty() {
            out.push(
                "the server listens on loopback behind what looks like a TLS proxy, but TRUSTED_PROXIES is empty: every client will appear as the proxy's address in the audit log and share one rate-limit bucket. Set TRUSTED_PROXIES to the proxy's address.".to_owned(),
            );
        }
        if self.auto_migrate {
            out.push(
                "AUTO_MIGRATE is on: the serving role must then own the schema. Prefer `staff-console migrate` as the schema owner before a rollout (README, Production).".to_owned(),
            );
        }
        out
    }
}

/// `10.0.0.5, 10.1.0.0/16, ::1`: single addresses or CIDR ranges, comma-separated.
fn parse_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                // Peers are compared in canonical form: `::ffff:10.0.0.5` means 10.0.0.5.
                .map(app::domain::gateway::controls::ratelimit::canonical_net)
                .map_err(|_| ConfigError::Malformed {
                    name: "TRUSTED_PROXIES",
                    reason: format!("`{item}` is neither an address nor a CIDR range"),
                })
        })
        .collect()
}

fn parse_number(
    env: &impl Env,
    name: &'static str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(raw) = env.get(name) else {
        return Ok(default);
    };
    let value = raw
        .trim()
        .parse::<u32>()
        .map_err(|_| ConfigError::Malformed {
            name,
            reason: format!("`{raw}` is not a whole number"),
        })?;
    if !range.contains(&value) {
        return Err(ConfigError::Malformed {
            name,
            reason: format!("{value} is outside {}..={}", range.start(), range.end()),
        });
    }
    Ok(value)
}

/// `https://host[:port]` → (`origin`, is_https). Paths, queries and credentials are refused:
/// the value is compared with browsers' `Origin` headers.
fn parse_public_url(raw: &str) -> Result<(String, bool), ConfigError> {
    let malformed = |reason: &str| ConfigError::Malformed {
        name: "PUBLIC_URL",
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(raw).map_err(|e| malformed(&format!("not a URL ({e})")))?;
    let https = match url.scheme() {
        "https" => true,
        "http" => false,
        _ => return Err(malformed("the scheme must be http or https")),
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(malformed("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(malformed("it must not carry credentials"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(malformed(
            "give the origin only (scheme, host and port), without a path or query",
        ));
    }
    Ok((url.origin().ascii_serialization(), https))
}

/// A 32-byte key setting: its variable, its development file, and what to do when it is
/// missing.
struct KeySetting {
    name: &'static str,
    file: &'static str,
    hint: &'static str,
}

/// Reads a 32-byte key: given (and, in production, strong), or in development kept in the
/// data folder (generated by `serve`; stood in for by a throwaway by `check-config`).
fn key_setting(
    env: &impl Env,
    setting: KeySetting,
    strict: Mode,
    secrets: DevSecrets,
    data_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<EncryptionKey, ConfigError> {
    let KeySetting { name, file, hint } = setting;
    match env.get(name) {
        Some(raw) => parse_key(name, &raw).and_then(|key| {
            if strict == Mode::Production {
                check_strength(name, &key)?;
            }
            Ok(key)
        }),
        None if strict == Mode::Development => match secrets {
            DevSecrets::Generate => dev_secret(data_dir, name, file),
            DevSecrets::ReadOnly => {
                let path = data_dir.join("secrets").join(file);
                match std::fs::read_to_string(&path) {
                    Ok(existing) => parse_key(name, &existing),
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(ConfigError::DataDir {
                            name,
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        })
                    }
                    Err(_) => {
                        notes.push(format!(
                            "{name} is not set: development mode will generate one in {}",
                            path.display()
                        ));
                        let mut key = Zeroizing::new([0u8; 32]);
                        rand::fill(&mut key[..]);
                        Ok(EncryptionKey(key))
                    }
                }
            }
        },
        None => Err(ConfigError::Missing { name, hint }),
    }
}

fn parse_key(name: &'static str, raw: &str) -> Result<EncryptionKey, ConfigError> {
    let raw = raw.trim();
    let bytes = if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex(raw)
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .ok()
    };
    let bytes = Zeroizing::new(bytes.ok_or_else(|| ConfigError::Malformed {
        name,
        reason: "expected 32 bytes as base64 (44 characters) or hex (64 characters)".into(),
    })?);
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| ConfigError::Malformed {
            name,
            reason: format!("expected 32 bytes, got {}", bytes.len()),
        })?;
    Ok(EncryptionKey(Zeroizing::new(key)))
}

fn decode_hex(raw: &str) -> Option<Vec<u8>> {
    (0..raw.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(raw.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Refuses keys that were clearly not drawn at random: repeated or sequential bytes, or too
/// few distinct byte values (32 random bytes have about 30; fewer than 16 is practically
/// impossible by chance).
fn check_strength(name: &'static str, key: &EncryptionKey) -> Result<(), ConfigError> {
    let bytes = key.expose();
    let distinct = bytes.iter().collect::<HashSet<_>>().len();
    let sequential = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    if distinct < 16 || sequential {
        return Err(ConfigError::Weak {
            name,
            reason: "it is not random (too few distinct bytes). Generate one with `openssl rand -base64 32`.".into(),
        });
    }
    Ok(())
}

/// `SMTP_URL`: it holds credentials, so only its shape is checked and it is never echoed.
/// In production the link and the password never cross the network in the clear:
/// `smtps://`, or `smtp://` with `tls=required` (STARTTLS that cannot be stripped).
fn parse_smtp_url(
    raw: Option<String>,
    mode: Mode,
) -> Result<Option<app::secret::SecretString>, ConfigError> {
    let Some(raw) = raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let shaped = url::Url::parse(&raw)
        .map(|u| {
            matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some_and(|h| !h.is_empty())
        })
        .unwrap_or(false);
    if !shaped {
        return Err(ConfigError::Malformed {
            name: "SMTP_URL",
            reason: "expected smtps://[user[:password]@]host[:port] or smtp://host[:port][?tls=required]".into(),
        });
    }
    let encrypted = url::Url::parse(&raw).is_ok_and(|u| {
        u.scheme() == "smtps" || u.query_pairs().any(|(k, v)| k == "tls" && v == "required")
    });
    if mode == Mode::Production && !encrypted {
        return Err(ConfigError::Malformed {
            name: "SMTP_URL",
            reason: "in production, use smtps:// or smtp://…?tls=required: links and the password must not cross the network in the clear".into(),
        });
    }
    Ok(Some(app::secret::SecretString::new(raw)))
}

/// Development only: reads the secret kept under `data_dir/secrets/`, or generates and keeps
/// a new one, warning loudly either way.
fn dev_secret(
    data_dir: &Path,
    name: &'static str,
    file: &str,
) -> Result<EncryptionKey, ConfigError> {
    let dir = data_dir.join("secrets");
    let path = dir.join(file);
    let io_err = |e: std::io::Error| ConfigError::DataDir {
        name,
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(&path) {
        Ok(existing) => {
            tracing::warn!(
                variable = name,
                path = %path.display(),
                "DEVELOPMENT MODE: {name} is not set; using the development key kept in the data folder. Never run development mode in production."
            );
            parse_key(name, &existing)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::fill(&mut key[..]);
            let encoded =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_slice()));
            std::fs::create_dir_all(&dir).map_err(io_err)?;
            write_private(&path, encoded.as_bytes()).map_err(io_err)?;
            tracing::warn!(
                variable = name,
                path = %path.display(),
                "DEVELOPMENT MODE: {name} is not set; generated a new key and kept it in the data folder. Never run development mode in production."
            );
            Ok(EncryptionKey(key))
        }
        Err(e) => Err(io_err(e)),
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    const GOOD_KEY: &str = "q83vEjRWeJq8/xEiM0RVZneImaq7zN3u/wABAgMEBQY=";
    const GOOD_SESSION_KEY: &str = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo=";
    const OTHER_SESSION_KEY: &str =
        "2b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfe";
    const DB: &str = "postgres://app:hunter2@db.internal:5432/console";

    fn production(extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> = vec![
            ("DATABASE_URL", DB.into()),
            ("ENCRYPTION_KEY", GOOD_KEY.into()),
            ("SESSION_SIGNING_KEY", GOOD_SESSION_KEY.into()),
            ("PUBLIC_URL", "https://console.example.com".into()),
        ];
        for (k, val) in extra {
            v.retain(|(name, _)| name != k);
            let name: &'static str = Box::leak((*k).to_owned().into_boxed_str());
            v.push((name, (*val).to_owned()));
        }
        v
    }

    /// The configuration, or the first problem.
    fn load(pairs: Vec<(&'static str, String)>) -> Result<Config, ConfigError> {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Config::from_env(&env(&borrowed)).map_err(|errs| errs.all()[0].clone())
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let errs = Config::from_env(&env(&[
            ("DATABASE_URL", "mysql://x"),
            ("DB_MAX_CONNECTIONS", "lots"),
            ("ENCRYPTION_KEY", zeros.as_str()),
            ("TRUSTED_PROXIES", "10.0.0.1, proxy.internal"),
            ("RL_OWNER_BURST", "0"),
            ("AUTO_MIGRATE", "maybe"),
        ]))
        .expect_err("must refuse");
        let names: Vec<&str> = errs
            .all()
            .iter()
            .map(|e| match e {
                ConfigError::Missing { name, .. }
                | ConfigError::Malformed { name, .. }
                | ConfigError::Weak { name, .. }
                | ConfigError::DataDir { name, .. } => *name,
            })
            .collect();
        assert_eq!(
            names,
            [
                "DATABASE_URL",
                "DB_MAX_CONNECTIONS",
                "PUBLIC_URL",
                "ENCRYPTION_KEY",
                "SESSION_SIGNING_KEY",
                "AUTO_MIGRATE",
                "TRUSTED_PROXIES",
                "RL_OWNER_BURST",
            ]
        );
        assert!(matches!(errs.all()[3], ConfigError::Weak { .. }));
        let shown = errs.to_string();
        assert_eq!(shown.lines().count(), 8, "{shown}");
        assert!(!shown.contains(&zeros), "{shown}");
    }

    #[test]
    fn reading_for_a_check_writes_nothing_and_warns_about_risky_settings() {
        let dir = std::env::temp_dir().join(format!("sc-check-{}", uuid::Uuid::new_v4()));
        let data_dir = dir.to_string_lossy().into_owned();
        let checked = Config::read(
            &env(&[
                ("DATABASE_URL", DB),
                ("STAFF_CONSOLE_ENV", "development"),
                ("DATA_DIR", data_dir.as_str()),
            ]),
            DevSecrets::ReadOnly,
        )
        .expect("loads");
        assert!(!dir.exists(), "a check must not create the data folder");
        // Both keys: ENCRYPTION_KEY and SESSION_SIGNING_KEY.
        assert_eq!(checked.notes.len(), 2, "{:?}", checked.notes);
        assert!(checked.notes.iter().all(|n| n.contains("will generate")));
        assert!(checked.warnings[0].contains("development"));

        // Production over plain HTTP, and a loopback listener behind TLS with no trusted
        // proxy, both work but are flagged.
        let plain = Config::read(
            &env(&[
                ("DATABASE_URL", DB),
                ("ENCRYPTION_KEY", GOOD_KEY),
                ("SESSION_SIGNING_KEY", GOOD_SESSION_KEY),
                ("PUBLIC_URL", "http://console.internal"),
            ]),
            DevSecrets::ReadOnly,
        )
        .expect("loads");
        assert!(plain.warnings.iter().any(|w| w.contains("without HTTPS")));
        let proxied = Config::read(
            &env(&[
                ("DATABASE_URL", DB),
                ("ENCRYPTION_KEY", GOOD_KEY),
                ("SESSION_SIGNING_KEY", GOOD_SESSION_KEY),
                ("PUBLIC_URL", "https://console.example.com"),
            ]),
            DevSecrets::ReadOnly,
        )
        .expect("loads");
        assert!(proxied
            .warnings
            .iter()
            .any(|w| w.contains("TRUSTED_PROXIES")));
        let good = Config::read(
            &env(&[
                ("DATABASE_URL", DB),
                ("ENCRYPTION_KEY", GOOD_KEY),
                ("SESSION_SIGNING_KEY", GOOD_SESSION_KEY),
                ("PUBLIC_URL", "https://console.example.com"),
                ("TRUSTED_PROXIES", "127.0.0.1"),
                ("TURNSTILE_SECRET", "0x4AAAAAAA-site-secret"),
                ("SMTP_URL", "smtps://mailer:pw@smtp.example.com:465"),
            ]),
            DevSecrets::ReadOnly,
        )
        .expect("loads");
        assert!(good.warnings.is_empty(), "{:?}", good.warnings);
        // Without SMTP, mail is queued and never sent: said at start. A garbled URL is
        // refused without echoing it (it holds a password).
        assert!(proxied.warnings.iter().any(|w| w.contains("SMTP_URL")));
        let garbled = Config::read(
            &env(&[
                ("DATABASE_URL", DB),
                ("ENCRYPTION_KEY", GOOD_KEY),
                ("SESSION_SIGNING_KEY", GOOD_SESSION_KEY),
                ("PUBLIC_URL", "https://console.example.com"),
                ("SMTP_URL", "https://user:hunter2@smtp.example.com"),
            ]),
            DevSecrets::ReadOnly,
        )
        .expect_err("garbled SMTP_URL");
        let said = garbled.to_string();
        assert!(
            said.contains("SMTP_URL") && !said.contains("hunter2"),
            "{said}"
        );
        // Without a captcha secret, end users' sign-ins are refused: said at start.
        assert!(proxied
            .warnings
            .iter()
            .any(|w| w.contains("TURNSTILE_SECRET")));
    }

    #[test]
    fn the_session_signing_key_is_required_strong_and_its_own_in_production() {
        let mut pairs = production(&[]);
        pairs.retain(|(k, _)| *k != "SESSION_SIGNING_KEY");
        let err = load(pairs).expect_err("missing key refused");
        assert!(
            matches!(
                err,
                ConfigError::Missing {
                    name: "SESSION_SIGNING_KEY",
                    ..
                }
            ),
            "{err}"
        );
        let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let err = load(production(&[("SESSION_SIGNING_KEY", zeros.as_str())])).expect_err("weak");
        assert!(
            matches!(
                err,
                ConfigError::Weak {
                    name: "SESSION_SIGNING_KEY",
                    ..
                }
            ),
            "{err}"
        );
        let err = load(production(&[("SESSION_SIGNING_KEY", GOOD_KEY)])).expect_err("shared");
        assert!(err.to_string().contains("same as ENCRYPTION_KEY"), "{err}");
        let err = load(production(&[(
            "SESSION_SIGNING_KEY_PREVIOUS",
            GOOD_SESSION_KEY,
        )]))
        .expect_err("previous = current");
        assert!(
            matches!(
                err,
                ConfigError::Malformed {
                    name: "SESSION_SIGNING_KEY_PREVIOUS",
                    ..
                }
            ),
            "{err}"
        );
        let rotating = load(production(&[(
            "SESSION_SIGNING_KEY_PREVIOUS",
            OTHER_SESSION_KEY,
        )]))
        .expect("a rotation loads");
        assert!(rotating.session_signing_key_previous.is_some());
        assert!(load(production(&[]))
            .expect("loads")
            .session_signing_key_previous
            .is_none());
    }

    #[test]
    fn production_config_loads_and_defaults_to_production() {
        let config = load(production(&[])).expect("valid config");
        assert_eq!(config.mode, Mode::Production);
        assert_eq!(config.public_origin, "https://console.example.com");
        assert!(config.https);
        assert!(!config.auto_migrate);
        assert_eq!(config.database.max_connections, 10);
    }

    #[test]
    fn a_missing_value_is_named() {
        let mut pairs = production(&[]);
        pairs.retain(|(k, _)| *k != "ENCRYPTION_KEY");
        let err = load(pairs).expect_err("must refuse");
        assert!(matches!(
            err,
            ConfigError::Missing {
                name: "ENCRYPTION_KEY",
                ..
            }
        ));
        assert!(err.to_string().starts_with("ENCRYPTION_KEY is not set"));

        let err = Config::from_env(&env(&[])).expect_err("must refuse");
        assert!(matches!(
            err.all()[0],
            ConfigError::Missing {
                name: "DATABASE_URL",
                ..
            }
        ));
    }

    #[test]
    fn malformed_values_are_named_without_echoing_secrets() {
        for (name, value) in [
            ("ENCRYPTION_KEY", "c2hvcnQ="),
            ("ENCRYPTION_KEY", "not base64 at all!"),
            ("DATABASE_URL", "mysql://x"),
            ("PUBLIC_URL", "https://console.example.com/path"),
            ("PUBLIC_URL", "ftp://console.example.com"),
            ("LEPTOS_SITE_ADDR", "localhost"),
            ("DB_MAX_CONNECTIONS", "0"),
            ("DB_MAX_CONNECTIONS", "many"),
            ("STAFF_CONSOLE_ENV", "staging"),
            ("AUTO_MIGRATE", "sometimes"),
            ("TRUSTED_PROXIES", "10.0.0.1, not-an-ip"),
        ] {
            let err = load(production(&[(name, value)])).expect_err(value);
            let shown = err.to_string();
            assert!(shown.starts_with(name), "{shown}");
            if name == "ENCRYPTION_KEY" {
                assert!(!shown.contains(value), "{shown}");
            }
        }
    }

    #[test]
    fn production_refuses_weak_keys_but_development_accepts_them() {
        let zeros = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        let counting: Vec<u8> = (0u8..32).collect();
        let counting = base64::engine::general_purpose::STANDARD.encode(counting);
        for weak in [&zeros, &counting] {
            let err = load(production(&[("ENCRYPTION_KEY", weak)])).expect_err("weak key");
            assert!(
                matches!(
                    err,
                    ConfigError::Weak {
                        name: "ENCRYPTION_KEY",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let dev = load(production(&[
            ("ENCRYPTION_KEY", &zeros),
            ("STAFF_CONSOLE_ENV", "development"),
        ]));
        assert!(dev.is_ok());
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let config = load(production(&[(
            "TRUSTED_PROXIES",
            "10.0.0.5, 172.16.0.0/12,::1, ::ffff:10.9.0.0/112",
        )]))
        .expect("valid");
        let shown: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            ["10.0.0.5/32", "172.16.0.0/12", "::1/128", "10.9.0.0/16"]
        );
        assert!(load(production(&[]))
            .expect("valid")
            .trusted_proxies
            .is_empty());
    }

    #[test]
    fn hex_keys_are_accepted() {
        // The same 32 bytes as GOOD_KEY, written in hex.
        let hex = "abcdef123456789abcff112233445566778899aabbccddeeff00010203040506";
        let config = load(production(&[("ENCRYPTION_KEY", hex)])).expect("hex key");
        let base64 = load(production(&[])).expect("base64 key");
        assert_eq!(
            config.encryption_key.expose(),
            base64.encryption_key.expose()
        );
    }

    #[test]
    fn development_generates_a_key_once_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("sc-config-{}", uuid::Uuid::new_v4()));
        let data_dir = dir.to_string_lossy().into_owned();
        let pairs = [
            ("DATABASE_URL", DB),
            ("STAFF_CONSOLE_ENV", "development"),
            ("DATA_DIR", data_dir.as_str()),
        ];
        let first = Config::from_env(&env(&pairs)).expect("generates");
        let second = Config::from_env(&env(&pairs)).expect("reuses");
        assert_eq!(
            first.encryption_key.expose(),
            second.encryption_key.expose()
        );
        assert_eq!(first.public_origin, "http://127.0.0.1:3000");
        assert!(first.auto_migrate);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("secrets/encryption.key"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = load(production(&[])).expect("valid config");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains(GOOD_KEY), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
