//! Staff second factors: passkeys (WebAuthn), TOTP (RFC 6238) and single-use recovery
//! codes. What a code looks like, how a secret is sealed and checked, how recovery codes
//! are made and hashed, and the relying party passkeys answer to. The sign-in, step-up and
//! enrolment flows in `auth` and the account panel build on it.

#[cfg(feature = "ssr")]
pub mod passkey;
#[cfg(feature = "ssr")]
pub mod recovery;
#[cfg(feature = "ssr")]
pub mod totp;

crate::domain::status::status! {
    /// The second factor that opened a session or stepped it up.
    Factor {
        /// No second factor: a person without one, where `MFA_REQUIRED=false` (development),
        /// or a first sign-in that must enrol one before anything else.
        None = "none",
        /// A code from an authenticator app.
        Totp = "totp",
        /// One of the person's single-use recovery codes (never counts as step-up).
        RecoveryCode = "recovery_code",
        /// A passkey (WebAuthn).
        Passkey = "passkey",
    }
}

impl Factor {
    /// How the sessions lists name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "password only",
            Self::Totp => "authenticator app",
            Self::RecoveryCode => "recovery code",
            Self::Passkey => "passkey",
        }
    }

    /// Whether using this factor counts as stepping up (a recovery code does not: it is the
    /// way back in when the app is lost, not a proof of holding it).
    pub fn steps_up(self) -> bool {
        matches!(self, Self::Totp | Self::Passkey)
    }
}

/// A WebAuthn ceremony the browser is to perform: the handle of its state on the server,
/// and the options for `navigator.credentials` (JSON, as `PublicKeyCredential`'s
/// `parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` read it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasskeyChallenge {
    /// The ceremony's id, sent back with the answer.
    pub ceremony: String,
    /// `{"publicKey": {...}}`: challenge, relying party, credentials allowed or excluded.
    pub options: String,
}

/// What a person typed into a code field, by its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// Six digits: an authenticator app's code.
    Totp(String),
    /// Ten letters and digits (`abcde-12345`, dashes and spaces ignored): a recovery code,
    /// normalized (lowercase, no separators, look-alike letters read as digits).
    Recovery(String),
}

/// The message for a code of neither shape.
pub const CODE_SHAPE: &str =
    "Enter the 6-digit code from your authenticator app, or one of your recovery codes (like k7m2q-9xw4d).";

/// The message for a code field that must hold an app's code (enrolment, step-up).
pub const TOTP_SHAPE: &str = "Enter the 6 digits your authenticator app shows.";

/// The alphabet of recovery codes: Crockford's base 32, lowercase (no i, l, o or u).
pub const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// How many characters a recovery code has, without its dash.
pub const RECOVERY_LEN: usize = 10;

impl Code {
    /// Reads `input` as a code, or says what a code looks like.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if compact.len() == 6 && compact.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Self::Totp(compact));
        }
        if compact.chars().count() == RECOVERY_LEN {
            let normalized: Option<String> = compact
                .chars()
                .map(|c| match c.to_ascii_lowercase() {
                    'o' => Some('0'),
                    'i' | 'l' => Some('1'),
                    c if c.is_ascii() && RECOVERY_ALPHABET.contains(&(c as u8)) => Some(c),
                    _ => None,
                })
                .collect();
            if let Some(code) = normalized {
                return Ok(Self::Recovery(code));
            }
        }
        Err(CODE_SHAPE)
    }

    /// Reads `input` as an authenticator app's code only.
    pub fn parse_totp(input: &str) -> Result<String, &'static str> {
        match Self::parse(input) {
            Ok(Self::Totp(code)) => Ok(code),
            _ => Err(TOTP_SHAPE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Code, CODE_SHAPE, TOTP_SHAPE};

    #[test]
    fn codes_are_read_by_their_shape() {
        assert_eq!(Code::parse(" 123 456 "), Ok(Code::Totp("123456".into())));
        assert_eq!(
            Code::parse("K7M2Q-9XW4D"),
            Ok(Code::Recovery("k7m2q9xw4d".into()))
        );
        // Look-alikes read as the digits they resemble.
        assert_eq!(
            Code::parse("ollio-abcde"),
            Ok(Code::Recovery("01110abcde".into()))
        );
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            "abcde-fghiu",
            "abcde-fghi!",
            "ééééé-ééééé",
        ] {
            assert_eq!(Code::parse(bad), Err(CODE_SHAPE), "{bad:?}");
        }
        assert_eq!(Code::parse_totp("k7m2q-9xw4d"), Err(TOTP_SHAPE));
        assert_eq!(Code::parse_totp("654321"), Ok("654321".into()));
    }
}
