//! The page for an unknown address.

use leptos::prelude::*;
use leptos_meta::Title;

/// Shown for any path the route table does not know; answers 404 on the server.
#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        options.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <section class="max-w-prose">
            <h1 class="text-2xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-slate-600">
                "Nothing lives at this address. Pick a tenant from the "
                <a class="link" href="/">"tenant list"</a>
                "."
            </p>
        </section>
    }
}
