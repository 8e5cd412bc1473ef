//! The HTTP surface: console pages, server functions, operations endpoints, and the
//! middleware every response passes through.

pub mod audit_export;
pub mod health;
pub mod middleware;
pub mod pasted_token;
pub mod session_keys;

use app::auth::api::SignInPolicy;
use app::domain::gateway::controls::state::Controls;
use app::domain::gateway::verify::Verifier;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use leptos::prelude::{provide_context, use_context, LeptosOptions};
use leptos_axum::{
    generate_route_list, handle_server_fns_with_context, AxumRouteListing, LeptosRoutes,
};
use middleware::{CspNonce, SecurityPolicy};
use sqlx::PgPool;
use std::sync::{Arc, OnceLock};
use tower_http::timeout::TimeoutLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

/// Shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Where the built site lives, the output name and the listen address.
    pub leptos_options: LeptosOptions,
    /// The database.
    pub pool: PgPool,
    /// Inputs of the security headers and the cross-site check.
    pub security: Arc<SecurityPolicy>,
    /// Lockout and throttle numbers for sign-in.
    pub sign_in_policy: SignInPolicy,
    /// The gateway's token verifier (also holds the key minting and rotation seal with).
    pub verifier: Arc<Verifier>,
    /// The gateway's kill switches, rate limits and blocks.
    pub controls: Arc<Controls>,
    /// The session cookie's signing keys (`SESSION_SIGNING_KEY`, and the previous one
    /// during a rotation).
    pub session_keys: Arc<session_keys::SessionKeys>,
    /// The WebAuthn relying party of staff passkeys (`PUBLIC_URL`'s origin), or none where
    /// `PUBLIC_URL` is an IP address.
    pub passkeys: app::domain::factors::passkey::RelyingParty,
    /// `JWKS_MAX_AGE_SECONDS` and `DELEGATED_TOKEN_TTL_SECONDS`.
    pub key_policy: app::domain::keys::KeyPolicy,
    /// `INTERNAL_JWKS_REFRESH_TOKEN`: the forced refresh's bearer token, if it is on.
    pub jwks_refresh_token: Option<Arc<app::secret::SecretString>>,
    /// End users' token lifetimes and captcha check.
    pub end_users: Arc<app::domain::endusers::Policy>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The admin API's routes beside the console's (the audit export).
impl FromRef<AppState> for crate::admin_api::AdminApi {
    fn from_ref(state: &AppState) -> Self {
        crate::admin_api::AdminApi {
            verifier: state.verifier.clone(),
            controls: state.controls.clone(),
        }
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

impl FromRef<AppState> for SignInPolicy {
    fn from_ref(state: &AppState) -> Self {
        state.sign_in_policy
    }
}

/// What every page render and server-function call finds in Leptos context: the pool, and
/// the CSP nonce the security middleware chose for this response.
fn request_context(state: &AppState) -> impl Fn() + Clone + Send + Sync + 'static {
    let pool = state.pool.clone();
    let sign_in_policy = state.sign_in_policy;
    let verifier = state.verifier.clone();
    let controls = state.controls.clone();
    let passkeys = state.passkeys.clone();
    let key_policy = state.key_policy;
    let end_users = state.end_users.clone();
    move || {
        provide_context(end_users.clone());
        provide_context(passkeys.clone());
        provide_context(key_policy);
        provide_context(pool.clone());
        provide_context(sign_in_policy);
        provide_context(verifier.clone());
        provide_context(controls.clone());
        let nonce = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
        if let Some(CspNonce(value)) = nonce {
            provide_context(leptos::nonce::Nonce::from_value(value));
        }
    }
}

async fn server_fns(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(request_context(&state), req).await
}

/// Whether the request's `If-None-Match` names `tag` (or `*`): the answer is then `304`.
pub fn etag_matches(headers: &http::HeaderMap, tag: &str) -> bool {
    headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

/// `Cache-Control` of a built asset whose name carries its content's hash: a new build
/// has new names, so browsers keep these for a year without asking again.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether `name` (a file name) carries a cargo-leptos content hash: a dot-separated part
/// of 22 base64url characters, as in `staff_console.Pq3yZ1AS_M8lq8YKvCJhdw.wasm`. The split
/// loader's name before hashing, `__wasm_split.______________________.js`, is not one.
pub fn is_hashed_name(name: &str) -> bool {
    name.split('.').any(|part| {
        part.len() == 22
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && part.bytes().any(|b| b.is_ascii_alphanumeric())
    })
}

/// Caching of `/pkg` answers: hashed names of a hashed build for a year, anything else
/// revalidated (a development build keeps its names), errors never kept. The same name may
/// be sent brotli-, gzip- or un-compressed, so caches must key on `Accept-Encoding`.
async fn asset_caching(
    State(hash_files): State<bool>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{CACHE_CONTROL, VARY};
    use axum::http::HeaderValue;
    let hashed = hash_files
        && req
            .uri()
            .path()
            .rsplit('/')
            .next()
            .is_some_and(is_hashed_name);
    let mut res = next.run(req).await;
    let status = res.status();
    let cache = if !(status.is_success() || status == axum::http::StatusCode::NOT_MODIFIED) {
        "no-store"
    } else if hashed {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let headers = res.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    res
}

/// The built front end (`/pkg/...`: WebAssembly, JavaScript, CSS) straight from the site
/// folder, outside the session layer: brotli or gzip when the build left a `.br` or `.gz`
/// beside the file (`make release` does) and the browser accepts it. Only these static
/// files are ever compressed; pages and server-function answers never are, so nothing a
/// response shows once (a new token, a one-time password) can leak through its
/// compressed length (BREACH).
fn assets(options: &LeptosOptions) -> Router {
    let pkg = options.site_pkg_dir.trim_matches('/');
    let dir = std::path::Path::new(&*options.site_root).join(pkg);
    let files = tower_http::services::ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .nest_service(&format!("/{pkg}"), files)
        .layer(axum::middleware::from_fn_with_state(
            options.hash_files,
            asset_caching,
        ))
        // Browsers ask for it on pages that name no icon (a JSON answer shown, the links'
        // pages' answers): the console's icon, not a 404.
        .route(
            "/favicon.ico",
            get(|| async { axum::response::Redirect::permanent("/favicon.svg") }),
        )
}

/// The longest any request may take.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The staff session layer: PostgreSQL-backed, HttpOnly, SameSite=Strict, Secure and
/// `__Host-` over HTTPS, expiring after 30 idle minutes (`current_staff` renews the expiry
/// on every signed-in request).
///
/// The cookie is signed (an HMAC of the id under a key derived from `SESSION_SIGNING_KEY`):
/// a forged, random or stale-format cookie is dropped before the store is asked, so junk
/// cookies cost no database query, and every instance with the same key accepts every
/// session. During a rotation, [`session_keys::accept_previous`] runs first.
fn session_layer(
    pool: PgPool,
    https: bool,
    keys: &session_keys::SessionKeys,
) -> SessionManagerLayer<PostgresStore, tower_sessions::service::SignedCookie> {
    let idle = app::auth::session::IDLE_TIMEOUT;
    SessionManagerLayer::new(PostgresStore::new(pool))
        .with_signed(keys.current())
        .with_name(app::auth::session::cookie_name(https))
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(https)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

/// The console's routes, generated once per process.
///
/// leptos generates the route list by rendering the whole app under a process-wide flag
/// that suppresses resource loads (`leptos_server`'s `SuppressResourceLoad`), and a
/// resource whose future is first polled anywhere in the process while that flag is up
/// waits forever, even after it drops (leptos-rs/leptos#4773). Generating it on every
/// [`router`] call let one runtime building a router (each parallel test builds its own)
/// stall a page another runtime was rendering until the request timeout. Generated once,
/// it is done before any router exists, so before any render.
fn routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole router: the console (pages and server functions, behind the session layer and
/// the cross-site check), and the agent API gateway and switches API (bearer tokens, no
/// session, no cookies),
/// both behind the request id, security headers and the request timeout.
///
/// Server functions answer POST only: nothing changes state on GET. A console URL whose
/// query holds a pasted token is redirected to one without it ([`pasted_token`]).
pub fn router(state: AppState) -> Router {
    let routes = routes();
    let context = request_context(&state);
    let options = state.leptos_options.clone();
    let console = Router::new()
        .route("/api/{*fn_name}", post(server_fns))
        .route("/audit/export", get(audit_export::console))
        .route("/a/{tenant}/admin/audit/export", get(audit_export::admin))
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(session_layer(
            state.pool.clone(),
            state.security.https,
            &state.session_keys,
        ))
        .layer(axum::middleware::from_fn_with_state(
            session_keys::Rotation {
                keys: state.session_keys.clone(),
                name: app::auth::session::cookie_name(state.security.https),
            },
            session_keys::accept_previous,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.security.clone(),
            middleware::same_origin,
        ))
        // Before anything reads the query: a token pasted into a filter of a page that was
        // not interactive yet is redirected out of the URL.
        .layer(axum::middleware::from_fn(pasted_token::strip_pasted_tokens))
        .with_state(state.clone());
    Router::new()
        .route("/healthz", get(health::healthz))
        // No session layer: readiness needs no cookie, and answers from a cached probe.
        .route(
            "/readyz",
            get(health::readyz).with_state(Arc::new(health::Readiness::new(state.pool.clone()))),
        )
        .merge(crate::gateway::router(crate::gateway::Gateway {
            verifier: state.verifier.clone(),
            controls: state.controls.clone(),
            public_origin: state.security.public_origin.as_str().into(),
            key_policy: state.key_policy,
            identity: state.end_users.clone(),
        }))
        .merge(crate::admin_api::router(crate::admin_api::AdminApi {
            verifier: state.verifier.clone(),
            controls: state.controls.clone(),
        }))
        .merge(crate::switches_api::router(state.controls.clone()))
        .merge(crate::published::router(crate::published::Published {
            verifier: state.verifier.clone(),
            pool: state.pool.clone(),
            public_origin: state.security.public_origin.clone(),
            policy: state.key_policy,
            refresh_token: state.jwks_refresh_token.clone(),
        }))
        .merge(assets(&state.leptos_options))
        .merge(console)
        .layer(axum::middleware::from_fn_with_state(
            state.security.clone(),
            middleware::security_headers,
        ))
        // No request may hold a connection forever: past this, the caller gets 503 (logged
        // with its request id by `observe`, just outside).
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.security.clone(),
            middleware::observe,
        ))
}

#[cfg(test)]
mod tests {
    use super::is_hashed_name;

    #[test]
    fn hashed_names_carry_a_content_hash() {
        assert!(is_hashed_name("staff_console.Pq3yZ1AS_M8lq8YKvCJhdw.wasm"));
        assert!(is_hashed_name("split_audit.3YjBhjFkVAjbmNhAlYEcJA.wasm"));
        assert!(!is_hashed_name("staff_console.wasm"));
        // The split loader's name before cargo-leptos hashes it.
        assert!(!is_hashed_name("__wasm_split.______________________.js"));
    }
}
