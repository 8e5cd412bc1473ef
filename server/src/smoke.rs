//! `staff-console smoke --pat <TOKEN> [--url URL] [--delegated]`: the runbook's smoke test.
//! Calls the gateway's `GET /agent/v1/whoami` with the token and says what happened; with
//! `--delegated`, also exchanges it for a delegated token and calls `whoami` with that.
//!
//! The token is checked locally first (format and checksum), so a mistyped or badly pasted
//! token is explained without a network call. It is sent only in the `Authorization`
//! header and never printed.

use std::time::{Duration, Instant};

/// What the smoke test found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The lines to print.
    pub lines: Vec<String>,
    /// Whether the gateway accepted the token.
    pub passed: bool,
    /// The tenant the gateway named, when it accepted the token.
    pub tenant: Option<String>,
}

/// Why the smoke test could not run at all.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SmokeError {
    /// The token is not one, before any call.
    #[error("{0}")]
    BadToken(String),
    /// The URL is not usable.
    #[error("--url {0}")]
    BadUrl(String),
    /// The console could not be reached.
    #[error("could not reach {url}: {reason}")]
    Unreachable {
        /// Where.
        url: String,
        /// What the client said.
        reason: String,
    },
}

/// Checks a token as typed or pasted: whitespace around it is dropped, whitespace inside
/// it is explained, and the format and checksum must hold.
pub fn check_token(raw: &str) -> Result<String, SmokeError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(SmokeError::BadToken(
            "no token: pass --pat <TOKEN>, --pat - to read it from standard input, or set STAFF_CONSOLE_PAT".into(),
        ));
    }
    if token.chars().any(char::is_whitespace) {
        return Err(SmokeError::BadToken(
            "the token contains spaces or line breaks (a wrapped paste?): pass it as one piece"
                .into(),
        ));
    }
    match app::domain::tokens::token::parse(token) {
        Ok(_) => Ok(token.to_owned()),
        Err(app::domain::tokens::token::Malformed::Checksum) => Err(SmokeError::BadToken(
            "the token's checksum does not match: it was mistyped or truncated".into(),
        )),
        Err(app::domain::tokens::token::Malformed::Shape) => Err(SmokeError::BadToken(
            "that is not a personal access token (expected mf_pat_v1.<id>.<secret>)".into(),
        )),
    }
}

/// Runs the smoke test against the console at `base` (blocking).
pub fn run(base: &str, raw_token: &str) -> Result<Report, SmokeError> {
    let token = check_token(raw_token)?;
    let base = checked_base(base)?;
    whoami(&agent(), &base, &token, "token")
}

/// `smoke --delegated`: the personal access token's `whoami` (which names its tenant),
/// then the tenant's token exchange, then `whoami` with the delegated token it answered.
/// Passes only when all three do. Neither token is printed.
pub fn run_delegated(base: &str, raw_token: &str) -> Result<Report, SmokeError> {
    let token = check_token(raw_token)?;
    let base = checked_base(base)?;
    let agent = agent();
    let mut report = whoami(&agent, &base, &token, "token")?;
    if !report.passed {
        return Ok(report);
    }
    let tenant = report.tenant.clone().unwrap_or_default();
    let url = format!("{base}/a/{tenant}/oauth/token");
    let started = Instant::now();
    let mut response = agent
        .post(&url)
        .header("user-agent", USER_AGENT)
        .send_form([
            (
                "grant_type",
                app::domain::gateway::delegated::TOKEN_EXCHANGE_GRANT,
            ),
            ("subject_token", token.as_str()),
            (
                "subject_token_type",
                app::domain::gateway::delegated::ACCESS_TOKEN_TYPE,
            ),
        ])
        .map_err(|e| SmokeError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let status = response.status();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    report.lines.push(format!("POST {url}"));
    report
        .lines
        .push(format!("{status} in {} ms", started.elapsed().as_millis()));
    let Some(delegated) = body["access_token"]
        .as_str()
        .filter(|_| status.is_success())
    else {
        report.lines.push(format!(
            "refused: {} ({}) — {}",
            body["code"].as_str().unwrap_or("(no code)"),
            body["error"].as_str().unwrap_or("?"),
            body["error_description"]
                .as_str()
                .unwrap_or("(no description)"),
        ));
        report
            .lines
            .push("FAIL: the token exchange refused the token".into());
        report.passed = false;
        return Ok(report);
    };
    report.lines.push(format!(
        "delegated token issued: expires in {} s, scope {}",
        body["expires_in"].as_i64().unwrap_or(0),
        body["scope"].as_str().unwrap_or("?")
    ));
    let second = whoami(&agent, &base, delegated, "delegated token")?;
    report.lines.extend(second.lines);
    report.passed = second.passed;
    Ok(report)
}

const USER_AGENT: &str = concat!("staff-console-smoke/", env!("CARGO_PKG_VERSION"));

fn checked_base(base: &str) -> Result<String, SmokeError> {
    let base = base.trim().trim_end_matches('/');
    let parsed = url::Url::parse(base).map_err(|e| SmokeError::BadUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SmokeError::BadUrl(
            "must start with http:// or https://".into(),
        ));
    }
    Ok(base.to_owned())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// `GET /agent/v1/whoami` with `token` (`what` it is, for the lines).
fn whoami(agent: &ureq::Agent, base: &str, token: &str, what: &str) -> Result<Report, SmokeError> {
    let url = format!("{base}/agent/v1/whoami");
    let started = Instant::now();
    let mut response = agent
        .get(&url)
        .header("authorization", &format!("Bearer {token}"))
        .header("user-agent", USER_AGENT)
        .call()
        .map_err(|e| SmokeError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let elapsed = started.elapsed();
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    let mut lines = vec![
        format!("GET {url}"),
        format!(
            "{status} in {} ms (request id {request_id})",
            elapsed.as_millis()
        ),
    ];
    let passed = status.is_success();
    if passed {
        let scopes = body["scopes"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let owner = match body["owner"].as_str() {
            Some(owner) => owner.to_owned(),
            None => format!(
                "{} {}",
                body["owner"]["kind"].as_str().unwrap_or("?"),
                body["owner"]["id"].as_str().unwrap_or("?")
            ),
        };
        lines.push(format!(
            "token {} of tenant {} ({owner}), scopes: {scopes}",
            body["token_id"].as_str().unwrap_or("?"),
            body["tenant"].as_str().unwrap_or("?"),
        ));
        lines.push(format!(
            "PASS: the gateway accepted the {what}; its use is recorded as `used`"
        ));
    } else {
        lines.push(format!(
            "refused: {} — {}",
            body["error"]["code"].as_str().unwrap_or("(no code)"),
            body["error"]["message"].as_str().unwrap_or("(no message)"),
        ));
        lines.push(format!(
            "FAIL: the gateway refused the {what}; the refusal is recorded as `failed_auth`"
        ));
    }
    let tenant = body["tenant"].as_str().map(str::to_owned);
    Ok(Report {
        lines,
        passed,
        tenant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_tokens_are_explained_before_any_call() {
        let minted = app::domain::tokens::token::mint();
        let token: &str = &minted.plaintext;
        assert_eq!(check_token(&format!("  {token}\n")), Ok(token.to_owned()));
        let wrapped = format!("{} {}", &token[..20], &token[20..]);
        assert!(check_token(&wrapped)
            .unwrap_err()
            .to_string()
            .contains("spaces"));
        // One character changed: never to the one already there (a token ending in `1`
        // would otherwise be its own "typo" once in a few dozen runs).
        let swapped = if token.ends_with('1') { '2' } else { '1' };
        let typo = format!("{}{swapped}", &token[..token.len() - 1]);
        assert!(matches!(check_token(&typo), Err(SmokeError::BadToken(_))));
        assert!(check_token("").unwrap_err().to_string().contains("--pat"));
        assert!(check_token("hunter2")
            .unwrap_err()
            .to_string()
            .contains("mf_pat_v1"));
    }

    #[test]
    fn only_http_urls_are_called() {
        let minted = app::domain::tokens::token::mint();
        let err = run("ftp://example.com", &minted.plaintext).unwrap_err();
        assert!(matches!(err, SmokeError::BadUrl(_)), "{err:?}");
    }
}
