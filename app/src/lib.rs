#![recursion_limit = "256"] // Deep view types of the larger forms (leptos tuples nest per element).
//! staff-console's Leptos application: the shell, routes, panels and their server functions.
//!
//! Compiled twice: with `ssr` into the server binary (rendering, server functions, SQL) and
//! with `hydrate` into the WebAssembly that makes the server-rendered pages interactive.

pub mod auth;
pub mod components;
pub mod cursor;
#[cfg(feature = "ssr")]
pub mod db;
pub mod domain;
pub mod error;
pub mod panels;
#[cfg(feature = "ssr")]
pub mod request;
pub mod routes;
pub mod secret;

pub use routes::{shell, App};

/// Entry point of the WebAssembly bundle: attaches to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Pages are lazy routes: hydration waits for the page's chunk (fetched alongside this
    // module, as the server's HTML names it) before it attaches.
    wasm_bindgen_futures::spawn_local(async {
        let Some(body) = leptos::prelude::document().body() else {
            return;
        };
        // A page whose code does not arrive stays as the server sent it, and says so.
        if !routes::first_page_chunks_arrive().await {
            routes::not_interactive_banner();
            return;
        }
        leptos::mount::hydrate_from_async(body.clone(), App)
            .await
            .forget();
        // A marker for people and browser tests alike: the page is interactive from here on.
        let _ = body.set_attribute("data-hydrated", "true");
    });
}
