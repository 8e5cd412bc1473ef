//! The captcha check of end users' sign-ins: Cloudflare Turnstile's siteverify API
//! (`TURNSTILE_SECRET`, `TURNSTILE_VERIFY_URL`), with a 2 s budget. A provider that fails
//! or is slow answers [`Verdict::Unavailable`]: the sign-in is refused with
//! `CAPTCHA_VERIFICATION_FAILED` (runbook 004's symptom) until the `TURNSTILE_DISABLED`
//! switch lets sign-ins through without it.

use crate::secret::SecretString;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Cloudflare's siteverify endpoint.
pub const TURNSTILE_VERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";
/// How long the provider is given.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Longest captcha token sent on (Turnstile's are at most 2048 characters).
pub const MAX_TOKEN_LEN: usize = 2048;
/// Checks under way at once; more answer [`Verdict::Unavailable`] at once rather than
/// queue blocking threads behind a slow provider.
pub const AT_ONCE: usize = 32;

/// The captcha check as configured.
#[derive(Clone)]
pub struct Captcha {
    /// `TURNSTILE_SECRET`; `None`: not configured.
    secret: Option<Arc<SecretString>>,
    /// `TURNSTILE_VERIFY_URL`.
    verify_url: Arc<str>,
    /// Without a secret: skip the check (development) or refuse every sign-in (production).
    skip_unconfigured: bool,
    agent: ureq::Agent,
    /// Bounds the checks under way.
    permits: Arc<tokio::sync::Semaphore>,
    /// Per tenant, the unix second an outage was last recorded.
    outages: Arc<std::sync::Mutex<std::collections::HashMap<uuid::Uuid, i64>>>,
}

impl std::fmt::Debug for Captcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captcha")
            .field("configured", &self.secret.is_some())
            .field("verify_url", &self.verify_url)
            .finish()
    }
}

/// What the provider said of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A person solved it.
    Passed,
    /// The provider refused the token (missing, expired, forged, reused).
    Rejected,
    /// The provider failed, timed out or answered nonsense.
    Unavailable,
    /// No secret is configured and this is development: not checked.
    NotConfigured,
}

impl Captcha {
    /// A check with `secret` against `verify_url`; without a secret, sign-ins are not
    /// checked when `skip_unconfigured` (development) and refused otherwise.
    pub fn new(secret: Option<SecretString>, verify_url: &str, skip_unconfigured: bool) -> Self {
        Self {
            secret: secret.map(Arc::new),
            verify_url: verify_url.into(),
            skip_unconfigured,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(TIMEOUT))
                .build()
                .into(),
            permits: Arc::new(tokio::sync::Semaphore::new(AT_ONCE)),
            outages: Arc::default(),
        }
    }

    /// Whether to record an outage of the provider for `tenant` now: once a minute per
    /// tenant, however many sign-ins it refuses meanwhile.
    pub fn should_record_outage(&self, tenant: uuid::Uuid) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut last = self
            .outages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match last.get(&tenant) {
            Some(at) if now - at < 60 => false,
            _ => {
                last.insert(tenant, now);
                true
            }
        }
    }

    /// Asks the provider about `token` (from `remote_ip`).
    pub async fn verify(&self, token: &str, remote_ip: Option<IpAddr>) -> Verdict {
        let Some(secret) = self.secret.clone() else {
            return if self.skip_unconfigured {
                Verdict::NotConfigured
            } else {
                Verdict::Unavailable
            };
        };
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Verdict::Rejected;
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Verdict::Unavailable;
        };
        let (agent, url, token) = (
            self.agent.clone(),
            self.verify_url.clone(),
            token.to_owned(),
        );
        let ip = remote_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let asked = tokio::task::spawn_blocking(move || {
            let _held = permit;
            let mut fields = vec![("secret", secret.expose()), ("response", token.as_str())];
            if !ip.is_empty() {
                fields.push(("remoteip", ip.as_str()));
            }
            let mut response = agent.post(&*url).send_form(fields).ok()?;
            if !response.status().is_success() {
                return None;
            }
            let body = response.body_mut().read_to_string().ok()?;
            let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
            answer.get("success").and_then(serde_json::Value::as_bool)
        });
        match tokio::time::timeout(TIMEOUT + Duration::from_millis(200), asked).await {
            Ok(Ok(Some(true))) => Verdict::Passed,
            Ok(Ok(Some(false))) => Verdict::Rejected,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => Verdict::Unavailable,
        }
    }
}
