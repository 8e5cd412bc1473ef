//! The top bar's tenant switcher: a disclosure listing tenants, with a filter box.
//!
//! It is a `<details>` of plain links, so it opens, lists and navigates before the
//! WebAssembly loads and by keyboard alone; once hydrated, the filter box narrows the list
//! as you type and Escape closes it.

use crate::components::context::TenantsResource;
use crate::components::loaded::loaded;
use crate::domain::tenants::Tenant;
use leptos::html::Details;
use leptos::prelude::*;

/// Tenant switcher for the page's current tenant (`None` outside a tenant).
#[component]
pub fn TenantSwitcher(current: Memo<Option<String>>) -> impl IntoView {
    let TenantsResource(tenants) = expect_context::<TenantsResource>();
    let filter = RwSignal::new(String::new());
    let details = NodeRef::<Details>::new();
    let close = move || {
        if let Some(el) = details.get() {
            let _ = el.remove_attribute("open");
        }
    };

    let label = move |list: &[Tenant]| match current.get() {
        None => "Choose a tenant".to_owned(),
        Some(slug) => list
            .iter()
            .find(|t| t.slug == slug)
            .map(|t| t.name.clone())
            .unwrap_or(slug),
    };

    view! {
        <details
            node_ref=details
            class="tenant-switcher relative"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    close();
                }
            }
        >
            <summary class="flex cursor-pointer list-none items-center gap-2 rounded-md border border-slate-700 px-3 py-1 text-sm hover:bg-slate-800">
                <span class="text-slate-400">"Tenant"</span>
                <span data-testid="current-tenant" class="font-medium">
                    <Transition fallback=|| "…">
                        {move || Suspend::new(async move {
                            match loaded(tenants).await {
                                Ok(list) => label(&list),
                                Err(_) => current.get().unwrap_or_default(),
                            }
                        })}
                    </Transition>
                </span>
                <span aria-hidden="true" class="text-slate-400">"▾"</span>
            </summary>
            <div class="absolute left-0 z-10 mt-2 w-72 rounded-md border border-slate-200 bg-white p-2 text-slate-900 shadow-lg">
                <label for="tenant-filter" class="sr-only">"Filter tenants"</label>
                <input
                    id="tenant-filter"
                    type="search"
                    autocomplete="off"
                    placeholder="Filter tenants…"
                    class="input w-full"
                    prop:value=filter
                    on:input=move |ev| filter.set(event_target_value(&ev))
                />
                <Transition fallback=|| view! { <p class="p-2 text-sm text-slate-500">"Loading tenants…"</p> }>
                    {move || Suspend::new(async move {
                        match loaded(tenants).await {
                            Ok(list) => view! { <TenantLinks list filter current on_pick=close /> }.into_any(),
                            Err(err) => view! {
                                <p role="alert" class="p-2 text-sm text-red-700">{err.to_string()}</p>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </details>
    }
    .into_any()
}

/// The filtered list of tenant links.
#[component]
fn TenantLinks(
    list: Vec<Tenant>,
    filter: RwSignal<String>,
    current: Memo<Option<String>>,
    on_pick: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let visible = move || {
        let needle = filter.get().trim().to_lowercase();
        list.iter()
            .filter(|t| {
                needle.is_empty()
                    || t.name.to_lowercase().contains(&needle)
                    || t.slug.contains(&needle)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    view! {
        <ul class="mt-2 max-h-80 overflow-y-auto text-sm" data-testid="tenant-options">
            {move || {
                let shown = visible();
                if shown.is_empty() {
                    view! { <li class="p-2 text-slate-500">"No tenant matches."</li> }.into_any()
                } else {
                    shown
                        .into_iter()
                        .map(|t| {
                            let is_current = current.get().as_deref() == Some(t.slug.as_str());
                            let href = format!("/t/{}", t.slug);
                            view! {
                                <li>
                                    <a
                                        href=href
                                        class="menu-link"
                                        aria-current=is_current.then_some("page")
                                        on:click=move |_| on_pick()
                                    >
                                        <span class="font-medium">{t.name}</span>
                                        <span class="ml-2 text-xs text-slate-500">{t.slug}</span>
                                    </a>
                                </li>
                            }
                        })
                        .collect_view()
                        .into_any()
                }
            }}
        </ul>
    }
}
