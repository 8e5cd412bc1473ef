//! Token peppers: versioned 32-byte HMAC keys, stored sealed with AES-256-GCM under
//! `ENCRYPTION_KEY`, so a copy of the database alone cannot check guessed tokens.
//!
//! Exactly one version is `current` (new tokens hash with it). During a staged rotation the
//! version before it stays `previous` until its grace period ends: tokens still on it verify
//! and are re-hashed to the current version on their next use.

use sqlx::PgExecutor;
use std::fmt;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// `ENCRYPTION_KEY`: the 32-byte key secrets at rest are sealed under (peppers, signing
/// keys, TOTP secrets), and during a rotation `ENCRYPTION_KEY_PREVIOUS`, the key it
/// replaced: secrets are sealed under the current key only, and opened under either until
/// `staff-console secrets reseal` has moved them. Cheap to clone, redacted in `Debug`,
/// wiped when the last copy is dropped.
#[derive(Clone)]
pub struct MasterKey(std::sync::Arc<Keys>);

struct Keys {
    current: Zeroizing<[u8; 32]>,
    previous: Option<MasterKey>,
}

/// Which key a secret opened under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedUnder {
    /// `ENCRYPTION_KEY`.
    Current,
    /// `ENCRYPTION_KEY_PREVIOUS`: to be re-sealed.
    Previous,
}

impl MasterKey {
    /// Wraps the key bytes (no rotation under way).
    pub fn new(key: [u8; 32]) -> Self {
        Self::with_previous(key, None)
    }

    /// The current key and, during a rotation, the one it replaced.
    pub fn with_previous(key: [u8; 32], previous: Option<[u8; 32]>) -> Self {
        Self(std::sync::Arc::new(Keys {
            current: Zeroizing::new(key),
            previous: previous.map(MasterKey::new),
        }))
    }

    /// The current key's bytes, for the cipher: everything is sealed under it.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0.current
    }

    /// The key replaced, alone, while a rotation is under way.
    pub fn previous(&self) -> Option<MasterKey> {
        self.0.previous.clone()
    }

    /// Opens a secret with `open` under the current key, then under the previous one:
    /// what it opened to, and under which.
    pub fn open_either<T>(
        &self,
        open: impl Fn(&MasterKey) -> Option<T>,
    ) -> Option<(T, SealedUnder)> {
        if let Some(opened) = open(self) {
            return Some((opened, SealedUnder::Current));
        }
        let previous = self.0.previous.as_ref()?;
        open(previous).map(|opened| (opened, SealedUnder::Previous))
    }

    /// 16 bytes that name the current key without revealing it (stored beside what is
    /// hashed under it, so a rotation knows what it leaves behind).
    pub fn fingerprint(&self) -> [u8; 16] {
        let derived = self.derive("staff-console key fingerprint v1");
        let mut out = [0u8; 16];
        out.copy_from_slice(&derived[..16]);
        out
    }

    /// 64 bytes for `purpose` (such as signing session cookies), independent of the
    /// peppers' sealing and of every other purpose: HKDF-Expand (RFC 5869) with HMAC-SHA256
    /// and this key as the pseudorandom key, which it already is (32 random bytes), so the
    /// Extract step adds nothing.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; 64]> {
        use hmac::Mac as _;
        let mut out = Zeroizing::new([0u8; 64]);
        let mut previous: Vec<u8> = Vec::new();
        for (i, chunk) in out.chunks_mut(32).enumerate() {
            let mut mac = super::token::keyed(self.expose());
            mac.update(&previous);
            mac.update(purpose.as_bytes());
            mac.update(&[i as u8 + 1]);
            let block = mac.finalize().into_bytes();
            chunk.copy_from_slice(&block);
            previous = block.to_vec();
        }
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// One pepper version, decrypted, in memory only.
#[derive(Clone)]
pub struct Pepper {
    /// Its version number, stored with every token hashed under it.
    pub version: i32,
    key: Zeroizing<[u8; 32]>,
    /// The HMAC keyed with it, computed once: each check clones it instead of re-keying.
    keyed: super::token::Keyed,
}

impl Pepper {
    /// A pepper from its version and key (benchmarks and tests; real ones come from [`load`]).
    pub fn new(version: i32, key: [u8; 32]) -> Self {
        Self {
            version,
            keyed: super::token::Keyed::new(&key),
            key: Zeroizing::new(key),
        }
    }

    /// Whether `secret` hashes to `stored` under this pepper (constant time).
    pub fn verify(&self, secret: &[u8; super::token::SECRET_BYTES], stored: &[u8]) -> bool {
        self.keyed.verify(secret, stored)
    }

    /// The stored hash of `secret` under this pepper.
    pub fn hash(&self, secret: &[u8; super::token::SECRET_BYTES]) -> [u8; 32] {
        self.keyed.hash(secret)
    }

    /// The HMAC key.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pepper {{ version: {}, key: [redacted] }}", self.version)
    }
}

/// The peppers tokens may verify under right now.
#[derive(Debug, Clone)]
pub struct PepperRing {
    /// New tokens hash with this one.
    pub current: Pepper,
    /// The version before, still accepted until `grace_until`.
    pub previous: Option<(Pepper, OffsetDateTime)>,
}

impl PepperRing {
    /// The pepper of `version`, if it may still verify tokens at `now`.
    pub fn get(&self, version: i32, now: OffsetDateTime) -> Option<&Pepper> {
        if self.current.version == version {
            return Some(&self.current);
        }
        match &self.previous {
            Some((pepper, until)) if pepper.version == version && now < *until => Some(pepper),
            _ => None,
        }
    }
}

/// Why peppers could not be loaded or sealed.
#[derive(Debug, thiserror::Error)]
pub enum PepperError {
    /// A stored pepper did not decrypt: the ENCRYPTION_KEY differs from the one that sealed
    /// it, or the row was altered.
    #[error("pepper version {0} does not decrypt with this ENCRYPTION_KEY (wrong key, or the row was altered)")]
    Undecryptable(i32),
    /// The database holds no current pepper.
    #[error("no current token pepper in the database")]
    NoCurrent,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The change or its audit event could not be written.
    #[error(transparent)]
    Change(#[from] crate::error::AppError),
}

fn aad(version: i32) -> Vec<u8> {
    format!("staff-console token pepper v{version}").into_bytes()
}

/// Seals `pepper` for storage. The version is bound in as associated data, so a sealed
/// pepper moved to another version's row does not open.
pub fn seal(master: &[u8; 32], version: i32, pepper: &[u8; 32]) -> ([u8; 12], Vec<u8>) {
    crate::domain::sealed::seal(master, &aad(version), pepper)
}

/// Opens a sealed pepper under `master` (the current key, or the previous during a
/// rotation); `None` when neither key opens it or the data was altered.
pub fn open(master: &MasterKey, version: i32, nonce: &[u8], sealed: &[u8]) -> Option<Pepper> {
    master
        .open_either(|key| open_under(key.expose(), version, nonce, sealed))
        .map(|(pepper, _)| pepper)
}

/// Opens a sealed pepper under exactly `key`.
pub fn open_under(key: &[u8; 32], version: i32, nonce: &[u8], sealed: &[u8]) -> Option<Pepper> {
    let plain = crate::domain::sealed::open(key, &aad(version), nonce, sealed)?;
    let key: [u8; 32] = plain.as_slice().try_into().ok()?;
    Some(Pepper::new(version, key))
}

/// Loads and decrypts the current and previous peppers.
pub async fn load(db: impl PgExecutor<'_>, master: &MasterKey) -> Result<PepperRing, PepperError> {
    let rows = sqlx::query!(
        r#"SELECT version, nonce, sealed, state AS "state!", grace_until
           FROM token_peppers WHERE state IN ('current', 'previous')
           ORDER BY version DESC"#
    )
    .fetch_all(db)
    .await?;
    let mut current = None;
    let mut previous = None;
    for row in rows {
        let pepper = open(master, row.version, &row.nonce, &row.sealed)
            .ok_or(PepperError::Undecryptable(row.version))?;
        match (row.state.as_str(), row.grace_until) {
            ("current", _) => current = Some(pepper),
            ("previous", Some(until)) => previous = Some((pepper, until)),
            _ => {}
        }
    }
    Ok(PepperRing {
        current: current.ok_or(PepperError::NoCurrent)?,
        previous,
    })
}

/// On a database without peppers, creates version 1 from the OS random source, and records
/// it in the audit log. Returns whether it created one. Safe when instances start together:
/// the insert is conditional and the version is the primary key.
pub async fn create_first_if_none(
    system: &crate::auth::Actor,
    master: &MasterKey,
) -> Result<bool, PepperError> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::fill(&mut key[..]);
    let (nonce, sealed) = seal(master.expose(), 1, &key);
    let mut change = system.change().await?;
    let created = sqlx::query_scalar!(
        r#"INSERT INTO token_peppers (version, nonce, sealed, state, created_by)
           SELECT 1, $1, $2, 'current', 'system'
           WHERE NOT EXISTS (SELECT 1 FROM token_peppers)
           ON CONFLICT DO NOTHING
           RETURNING version"#,
        &nonce[..],
        sealed
    )
    .fetch_optional(change.db())
    .await?;
    if created.is_none() {
        // Nothing written: dropping the change ends its transaction.
        return Ok(false);
    }
    let event = system
        .event("pepper.created")
        .target("pepper:v1")
        .details(serde_json::json!({ "version": 1 }));
    change.commit(event).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: [u8; 32] = [0x42; 32];

    #[test]
    fn derived_keys_are_stable_per_purpose_and_independent_of_each_other() {
        let key = MasterKey::new(MASTER);
        let a = key.derive("purpose a");
        assert_eq!(*a, *key.derive("purpose a"), "the same key every start");
        assert_ne!(*a, *key.derive("purpose b"));
        assert_ne!(*a, *MasterKey::new([0x43; 32]).derive("purpose a"));
        assert_ne!(a[..32], a[32..], "two different blocks");
        // HKDF-Expand's first block is HMAC(PRK, info || 0x01).
        let mut mac = super::super::token::keyed(&MASTER);
        hmac::Mac::update(&mut mac, b"purpose a\x01");
        assert_eq!(a[..32], hmac::Mac::finalize(mac).into_bytes()[..]);
    }

    #[test]
    fn sealed_peppers_open_only_with_their_key_and_version() {
        let pepper = [7u8; 32];
        let (nonce, sealed) = seal(&MASTER, 3, &pepper);
        assert!(
            !sealed.windows(32).any(|w| w == pepper),
            "ciphertext hides the pepper"
        );
        let master = MasterKey::new(MASTER);
        let opened = open(&master, 3, &nonce, &sealed).expect("opens");
        assert_eq!(opened.key(), &pepper);
        assert!(
            open(&MasterKey::new([0x43; 32]), 3, &nonce, &sealed).is_none(),
            "other master key"
        );
        assert!(
            open(&master, 4, &nonce, &sealed).is_none(),
            "moved to another version"
        );
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(
            open(&master, 3, &nonce, &tampered).is_none(),
            "altered ciphertext"
        );
    }

    #[test]
    fn during_a_rotation_secrets_open_under_either_key_and_say_which() {
        let (nonce, sealed) = seal(&MASTER, 3, &[7u8; 32]);
        let rotating = MasterKey::with_previous([0x43; 32], Some(MASTER));
        assert!(open(&rotating, 3, &nonce, &sealed).is_some());
        let under = rotating
            .open_either(|key| open_under(key.expose(), 3, &nonce, &sealed))
            .map(|(_, under)| under);
        assert_eq!(under, Some(SealedUnder::Previous));
        let (nonce, sealed) = seal(rotating.expose(), 3, &[7u8; 32]);
        let under = rotating
            .open_either(|key| open_under(key.expose(), 3, &nonce, &sealed))
            .map(|(_, under)| under);
        assert_eq!(under, Some(SealedUnder::Current));
        // Without the previous key, what it sealed no longer opens.
        let (nonce, sealed) = seal(&MASTER, 3, &[7u8; 32]);
        assert!(open(&MasterKey::new([0x43; 32]), 3, &nonce, &sealed).is_none());
        assert_ne!(rotating.fingerprint(), MasterKey::new(MASTER).fingerprint());
        assert_eq!(
            rotating.previous().map(|p| p.fingerprint()),
            Some(MasterKey::new(MASTER).fingerprint())
        );
    }

    #[test]
    fn the_previous_pepper_verifies_only_during_its_grace_period() {
        let now = OffsetDateTime::now_utc();
        let ring = PepperRing {
            current: Pepper::new(2, [2; 32]),
            previous: Some((Pepper::new(1, [1; 32]), now + time::Duration::hours(1))),
        };
        assert_eq!(ring.get(2, now).map(|p| p.version), Some(2));
        assert_eq!(ring.get(1, now).map(|p| p.version), Some(1));
        assert!(
            ring.get(1, now + time::Duration::hours(2)).is_none(),
            "grace over"
        );
        assert!(ring.get(7, now).is_none(), "unknown version");
        assert!(
            !format!("{ring:?}").contains("[1, 1"),
            "keys stay out of Debug"
        );
    }
}
