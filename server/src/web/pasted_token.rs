//! Secrets pasted into a page's filters, cut out of the URL before anything else sees it.
//!
//! The integrations list's id filter accepts a whole pasted token and uses only its id.
//! Once the page is interactive the form cuts the token before it reaches the URL; before
//! that (WebAssembly still loading, or none at all) the form submits by GET with the whole
//! token in the query string, where browser history, proxies and access logs would keep
//! it. The server answers such a URL with a redirect to the same URL holding only the id,
//! before the page handler runs. The request log line records the path only, never the
//! query, so the secret-bearing URL is not logged either.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

/// Prefixes of the secrets a person might paste: personal access tokens (whose id is
/// kept), API client keys, service tokens and admin tokens (which have no id worth keeping).
const PAT: &str = "mf_pat_";
const SECRET_ONLY: [&str; 3] = ["mf_ck_", "sc_svc_", "mf_adm_"];

/// Redirects (303) a GET or HEAD whose query holds a pasted secret to the same URL without
/// it; passes every other request on.
pub async fn strip_pasted_tokens(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        if let Some(location) = without_secrets(req.uri()) {
            if let Ok(value) = HeaderValue::from_str(&location) {
                tracing::info!("redirected a URL holding a pasted token to one without it");
                return (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response();
            }
        }
    }
    next.run(req).await
}

/// The same path and query with every pasted secret cut out: a whole token becomes its
/// id (what the id filter uses), a client key or service token becomes empty. `None` when
/// the query holds none, so ordinary URLs are passed on untouched.
pub fn without_secrets(uri: &Uri) -> Option<String> {
    let query = uri.query()?;
    let mut changed = false;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(key, value)| {
            let cut = cut_secret(&value);
            changed |= cut.is_some();
            (key.into_owned(), cut.unwrap_or_else(|| value.into_owned()))
        })
        .collect();
    if !changed {
        return None;
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    // The path as a same-site path only: `//evil.example/x` (or `/\\evil.example`) is a
    // valid request target but, as a `Location`, another site.
    let path = uri.path().trim_start_matches(['/', '\\']);
    Some(format!("/{path}?{query}"))
}

/// What a query value becomes when it holds a secret. Looks anywhere in the value, not
/// only at its start: a paste may carry a `Bearer ` or stray text before the token.
fn cut_secret(value: &str) -> Option<String> {
    if let Some(at) = value.find(PAT) {
        return Some(app::panels::integrations::strip_pasted_token(&value[at..]));
    }
    SECRET_ONLY
        .iter()
        .any(|prefix| value.contains(prefix))
        .then(String::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(uri: &str) -> Option<String> {
        without_secrets(&uri.parse::<Uri>().expect("uri"))
    }

    #[test]
    fn a_pasted_token_becomes_its_id_and_the_rest_is_kept() {
        let token = "mf_pat_v1.4Jq8Zr2Lm5Tx9Kd3Wb7Nc.2uV8sQkX4mJr9TdL6bWc3PzYh5nAe7Fg";
        assert_eq!(
            cut(&format!(
                "/t/acme/integrations?status=active&id={token}&used=7d"
            ))
            .as_deref(),
            Some("/t/acme/integrations?status=active&id=4Jq8Zr2Lm5Tx9Kd3Wb7Nc&used=7d")
        );
        // Percent-encoded dots, spaces around it, a prefix before it.
        for id in [
            "mf_pat_v1%2E4Jq8Zr2Lm5Tx9Kd3Wb7Nc%2E2uV8sQkX4mJr9TdL6bWc3PzYh5nAe7Fg",
            "+mf_pat_v1.4Jq8Zr2Lm5Tx9Kd3Wb7Nc.2uV8sQkX4mJr9TdL6bWc3PzYh5nAe7Fg+",
            "Bearer%20mf_pat_v1.4Jq8Zr2Lm5Tx9Kd3Wb7Nc.2uV8sQkX4mJr9TdL6bWc3PzYh5nAe7Fg",
        ] {
            let location = cut(&format!("/t/acme/integrations?id={id}")).expect(id);
            assert_eq!(
                location, "/t/acme/integrations?id=4Jq8Zr2Lm5Tx9Kd3Wb7Nc",
                "{id}"
            );
        }
    }

    #[test]
    fn keys_and_service_tokens_are_dropped_and_ordinary_urls_left_alone() {
        assert_eq!(
            cut("/t/acme/integrations?id=mf_ck_v1.7QmZx4KpR2vLd9T&status=").as_deref(),
            Some("/t/acme/integrations?id=&status=")
        );
        assert_eq!(
            cut("/audit?target=sc_svc_0123456789abcdef_Hq3Z").as_deref(),
            Some("/audit?target=")
        );
        // Never to another site: a path that reads as one in a Location is collapsed.
        assert_eq!(
            cut("//evil.example/login?q=sc_svc_x").as_deref(),
            Some("/evil.example/login?q=")
        );
        for fine in [
            "/t/acme/integrations",
            "/t/acme/integrations?id=4Jq8Zr2Lm5&status=active",
            "/audit?action=token.*&outcome=deny",
        ] {
            assert_eq!(cut(fine), None, "{fine}");
        }
    }
}
