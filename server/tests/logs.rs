//! The log lines a request produces: JSON, with its request id, with emails redacted.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use common::{app, get, unreachable_pool};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    }
}

// current_thread runtime: the thread-local subscriber sees every event of the request.
#[tokio::test]
async fn request_log_lines_are_json_with_the_request_id_and_no_email() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(common::capturing_subscriber(captured.clone()));

    let router = app(unreachable_pool());
    let res = get(&router, "/lookup/alice@example.com").await;
    let request_id = res.header("x-request-id").to_owned();

    let lines = captured.lines();
    let finished = lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .expect("a request finished line");
    assert_eq!(finished["span"]["request_id"], request_id.as_str());
    assert_eq!(finished["status"], 404);
    let all = serde_json::to_string(&lines).expect("json");
    assert!(!all.contains("alice@example.com"), "email leaked: {all}");
    assert!(all.contains("[email]"), "path was logged redacted: {all}");
}

#[tokio::test]
async fn internal_errors_are_logged_with_their_reference_and_request_id() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(common::capturing_subscriber(captured.clone()));

    let router = app(unreachable_pool());
    let res = common::get_as(&router, "/", &common::some_session()).await;
    let request_id = res.header("x-request-id").to_owned();

    let lines = captured.lines();
    let internal = lines
        .iter()
        .find(|l| l["message"] == "internal error")
        .expect("the database failure was logged");
    assert_eq!(internal["request_id"], request_id.as_str());
    let ref_id = internal["ref_id"].as_str().expect("ref id");
    assert!(res.body.contains(ref_id), "the page shows the reference");
}

/// Every type that holds a secret, built around known secrets, with the texts that must
/// never appear in a log line.
fn secret_holders() -> (Vec<(&'static str, String)>, Vec<String>) {
    use app::domain::tokens::{pepper, token};
    use app::secret::SecretString;
    let minted = token::mint();
    let pat = minted.plaintext.to_string();
    let pat_secret = pat.rsplit('.').next().unwrap().to_owned();
    let presented = token::parse(&pat).unwrap();
    let client_key = "mf_ck_v1.7QmZx4KpR2vLd9TfWc3HnB8sYj5Ae6Gu".to_owned();
    let service_token = "sc_svc_0123456789abcdef_Hq3ZrW8mKt5XvBn2Lc7PdJ4sYf9".to_owned();
    let one_time = "otp-Quokka-Marble-9931-Tango";
    let typed = "typed-Password-4477-Walrus";
    let argon = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQzMg$aGFzaGhhc2hoYXNoaGFzaA";
    let key: [u8; 32] = [
        0x8f, 0x13, 0xa2, 0x5c, 0x71, 0x09, 0xee, 0x44, 0x3b, 0xd6, 0x27, 0x90, 0x1f, 0xc8, 0x65,
        0xba, 0x02, 0x7d, 0xf4, 0x39, 0x86, 0x5e, 0xab, 0x10, 0xc3, 0x4f, 0x98, 0x21, 0x6a, 0xe7,
        0x3d, 0xb5,
    ];
    let key_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key);
    let env = |name: &str| match name {
        "STAFF_CONSOLE_ENV" => Some("production".to_owned()),
        "DATABASE_URL" => Some("postgres://app:Db-Passw0rd-Heron@db:5432/sc".to_owned()),
        "ENCRYPTION_KEY" => Some(key_b64.clone()),
        "SESSION_SIGNING_KEY" => Some("Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo=".to_owned()),
        "PUBLIC_URL" => Some("https://console.example.com".to_owned()),
        _ => None,
    };
    let config = server::config::Config::from_env(&env).expect("config");
    let pepper = pepper::Pepper::new(3, key);
    let holders: Vec<(&'static str, String)> = vec![
        (
            "MintedKey",
            format!(
                "{:?}",
                app::panels::agent_ops::MintedKey {
                    client_id: uuid::Uuid::nil(),
                    version: 2,
                    secret: client_key.clone(),
                }
            ),
        ),
        (
            "OneTimePassword",
            format!(
                "{:?}",
                app::panels::staff::OneTimePassword {
                    email: "someone@example.com".into(),
                    password: one_time.into(),
                }
            ),
        ),
        (
            "MintedToken",
            format!(
                "{:?}",
                app::panels::integrations::MintedToken {
                    id: minted.id.clone(),
                    plaintext: pat.clone(),
                    expires_at: time::OffsetDateTime::UNIX_EPOCH,
                }
            ),
        ),
        ("Minted", format!("{minted:?}")),
        ("Presented", format!("{presented:?}")),
        (
            "SecretString (service token)",
            format!("{:?}", SecretString::new(service_token.clone())),
        ),
        (
            "SecretString (client key)",
            format!("{:?}", SecretString::new(client_key.clone())),
        ),
        (
            "SignIn arguments",
            format!(
                "{:?}",
                app::auth::api::SignIn {
                    email: "someone@example.com".into(),
                    password: SecretString::new(typed),
                    next: None,
                }
            ),
        ),
        (
            "SignInRow",
            format!(
                "{:?}",
                app::auth::queries::SignInRow {
                    id: uuid::Uuid::nil(),
                    email: "someone@example.com".into(),
                    password_hash: argon.into(),
                    status: app::domain::status::StaffStatus::Active,
                    locked_until: None,
                }
            ),
        ),
        ("MasterKey", format!("{:?}", pepper::MasterKey::new(key))),
        (
            "PepperRing",
            format!(
                "{:?}",
                pepper::PepperRing {
                    current: pepper.clone(),
                    previous: Some((pepper.clone(), time::OffsetDateTime::UNIX_EPOCH)),
                }
            ),
        ),
        ("Keyed", format!("{:?}", token::Keyed::new(&key))),
        (
            "Config (ENCRYPTION_KEY, DATABASE_URL)",
            format!("{config:?}"),
        ),
    ];
    let secrets = vec![
        pat.clone(),
        pat_secret,
        client_key.trim_start_matches("mf_ck_v1.").to_owned(),
        service_token
            .trim_start_matches("sc_svc_0123456789abcdef_")
            .to_owned(),
        one_time.to_owned(),
        typed.to_owned(),
        "aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
        key_b64,
        // The key's bytes as Debug would print them, in decimal and in hex.
        format!("{:?}", &key[..4]).trim_end_matches(']').to_owned(),
        "143, 19, 162".to_owned(),
        "8f13a2".to_owned(),
        "Db-Passw0rd-Heron".to_owned(),
    ];
    (holders, secrets)
}

#[test]
fn types_holding_secrets_print_redacted_under_debug() {
    let (holders, secrets) = secret_holders();
    for (name, printed) in &holders {
        for secret in &secrets {
            assert!(
                !printed.contains(secret.as_str()),
                "{name} printed a secret: {printed}"
            );
        }
    }
    for (name, printed) in &holders {
        assert!(printed.contains("[redacted]"), "{name}: {printed}");
    }
}

#[test]
fn log_lines_built_from_secrets_hold_none_of_them() {
    let (holders, secrets) = secret_holders();
    let captured = Captured::default();
    let raw = [
        secrets[0].clone(),
        secrets[0].replace('.', "%2E"),
        secrets[0].replace('.', "%2e").replace('_', "%5F"),
        secrets[0].replace('.', "%252E"),
        format!(
            "GET /t/acme/integrations?status=active&id={}",
            secrets[0].replace('.', "%2E")
        ),
        "mf_ck_v1.7QmZx4KpR2vLd9TfWc3HnB8sYj5Ae6Gu".to_owned(),
        "key=mf_ck_v1%2E7QmZx4KpR2vLd9TfWc3HnB8sYj5Ae6Gu".to_owned(),
        "Bearer sc_svc_0123456789abcdef_Hq3ZrW8mKt5XvBn2Lc7PdJ4sYf9".to_owned(),
        "token sc_svc_0123456789abcdef_Hq3ZrW8mKt5XvBn2Lc7PdJ4sYf9 refused".to_owned(),
        "sc%5Fsvc%5F0123456789abcdef%5FHq3ZrW8mKt5XvBn2Lc7PdJ4sYf9".to_owned(),
    ];
    tracing::subscriber::with_default(common::capturing_subscriber(captured.clone()), || {
        for (name, printed) in &holders {
            tracing::info!(value = %printed, "{name}");
        }
        for line in &raw {
            tracing::warn!(url = %line, "{line}");
        }
    });
    let all = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    assert_eq!(all.lines().count(), holders.len() + raw.len(), "{all}");
    for secret in &secrets {
        assert!(!all.contains(secret.as_str()), "leaked {secret}: {all}");
    }
    // The raw strings through `redact` alone, as every line is.
    for line in &raw {
        let redacted = server::logging::redact(line);
        for secret in &secrets {
            assert!(!redacted.contains(secret.as_str()), "{line} → {redacted}");
        }
        assert!(redacted.contains("[redacted]"), "{line} → {redacted}");
    }
}
