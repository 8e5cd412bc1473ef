//! [`SecretString`]: text that must never reach a log line, an error or a debug dump.

use serde::{Deserialize, Serialize};

/// Text that is a secret: a password as typed, a client key or service token at its one
/// reveal. Its `Debug` prints `[redacted]`, so a `{:?}` anywhere (a tracing field, an
/// `expect` message, a derived `Debug` of a struct holding it, a server function's
/// arguments) cannot leak it; on the server it is wiped from memory when dropped.
///
/// It deserializes from a plain string (`#[serde(transparent)]`), so a server function
/// may take one as an argument; it serializes only so the browser can send it. There is
/// deliberately no `Display` and no `PartialEq`: read it with [`SecretString::expose`],
/// and compare secrets in constant time where they are checked.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that needs it (a hash, the one-time reveal).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(feature = "ssr")]
impl Drop for SecretString {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::SecretString;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretString::new("hunter2 and more");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2 and more");
    }

    #[test]
    fn it_reads_and_writes_as_a_plain_string() {
        let secret: SecretString = serde_json::from_str("\"s3cret\"").expect("json");
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(serde_json::to_string(&secret).expect("json"), "\"s3cret\"");
    }
}
