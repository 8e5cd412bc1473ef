//! A software WebAuthn authenticator for the tests: a P-256 key, "none" attestation, user
//! presence and verification always given. It reads the options the console sends to the
//! browser and answers what a browser's `PublicKeyCredential.toJSON()` would, so the
//! server's checks run on real signatures. `origin` is what its client data claims (a
//! phishing site's origin makes the wrong-origin answer).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_cbor_2::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// One authenticator holding one credential.
pub struct SoftAuthenticator {
    key: SigningKey,
    /// The credential's id.
    pub credential_id: Vec<u8>,
    counter: u32,
    /// The origin its client data names.
    pub origin: String,
    user_handle: Option<Vec<u8>>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl SoftAuthenticator {
    /// A new authenticator whose client data names `origin`.
    pub fn new(origin: &str) -> Self {
        let key = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                break key;
            }
        };
        Self {
            key,
            credential_id: rand::random::<[u8; 32]>().to_vec(),
            counter: 0,
            origin: origin.to_owned(),
            user_handle: None,
        }
    }

    fn public(options: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(options).expect("options JSON");
        v["publicKey"].clone()
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// Answers `navigator.credentials.create(options)`: the registration response JSON.
    pub fn register(&mut self, options: &str) -> String {
        let pk = Self::public(options);
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id");
        let challenge = pk["challenge"].as_str().expect("challenge");
        self.user_handle = pk["user"]["id"]
            .as_str()
            .map(|id| URL_SAFE_NO_PAD.decode(id).expect("user.id"));
        let client_data = self.client_data("webauthn.create", challenge);

        let point = self.key.verifying_key().to_sec1_point(false);
        let mut cose = BTreeMap::new();
        cose.insert(Value::Integer(1), Value::Integer(2)); // kty: EC2
        cose.insert(Value::Integer(3), Value::Integer(-7)); // alg: ES256
        cose.insert(Value::Integer(-1), Value::Integer(1)); // crv: P-256
        cose.insert(
            Value::Integer(-2),
            Value::Bytes(point.x().unwrap().to_vec()),
        );
        cose.insert(
            Value::Integer(-3),
            Value::Bytes(point.y().unwrap().to_vec()),
        );
        let cose = serde_cbor_2::to_vec(&Value::Map(cose)).unwrap();

        let mut auth_data = sha256(rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04 | 0x40); // user present, verified, attested data
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&(self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&cose);

        let mut attestation = BTreeMap::new();
        attestation.insert(Value::Text("fmt".into()), Value::Text("none".into()));
        attestation.insert(Value::Text("attStmt".into()), Value::Map(BTreeMap::new()));
        attestation.insert(Value::Text("authData".into()), Value::Bytes(auth_data));
        let attestation = serde_cbor_2::to_vec(&Value::Map(attestation)).unwrap();

        serde_json::json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
        .to_string()
    }

    /// Answers `navigator.credentials.get(options)`: the assertion response JSON, signed
    /// by this authenticator's key (its counter goes up by one).
    pub fn assert(&mut self, options: &str) -> String {
        let pk = Self::public(options);
        let rp_id = pk["rpId"].as_str().expect("rpId");
        let challenge = pk["challenge"].as_str().expect("challenge");
        self.counter += 1;
        let client_data = self.client_data("webauthn.get", challenge);
        let mut auth_data = sha256(rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | 0x04);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&sha256(&client_data));
        let signature: Signature = self.key.sign(&signed);
        let mut response = serde_json::json!({
            "authenticatorData": b64(&auth_data),
            "clientDataJSON": b64(&client_data),
            "signature": b64(signature.to_der().as_bytes()),
        });
        if let Some(handle) = &self.user_handle {
            response["userHandle"] = serde_json::Value::String(b64(handle));
        }
        serde_json::json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
        })
        .to_string()
    }
}
