//! Staff sessions on tower-sessions with the PostgreSQL store: they survive restarts and are
//! shared by every instance.
//!
//! The cookie is HttpOnly and SameSite=Strict; over HTTPS it is also Secure and named with
//! the `__Host-` prefix. Sessions end after 30 idle minutes (the store's expiry, renewed on
//! use) or 12 hours after sign-in, whichever comes first.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;
use uuid::Uuid;

/// Idle timeout: the session expires this long after its last use.
pub const IDLE_TIMEOUT: time::Duration = time::Duration::minutes(30);
/// Absolute timeout: the session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT: time::Duration = time::Duration::hours(12);

const KEY: &str = "staff";

/// What the session cookie's signing key is derived for (from `SESSION_SIGNING_KEY`).
pub const COOKIE_KEY_PURPOSE: &str = "staff-console session cookie signature v1";

/// The session cookie's name.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-sc_session"
    } else {
        "sc_session"
    }
}

/// Who signed in, and when.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SignedIn {
    /// The staff member.
    pub staff_id: Uuid,
    /// When they signed in (unix seconds), for the absolute timeout.
    pub signed_in_at: i64,
    /// The account's session epoch at sign-in; disabling or a password reset bumps it.
    #[serde(default)]
    pub epoch: i32,
    /// The session's row in `staff_sessions` (factor, step-up, ended or not). A session
    /// from before the rows existed has none, and is signed out.
    #[serde(default)]
    pub row: Option<Uuid>,
}

/// A sign-in halfway: the password was right, the second factor is next. Not signed in:
/// nothing but the second-factor form accepts it, and it lapses after [`PENDING_TIMEOUT`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Pending {
    /// The staff member.
    pub staff_id: Uuid,
    /// Their session epoch when the password was checked.
    pub epoch: i32,
    /// When the password was checked (unix seconds).
    pub at: i64,
}

/// How long a correct password waits for its second factor.
pub const PENDING_TIMEOUT: time::Duration = time::Duration::minutes(5);

const PENDING_KEY: &str = "pending";

impl Pending {
    /// Whether the wait for the second factor is over at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() - self.at >= PENDING_TIMEOUT.whole_seconds()
    }
}

impl SignedIn {
    /// Whether the absolute timeout has passed at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        now.unix_timestamp() - self.signed_in_at >= ABSOLUTE_TIMEOUT.whole_seconds()
    }
}

fn internal(err: tower_sessions::session::Error) -> AppError {
    AppError::internal(&err)
}

/// The request's session, when the session layer is installed.
pub async fn from_context() -> Option<Session> {
    leptos_axum::extract::<Session>().await.ok()
}

/// Who is signed in on `session`, if anyone.
pub async fn signed_in(session: &Session) -> Result<Option<SignedIn>, AppError> {
    session.get::<SignedIn>(KEY).await.map_err(internal)
}

/// Starts a signed-in session under a new id, so an id fixed before sign-in is worthless;
/// `row` is its `staff_sessions` row.
pub async fn start(
    session: &Session,
    staff_id: Uuid,
    epoch: i32,
    row: Uuid,
) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    let _ = session.remove_value(PENDING_KEY).await.map_err(internal)?;
    let record = SignedIn {
        staff_id,
        signed_in_at: OffsetDateTime::now_utc().unix_timestamp(),
        epoch,
        row: Some(row),
    };
    session.insert(KEY, record).await.map_err(internal)
}

/// Remembers that `staff_id`'s password was right: the second factor is next. The id is
/// cycled here too, so the half-signed-in session is not one an attacker fixed; whoever
/// was signed in in this browser before is not any more.
pub async fn start_pending(session: &Session, staff_id: Uuid, epoch: i32) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    let _ = session.remove_value(KEY).await.map_err(internal)?;
    let record = Pending {
        staff_id,
        epoch,
        at: OffsetDateTime::now_utc().unix_timestamp(),
    };
    session.insert(PENDING_KEY, record).await.map_err(internal)
}

/// The sign-in waiting for its second factor on `session`, if any (lapsed or not).
pub async fn pending(session: &Session) -> Result<Option<Pending>, AppError> {
    session.get::<Pending>(PENDING_KEY).await.map_err(internal)
}

const CEREMONY_KEY: &str = "passkey_sign_in";

/// Remembers the passkey ceremony this browser's sign-in started: only this browser answers
/// it, and its next one replaces only it.
pub async fn set_sign_in_ceremony(session: &Session, id: Uuid) -> Result<(), AppError> {
    session.insert(CEREMONY_KEY, id).await.map_err(internal)
}

/// The passkey ceremony this browser's sign-in started, if any.
pub async fn sign_in_ceremony(session: &Session) -> Result<Option<Uuid>, AppError> {
    session.get::<Uuid>(CEREMONY_KEY).await.map_err(internal)
}

/// Forgets a sign-in waiting for its second factor (it lapsed, or the account locked).
pub async fn clear_pending(session: &Session) -> Result<(), AppError> {
    session
        .remove_value(PENDING_KEY)
        .await
        .map_err(internal)
        .map(drop)
}

/// Moves a signed-in session under a new id and `epoch` (after a password change ended
/// every other session), keeping its sign-in time: changing a password must not stretch
/// the absolute timeout.
pub async fn renew(session: &Session, signed_in: SignedIn, epoch: i32) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    let record = SignedIn { epoch, ..signed_in };
    session.insert(KEY, record).await.map_err(internal)
}

/// Ends the session: its data and its stored record are deleted.
pub async fn end(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(internal)
}

/// A user agent in two words, browser and system ("Firefox on Linux"), for the sessions
/// lists: enough to tell one's laptop from one's phone, or from a script.
pub fn device(user_agent: &str) -> String {
    let ua = user_agent;
    if ua.trim().is_empty() {
        return "Unknown device".to_owned();
    }
    let browser = if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else if ua.starts_with("curl/") {
        "curl"
    } else {
        // A script or tool: its own first word, cut short.
        return ua
            .split(['/', ' '])
            .next()
            .unwrap_or("Unknown")
            .chars()
            .take(40)
            .collect();
    };
    let system = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") || ua.contains("Macintosh") {
        "macOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        return browser.to_owned();
    };
    format!("{browser} on {system}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_read_as_browser_and_system() {
        assert_eq!(
            device("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            "Firefox on Linux"
        );
        assert_eq!(
            device("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"),
            "Safari on macOS"
        );
        assert_eq!(
            device("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0"),
            "Edge on Windows"
        );
        assert_eq!(
            device("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"),
            "Chrome on Android"
        );
        assert_eq!(device("curl/8.5.0"), "curl");
        assert_eq!(device("python-requests/2.31"), "python-requests");
        assert_eq!(device(""), "Unknown device");
    }

    #[test]
    fn sessions_end_twelve_hours_after_sign_in_however_active() {
        let signed_in = SignedIn {
            staff_id: Uuid::nil(),
            signed_in_at: 1_000_000,
            epoch: 0,
            row: None,
        };
        let at = |secs: i64| OffsetDateTime::from_unix_timestamp(secs).expect("valid time");
        assert!(!signed_in.expired(at(1_000_000 + 12 * 3600 - 1)));
        assert!(signed_in.expired(at(1_000_000 + 12 * 3600)));
    }

    #[test]
    fn the_cookie_is_host_prefixed_over_https() {
        assert_eq!(cookie_name(true), "__Host-sc_session");
        assert_eq!(cookie_name(false), "sc_session");
    }
}
