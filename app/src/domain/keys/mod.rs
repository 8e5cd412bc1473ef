//! Tenants' signing keys: generated here, sealed at rest under `ENCRYPTION_KEY`, published
//! as JWKs named by their RFC 7638 thumbprint, and the JWS compact signatures delegated
//! tokens carry (RFC 7515, `ES256` or `EdDSA`).
//!
//! The signatures are RustCrypto's (`p256`, `ed25519-dalek`); only the compact form is
//! assembled here. A JWT crate would decide things this console must decide itself: the
//! algorithm comes from the key the `kid` names, never from the token's header; `jku`,
//! `x5u` and `jwk` headers are never followed; each failure has its own stable code. And
//! `jsonwebtoken`'s RustCrypto backend brings `rsa` (RUSTSEC-2023-0071) and a second
//! P-256 generation for algorithms the console does not offer. Tokens are checked against
//! the published JWKS by an independent library in the tests.

use crate::domain::status::SigningAlgorithm;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::fmt;
use zeroize::Zeroizing;

/// Clock skew allowed when checking `exp` and `nbf`, and counted into a retired key's
/// `verify_until`.
pub const CLOCK_SKEW_SECS: i64 = 30;
/// Default `JWKS_MAX_AGE_SECONDS`: how long relying services may cache the JWKS.
pub const DEFAULT_JWKS_MAX_AGE_SECS: i64 = 300;
/// Default `DELEGATED_TOKEN_TTL_SECONDS`.
pub const DEFAULT_TOKEN_TTL_SECS: i64 = 600;
/// The longest a delegated token may live, whatever the configuration says.
pub const MAX_TOKEN_TTL_SECS: i64 = 900;

/// The timings keys are published and retired by (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// `JWKS_MAX_AGE_SECONDS`: the JWKS's `Cache-Control: max-age`, and how long a staged
    /// key must have been published before it may sign.
    pub jwks_max_age_secs: i64,
    /// `DELEGATED_TOKEN_TTL_SECONDS`: the lifetime of a delegated token.
    pub token_ttl_secs: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            jwks_max_age_secs: DEFAULT_JWKS_MAX_AGE_SECS,
            token_ttl_secs: DEFAULT_TOKEN_TTL_SECS,
        }
    }
}

impl KeyPolicy {
    /// How long after its retirement a key still verifies: the longest token it may have
    /// signed, plus the time a relying service may hold the JWKS that still lists it, plus
    /// the clock skew tokens are checked with.
    pub fn retired_grace(&self) -> time::Duration {
        time::Duration::seconds(self.token_ttl_secs + self.jwks_max_age_secs + CLOCK_SKEW_SECS)
    }
}

/// A private signing key, in memory only. Redacted in `Debug`; its secret bytes are wiped
/// on drop by the curve crates.
pub enum PrivateKey {
    /// P-256.
    Es256(p256::ecdsa::SigningKey),
    /// Ed25519.
    EdDsa(ed25519_dalek::SigningKey),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, [redacted])", self.algorithm())
    }
}

/// A public key, as the JWKS publishes it and the gateway verifies with.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256.
    Es256(p256::ecdsa::VerifyingKey),
    /// Ed25519.
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.algorithm(), self.thumbprint())
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl PrivateKey {
    /// A fresh key from the OS random source.
    pub fn generate(algorithm: SigningAlgorithm) -> Self {
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rand::fill(&mut bytes[..]);
            // A P-256 scalar is refused only when it is zero or not below the group order
            // (a chance of about 2^-32): draw again.
            if let Some(key) = Self::from_secret(algorithm, &bytes[..]) {
                return key;
            }
        }
    }

    /// The key whose secret bytes are `secret` (32 bytes for both algorithms).
    pub fn from_secret(algorithm: SigningAlgorithm, secret: &[u8]) -> Option<Self> {
        match algorithm {
            SigningAlgorithm::Es256 => p256::ecdsa::SigningKey::from_slice(secret)
                .ok()
                .map(Self::Es256),
            SigningAlgorithm::EdDsa => {
                let bytes: &[u8; 32] = secret.try_into().ok()?;
                Some(Self::EdDsa(ed25519_dalek::SigningKey::from_bytes(bytes)))
            }
        }
    }

    /// The secret bytes, for sealing.
    pub fn secret(&self) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Es256(key) => Zeroizing::new(key.to_bytes().to_vec()),
            Self::EdDsa(key) => Zeroizing::new(key.to_bytes().to_vec()),
        }
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        match self {
            Self::Es256(_) => SigningAlgorithm::Es256,
            Self::EdDsa(_) => SigningAlgorithm::EdDsa,
        }
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        match self {
            Self::Es256(key) => PublicKey::Es256(*key.verifying_key()),
            Self::EdDsa(key) => PublicKey::EdDsa(key.verifying_key()),
        }
    }

    /// The JWS signature of `message`: ES256's is `r || s` (64 bytes, RFC 7518 §3.4), not
    /// DER; EdDSA's the 64-byte Ed25519 signature (RFC 8037).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
            Self::EdDsa(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
        }
    }
}

impl PublicKey {
    /// Its algorithm.
    pub fn algorithm(&self) -> SigningAlgorithm {
        match self {
            Self::Es256(_) => SigningAlgorithm::Es256,
            Self::EdDsa(_) => SigningAlgorithm::EdDsa,
        }
    }

    /// The JWK's required members in RFC 7638's lexicographic order, as the thumbprint
    /// hashes them (no whitespace).
    fn required_members(&self) -> String {
        match self {
            Self::Es256(key) => {
                let point = key.to_sec1_point(false);
                let (x, y) = (
                    point.x().map(|x| b64(x)).unwrap_or_default(),
                    point.y().map(|y| b64(y)).unwrap_or_default(),
                );
                format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            Self::EdDsa(key) => {
                let x = b64(key.as_bytes());
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)
            }
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url): the key's `kid`.
    pub fn thumbprint(&self) -> String {
        use sha2::Digest as _;
        b64(&sha2::Sha256::digest(self.required_members().as_bytes()))
    }

    /// The JWK as the JWKS publishes it: the required members plus `kid`, `alg` and
    /// `use: sig`.
    pub fn jwk(&self) -> serde_json::Value {
        let mut jwk: serde_json::Value =
            serde_json::from_str(&self.required_members()).unwrap_or_default();
        if let Some(members) = jwk.as_object_mut() {
            members.insert("kid".into(), self.thumbprint().into());
            members.insert("alg".into(), self.algorithm().as_str().into());
            members.insert("use".into(), "sig".into());
        }
        jwk
    }

    /// The key a published JWK describes (as [`jwk`](Self::jwk) writes it); `None` for any
    /// other key type, curve or malformed coordinate.
    pub fn from_jwk(jwk: &serde_json::Value) -> Option<Self> {
        let member = |name: &str| {
            jwk.get(name)
                .and_then(serde_json::Value::as_str)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
        };
        match (
            jwk.get("kty").and_then(serde_json::Value::as_str),
            jwk.get("crv").and_then(serde_json::Value::as_str),
        ) {
            (Some("EC"), Some("P-256")) => {
                let (x, y) = (member("x")?, member("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .ok()
                    .map(Self::Es256)
            }
            (Some("OKP"), Some("Ed25519")) => {
                let x: [u8; 32] = member("x")?.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .ok()
                    .map(Self::EdDsa)
            }
            _ => None,
        }
    }

    /// Whether `signature` is this key's JWS signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Es256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                p256::ecdsa::Signature::from_slice(signature)
                    .is_ok_and(|signature| key.verify(message, &signature).is_ok())
            }
            Self::EdDsa(key) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                // Strict: refuses the malleable and small-order forms RFC 8032 allows.
                key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
                    .is_ok()
            }
        }
    }
}

fn aad(tenant: uuid::Uuid, kid: &str) -> Vec<u8> {
    format!("staff-console signing key {kid} of tenant {tenant}").into_bytes()
}

/// Seals `key` for storage under the master key, bound to its tenant and kid, so a sealed
/// key copied to another row does not open.
pub fn seal(
    master: &[u8; 32],
    tenant: uuid::Uuid,
    kid: &str,
    key: &PrivateKey,
) -> ([u8; 12], Vec<u8>) {
    crate::domain::sealed::seal(master, &aad(tenant, kid), &key.secret())
}

/// Opens what [`seal`] sealed; `None` when the master key is wrong, the row was altered,
/// or the opened key is not the one `kid` names.
pub fn open(
    master: &crate::domain::tokens::pepper::MasterKey,
    tenant: uuid::Uuid,
    kid: &str,
    algorithm: SigningAlgorithm,
    nonce: &[u8],
    sealed: &[u8],
) -> Option<PrivateKey> {
    master
        .open_either(|key| open_under(key.expose(), tenant, kid, algorithm, nonce, sealed))
        .map(|(key, _)| key)
}

/// Opens what [`seal`] sealed under exactly `master`.
pub fn open_under(
    master: &[u8; 32],
    tenant: uuid::Uuid,
    kid: &str,
    algorithm: SigningAlgorithm,
    nonce: &[u8],
    sealed: &[u8],
) -> Option<PrivateKey> {
    let secret = crate::domain::sealed::open(master, &aad(tenant, kid), nonce, sealed)?;
    let key = PrivateKey::from_secret(algorithm, &secret)?;
    (key.public().thumbprint() == kid).then_some(key)
}

/// A signed JWS in compact form: `header.payload.signature`, each base64url. The header
/// carries `alg`, `typ` and `kid`.
pub fn sign_compact(key: &PrivateKey, kid: &str, typ: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({ "alg": key.algorithm().as_str(), "typ": typ, "kid": kid });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: [u8; 32] = [0x42; 32];

    #[test]
    fn rfc_7638_thumbprint_of_the_rfc_8037_ed25519_example() {
        // RFC 8037 appendix A.3: the thumbprint of its example public key.
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        });
        let key = PublicKey::from_jwk(&jwk).expect("the RFC's key");
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc_8037_ed25519_signature_example() {
        // RFC 8037 appendix A.4: signing "Example of Ed25519 signing" gives this JWS.
        let secret = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .expect("base64");
        let key = PrivateKey::from_secret(SigningAlgorithm::EdDsa, &secret).expect("key");
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        assert_eq!(
            b64(&key.sign(input.as_bytes())),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn keys_of_both_algorithms_sign_verify_and_round_trip_through_their_jwk() {
        for algorithm in [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa] {
            let key = PrivateKey::generate(algorithm);
            let public = key.public();
            let jwk = public.jwk();
            assert!(jwk.get("d").is_none(), "{algorithm}: no private member");
            assert_eq!(jwk["kid"], public.thumbprint());
            assert_eq!(jwk["alg"], algorithm.as_str());
            assert_eq!(PublicKey::from_jwk(&jwk).as_ref(), Some(&public));
            let signature = key.sign(b"message");
            assert_eq!(signature.len(), 64, "{algorithm}: raw r||s or Ed25519");
            assert!(public.verify(b"message", &signature));
            assert!(
                !public.verify(b"massage", &signature),
                "{algorithm}: other message"
            );
            let other = PrivateKey::generate(algorithm).public();
            assert!(
                !other.verify(b"message", &signature),
                "{algorithm}: other key"
            );
            assert!(
                !public.verify(b"message", &signature[..63]),
                "{algorithm}: truncated"
            );
            assert_ne!(public.thumbprint(), other.thumbprint());
            assert_eq!(public.thumbprint().len(), 43);
            assert!(!format!("{key:?}").contains(&b64(&key.secret())));
        }
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_master_key_tenant_and_kid() {
        let tenant = uuid::Uuid::new_v4();
        let key = PrivateKey::generate(SigningAlgorithm::Es256);
        let kid = key.public().thumbprint();
        let (nonce, sealed) = seal(&MASTER, tenant, &kid, &key);
        let es = SigningAlgorithm::Es256;
        let opened = open_under(&MASTER, tenant, &kid, es, &nonce, &sealed).expect("opens");
        assert_eq!(opened.public(), key.public());
        assert!(
            open_under(&[1; 32], tenant, &kid, es, &nonce, &sealed).is_none(),
            "master key"
        );
        assert!(
            open_under(&MASTER, uuid::Uuid::new_v4(), &kid, es, &nonce, &sealed).is_none(),
            "tenant"
        );
        let other = PrivateKey::generate(es).public().thumbprint();
        assert!(
            open_under(&MASTER, tenant, &other, es, &nonce, &sealed).is_none(),
            "kid"
        );
    }

    #[test]
    fn a_compact_jws_names_its_key_and_verifies_with_it() {
        let key = PrivateKey::generate(SigningAlgorithm::Es256);
        let kid = key.public().thumbprint();
        let token = sign_compact(&key, &kid, "at+jwt", &serde_json::json!({ "sub": "x" }));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(
            header,
            serde_json::json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid })
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(key.public().verify(input.as_bytes(), &signature));
    }

    #[test]
    fn a_retired_key_verifies_for_token_lifetime_plus_cache_plus_skew() {
        let policy = KeyPolicy::default();
        assert_eq!(
            policy.retired_grace(),
            time::Duration::seconds(600 + 300 + 30)
        );
    }
}
