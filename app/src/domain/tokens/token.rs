//! Personal access tokens: the format, its checksum, and the peppered hash stored for them.
//!
//! A token reads `mf_pat_v1.<id>.<secret>`. `<id>` is 12 random bytes and `<secret>` is 32
//! random bytes (256 bits) followed by a 4-byte CRC-32 of everything before it, both in
//! Base58 (no `0OIl`, no punctuation: it survives double-click selection and reading
//! aloud). The checksum lets the gateway refuse a mistyped or truncated token without a
//! database lookup; it is not a secret and proves nothing about authenticity.
//!
//! Only `HMAC-SHA256(pepper, secret)` is stored, with the pepper's version. The plaintext
//! leaves the server once, at minting.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// The fixed prefix, with the format version.
pub const PREFIX: &str = "mf_pat_v1";
/// Random bytes in a token id.
pub const ID_BYTES: usize = 12;
/// Random bytes in a token secret (256 bits).
pub const SECRET_BYTES: usize = 32;
const CHECKSUM_BYTES: usize = 4;
/// Longest text accepted as a token; anything longer is refused before parsing.
pub const MAX_TOKEN_LEN: usize = 128;

type HmacSha256 = Hmac<Sha256>;

/// Why a presented token is not even worth looking up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not `mf_pat_v1.<id>.<secret>`: wrong prefix, parts, alphabet or length.
    Shape,
    /// The shape is right but the checksum does not match: mistyped or truncated.
    Checksum,
}

/// A parsed token: its id (for the lookup) and its secret (for the HMAC).
pub struct Presented {
    /// The token id, as it appears in the token and the database.
    pub id: String,
    secret: Zeroizing<[u8; SECRET_BYTES]>,
}

impl Presented {
    /// The secret bytes, to hash.
    pub fn secret(&self) -> &[u8; SECRET_BYTES] {
        &self.secret
    }
}

impl fmt::Debug for Presented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Presented {{ id: {:?}, secret: [redacted] }}", self.id)
    }
}

/// A freshly minted token: the plaintext to show once, and what to store.
pub struct Minted {
    /// The token id.
    pub id: String,
    /// The whole token, shown to its owner exactly once.
    pub plaintext: Zeroizing<String>,
    secret: Zeroizing<[u8; SECRET_BYTES]>,
}

impl Minted {
    /// The secret bytes, to hash for storage.
    pub fn secret(&self) -> &[u8; SECRET_BYTES] {
        &self.secret
    }
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Minted {{ id: {:?}, plaintext: [redacted] }}", self.id)
    }
}

fn checksum(prefix: &str, id: &str, secret: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let mut crc = crc32fast::Hasher::new();
    crc.update(prefix.as_bytes());
    crc.update(b".");
    crc.update(id.as_bytes());
    crc.update(b".");
    crc.update(secret);
    crc.finalize().to_be_bytes()
}

/// Mints a new token from the operating system's random source.
pub fn mint() -> Minted {
    mint_as(PREFIX)
}

/// Mints a token of the same construction under another prefix (end users' refresh
/// tokens are `mf_rt_v1.<id>.<secret>`).
pub fn mint_as(prefix: &str) -> Minted {
    let mut id_bytes = [0u8; ID_BYTES];
    rand::fill(&mut id_bytes);
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    rand::fill(&mut secret[..]);
    let id = bs58::encode(id_bytes).into_string();
    let mut tail = Zeroizing::new([0u8; SECRET_BYTES + CHECKSUM_BYTES]);
    tail[..SECRET_BYTES].copy_from_slice(&secret[..]);
    tail[SECRET_BYTES..].copy_from_slice(&checksum(prefix, &id, &secret[..]));
    let plaintext = Zeroizing::new(format!(
        "{prefix}.{id}.{}",
        bs58::encode(&tail[..]).into_string()
    ));
    Minted {
        id,
        plaintext,
        secret,
    }
}

/// Parses a presented token and checks its checksum; no I/O.
pub fn parse(token: &str) -> Result<Presented, Malformed> {
    parse_as(PREFIX, token)
}

/// [`parse`] for a token minted by [`mint_as`] with `prefix`.
pub fn parse_as(prefix: &str, token: &str) -> Result<Presented, Malformed> {
    if token.len() > MAX_TOKEN_LEN || !token.is_ascii() {
        return Err(Malformed::Shape);
    }
    let mut parts = token.split('.');
    let (Some(given), Some(id), Some(tail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Malformed::Shape);
    };
    if given != prefix {
        return Err(Malformed::Shape);
    }
    let mut id_buf = [0u8; ID_BYTES + 1];
    if bs58::decode(id).onto(&mut id_buf[..]) != Ok(ID_BYTES) {
        return Err(Malformed::Shape);
    }
    let mut buf = Zeroizing::new([0u8; SECRET_BYTES + CHECKSUM_BYTES + 1]);
    let len = bs58::decode(tail)
        .onto(&mut buf[..])
        .map_err(|_| Malformed::Shape)?;
    if len != SECRET_BYTES + CHECKSUM_BYTES {
        return Err(Malformed::Shape);
    }
    let (secret_bytes, sum) = buf[..len].split_at(SECRET_BYTES);
    if checksum(prefix, id, secret_bytes) != sum {
        return Err(Malformed::Checksum);
    }
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    secret.copy_from_slice(secret_bytes);
    Ok(Presented {
        id: id.to_owned(),
        secret,
    })
}

/// `HMAC-SHA256(pepper, secret)`: what the database keeps.
pub fn hash(pepper: &[u8; 32], secret: &[u8; SECRET_BYTES]) -> [u8; 32] {
    let mut mac = keyed(pepper);
    mac.update(secret);
    mac.finalize().into_bytes().into()
}

/// Whether `secret` hashes to `stored` under `pepper`, compared in constant time.
pub fn verify(pepper: &[u8; 32], secret: &[u8; SECRET_BYTES], stored: &[u8]) -> bool {
    let mut mac = keyed(pepper);
    mac.update(secret);
    mac.verify_slice(stored).is_ok()
}

/// An HMAC-SHA256 already keyed with a pepper. Keying costs two SHA-256 blocks; cloning the
/// keyed state skips them on every check. Its `Debug` shows nothing.
#[derive(Clone)]
pub struct Keyed(HmacSha256);

impl Keyed {
    /// Keys the HMAC with `pepper`.
    pub fn new(pepper: &[u8; 32]) -> Self {
        Self(keyed(pepper))
    }

    /// `HMAC-SHA256(pepper, secret)`.
    pub fn hash(&self, secret: &[u8; SECRET_BYTES]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(secret);
        mac.finalize().into_bytes().into()
    }

    /// Whether `secret` hashes to `stored`, compared in constant time.
    pub fn verify(&self, secret: &[u8; SECRET_BYTES], stored: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(secret);
        mac.verify_slice(stored).is_ok()
    }
}

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyed([redacted])")
    }
}

/// HMAC-SHA256 keyed with a 32-byte key, infallibly (also the master key's derivation).
pub(crate) fn keyed(pepper: &[u8; 32]) -> HmacSha256 {
    // HMAC zero-pads keys shorter than the hash's 64-byte block, so padding the 32-byte
    // pepper ourselves gives the same MAC (the RFC 4231 test below relies on exactly this)
    // and lets the fixed-size, infallible constructor be used.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..32].copy_from_slice(pepper);
    <HmacSha256 as Mac>::new(&(*block).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_have_the_documented_shape_and_parse_back() {
        let minted = mint();
        let text: &str = &minted.plaintext;
        assert!(text.starts_with("mf_pat_v1."), "{text}");
        assert_eq!(text.split('.').count(), 3);
        assert!(text.len() <= MAX_TOKEN_LEN);
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'));
        let parsed = parse(text).expect("parses");
        assert_eq!(parsed.id, minted.id);
        assert_eq!(parsed.secret(), minted.secret());
    }

    #[test]
    fn secrets_are_256_random_bits_and_never_repeat() {
        let a = mint();
        let b = mint();
        assert_ne!(a.secret(), b.secret());
        assert_ne!(a.id, b.id);
        assert_eq!(a.secret().len() * 8, 256);
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let minted = mint();
        let text: &str = &minted.plaintext;
        let last = text.chars().last().expect("non-empty");
        let swapped = if last == '2' { '3' } else { '2' };
        let typo = format!("{}{}", &text[..text.len() - 1], swapped);
        assert!(matches!(
            parse(&typo),
            Err(Malformed::Checksum | Malformed::Shape)
        ));
        // Changing the id breaks the checksum too: the id is covered.
        let other_id = bs58::encode([7u8; ID_BYTES]).into_string();
        let moved = text.replacen(&minted.id, &other_id, 1);
        assert_eq!(parse(&moved).err(), Some(Malformed::Checksum));
    }

    #[test]
    fn junk_is_refused_by_shape() {
        let minted = mint();
        let text: &str = &minted.plaintext;
        for junk in [
            "",
            "mf_pat_v1",
            "mf_pat_v2.abc.def",
            "Bearer mf_pat_v1.x.y",
            &text.replace("mf_pat_v1.", "mf_pat_v1. "),
            &format!("{text} "),
            &format!("{text}.extra"),
            &text[..text.len() - 3],
            &"x".repeat(500),
            "mf_pat_v1.0OIl.0OIl",
        ] {
            assert!(parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn hmac_matches_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2 uses a 4-byte key; HMAC pads keys, so a 32-byte key holding
        // "Jefe" followed by zeros gives the same MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mut mac = keyed(&key);
        mac.update(b"what do ya want for nothing?");
        let out = mac.finalize().into_bytes();
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_prekeyed_hmac_matches_the_plain_one() {
        let minted = mint();
        let pepper = [3u8; 32];
        let keyed = Keyed::new(&pepper);
        assert_eq!(keyed.hash(minted.secret()), hash(&pepper, minted.secret()));
        assert!(keyed.verify(minted.secret(), &hash(&pepper, minted.secret())));
        assert!(!keyed.verify(minted.secret(), &hash(&[4u8; 32], minted.secret())));
        assert_eq!(format!("{keyed:?}"), "Keyed([redacted])");
    }

    #[test]
    fn verify_accepts_only_the_right_pepper_and_secret() {
        let minted = mint();
        let pepper = [9u8; 32];
        let stored = hash(&pepper, minted.secret());
        assert!(verify(&pepper, minted.secret(), &stored));
        assert!(
            !verify(&[8u8; 32], minted.secret(), &stored),
            "wrong pepper"
        );
        assert!(!verify(&pepper, mint().secret(), &stored), "wrong secret");
        assert!(
            !verify(&pepper, minted.secret(), &stored[..31]),
            "truncated hash"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let minted = mint();
        let shown = format!("{minted:?}");
        assert!(!shown.contains(&*minted.plaintext));
        let parsed = parse(&minted.plaintext).expect("parses");
        assert!(format!("{parsed:?}").contains("[redacted]"));
    }
}
