//! Secrets kept in the database sealed with AES-256-GCM: a random 96-bit nonce per seal,
//! and associated data naming what the secret is for and whose it is, so a sealed value
//! copied to another row (another pepper version, another person) does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

/// Seals `secret` under `key`, bound to `aad`: the nonce and the ciphertext (with its tag).
pub fn seal(key: &[u8; 32], aad: &[u8], secret: &[u8]) -> ([u8; 12], Vec<u8>) {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; 12];
    rand::fill(&mut nonce);
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad })
        // AES-GCM encryption of a few bytes cannot fail (the limit is 64 GiB).
        .unwrap_or_default();
    (nonce, sealed)
}

/// Opens what [`seal`] sealed; `None` when the key or the associated data differ, or the
/// data was altered.
pub fn open(key: &[u8; 32], aad: &[u8], nonce: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != 12 {
        return None;
    }
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::{open, seal};

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_associated_data() {
        let key = [7u8; 32];
        let (nonce, sealed) = seal(&key, b"for staff:1", b"secret bytes");
        assert_eq!(
            open(&key, b"for staff:1", &nonce, &sealed)
                .as_deref()
                .map(Vec::as_slice),
            Some(&b"secret bytes"[..])
        );
        assert!(open(&key, b"for staff:2", &nonce, &sealed).is_none());
        assert!(open(&[8u8; 32], b"for staff:1", &nonce, &sealed).is_none());
        let mut altered = sealed.clone();
        altered[0] ^= 1;
        assert!(open(&key, b"for staff:1", &nonce, &altered).is_none());
        assert!(open(&key, b"for staff:1", &nonce[..11], &sealed).is_none());
    }
}
