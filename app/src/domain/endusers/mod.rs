//! Each tenant's end users (issue 17, runbooks 000 and 004): a small identity service in
//! the gateway. They sign in with a password (and a captcha), get a short access token (a
//! JWT the tenant's active signing key signs) and a refresh token that rotates on every
//! use; reusing a spent one revokes its whole session. Revoking every session of a user or
//! of a tenant moves one revocation epoch, which every instance compares with each access
//! token's `iat`, so the tokens it covers are refused at once at any size.
//!
//! - [`access`]: access tokens and the revocation epochs held in memory;
//! - [`captcha`]: the captcha provider's siteverify client (Cloudflare Turnstile);
//! - [`sessions`]: sign-in and the refresh grant;
//! - [`links`]: magic links and recovery, asked for by email and used once;
//! - [`mail`]: the outgoing queue, held while `emailSendingEnabled` is off, and its sender;
//! - [`ops`]: the console's and the command line's changes (create users, revoke, lock,
//!   force a reset, delete and restore, recovery mail, email domains, mass revocation).

pub mod access;
pub mod captcha;
pub mod links;
pub mod mail;
pub mod ops;
pub mod sessions;

/// The refresh token's prefix (`mf_rt_v1.<id>.<secret>`).
pub const REFRESH_PREFIX: &str = "mf_rt_v1";
/// A spent refresh token used again within this many seconds (parallel tabs) gets the
/// same successor; after it, the use is a reuse and revokes the session.
pub const REFRESH_GRACE_SECS: i64 = 10;
/// Failed sign-ins in a row that lock an account for [`LOCKOUT_SECS`].
pub const MAX_FAILED_SIGN_INS: i32 = 5;
/// How long the lockout lasts.
pub const LOCKOUT_SECS: i64 = 15 * 60;
/// Failed sign-ins per caller (address, IPv6 /64) and tenant in [`THROTTLE_WINDOW_SECS`]
/// before that caller is refused for a while.
pub const THROTTLE_MAX: i64 = 20;
/// The window of [`THROTTLE_MAX`].
pub const THROTTLE_WINDOW_SECS: i64 = 10 * 60;

/// How end users' tokens are issued.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `ACCESS_TOKEN_TTL_SECONDS` (default 300).
    pub access_ttl_secs: i64,
    /// `REFRESH_TOKEN_TTL_DAYS` (default 30).
    pub refresh_ttl_days: i64,
    /// The captcha check.
    pub captcha: captcha::Captcha,
    /// Where recovery and magic-link mail goes.
    pub mailer: std::sync::Arc<mail::Mailer>,
}

impl Policy {
    /// The defaults, with `captcha`.
    pub fn with_captcha(captcha: captcha::Captcha) -> Self {
        Self {
            access_ttl_secs: 300,
            refresh_ttl_days: 30,
            captcha,
            mailer: std::sync::Arc::new(mail::Mailer::unconfigured()),
        }
    }

    /// The same, sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: mail::Mailer) -> Self {
        self.mailer = std::sync::Arc::new(mailer);
        self
    }
}
