//! The document shell, the app root and the route table.

use crate::auth::view::SignInPage;
use crate::auth::StaffIdentity;
use crate::components::layout::ConsoleLayout;
use crate::components::not_found::NotFoundPage;
use crate::error::AppError;
use crate::panels::account::view::AccountPasswordPage;
use crate::panels::agent_ops::view::{AgentOpsPage, ClientDetailPage};
use crate::panels::audit::view::{AuditEventPage, AuditPage};
use crate::panels::integrations::view::{IntegrationsPage, TokenDetailPage};
use crate::panels::limits::view::LimitsPage;
use crate::panels::overview::view::{HomePage, TenantOverviewPage};
use crate::panels::pepper::view::PepperPage;
use crate::panels::staff::view::StaffPage;
use crate::panels::switches::view::SwitchesPage;
use crate::tenants::Tenant;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, Link, MetaTags, Title};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{path, SsrMode};

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

/// Who is signed in, as the console layout knows it (see
/// [`ConsoleLayout`](crate::components::layout::ConsoleLayout)).
#[derive(Clone, Copy)]
pub struct StaffResource(pub Resource<Result<Option<StaffIdentity>, AppError>>);

/// The tenants the switcher lists, loaded once the person is signed in.
#[derive(Clone, Copy)]
pub struct TenantsResource(pub Resource<Result<Vec<Tenant>, AppError>>);

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
                <Route path=path!("/sign-in") view=SignInPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=ConsoleLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=HomePage />
                    <Route path=path!("/t/:tenant") view=TenantOverviewPage />
                    <Route path=path!("/t/:tenant/integrations") view=IntegrationsPage />
                    <Route path=path!("/t/:tenant/integrations/:id") view=TokenDetailPage />
                    <Route path=path!("/t/:tenant/agent-ops") view=AgentOpsPage />
                    <Route path=path!("/t/:tenant/agent-ops/:id") view=ClientDetailPage />
                    <Route path=path!("/audit") view=AuditPage />
                    <Route path=path!("/audit/:seq") view=AuditEventPage />
                    <Route path=path!("/switches") view=SwitchesPage />
                    <Route path=path!("/limits") view=LimitsPage />
                    <Route path=path!("/staff") view=StaffPage />
                    <Route path=path!("/pepper") view=PepperPage />
                    <Route path=path!("/account/password") view=AccountPasswordPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
