//! `/limits`: rate-limit defaults and overrides, and the IP block list.

use super::api::{get_limits, BlockIp, RemoveRateLimit, SetRateLimit, UnblockIp};
use super::{BlockRow, LimitsOverview, OverrideRow};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::{field_message, form_message, ErrorNotice};
use crate::components::form::{successes, Field, FormErrors, FormFeedback, ReasonField};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::table::{Col, DataTable};
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
    let set_changes = successes(set.value());
    let remove_changes = successes(remove.value());
    let block_changes = successes(block.value());
    let unblock_changes = successes(unblock.value());
    let overview = Resource::new(
        move || {
            (
                set_changes.get(),
                remove_changes.get(),
                block_changes.get(),
                unblock_changes.get(),
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
            <OverrideTable rows=o.overrides remove />
        </section>
        <section class="mt-6" aria-labelledby="blocks-heading">
            <h2 id="blocks-heading" class="font-semibold">"Blocked addresses"</h2>
            <BlockTable rows=o.blocks unblock />
        </section>
    }
    .into_any()
}

#[component]
fn OverrideTable(rows: Vec<OverrideRow>, remove: ServerAction<RemoveRateLimit>) -> impl IntoView {
    let can = allowed(Permission::Operate);
    view! {
        <DataTable caption="Rate-limit overrides" testid="overrides" class="mt-2"
            rows=rows.len()
            empty=("No overrides", "The defaults apply to everyone.")
            columns=vec![Col::new("For"), Col::new("Limit"), Col::new("Reason"), Col::new("Until"), Col::hidden("Actions")]>
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
            </DataTable>
        <p class="field-error">{move || form_message(remove.value().get().and_then(Result::err)).or_else(|| field_message(remove.value().get().and_then(Result::err), "reason"))}</p>
    }
    .into_any()
}

#[component]
fn BlockTable(rows: Vec<BlockRow>, unblock: ServerAction<UnblockIp>) -> impl IntoView {
    let can = allowed(Permission::Operate);
    view! {
        <DataTable caption="Blocked addresses" testid="blocks" class="mt-2"
            rows=rows.len()
            empty=("No blocked addresses", "Every address may call the agent API, within its rate limit.")
            columns=vec![Col::new("Address / network"), Col::new("Reason"), Col::new("Until"), Col::hidden("Actions")]>
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
            </DataTable>
        <StepUp errors=FormErrors::of(unblock.value()) retry=redispatch(unblock) id="unblock-step-up" />
        <p class="field-error">{move || form_message(unblock.value().get().and_then(Result::err).filter(|e| !matches!(e, crate::error::AppError::StepUpRequired))).or_else(|| field_message(unblock.value().get().and_then(Result::err), "reason"))}</p>
    }
    .into_any()
}

#[component]
fn SetForm(action: ServerAction<SetRateLimit>) -> impl IntoView {
    let errors = FormErrors::of(action.value());
    let field = move |f: &'static str| errors.field(f);
    view! {
        <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="set-heading">
            <h2 id="set-heading" class="font-semibold">"Set a rate limit"</h2>
            <ActionForm action attr:class="mt-3 space-y-2" attr:novalidate="true">
                <Field id="rl-scope" label="For" error=field("scope")>
                    <select id="rl-scope" aria-describedby="rl-scope-error" name="form[scope]" class="input mt-1">
                        <option value="ip">"An address or network (each address in it)"</option>
                        <option value="client">"An API client"</option>
                        <option value="tenant">"A tenant (all its callers together)"</option>
                    </select>
                </Field>
                <Field id="rl-network" label="Address or network (for an address)" error=field("network")>
                    <input id="rl-network" aria-describedby="rl-network-error" name="form[network]" class="input mt-1 w-64" placeholder="203.0.113.0/24" />
                </Field>
                <div class="flex gap-3">
                    <Field id="rl-tenant" label="Tenant slug" error=field("tenant")>
                        <input id="rl-tenant" aria-describedby="rl-tenant-error" name="form[tenant]" class="input mt-1 w-36" />
                    </Field>
                    <Field id="rl-client" label="Client name (for a client)" error=field("client")>
                        <input id="rl-client" aria-describedby="rl-client-error" name="form[client]" class="input mt-1 w-44" />
                    </Field>
                </div>
                <div class="flex gap-3">
                    <Field id="rl-limit" label="Requests / minute" error=field("limit_per_minute")>
                        <input id="rl-limit" aria-describedby="rl-limit-error" name="form[limit_per_minute]" type="number" min="1" class="input mt-1 w-32" />
                    </Field>
                    <Field id="rl-burst" label="Burst" error=field("burst")>
                        <input id="rl-burst" aria-describedby="rl-burst-error" name="form[burst]" type="number" min="1" class="input mt-1 w-24" />
                    </Field>
                    <Field id="rl-minutes" label="Expires after (min)" error=field("expires_minutes")>
                        <input id="rl-minutes" aria-describedby="rl-minutes-error" name="form[expires_minutes]" type="number" min="1" class="input mt-1 w-24" />
                    </Field>
                </div>
                <ReasonField id="rl-reason" name="form[reason]" error=field("reason") />
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>"Set limit"</button>
            </ActionForm>
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}

#[component]
fn BlockForm(action: ServerAction<BlockIp>) -> impl IntoView {
    let errors = FormErrors::of(action.value());
    let field = move |f: &'static str| errors.field(f);
    view! {
        <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="block-heading">
            <h2 id="block-heading" class="font-semibold">"Block an address"</h2>
            <ActionForm action attr:class="mt-3 space-y-2" attr:novalidate="true">
                <Field id="block-network" label="Address or network" error=field("network")>
                    <input id="block-network" aria-describedby="block-network-error" name="network" class="input mt-1 w-64" placeholder="198.51.100.7 or 198.51.100.0/24" />
                </Field>
                <Field id="block-minutes" label="Expires after (minutes, optional)" error=field("expires_minutes")>
                    <input id="block-minutes" aria-describedby="block-minutes-error" name="expires_minutes" type="number" min="1" class="input mt-1 w-24" />
                </Field>
                <ReasonField id="block-reason" name="reason" error=field("reason") />
                <button type="submit" class="btn-danger" disabled=move || action.pending().get()>"Block"</button>
            </ActionForm>
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}
