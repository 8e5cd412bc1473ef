//! Views of the overview panel.

use crate::components::context::TenantsResource;
use crate::components::feedback::{outcome_badge, EmptyState, ErrorNotice};
use crate::components::loaded::loaded;
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_minutes;
use crate::domain::audit::ActivityRow;
use crate::domain::tenants::Tenant;
use crate::panels::overview::api::get_tenant;
use crate::panels::overview::api::recent_activity;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// `/`: every tenant, as a list to pick from.
#[component]
pub fn HomePage() -> impl IntoView {
    let TenantsResource(tenants) = expect_context::<TenantsResource>();
    view! {
        <Title text="Tenants" />
        <h1 class="text-2xl font-semibold">"Tenants"</h1>
        <p class="mt-1 text-slate-600">"Pick the tenant you are working on."</p>
        <Show when=move || crate::auth::view::allowed(crate::auth::Permission::ManageTenants).get()>
            <p class="mt-2"><a class="link" href="/tenants/new">"Create a tenant"</a></p>
        </Show>
        <div class="mt-6">
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading tenants…"</p> }>
                {move || Suspend::new(async move {
                    match loaded(tenants).await {
                        Ok(list) => view! { <TenantTable list /> }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
        <RecentActivity />
    }
    .into_any()
}

/// The newest audit events across the platform.
#[component]
fn RecentActivity() -> impl IntoView {
    let events = Resource::new(|| (), |_| recent_activity());
    view! {
        <section class="mt-10" aria-labelledby="activity-heading">
            <h2 id="activity-heading" class="text-lg font-semibold">"Recent activity"</h2>
            <div class="mt-3">
                <Transition fallback=|| view! { <p class="text-slate-500">"Loading activity…"</p> }>
                    {move || Suspend::new(async move {
                        match loaded(events).await {
                            Ok(rows) => view! { <ActivityTable rows /> }.into_any(),
                            Err(error) => view! { <ErrorNotice error /> }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn ActivityTable(rows: Vec<ActivityRow>) -> impl IntoView {
    view! {
        <DataTable caption="Recent activity" testid="recent-activity"
            rows=rows.len()
            empty=("No activity recorded", "Sign-ins, staff changes and refusals will be listed here, newest first.")
            columns=vec![Col::new("When (UTC)"), Col::new("Who"), Col::new("Action"), Col::new("Outcome"), Col::new("Target")]>
                {rows
                    .into_iter()
                    .map(|r| {
                        let badge = outcome_badge(r.outcome);
                        view! {
                            <tr>
                                <td class="whitespace-nowrap">{utc_minutes(r.ts)}</td>
                                <td>{r.actor}</td>
                                <td class="font-mono text-xs">{r.action}</td>
                                <td>
                                    <span class=badge>{r.outcome.as_str()}</span>
                                    {r.code.map(|c| view! { <span class="ml-2 font-mono text-xs text-slate-600">{c}</span> })}
                                </td>
                                <td class="font-mono text-xs">{r.target.unwrap_or_default()}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </DataTable>
    }
}

#[component]
fn TenantTable(list: Vec<Tenant>) -> impl IntoView {
    view! {
        <DataTable caption="Tenants" testid="tenants"
            rows=list.len()
            empty=("No tenants yet", "Every API client, token and switch belongs to a tenant. An admin creates one here or with `staff-console tenant create`.")
            columns=vec![Col::new("Name"), Col::new("Slug"), Col::new("Created")]>
                {list
                    .into_iter()
                    .map(|t| {
                        view! {
                            <tr>
                                <td>
                                    <a class="link" href=format!("/t/{}", t.slug)>{t.name}</a>
                                </td>
                                <td class="font-mono text-sm">{t.slug}</td>
                                <td>{utc_minutes(t.created_at)}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </DataTable>
    }
}

/// `/t/{tenant}`: what the console knows about one tenant.
#[component]
pub fn TenantOverviewPage() -> impl IntoView {
    let params = use_params_map();
    let slug = move || params.read().get("tenant").unwrap_or_default();
    let tenant = Resource::new(slug, get_tenant);

    view! {
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading tenant…"</p> }>
            {move || Suspend::new(async move {
                match loaded(tenant).await {
                    Ok(t) => view! { <TenantOverview tenant=t /> }.into_any(),
                    Err(error) => {
                        #[cfg(feature = "ssr")]
                        set_error_status(&error);
                        view! {
                            <Title text="Tenant not available" />
                            <ErrorNotice error />
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Server-rendered error pages answer with the error's HTTP status, not 200.
#[cfg(feature = "ssr")]
fn set_error_status(error: &crate::error::AppError) {
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = http::StatusCode::from_u16(error.status_code()) {
            options.set_status(status);
        }
    }
}

#[component]
fn TenantOverview(tenant: Tenant) -> impl IntoView {
    view! {
        <Title text=tenant.name.clone() />
        <h1 class="text-2xl font-semibold" data-testid="tenant-heading">{tenant.name.clone()}</h1>
        <dl class="mt-4 grid max-w-xl grid-cols-[max-content_1fr] gap-x-6 gap-y-2 text-sm">
            <dt class="text-slate-500">"Slug"</dt>
            <dd class="font-mono">{tenant.slug.clone()}</dd>
            <dt class="text-slate-500">"Tenant id"</dt>
            <dd class="font-mono">{tenant.id.to_string()}</dd>
            <dt class="text-slate-500">"Created"</dt>
            <dd>{utc_minutes(tenant.created_at)}</dd>
        </dl>
        <section class="mt-8" aria-labelledby="activity-heading">
            <h2 id="activity-heading" class="text-lg font-semibold">"Recent activity"</h2>
            <div class="mt-3">
                <EmptyState title="No activity recorded">
                    "Nothing has happened in this tenant yet. Staff actions and gateway decisions will be listed here, newest first."
                </EmptyState>
            </div>
        </section>
    }
    .into_any()
}
