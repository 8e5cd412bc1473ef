//! Middleware on every response: request ids with their tracing span, and security headers
//! with a fresh CSP nonce.

use app::request::RequestId;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

/// The request id header: accepted from a trusted proxy (`TRUSTED_PROXIES`), always returned.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id kept; longer or odd ones are replaced by our own.
const MAX_REQUEST_ID_LEN: usize = 64;

fn acceptable_request_id(value: &HeaderValue) -> Option<&str> {
    let id = value.to_str().ok()?;
    let ok = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then_some(id)
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. Entries a client
/// wrote itself sit to the left of what our proxies appended, so they are never reached
/// while a trusted hop remains.
///
/// Every address is canonical: served on `[::]`, IPv4 clients arrive as `::ffff:a.b.c.d`,
/// and left so they would match no IPv4 block, trusted proxy or audit filter, and share
/// one rate-limit bucket. An unreadable entry stops the walk at the last address read.
pub fn client_ip(
    peer: Option<std::net::IpAddr>,
    forwarded_for: &[&str],
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for entry in forwarded_for.iter().rev().flat_map(|v| v.rsplit(',')) {
        match forwarded_address(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            None => break,
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry as a canonical address. Proxies write `1.2.3.4` and
/// `2001:db8::1`, and some add the port (`1.2.3.4:5678`, `[2001:db8::1]:443`) or brackets
/// alone (`[2001:db8::1]`): each is read as its address. Anything else is `None`.
pub fn forwarded_address(entry: &str) -> Option<std::net::IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<std::net::IpAddr>()
        .ok()
        .or_else(|| {
            entry
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|addr| addr.ip())
        })
        .or_else(|| {
            entry
                .strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<std::net::Ipv6Addr>()
                .ok()
                .map(std::net::IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// Gives the request an id (a trusted proxy's, when well-formed) and its client address, runs it
/// inside a `request` span carrying the id, logs its outcome and returns the id in
/// `x-request-id`.
pub async fn observe(
    State(policy): State<Arc<SecurityPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    // Canonical (IPv4-mapped read as IPv4) for the trusted-proxy check below as well.
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_canonical());
    let forwarded: Vec<&str> = req
        .headers()
        .get_all(HeaderName::from_static("x-forwarded-for"))
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if let Some(ip) = client_ip(peer, &forwarded, &policy.trusted_proxies) {
        req.extensions_mut().insert(app::request::ClientIp(ip));
    }
    // A request id is taken from the caller only when the caller is one of our proxies:
    // anyone else could plant ids in the audit log.
    let from_proxy =
        peer.is_some_and(|ip| policy.trusted_proxies.iter().any(|net| net.contains(&ip)));
    let incoming = from_proxy
        .then(|| {
            req.headers()
                .get(&X_REQUEST_ID)
                .and_then(acceptable_request_id)
        })
        .flatten();
    let id: Arc<str> = match incoming {
        Some(id) => id.into(),
        None => uuid::Uuid::new_v4().to_string().into(),
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    res
}

/// The nonce of this response's Content-Security-Policy, for the page's inline scripts.
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

impl CspNonce {
    fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        Self(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(bytes)
                .into(),
        )
    }
}

/// What the security headers, the cross-site check and client addresses depend on.
#[derive(Debug, Clone, Default)]
pub struct SecurityPolicy {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Served over HTTPS: send HSTS, mark the session cookie Secure.
    pub https: bool,
    /// The console's own origin (`https://console.example.com`): state-changing requests
    /// from anywhere else are refused.
    pub public_origin: String,
}

/// Refuses state-changing requests that come from another site.
///
/// Leptos gives server functions no CSRF protection of its own. The session cookie is
/// SameSite=Strict; on top of that, a POST (or any method but GET/HEAD/OPTIONS) must carry
/// an `Origin` equal to the console's, or, without `Origin`, `Sec-Fetch-Site: same-origin`.
/// A request with neither is refused too: every browser this console supports sends one.
pub async fn same_origin(
    State(policy): State<Arc<SecurityPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    use axum::response::IntoResponse as _;
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe {
        return next.run(req).await;
    }
    let headers = req.headers();
    let allowed = match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        Some(Ok(origin)) => origin == policy.public_origin,
        Some(Err(_)) => false,
        None => headers
            .get(HeaderName::from_static("sec-fetch-site"))
            .is_some_and(|v| v == "same-origin"),
    };
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(
        origin = ?headers.get(header::ORIGIN),
        "refused a cross-site state-changing request"
    );
    (
        axum::http::StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "kind": "forbidden",
            "reason": "cross-site request refused: the Origin does not match this console",
        })),
    )
        .into_response()
}

/// Builds the CSP for one response. Scripts run only from our origin or with this response's
/// nonce; `wasm-unsafe-eval` lets the page compile its own WebAssembly and nothing else.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

/// Generates the nonce before the handler runs (the page renders it into its scripts) and
/// sets the security headers on whatever the handler returns.
pub async fn security_headers(
    State(policy): State<Arc<SecurityPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let nonce = CspNonce::generate();
    req.extensions_mut().insert(nonce.clone());
    let is_asset = req.uri().path().starts_with("/pkg/");
    let mut res = next.run(req).await;
    let headers = res.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&nonce.0)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A handler may ask for stricter (a link's page: `no-referrer`, its token in the URL).
    if !headers.contains_key(header::REFERRER_POLICY) {
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if policy.https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    // Console pages and API answers describe live security state: never cache them.
    // Built assets under /pkg keep their own caching headers.
    if !is_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_request_ids_are_not_trusted() {
        let ok = HeaderValue::from_static("abc-123_x.y");
        assert_eq!(acceptable_request_id(&ok), Some("abc-123_x.y"));
        for bad in ["", "has space", "semi;colon", &"a".repeat(65)] {
            let value = HeaderValue::from_str(bad).expect("header value");
            assert_eq!(acceptable_request_id(&value), None, "{bad:?}");
        }
    }

    #[test]
    fn client_addresses_come_through_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // No proxy trusted: the peer, whatever the header says.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), &["1.2.3.4"], &[]),
            Some(ip("203.0.113.9"))
        );
        // Behind our proxy: the address it appended.
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &["198.51.100.7"], &proxies),
            Some(ip("198.51.100.7"))
        );
        // A client-written entry to the left of the real one is not believed.
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.2")),
                &["6.6.6.6, 198.51.100.7, 10.0.0.3"],
                &proxies
            ),
            Some(ip("198.51.100.7"))
        );
        // An untrusted peer sending the header: the peer.
        assert_eq!(
            client_ip(Some(ip("198.51.100.8")), &["6.6.6.6"], &proxies),
            Some(ip("198.51.100.8"))
        );
    }

    #[test]
    fn ipv4_mapped_peers_and_forwarded_entries_are_read_as_ipv4() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        // A mapped peer is its IPv4 address...
        assert_eq!(
            client_ip(Some(ip("::ffff:203.0.113.9")), &[], &[]),
            Some(ip("203.0.113.9"))
        );
        // ...so a mapped proxy is trusted, and a mapped entry it forwards is IPv4 too.
        assert_eq!(
            client_ip(
                Some(ip("::ffff:10.0.0.2")),
                &["::ffff:198.51.100.7"],
                &proxies
            ),
            Some(ip("198.51.100.7"))
        );
        // A mapped hop of our own is skipped like any trusted one.
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.2")),
                &["198.51.100.7, ::ffff:10.0.0.3"],
                &proxies
            ),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn forwarded_entries_with_ports_or_brackets_are_read_as_their_address() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        for (entry, want) in [
            ("1.2.3.4", "1.2.3.4"),
            (" 1.2.3.4:5678 ", "1.2.3.4"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[::ffff:1.2.3.4]:80", "1.2.3.4"),
        ] {
            assert_eq!(forwarded_address(entry), Some(ip(want)), "{entry}");
        }
        for junk in [
            "",
            "unknown",
            "1.2.3.4:",
            "[1.2.3.4]",
            "2001:db8::1]:443",
            "_hidden",
        ] {
            assert_eq!(forwarded_address(junk), None, "{junk}");
        }
        // Through a proxy: the forwarded address, port dropped.
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &["[2001:db8::7]:443"], &proxies),
            Some(ip("2001:db8::7"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.2")), &["198.51.100.7:5678"], &proxies),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn csp_carries_the_nonce_and_the_hardening_directives() {
        let csp = content_security_policy("n0nce");
        for part in [
            "'nonce-n0nce'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(part), "{part} missing from {csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
    }
}
