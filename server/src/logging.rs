//! JSON logs on standard output, one object per line, with secrets and email addresses
//! scrubbed from every line before it is written.
//!
//! Request handling runs inside a `request` span carrying `request_id`, so every line
//! logged while serving a request carries that id.

use regex::{Regex, RegexSet};
use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::LazyLock;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// Patterns scrubbed from log lines, each with its replacement.
static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    let rule = |pattern: &str, replacement: &'static str| {
        // The patterns are constants checked by the tests below.
        #[expect(
            clippy::expect_used,
            reason = "constant patterns, covered by unit tests"
        )]
        let re = Regex::new(pattern).expect("valid redaction pattern");
        (re, replacement)
    };
    // `_` and `.` as themselves, percent-encoded (`%5F`, `%2E`: query strings, form
    // bodies) or encoded twice (`%255F`, `%252E`: a URL inside a URL).
    const U: &str = r"(?:_|%5[Ff]|%255[Ff])";
    const DOT: &str = r"(?:\.|%2[Ee]|%252[Ee])";
    // What follows a prefix: the token's own characters and percent escapes.
    const TAIL: &str = r"[A-Za-z0-9_.~%\-]+";
    vec![
        // Personal access tokens (`mf_pat_v1.`) and API client keys (`mf_ck_v1.`): keep
        // the prefix so an operator sees *a* token was there.
        rule(
            &format!(r"(?i)mf{U}pat{U}v1{DOT}{TAIL}"),
            "mf_pat_v1.[redacted]",
        ),
        rule(
            &format!(r"(?i)mf{U}ck{U}v1{DOT}{TAIL}"),
            "mf_ck_v1.[redacted]",
        ),
        // Admin API tokens, end users' refresh tokens, magic-link and recovery tokens.
        rule(
            &format!(r"(?i)mf{U}(adm|rt|ml|rc){U}v1{DOT}{TAIL}"),
            "mf_${1}_v1.[redacted]",
        ),
        // Service tokens: `sc_svc_<id>_<secret>`.
        rule(&format!(r"(?i)sc{U}svc{U}{TAIL}"), "sc_svc_[redacted]"),
        // Bearer and basic credentials.
        rule(
            r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+",
            "$1 [redacted]",
        ),
        // Passwords inside connection URLs: scheme://user:password@host.
        rule(
            r"([a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s]+@",
            "${1}[redacted]@",
        ),
        // key=value and "key":"value" pairs whose key names a secret.
        rule(
            r#"(?i)("?[a-z0-9_\-]*(?:password|passwd|secret|token|api[_\-]?key|pepper|private[_\-]?key|encryption[_\-]?key|cookie|session[_\-]?id|authorization)"?\s*[:=]\s*\\?"?)([^"\\\s,&;}]+)"#,
            "${1}[redacted]",
        ),
        // Email addresses.
        rule(
            r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}",
            "[email]",
        ),
    ]
});

static ANY_RULE: LazyLock<RegexSet> = LazyLock::new(|| {
    #[expect(clippy::expect_used, reason = "same constant patterns as RULES")]
    RegexSet::new(RULES.iter().map(|(re, _)| re.as_str())).expect("valid redaction set")
});

/// Returns `line` with secrets and email addresses replaced; borrows when nothing matched.
pub fn redact(line: &str) -> Cow<'_, str> {
    if !ANY_RULE.is_match(line) {
        return Cow::Borrowed(line);
    }
    let mut out = line.to_owned();
    for (re, replacement) in RULES.iter() {
        if let Cow::Owned(replaced) = re.replace_all(&out, *replacement) {
            out = replaced;
        }
    }
    Cow::Owned(out)
}

/// A writer that redacts each formatted event before passing it on.
///
/// tracing-subscriber formats a whole event into one buffer and writes it with a single
/// `write_all`, so redacting per write is redacting per line.
pub struct Redacting<W>(W);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Makes [`Redacting`] writers around an inner `MakeWriter`.
#[derive(Clone)]
pub struct RedactingMakeWriter<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingMakeWriter<M> {
    type Writer = Redacting<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(self.0.make_writer())
    }
}

/// The subscriber every command uses: JSON lines, UTC timestamps, the current span's fields
/// (so `request_id`) on each line, filtered by `RUST_LOG` (default `info`).
pub fn subscriber<M>(writer: M) -> impl tracing::Subscriber + Send + Sync
where
    M: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(RedactingMakeWriter(writer))
        .finish()
}

/// Installs [`subscriber`] on standard output for the whole process.
pub fn init() {
    // A second call (tests) keeps the first subscriber; nothing to report.
    let _ = tracing::subscriber::set_global_default(subscriber(io::stdout));
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn scrubs_tokens_credentials_and_emails() {
        let cases = [
            (
                "token mf_pat_v1.abc123.s3cr3tXYZ seen",
                "token mf_pat_v1.[redacted] seen",
            ),
            (
                "Authorization: Bearer eyJhbGciOi.x.y",
                "Authorization: [redacted] [redacted]",
            ),
            (
                "url=postgres://app:hunter2@db:5432/x",
                "url=postgres://app:[redacted]@db:5432/x",
            ),
            ("signed in alice@example.com ok", "signed in [email] ok"),
            (
                r#"{"password":"hunter2","user":"x"}"#,
                r#"{"password":"[redacted]","user":"x"}"#,
            ),
            (
                "INTEGRATION_TOKEN_PEPPER=abcdef",
                "INTEGRATION_TOKEN_PEPPER=[redacted]",
            ),
            ("x-admin-secret: topsecret", "x-admin-secret: [redacted]"),
            (
                "client key mf_ck_v1.4vJ9xQ2sKp7Ld3Zt8Rm seen",
                "client key mf_ck_v1.[redacted] seen",
            ),
            (
                "seen mf_adm_v1.4vJ9xQ2sKp7L.d3Zt8Rm and mf_rc_v1.AbC%2Es3cr3t",
                "seen mf_adm_v1.[redacted] and mf_rc_v1.[redacted]",
            ),
            (
                "svc sc_svc_0123456789abcdef_9Yb3Kd7Qw2 called",
                "svc sc_svc_[redacted] called",
            ),
            (
                "GET /t/acme/integrations?id=mf_pat_v1%2EAbC123%2Es3cr3tXYZ&status=active",
                "GET /t/acme/integrations?id=mf_pat_v1.[redacted]&status=active",
            ),
            (
                "next=%2Fx%3Fid%3Dmf%5Fpat%5Fv1%252EAbC%252Es3cr3t end",
                "next=%2Fx%3Fid%3Dmf_pat_v1.[redacted] end",
            ),
            (
                "key=mf_ck_v1%2E4vJ9xQ2sKp7Ld3Zt8Rm&x=1",
                "key=mf_ck_v1.[redacted]&x=1",
            ),
            (
                "q=sc%5Fsvc%5F0123456789abcdef%5F9Yb3Kd7Qw2 done",
                "q=sc_svc_[redacted] done",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "input: {input}");
        }
    }

    #[test]
    fn leaves_ordinary_lines_alone_without_copying() {
        let line = r#"{"message":"request finished","status":200,"latency_ms":3}"#;
        assert!(matches!(redact(line), std::borrow::Cow::Borrowed(_)));
    }
}
