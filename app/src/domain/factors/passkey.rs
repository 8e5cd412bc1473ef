//! Passkeys (WebAuthn) as a second factor: the relying party built from `PUBLIC_URL`, the
//! names people give their passkeys, and what a refused ceremony tells the person.
//! `webauthn-rs` does the checking (origin, RP id hash, challenge, signature, user
//! verification, counter); the ceremonies' state is kept in PostgreSQL (`auth::passkey`).

use crate::error::AppError;
use std::sync::Arc;
use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder, WebauthnError};

/// How long a ceremony waits for the browser's answer (what the browser is told, too).
pub const CEREMONY_SECS: u64 = 300;

/// How many passkeys one person may have.
pub const MAX_PER_PERSON: i64 = 20;

/// The longest name of a passkey, in characters.
pub const MAX_NAME: usize = 100;

/// Why passkeys are off on this server, when they are.
pub const UNAVAILABLE_ON_IP: &str = "Passkeys are not available on this server: browsers offer them only to sites reached by a domain name, and PUBLIC_URL is an IP address. Use an authenticator app.";

/// The relying party: this console, as browsers know it (`PUBLIC_URL`'s origin, its host as
/// the RP id). Absent where `PUBLIC_URL` names an IP address, which browsers refuse as an
/// RP id. Cheap to clone.
#[derive(Clone)]
pub struct RelyingParty(Option<Arc<Webauthn>>);

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RelyingParty")
            .field(&self.0.as_ref().map(|w| w.get_allowed_origins().to_vec()))
            .finish()
    }
}

impl RelyingParty {
    /// The relying party of the console at `origin` (`https://console.example.com`), or
    /// none (see [`UNAVAILABLE_ON_IP`]) when its host is an IP address. An origin that is
    /// not a URL is a configuration error.
    pub fn for_origin(origin: &str) -> Result<Self, String> {
        let url = Url::parse(origin).map_err(|e| format!("`{origin}` is not a URL ({e})"))?;
        let Some(domain) = url.domain().map(str::to_owned) else {
            return Ok(Self(None));
        };
        let webauthn = WebauthnBuilder::new(&domain, &url)
            .and_then(|b| {
                b.rp_name("staff-console")
                    .timeout(std::time::Duration::from_secs(CEREMONY_SECS))
                    .build()
            })
            .map_err(|e| format!("passkeys cannot use `{origin}`: {e}"))?;
        Ok(Self(Some(Arc::new(webauthn))))
    }

    /// No passkeys on this server.
    pub fn unavailable() -> Self {
        Self(None)
    }

    /// Whether passkeys can be used here.
    pub fn available(&self) -> bool {
        self.0.is_some()
    }

    /// The WebAuthn checks, or the message saying passkeys are off here.
    pub fn webauthn(&self) -> Result<&Webauthn, AppError> {
        self.0
            .as_deref()
            .ok_or_else(|| AppError::validation("passkey", UNAVAILABLE_ON_IP))
    }

    /// The relying party in Leptos context (the server provides it per request), or none.
    pub fn from_context() -> Self {
        leptos::prelude::use_context::<Self>().unwrap_or_else(Self::unavailable)
    }
}

/// Reads a passkey's name: trimmed, 1 to [`MAX_NAME`] characters, no control characters.
pub fn check_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::validation(
            "name",
            "Name the passkey, such as the device or password manager it is in (\"Work laptop\").",
        ));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::validation(
            "name",
            format!("Use at most {MAX_NAME} characters for the name."),
        ));
    }
    // Control characters, and the invisible ones that reorder or hide text (bidi
    // overrides and isolates, zero-width characters): a name must read as it is.
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
    };
    if name.chars().any(invisible) {
        return Err(AppError::validation(
            "name",
            "Use letters, digits, spaces and punctuation only in the name.",
        ));
    }
    Ok(name.to_owned())
}

/// Why a passkey's answer was refused: the audit code and the message beside the button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The credential is not one of the person's passkeys.
    UnknownCredential,
    /// The browser answered for another site (the client data's origin is not
    /// `PUBLIC_URL`'s), or an RP id hash of another site.
    WrongOrigin,
    /// The challenge was answered already (on any instance), or never issued here.
    ChallengeUsed,
    /// The challenge lapsed before the answer came.
    ChallengeExpired,
    /// Anything else the checks refused: the signature, the user verification, a counter
    /// that went backwards, the wrong challenge.
    Invalid,
}

impl Refusal {
    /// The audit event's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownCredential => "UNKNOWN_PASSKEY",
            Self::WrongOrigin => "PASSKEY_WRONG_ORIGIN",
            Self::ChallengeUsed => "PASSKEY_CHALLENGE_USED",
            Self::ChallengeExpired => "PASSKEY_CHALLENGE_EXPIRED",
            Self::Invalid => "INVALID_PASSKEY",
        }
    }

    /// The message for the person.
    pub fn message(self) -> &'static str {
        match self {
            Self::UnknownCredential => "That passkey is not one of yours on this console: choose another, or use your authenticator app.",
            Self::WrongOrigin => "The passkey answered for another site than this console's address. Open the console at its usual address and try again.",
            Self::ChallengeUsed => "This passkey request was already answered: try again.",
            Self::ChallengeExpired => "This passkey request expired (they last five minutes): try again.",
            Self::Invalid => "The passkey's answer did not check out: try again, or use your authenticator app.",
        }
    }

    /// Whether it counts toward the account's lock like a wrong code: everything but a
    /// request that merely lapsed.
    pub fn counts_as_failure(self) -> bool {
        self != Self::ChallengeExpired
    }

    /// The refusal a WebAuthn check's error stands for.
    pub fn of(error: &WebauthnError) -> Self {
        match error {
            WebauthnError::InvalidRPOrigin | WebauthnError::InvalidRPIDHash => Self::WrongOrigin,
            WebauthnError::CredentialNotFound => Self::UnknownCredential,
            _ => Self::Invalid,
        }
    }
}

/// `value` without its `null` members, recursively: what webauthn-rs leaves unset goes out
/// as absent, which the browsers' JSON parsers of WebAuthn options require.
pub fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{check_name, without_nulls, RelyingParty, MAX_NAME};
    use crate::error::AppError;

    #[test]
    fn a_passkey_name_is_one_to_a_hundred_printable_characters() {
        assert_eq!(
            check_name("  Work laptop ").ok().as_deref(),
            Some("Work laptop")
        );
        assert_eq!(
            check_name(&"é".repeat(MAX_NAME))
                .ok()
                .map(|n| n.chars().count()),
            Some(MAX_NAME)
        );
        for bad in [
            String::new(),
            "   ".into(),
            "x".repeat(MAX_NAME + 1),
            "a\u{7}b".into(),
            "laptop\u{202E}pot".into(),
            "a\u{200B}b".into(),
        ] {
            assert!(
                matches!(check_name(&bad), Err(AppError::Validation { ref field, .. }) if field == "name"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_relying_party_is_the_public_url_domain() {
        assert!(RelyingParty::for_origin("https://console.example.com")
            .unwrap_or_else(|e| panic!("{e}"))
            .available());
        assert!(RelyingParty::for_origin("http://localhost:3000")
            .unwrap_or_else(|e| panic!("{e}"))
            .available());
        // Browsers refuse IP addresses as RP ids: no passkeys, and the reason is given.
        for ip in ["http://127.0.0.1:3000", "https://[::1]:8443"] {
            let rp = RelyingParty::for_origin(ip).unwrap_or_else(|e| panic!("{e}"));
            assert!(!rp.available());
            assert!(rp.webauthn().is_err());
        }
        assert!(RelyingParty::for_origin("not a url").is_err());
    }

    #[test]
    fn nulls_are_dropped_at_every_depth() {
        let v = serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]});
        assert_eq!(
            without_nulls(v),
            serde_json::json!({"b": {"d": 1}, "e": [{}]})
        );
    }
}
