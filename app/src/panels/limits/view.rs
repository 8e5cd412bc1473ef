//! `/limits`: rate-limit defaults and overrides, and the IP block list.

use super::api::{get_limits, BlockIp, RemoveRateLimit, SetRateLimit, UnblockIp};
use super::{BlockRow, LimitsOverview, OverrideRow};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::{field_message, form_message, ErrorNotice};
use crate::components::loaded::loaded;
use crate::components::time::Countdown;
use crate::domain::gateway::controls::Limit;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

fn describe(limit: Limit) -> String {
    format!("{} / min, burst {}", limit.per_minute, limit.burst)
}

/// `/limits`: rate limits and blocked addresses, platform-wide.
#[component]
pub fn LimitsPage() -> impl IntoView {
    let set = ServerAction::<SetRateLimit>::new();
    let remove = ServerAction::<RemoveRateLimit>::new();
    let block = ServerAction::<BlockIp>::new();
    let unblock = ServerAction::<UnblockIp>::new();
    let overview = Resource::new(
        move || {
            (
                set.version().get(),
                remove.version().get(),
                block.version().get(),
                unblock.version().get(),
            )
        },
        |_| get_limits(),
    );
    view! {
        <Title text="Rate limits and IP blocks" />
        <h1 class="text-2xl font-semibold">"Rate limits and IP blocks"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "The agent API answers 429 RATE_LIMITED (with Retry-After) past a caller's limit, and 403 IP_BLOCKED to a blocked address. Changes apply on every instance within a second. Each instance counts on its own: see the README on limits with several instances."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(overview).await {
                    Ok(o) => view! { <Overview o remove unblock /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <Show when=move || allowed(Permission::Operate).get()>
            <div class="mt-8 grid max-w-5xl gap-4 md:grid-cols-2">
                <SetForm action=set />
                <BlockForm action=block />
            </div>
        </Show>
    }
    .into_any()
}

#[component]
fn Overview(
    o: LimitsOverview,
    remove: ServerAction<RemoveRateLimit>,
    unblock: ServerAction<UnblockIp>,
) -> impl IntoView {
    view! {
        <section class="mt-6" aria-labelledby="defaults-heading">
            <h2 id="defaults-heading" class="font-semibold">"Defaults (from configuration)"</h2>
            <p class="mt-1 text-sm" data-testid="limit-defaults">
                {format!("Per token owner: {}. Per address: {}.", describe(o.owner_default), describe(o.ip_default))}
                {(!o.limiting).then(|| view! { <strong class="ml-2 text-amber-900">"Rate limiting is off on this server (RL_ENABLED=false)."</strong> })}
            </p>
        </section>
        <section class="mt-6" aria-labelledby="overrides-heading">
            <h2 id="overrides-heading" class="font-semibold">"Overrides"</h2>
            {if o.overrides.is_empty() {
                view! { <p class="mt-1 text-sm text-slate-500">"None: the defaults apply to everyone."</p> }.into_any()
            } else {
                view! { <OverrideTable rows=o.overrides remove /> }.into_any()
            }}
        </section>
        <section class="mt-6" aria-labelledby="blocks-heading">
            <h2 id="blocks-heading" class="font-semibold">"Blocked addresses"</h2>
            {if o.blocks.is_empty() {
                view! { <p class="mt-1 text-sm text-slate-500">"None."</p> }.into_any()
            } else {
                view! { <BlockTable rows=o.blocks unblock /> }.into_any()
            }}
        </section>
    }
    .into_any()
}

#[component]
fn OverrideTable(rows: Vec<OverrideRow>, remove: ServerAction<RemoveRateLimit>) -> impl IntoView {
    let can = allowed(Permission::Operate);
    view! {
        <table class="data-table mt-2" data-testid="overrides">
            <thead><tr>
                <th scope="col">"For"</th><th scope="col">"Limit"</th><th scope="col">"Reason"</th>
                <th scope="col">"Until"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let id = StoredValue::new(r.id.to_string());
                    view! {
                        <tr>
                            <td>{format!("{} {}", r.scope, r.subject)}</td>
                            <td>{format!("{} / min, burst {}", r.limit_per_minute, r.burst)}</td>
                            <td>{format!("{} ({})", r.reason, r.created_by)}</td>
                            <td>{r.expires_at.map(|until| view! { <Countdown until label="expires in" /> }.into_any()).unwrap_or_else(|| "no expiry".into_any())}</td>
                            <td>
                                <Show when=move || can.get()>
                                    <ActionForm action=remove attr:class="flex gap-2">
                                        <input type="hidden" name="id" value=id.get_value() />
                                        <label class="sr-only" for=format!("rm-{}", id.get_value())>"Reason for removing"</label>
                                        <input id=format!("rm-{}", id.get_value()) name="reason" class="input w-36" placeholder="Reason" />
                                        <button type="submit" class="btn">"Remove"</button>
                                    </ActionForm>
                                </Show>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <p class="field-error">{move || form_message(remove.value().get().and_then(Result::err)).or_else(|| field_message(remove.value().get().and_then(Result::err), "reason"))}</p>
    }
    .into_any()
}

#[component]
fn BlockTable(rows: Vec<BlockRow>, unblock: ServerAction<UnblockIp>) -> impl IntoView {
    let can = allowed(Permission::Operate);
    view! {
        <table class="data-table mt-2" data-testid="blocks">
            <thead><tr>
                <th scope="col">"Address / network"</th><th scope="col">"Reason"</th>
                <th scope="col">"Until"</th><th scope="col"><span class="sr-only">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let net = StoredValue::new(r.network.clone());
                    view! {
                        <tr>
                            <td class="font-mono">{r.network.clone()}</td>
                            <td>{format!("{} ({})", r.reason, r.created_by)}</td>
                            <td>{r.expires_at.map(|until| view! { <Countdown until label="expires in" /> }.into_any()).unwrap_or_else(|| "no expiry".into_any())}</td>
                            <td>
                                <Show when=move || can.get()>
                                    <ActionForm action=unblock attr:class="flex gap-2">
                                        <input type="hidden" name="network" value=net.get_value() />
                                        <label class="sr-only" for=format!("ub-{}", net.get_value())>"Reason for unblocking"</label>
                                        <input id=format!("ub-{}", net.get_value()) name="reason" class="input w-36" placeholder="Reason" />
                                        <button type="submit" class="btn">"Unblock"</button>
                                    </ActionForm>
                                </Show>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        <p class="field-error">{move || form_message(unblock.value().get().and_then(Result::err)).or_else(|| field_message(unblock.value().get().and_then(Result::err), "reason"))}</p>
    }
    .into_any()
}

#[component]
fn SetForm(action: ServerAction<SetRateLimit>) -> impl IntoView {
    let error = move || action.value().get().and_then(Result::err);
    let field = move |f: &'static str| move || field_message(error(), f);
    let other = move || form_message(error());
    view! {
        <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="set-heading">
            <h2 id="set-heading" class="font-semibold">"Set a rate limit"</h2>
            <ActionForm action attr:class="mt-3 space-y-2" attr:novalidate="true">
                <div>
                    <label for="rl-scope" class="block text-sm font-medium">"For"</label>
                    <select id="rl-scope" name="form[scope]" class="input mt-1">
                        <option value="ip">"An address or network (each address in it)"</option>
                        <option value="client">"An API client"</option>
                        <option value="tenant">"A tenant (all its callers together)"</option>
                    </select>
                    <p class="field-error">{field("scope")}</p>
                </div>
                <div>
                    <label for="rl-network" class="block text-sm font-medium">"Address or network (for an address)"</label>
                    <input id="rl-network" name="form[network]" class="input mt-1 w-64" placeholder="203.0.113.0/24" />
                    <p class="field-error">{field("network")}</p>
                </div>
                <div class="flex gap-3">
                    <div>
                        <label for="rl-tenant" class="block text-sm font-medium">"Tenant slug"</label>
                        <input id="rl-tenant" name="form[tenant]" class="input mt-1 w-36" />
                        <p class="field-error">{field("tenant")}</p>
                    </div>
                    <div>
                        <label for="rl-client" class="block text-sm font-medium">"Client name (for a client)"</label>
                        <input id="rl-client" name="form[client]" class="input mt-1 w-44" />
                        <p class="field-error">{field("client")}</p>
                    </div>
                </div>
                <div class="flex gap-3">
                    <div>
                        <label for="rl-limit" class="block text-sm font-medium">"Requests / minute"</label>
                        <input id="rl-limit" name="form[limit_per_minute]" type="number" min="1" class="input mt-1 w-32" />
                        <p class="field-error">{field("limit_per_minute")}</p>
                    </div>
                    <div>
                        <label for="rl-burst" class="block text-sm font-medium">"Burst"</label>
                        <input id="rl-burst" name="form[burst]" type="number" min="1" class="input mt-1 w-24" />
                        <p class="field-error">{field("burst")}</p>
                    </div>
                    <div>
                        <label for="rl-minutes" class="block text-sm font-medium">"Expires after (min)"</label>
                        <input id="rl-minutes" name="form[expires_minutes]" type="number" min="1" class="input mt-1 w-24" />
                        <p class="field-error">{field("expires_minutes")}</p>
                    </div>
                </div>
                <div>
                    <label for="rl-reason" class="block text-sm font-medium">"Reason"</label>
                    <textarea id="rl-reason" name="form[reason]" rows="2" class="input mt-1 w-full"></textarea>
                    <p class="field-error">{field("reason")}</p>
                </div>
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>"Set limit"</button>
            </ActionForm>
            <Show when=move || other().is_some()><p role="alert" class="mt-2 text-sm text-red-800">{other}</p></Show>
        </section>
    }
    .into_any()
}

#[component]
fn BlockForm(action: ServerAction<BlockIp>) -> impl IntoView {
    let error = move || action.value().get().and_then(Result::err);
    let field = move |f: &'static str| move || field_message(error(), f);
    let other = move || form_message(error());
    view! {
        <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="block-heading">
            <h2 id="block-heading" class="font-semibold">"Block an address"</h2>
            <ActionForm action attr:class="mt-3 space-y-2" attr:novalidate="true">
                <div>
                    <label for="block-network" class="block text-sm font-medium">"Address or network"</label>
                    <input id="block-network" name="network" class="input mt-1 w-64" placeholder="198.51.100.7 or 198.51.100.0/24" />
                    <p class="field-error">{field("network")}</p>
                </div>
                <div>
                    <label for="block-minutes" class="block text-sm font-medium">"Expires after (minutes, optional)"</label>
                    <input id="block-minutes" name="expires_minutes" type="number" min="1" class="input mt-1 w-24" />
                    <p class="field-error">{field("expires_minutes")}</p>
                </div>
                <div>
                    <label for="block-reason" class="block text-sm font-medium">"Reason"</label>
                    <textarea id="block-reason" name="reason" rows="2" class="input mt-1 w-full"></textarea>
                    <p class="field-error">{field("reason")}</p>
                </div>
                <button type="submit" class="btn-danger" disabled=move || action.pending().get()>"Block"</button>
            </ActionForm>
            <Show when=move || other().is_some()><p role="alert" class="mt-2 text-sm text-red-800">{other}</p></Show>
        </section>
    }
    .into_any()
}
