//! The document shell, the app root and the route table.

use crate::auth::view::{SecondFactorPage, SignInPage};
use crate::components::layout::ConsoleLayout;
use crate::components::not_found::NotFoundPage;
use crate::panels::account::view::{
    AccountPasswordPage, AccountSecurityPage, AccountSessionsPage, AdminTokensPage,
};
use crate::panels::agent_ops::view::{AgentOpsPage, ClientDetailPage};
use crate::panels::audit::view::{AuditEventPage, AuditPage};
use crate::panels::freeze::view::FreezePage;
use crate::panels::integrations::view::{IntegrationsPage, TokenDetailPage};
use crate::panels::keys::view::SigningKeysPage;
use crate::panels::limits::view::LimitsPage;
use crate::panels::overview::view::{HomePage, TenantOverviewPage};
use crate::panels::pepper::view::PepperPage;
use crate::panels::staff::view::{StaffPage, StaffSessionsPage};
use crate::panels::switches::view::SwitchesPage;
use crate::panels::tenants::view::{NewTenantPage, TenantSettingsPage};
use crate::panels::users::view::{MailQueuePage, UserDetailPage, UsersListPage};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, Lazy, LazyRoute, SsrMode};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                // `/pkg/staff_console.css`, or its hashed name in a release build.
                <HashedStylesheet options=options.clone() id="leptos" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

/// The root component: metadata, shared resources and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Title text="staff-console" />
        <Router>
            // Async rendering: the server waits for a page's data before sending it, so the
            // HTML is complete without WebAssembly and the status code (404, 422) reflects
            // what the page found.
            <Routes fallback=NotFoundPage>
                <Route path=path!("/sign-in") view={Lazy::<SignIn>::new()} ssr=SsrMode::Async />
                <Route path=path!("/sign-in/verify") view={Lazy::<SecondFactor>::new()} ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=ConsoleLayout ssr=SsrMode::Async>
                    <Route path=path!("") view={Lazy::<Home>::new()} />
                    <Route path=path!("/t/:tenant") view={Lazy::<TenantOverview>::new()} />
                    <Route path=path!("/t/:tenant/integrations") view={Lazy::<Integrations>::new()} />
                    <Route path=path!("/t/:tenant/integrations/:id") view={Lazy::<TokenDetail>::new()} />
                    <Route path=path!("/t/:tenant/agent-ops") view={Lazy::<AgentOps>::new()} />
                    <Route path=path!("/t/:tenant/agent-ops/:id") view={Lazy::<ClientDetail>::new()} />
                    <Route path=path!("/t/:tenant/keys") view={Lazy::<SigningKeys>::new()} />
                    <Route path=path!("/t/:tenant/settings") view={Lazy::<TenantSettings>::new()} />
                    <Route path=path!("/t/:tenant/users") view={Lazy::<Users>::new()} />
                    <Route path=path!("/t/:tenant/users/:id") view={Lazy::<UserDetail>::new()} />
                    <Route path=path!("/t/:tenant/mail") view={Lazy::<MailQueue>::new()} />
                    <Route path=path!("/tenants/new") view={Lazy::<NewTenant>::new()} />
                    <Route path=path!("/audit") view={Lazy::<Audit>::new()} />
                    <Route path=path!("/audit/:seq") view={Lazy::<AuditEvent>::new()} />
                    <Route path=path!("/switches") view={Lazy::<Switches>::new()} />
                    <Route path=path!("/limits") view={Lazy::<Limits>::new()} />
                    <Route path=path!("/staff") view={Lazy::<Staff>::new()} />
                    <Route path=path!("/pepper") view={Lazy::<Pepper>::new()} />
                    <Route path=path!("/freeze") view={Lazy::<FreezePanel>::new()} />
                    <Route path=path!("/account/password") view={Lazy::<AccountPassword>::new()} />
                    <Route path=path!("/account/security") view={Lazy::<AccountSecurity>::new()} />
                    <Route path=path!("/account/sessions") view={Lazy::<AccountSessions>::new()} />
                    <Route path=path!("/account/admin-tokens") view={Lazy::<AccountAdminTokens>::new()} />
                    <Route path=path!("/staff/sessions") view={Lazy::<StaffSessions>::new()} />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

// Each page is a lazy route: in a release build its code is a WebAssembly chunk of its own
// (cargo-leptos `--split`), fetched when the page is first needed, in parallel with its
// data, so the first page a browser opens loads only the shell and that page. The server
// renders the page directly; the shell loads the first page's group before it hydrates
// (`first_page_chunks_arrive`).
//
// Leptos's `#[lazy_route]` would panic, and so stop the whole WebAssembly, when a chunk
// cannot be fetched (a dropped connection while moving between panels). These pages load
// through `wasm_split_helpers` (the crate under Leptos's macro) with its `fallible` option
// instead: a chunk that does not arrive is tried again, then the page says so and the rest
// of the console keeps working.
macro_rules! lazy_pages {
    ($($route:ident => $page:ident in $chunk:ident, by $load:ident, $preload:ident;)*) => {$(
        #[doc = concat!("The route of [`", stringify!($page), "`], loaded on first use.")]
        pub struct $route;

        #[wasm_split_helpers::wasm_split($chunk, preload($preload), fallible)]
        fn $load() -> Result<AnyView, PageLoadFailed> {
            Ok(view! { <$page /> }.into_any())
        }

        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            async fn view(_this: Self) -> AnyView {
                load_page($load).await
            }

            async fn preload() {
                // Started with the page's data; a failure is met again, and told, in `view`.
                let _ = $preload().await;
            }
        }
    )*};
}

// Pages are grouped into a few chunks: each group's code is fetched once, when the first of
// its pages is opened. One chunk per page made a hundred small modules for a panel to fetch
// and instantiate, which cost more time than their smaller size saved (README, The bundle).
lazy_pages! {
    SignIn => SignInPage in sign_in, by load_sign_in, preload_sign_in;
    // Its own group: the passkey ceremony's code is not part of the first page a browser
    // opens (the sign-in form).
    SecondFactor => SecondFactorPage in second_factor, by load_second_factor, preload_second_factor;
    Home => HomePage in overview, by load_home, preload_home;
    TenantOverview => TenantOverviewPage in overview, by load_tenant_overview, preload_tenant_overview;
    AccountPassword => AccountPasswordPage in overview, by load_account_password, preload_account_password;
    AccountSecurity => AccountSecurityPage in overview, by load_account_security, preload_account_security;
    AccountSessions => AccountSessionsPage in overview, by load_account_sessions, preload_account_sessions;
    AccountAdminTokens => AdminTokensPage in overview, by load_account_admin_tokens, preload_account_admin_tokens;
    Integrations => IntegrationsPage in tenant, by load_integrations, preload_integrations;
    TokenDetail => TokenDetailPage in tenant, by load_token_detail, preload_token_detail;
    AgentOps => AgentOpsPage in tenant, by load_agent_ops, preload_agent_ops;
    ClientDetail => ClientDetailPage in tenant, by load_client_detail, preload_client_detail;
    SigningKeys => SigningKeysPage in tenant, by load_signing_keys, preload_signing_keys;
    TenantSettings => TenantSettingsPage in tenant, by load_tenant_settings, preload_tenant_settings;
    Users => UsersListPage in tenant, by load_users, preload_users;
    UserDetail => UserDetailPage in tenant, by load_user_detail, preload_user_detail;
    MailQueue => MailQueuePage in tenant, by load_mail_queue, preload_mail_queue;
    // With the tenant pages: the platform group (every platform panel's first load) does
    // not carry tenant management's code.
    NewTenant => NewTenantPage in tenant, by load_new_tenant, preload_new_tenant;
    Audit => AuditPage in audit, by load_audit, preload_audit;
    AuditEvent => AuditEventPage in audit, by load_audit_event, preload_audit_event;
    Switches => SwitchesPage in platform, by load_switches, preload_switches;
    Limits => LimitsPage in platform, by load_limits, preload_limits;
    Staff => StaffPage in platform, by load_staff, preload_staff;
    StaffSessions => StaffSessionsPage in platform, by load_staff_sessions, preload_staff_sessions;
    Pepper => PepperPage in platform, by load_pepper, preload_pepper;
    FreezePanel => FreezePage in platform, by load_freeze, preload_freeze;
}

/// A page's chunk did not arrive.
#[derive(Debug)]
pub struct PageLoadFailed;

impl From<wasm_split_helpers::SplitLoaderError> for PageLoadFailed {
    fn from(_: wasm_split_helpers::SplitLoaderError) -> Self {
        PageLoadFailed
    }
}

/// Runs a page's chunk, fetching it first if need be: three tries, a second apart, then a
/// notice in the page's place.
async fn load_page<F, Fut>(chunk: F) -> AnyView
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<AnyView, PageLoadFailed>>,
{
    for attempt in 0..3 {
        if attempt > 0 {
            wait_a_second().await;
        }
        if let Ok(view) = chunk().await {
            return view;
        }
    }
    view! { <PageLoadFailedNotice /> }.into_any()
}

/// Before the first page hydrates: loads its page group's chunk (three tries, a second
/// apart). `false` when it does not arrive: the page must then not be hydrated, since the
/// notice [`load_page`] would show in its place does not match what the server sent, and
/// hydrating against it would stop the WebAssembly. Loaded here, the chunk is ready when
/// the router runs the page.
///
/// The groups by path, as [`App`] routes them; a path not listed here (a page added later,
/// the not-found page of the shell) hydrates without this check.
#[cfg(feature = "hydrate")]
pub async fn first_page_chunks_arrive() -> bool {
    let path = web_sys::window()
        .and_then(|window| window.location().pathname().ok())
        .unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for attempt in 0..3 {
        if attempt > 0 {
            wait_a_second().await;
        }
        let loaded = match segments.as_slice() {
            ["sign-in"] => preload_sign_in().await,
            ["sign-in", "verify"] => preload_second_factor().await,
            [] | ["t", _] | ["account", _] => preload_home().await,
            ["t", _, "integrations"] | ["t", _, "integrations", _] => preload_integrations().await,
            ["t", _, "agent-ops"] | ["t", _, "agent-ops", _] => preload_agent_ops().await,
            ["t", _, "keys" | "settings" | "users" | "mail"]
            | ["t", _, "users", _]
            | ["tenants", "new"] => preload_signing_keys().await,
            ["audit"] | ["audit", _] => preload_audit().await,
            ["switches" | "limits" | "staff" | "pepper" | "freeze"] | ["staff", "sessions"] => {
                preload_switches().await
            }
            _ => Ok(()),
        };
        if loaded.is_ok() {
            return true;
        }
    }
    false
}

/// Puts a notice over the top of the server-rendered page, after anything Leptos hydrates.
#[cfg(feature = "hydrate")]
pub fn not_interactive_banner() {
    let Some(document) = web_sys::window().and_then(|window| window.document()) else {
        return;
    };
    let (Ok(banner), Ok(reload), Some(body)) = (
        document.create_element("div"),
        document.create_element("a"),
        document.body(),
    ) else {
        return;
    };
    let _ = banner.set_attribute("role", "alert");
    let _ = banner.set_attribute("data-testid", "not-interactive");
    // Fixed at the top, but last in the body: the nodes before it are the page Leptos
    // started to hydrate, and stay exactly as the server sent them.
    let _ = banner.set_attribute(
        "class",
        "fixed inset-x-0 top-0 z-50 border-b border-amber-300 bg-amber-50 px-4 py-2 text-sm text-amber-900",
    );
    banner.set_text_content(Some(
        "This page could not be made interactive: its code did not arrive, the connection \
         to the console may be down. What it shows is current as of loading; nothing was \
         changed. ",
    ));
    let _ = reload.set_attribute("href", "");
    // A full load, not a client-side navigation by the part of the router already attached.
    let _ = reload.set_attribute("rel", "external");
    let _ = reload.set_attribute("class", "link");
    reload.set_text_content(Some("Load the page again"));
    let _ = banner.append_child(&reload);
    let _ = body.append_child(&banner);
}

#[cfg(feature = "hydrate")]
async fn wait_a_second() {
    let timer = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 1000);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(timer).await;
}

#[cfg(not(feature = "hydrate"))]
async fn wait_a_second() {}

/// What takes a page's place when its code could not be fetched.
#[component]
fn PageLoadFailedNotice() -> impl IntoView {
    view! {
        <Title text="Page not loaded" />
        <section class="max-w-prose" role="alert">
            <h1 class="text-2xl font-semibold">"This page could not be loaded"</h1>
            <p class="mt-2 text-slate-600">
                "Its code did not arrive: the connection to the console may be down. Nothing was changed. "
                <a class="link" href="" rel="external">"Load the page again"</a>
                " when the connection is back."
            </p>
        </section>
    }
}
