//! The session cookie's signing keys (runbook 004): `SESSION_SIGNING_KEY` signs, and during
//! a rotation `SESSION_SIGNING_KEY_PREVIOUS` is still accepted, so rotating the key signs
//! nobody out. Rotating it without the previous key ends every session at once (every
//! cookie then fails its signature): the emergency way to sign everyone out.
//!
//! The session layer (tower-sessions, `signed`) checks one key, and drops a cookie whose
//! signature fails without asking the store, so a forged or stale cookie costs no database
//! query. [`accept_previous`] runs before it: a cookie that fails under the current key but
//! holds under the previous one is re-signed with the current key in the request, and the
//! session layer's answer sets it signed with the current key.

use axum::extract::{Request, State};
use axum::http::{header::COOKIE, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use tower_sessions::cookie::{Cookie, CookieJar, Key};

/// The keys, derived for the cookie's signature from the configured 32-byte secrets.
#[derive(Clone)]
pub struct SessionKeys {
    current: Key,
    previous: Option<Key>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

fn derive(secret: &[u8; 32]) -> Key {
    let derived = app::domain::tokens::pepper::MasterKey::new(*secret)
        .derive(app::auth::session::COOKIE_KEY_PURPOSE);
    Key::from(&derived[..])
}

impl SessionKeys {
    /// The keys from `SESSION_SIGNING_KEY` and, during a rotation, the previous one.
    pub fn new(current: &[u8; 32], previous: Option<&[u8; 32]>) -> Self {
        Self {
            current: derive(current),
            previous: previous.map(derive),
        }
    }

    /// The key new cookies are signed with.
    pub fn current(&self) -> Key {
        self.current.clone()
    }
}

/// The layer's state: the keys and the cookie's name.
#[derive(Clone)]
pub struct Rotation {
    /// The keys.
    pub keys: Arc<SessionKeys>,
    /// The session cookie's name.
    pub name: &'static str,
}

/// Re-signs, in the request, a session cookie signed with the previous key (see the module
/// documentation). Without a previous key, or for any other cookie, nothing changes.
pub async fn accept_previous(
    State(rotation): State<Rotation>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(previous) = &rotation.keys.previous {
        resign(
            req.headers_mut(),
            rotation.name,
            &rotation.keys.current,
            previous,
        );
    }
    next.run(req).await
}

fn resign(headers: &mut HeaderMap, name: &str, current: &Key, previous: &Key) {
    let mut pairs = Vec::new();
    let mut resigned = false;
    for value in headers.get_all(COOKIE) {
        // Read as the session layer reads it (UTF-8, not only visible ASCII); a header that
        // is not UTF-8 is skipped, as it skips it.
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == name && !resigned {
                if let Some(fresh) = under_current(&cookie, name, current, previous) {
                    pairs.push(format!("{name}={fresh}"));
                    resigned = true;
                    continue;
                }
            }
            pairs.push(format!("{}={}", cookie.name(), cookie.value()));
        }
    }
    if !resigned {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&pairs.join("; ")) {
        headers.remove(COOKIE);
        headers.insert(COOKIE, value);
    }
}

/// The cookie's value signed with `current`, when it fails under `current` and holds under
/// `previous`.
fn under_current(cookie: &Cookie<'_>, name: &str, current: &Key, previous: &Key) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(cookie.clone().into_owned());
    if jar.signed(current).get(name).is_some() {
        return None;
    }
    let plain = jar.signed(previous).get(name)?;
    let mut fresh = CookieJar::new();
    fresh
        .signed_mut(current)
        .add(Cookie::new(name.to_owned(), plain.value().to_owned()));
    fresh.get(name).map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(key: &Key, value: &str) -> String {
        let mut jar = CookieJar::new();
        jar.signed_mut(key)
            .add(Cookie::new("sc_session", value.to_owned()));
        jar.get("sc_session")
            .map(|c| c.value().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn a_cookie_of_the_previous_key_is_re_signed_and_others_are_left() {
        let keys = SessionKeys::new(&[7; 32], Some(&[9; 32]));
        let Some(previous) = &keys.previous else {
            panic!("previous key");
        };
        let old = signed(previous, "the-session-id");
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; sc_session={old}"))
                .unwrap_or_else(|e| panic!("{e}")),
        );
        resign(&mut headers, "sc_session", &keys.current, previous);
        let sent = headers
            .get(COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(
            sent,
            format!(
                "theme=dark; sc_session={}",
                signed(&keys.current, "the-session-id")
            )
        );

        // Current-key and forged cookies are untouched (the session layer drops a forgery).
        for value in [signed(&keys.current, "x"), "forged".to_owned()] {
            let mut headers = HeaderMap::new();
            let line = format!("sc_session={value}");
            headers.insert(
                COOKIE,
                HeaderValue::from_str(&line).unwrap_or_else(|e| panic!("{e}")),
            );
            resign(&mut headers, "sc_session", &keys.current, previous);
            assert_eq!(
                headers.get(COOKIE).and_then(|v| v.to_str().ok()),
                Some(line.as_str())
            );
        }
    }
}
