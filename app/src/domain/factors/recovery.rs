//! Recovery codes: ten single-use codes of ten Crockford base-32 characters (50 random
//! bits each), shown once, stored as HMAC-SHA256 under a key derived from
//! `ENCRYPTION_KEY`.

use super::{RECOVERY_ALPHABET, RECOVERY_LEN};
use crate::domain::tokens::pepper::MasterKey;
use hmac::Mac as _;

/// How many codes a set has.
pub const COUNT: usize = 10;

const HASH_PURPOSE: &str = "staff-console staff recovery code hash v1";

/// A fresh set, formatted to be read and typed (`k7m2q-9xw4d`).
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut raw = [0u8; RECOVERY_LEN];
            rand::fill(&mut raw);
            let chars: String = raw
                .iter()
                .map(|b| RECOVERY_ALPHABET[usize::from(b & 31)] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The stored hash of a code, normalized as [`super::Code::parse`] reads it (or as
/// [`generate`] wrote it: the dash is dropped).
pub fn hash(master: &MasterKey, code: &str) -> [u8; 32] {
    let derived = master.derive(HASH_PURPOSE);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&derived[..32]);
    let mut mac = crate::domain::tokens::token::keyed(&key);
    mac.update(code.replace('-', "").as_bytes());
    mac.finalize().into_bytes().into()
}

/// The hashes a typed code may be stored as: under the current key and, during an
/// ENCRYPTION_KEY rotation, under the previous one.
pub fn hashes(master: &MasterKey, code: &str) -> Vec<Vec<u8>> {
    std::iter::once(hash(master, code).to_vec())
        .chain(master.previous().map(|p| hash(&p, code).to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{generate, hash, COUNT};
    use crate::domain::factors::Code;
    use crate::domain::tokens::pepper::MasterKey;

    #[test]
    fn a_generated_code_reads_back_as_itself() {
        let master = MasterKey::new([9; 32]);
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for code in &codes {
            let Ok(Code::Recovery(typed)) = Code::parse(&code.to_uppercase()) else {
                panic!("{code} does not read as a recovery code");
            };
            assert_eq!(hash(&master, &typed), hash(&master, code));
        }
        assert_ne!(
            hash(&master, &codes[0]),
            hash(&MasterKey::new([8; 32]), &codes[0])
        );
    }
}
