//! The signed-in person's own account: `/account/password` and `/account/security` (second
//! factors).
//!
//! A password someone else chose or saw — the first admin's, a new account's, a reset's —
//! must be replaced by its owner at their first sign-in: until then `require` refuses every
//! permission but [`Permission::OwnAccount`](crate::auth::Permission::OwnAccount) and the
//! layout sends every page here. The same page is the self-service change afterwards.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::secret::SecretString;
use serde::{Deserialize, Serialize};

/// One of the person's passkeys, as the security page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    /// Its row (what removing it names).
    pub id: uuid::Uuid,
    /// The name its owner gave it.
    pub name: String,
    /// When it was added.
    pub created_at: time::OffsetDateTime,
    /// When it last signed in or stepped up.
    pub last_used_at: Option<time::OffsetDateTime>,
}

/// The person's second factors, as the security page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factors {
    /// Their passkeys, oldest first.
    pub passkeys: Vec<PasskeyInfo>,
    /// When the authenticator app was added, if one is.
    pub totp_added_at: Option<time::OffsetDateTime>,
    /// When its last code was accepted.
    pub totp_last_used_at: Option<time::OffsetDateTime>,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

/// The security page's data: the factors, and whether second factors are required here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// The person's factors.
    pub factors: Factors,
    /// Whether this server requires a second factor of everyone.
    pub required: bool,
    /// Why passkeys cannot be added here, when they cannot (PUBLIC_URL an IP address).
    pub passkeys_unavailable: Option<String>,
}

/// What an authenticator app needs to be set up: shown once, while enrolment waits for
/// its first code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// The QR code of the `otpauth://` URL, as SVG drawn by the server.
    pub qr_svg: String,
    /// The secret in base 32, for apps that cannot scan.
    pub secret: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// A new set of recovery codes, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes(pub Vec<String>);

impl std::fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryCodes({} redacted)", self.0.len())
    }
}

/// What the change form sends. Holds passwords: `Debug` prints none of them.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// The password in use now: a stolen session alone cannot change it.
    pub current: SecretString,
    /// The new password.
    pub new: SecretString,
    /// The new password again, so a typo does not lock its owner out.
    pub confirm: SecretString,
}

#[cfg(test)]
mod tests {
    use super::{PasswordChange, SecretString};

    #[test]
    fn the_change_never_prints_a_password() {
        let change = PasswordChange {
            current: SecretString::new("old secret value"),
            new: SecretString::new("new secret value"),
            confirm: SecretString::new("new secret value"),
        };
        let printed = format!("{change:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}

/// One of the person's admin API tokens, as `/account/admin-tokens` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminTokenRow {
    /// Its id (`mf_adm_v1.<id>.…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its tenant (`None`: the platform).
    pub tenant: Option<String>,
    /// When it was minted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
    /// Its last use.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<time::OffsetDateTime>,
    /// Where its last use came from.
    pub last_used_ip: Option<String>,
    /// `live`, `expired` or `revoked`.
    pub state: String,
}

/// A minted admin token: the plaintext, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MintedAdminToken {
    /// Its id.
    pub id: String,
    /// The whole token. Shown once.
    pub plaintext: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

impl std::fmt::Debug for MintedAdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedAdminToken")
            .field("id", &self.id)
            .field("plaintext", &"[redacted]")
            .finish_non_exhaustive()
    }
}
