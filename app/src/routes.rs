//! The document shell, the app root and the route table.

use crate::components::layout::Layout;
use crate::components::not_found::NotFoundPage;
use crate::error::AppError;
use crate::panels::overview::view::{HomePage, TenantOverviewPage};
use crate::tenants::api::list_tenants;
use crate::tenants::Tenant;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
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
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

/// The tenants every page's switcher lists, loaded once per page load.
#[derive(Clone, Copy)]
pub struct TenantsResource(pub Resource<Result<Vec<Tenant>, AppError>>);

/// The root component: metadata, shared resources and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(TenantsResource(Resource::new(|| (), |_| list_tenants())));

    view! {
        <Stylesheet id="leptos" href="/pkg/staff_console.css" />
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg" />
        <Title text="staff-console" />
        <Router>
            <Layout>
                // Async rendering: the server waits for a page's data before sending it, so
                // the HTML is complete without WebAssembly and the status code (404, 422)
                // reflects what the page found.
                <Routes fallback=NotFoundPage>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("/t/:tenant") view=TenantOverviewPage ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}
