//! TOTP secrets: made, sealed, checked and shown (as an `otpauth://` URL and its QR code).
//!
//! Codes are RFC 6238 defaults, which every authenticator app reads: HMAC-SHA1, 6 digits,
//! 30-second steps; one step of clock skew either way is accepted. A code is accepted
//! once: [`TotpSecret::check`] returns the step it matched, and the caller stores it
//! and refuses any step not later than the last one stored.

use super::super::tokens::pepper::MasterKey;
use totp_rs::{Algorithm, Builder, Totp};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The name authenticator apps list the account under.
pub const ISSUER: &str = "Staff Console";

/// What the sealing key is derived for (from `ENCRYPTION_KEY`).
const SEAL_PURPOSE: &str = "staff-console staff TOTP secret seal v1";

/// Seconds per step.
pub const STEP_SECS: u64 = 30;

/// A TOTP secret (20 random bytes, the RFC 4226 recommendation), in memory only.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

fn aad(staff: Uuid) -> Vec<u8> {
    format!("staff-console totp v1 staff:{staff}").into_bytes()
}

fn seal_key(master: &MasterKey) -> Zeroizing<[u8; 32]> {
    let derived = master.derive(SEAL_PURPOSE);
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&derived[..32]);
    key
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; 20]);
        rand::fill(&mut bytes[..]);
        Self(bytes)
    }

    /// A secret from its bytes (tests, and the open below).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// Seals the secret for `staff`'s row: the nonce and the ciphertext.
    pub fn seal(&self, master: &MasterKey, staff: Uuid) -> ([u8; 12], Vec<u8>) {
        crate::domain::sealed::seal(&seal_key(master), &aad(staff), &self.0)
    }

    /// Opens `staff`'s sealed secret; `None` when the key differs or the row was altered
    /// or belongs to someone else.
    pub fn open(master: &MasterKey, staff: Uuid, nonce: &[u8], sealed: &[u8]) -> Option<Self> {
        Self::open_either(master, staff, nonce, sealed).map(|(secret, _)| secret)
    }

    /// [`TotpSecret::open`], saying which key it opened under (the current one, or the
    /// previous during an ENCRYPTION_KEY rotation).
    pub fn open_either(
        master: &MasterKey,
        staff: Uuid,
        nonce: &[u8],
        sealed: &[u8],
    ) -> Option<(Self, crate::domain::tokens::pepper::SealedUnder)> {
        master.open_either(|key| {
            crate::domain::sealed::open(&seal_key(key), &aad(staff), nonce, sealed)
                .filter(|plain| plain.len() >= 16)
                .map(Self)
        })
    }

    fn totp(&self, account: &str) -> Totp {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.to_vec())
            .with_account_name(account.replace(':', ""))
            .with_issuer(Some(ISSUER))
            .build_noncompliant()
    }

    /// The step `code` (six digits) matches at `unix` seconds, one step of skew either
    /// way, compared in constant time; `None` when it matches none.
    pub fn check(&self, code: &str, unix: u64) -> Option<u64> {
        self.totp("").check(code, unix)
    }

    /// The code for `unix` seconds (what the person's app shows then; tests use it).
    pub fn code_at(&self, unix: u64) -> String {
        self.totp("").generate(unix).to_string()
    }

    /// The secret in base 32, for typing into an app that cannot scan.
    pub fn base32(&self) -> String {
        totp_rs::Secret::from(self.0.to_vec()).to_base32()
    }

    /// The `otpauth://totp/...` URL an authenticator app scans, for `account` (an email).
    pub fn otpauth_url(&self, account: &str) -> String {
        self.totp(account)
            .to_url()
            .unwrap_or_else(|_| format!("otpauth://totp/?secret={}", self.base32()))
    }
}

/// `text` as a QR code in SVG, drawn on the server: no third party ever sees the secret.
pub fn qr_svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .dark_color(qrcode::render::svg::Color("#0f172a"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::{qr_svg, TotpSecret};
    use crate::domain::tokens::pepper::MasterKey;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, the 20-byte ASCII secret "12345678901234567890", last
        // six digits of the eight-digit values.
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        assert_eq!(secret.code_at(59), "287082");
        assert_eq!(secret.code_at(1_111_111_109), "081804");
        assert_eq!(secret.code_at(1_234_567_890), "005924");
        assert_eq!(secret.code_at(2_000_000_000), "279037");
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_000;
        let step = now / 30;
        assert_eq!(secret.check(&secret.code_at(now), now), Some(step));
        assert_eq!(secret.check(&secret.code_at(now - 30), now), Some(step - 1));
        assert_eq!(secret.check(&secret.code_at(now + 30), now), Some(step + 1));
        assert_eq!(secret.check(&secret.code_at(now - 90), now), None);
    }

    #[test]
    fn a_secret_opens_only_for_its_owner_under_its_key() {
        let master = MasterKey::new([3; 32]);
        let secret = TotpSecret::generate();
        let owner = uuid::Uuid::new_v4();
        let (nonce, sealed) = secret.seal(&master, owner);
        let opened = TotpSecret::open(&master, owner, &nonce, &sealed).expect("opens");
        assert_eq!(opened.base32(), secret.base32());
        assert!(TotpSecret::open(&master, uuid::Uuid::new_v4(), &nonce, &sealed).is_none());
        assert!(TotpSecret::open(&MasterKey::new([4; 32]), owner, &nonce, &sealed).is_none());
    }

    #[test]
    fn the_enrolment_shows_a_url_and_a_qr_code() {
        let secret = TotpSecret::generate();
        let url = secret.otpauth_url("ada@example.com");
        assert!(url.starts_with("otpauth://totp/"), "{url}");
        assert!(url.contains(&secret.base32()), "{url}");
        let svg = qr_svg(&url).expect("svg");
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
