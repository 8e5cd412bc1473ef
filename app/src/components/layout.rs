//! The frame around every page: top bar, side navigation, main region.

use crate::components::tenant_switcher::TenantSwitcher;
use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The tenant slug in a console path (`/t/{slug}/...`), if the page is inside a tenant.
pub fn tenant_from_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/t/")?;
    let slug = rest.split('/').next().unwrap_or_default();
    (!slug.is_empty()).then(|| slug.to_owned())
}

/// Top bar, side navigation and the main region holding the routed page.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let location = use_location();
    let current = Memo::new(move |_| tenant_from_path(&location.pathname.get()));

    view! {
        <a href="#main" class="skip-link">"Skip to content"</a>
        <div class="flex min-h-screen flex-col">
            <header class="flex items-center gap-6 border-b border-slate-800 bg-slate-900 px-4 py-2 text-slate-100">
                <a href="/" class="flex items-center gap-2 rounded font-semibold tracking-tight">
                    <img src="/favicon.svg" alt="" class="h-6 w-6" />
                    <span>"staff-console"</span>
                </a>
                <TenantSwitcher current />
            </header>
            <div class="flex flex-1">
                <SideNav current />
                <main id="main" tabindex="-1" class="flex-1 p-6 focus:outline-none">
                    {children()}
                </main>
            </div>
        </div>
    }
}

/// Navigation listing only the panels that exist.
#[component]
fn SideNav(current: Memo<Option<String>>) -> impl IntoView {
    let location = use_location();
    let link = move |href: String, label: &'static str| {
        let active = {
            let href = href.clone();
            move || location.pathname.get() == href
        };
        view! {
            <li>
                <a
                    href=href
                    class="nav-link"
                    aria-current=move || active().then_some("page")
                >
                    {label}
                </a>
            </li>
        }
    };
    view! {
        <nav aria-label="Panels" class="w-56 shrink-0 border-r border-slate-200 bg-white p-3">
            <ul class="space-y-1 text-sm">
                {link("/".to_owned(), "Tenants")}
                {move || current.get().map(|slug| link(format!("/t/{slug}"), "Overview"))}
            </ul>
        </nav>
    }
}

#[cfg(test)]
mod tests {
    use super::tenant_from_path;

    #[test]
    fn finds_the_tenant_in_console_paths() {
        assert_eq!(tenant_from_path("/t/demo"), Some("demo".into()));
        assert_eq!(tenant_from_path("/t/demo/tokens"), Some("demo".into()));
        assert_eq!(tenant_from_path("/t/"), None);
        assert_eq!(tenant_from_path("/"), None);
        assert_eq!(tenant_from_path("/tenants"), None);
    }
}
