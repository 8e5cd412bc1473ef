//! Agent Ops pages: the tenant's API clients, and one client's detail with its actions.

use super::api::{
    get_client, list_clients, preview_client_revoke, CreateClient, RevokeClient, RotateClientKey,
    SetClientAllowlisted, SetClientStatus,
};
use super::{ClientDetail, ClientRow, KeyRow, RevokePreview, MAX_KEY_GRACE_HOURS};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::{outcome_badge, status_badge, ErrorNotice, RevealSecret};
use crate::components::form::{
    successes, DangerousAction, Field, FormErrors, FormFeedback, ReasonField,
};
use crate::components::loaded::loaded;
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_minutes;
use crate::domain::status::ClientStatus;
use crate::error::AppError;
use crate::panels::integrations::TokenEvent;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// `/t/{tenant}/agent-ops`: API clients with a status filter, and the create form.
#[component]
pub fn AgentOpsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let status = Memo::new(move |_| query.read().get("status").unwrap_or_default());
    let create = ServerAction::<CreateClient>::new();
    let create_changes = successes(create.value());
    let clients = Resource::new(
        move || (tenant.get(), status.get(), create_changes.get()),
        |(tenant, status, _)| list_clients(tenant, status),
    );
    view! {
        <Title text="Agent Ops" />
        <h1 class="text-2xl font-semibold">"Agent Ops: API clients"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Machines calling the agent API. Suspend a client to refuse its tokens at once (403 CLIENT_SUSPENDED); revoke it to end it for good, with its tokens and keys."
        </p>
        <form method="get" class="mt-4 flex items-end gap-3" aria-label="Filter clients">
            <div>
                <label for="status-filter" class="block text-sm font-medium">"Status"</label>
                <select id="status-filter" name="status" class="input mt-1">
                    {[("", "All"), ("active", "Active"), ("suspended", "Suspended"), ("revoked", "Revoked")].into_iter().map(|(v, label)| view! {
                        <option value=v selected=move || status.get() == v>{label}</option>
                    }).collect_view()}
                </select>
            </div>
            <button type="submit" class="btn">"Filter"</button>
        </form>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(clients).await {
                    Ok(rows) => view! { <ClientTable tenant=tenant.get_untracked() rows /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <Show when=move || allowed(Permission::Operate).get()>
            <CreateSection tenant action=create />
        </Show>
    }
    .into_any()
}

#[component]
fn ClientTable(tenant: String, rows: Vec<ClientRow>) -> impl IntoView {
    view! {
        <DataTable caption="API clients" testid="clients" class="mt-4"
            rows=rows.len()
            empty=("No API clients here", "Create one below, or change the filter.")
            columns=vec![Col::new("Name"), Col::new("Status"), Col::new("Allowlisted"), Col::new("Live tokens"), Col::new("Key"), Col::new("Created (UTC)")]>
                {rows.into_iter().map(|c| view! {
                    <tr>
                        <td><a class="link" href=format!("/t/{tenant}/agent-ops/{}", c.id)>{c.name.clone()}</a></td>
                        <td>
                            <span class=status_badge(c.status.as_str())>{c.status.as_str()}</span>
                            {c.status_reason.map(|r| view! { <span class="ml-2 text-xs text-slate-500">{r}</span> })}
                        </td>
                        <td>{if c.allowlisted { "yes" } else { "no" }}</td>
                        <td>{c.live_tokens}</td>
                        <td>{c.key_version.map(|v| format!("v{v}")).unwrap_or_else(|| "none".into())}</td>
                        <td>{utc_minutes(c.created_at)}</td>
                    </tr>
                }).collect_view()}
            </DataTable>
    }
    .into_any()
}

#[component]
fn CreateSection(tenant: Memo<String>, action: ServerAction<CreateClient>) -> impl IntoView {
    let errors = FormErrors::of(action.value());
    view! {
        <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="create-heading">
            <h2 id="create-heading" class="font-semibold">"Create an API client"</h2>
            <ActionForm action attr:class="mt-3 space-y-3" attr:novalidate="true">
                <input type="hidden" name="tenant" value=tenant />
                <Field id="client-name" label="Name" error=errors.field("name")>
                    <input id="client-name" name="name" type="text" maxlength="100" class="input mt-1 w-72" aria-describedby="client-name-error" />
                </Field>
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" name="allowlisted" value="on" />
                    "On the allowlist (passes strict allowlist posture)"
                </label>
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>"Create client"</button>
            </ActionForm>
            <FormFeedback error=errors.other() />
            {move || action.value().get().and_then(Result::ok).map(|key| view! {
                <RevealSecret heading=format!("Client created with key v{}.", key.version) secret=key.secret testid="client-key" />
            })}
        </section>
    }
    .into_any()
}

/// `/t/{tenant}/agent-ops/{id}`: one client.
#[component]
pub fn ClientDetailPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let status = ServerAction::<SetClientStatus>::new();
    let allow = ServerAction::<SetClientAllowlisted>::new();
    let rotate = ServerAction::<RotateClientKey>::new();
    let revoke = ServerAction::<RevokeClient>::new();
    // Read again after a change went through, not after a refused one: a refusal must not
    // re-render the forms and lose what was typed (or the revoke's preview).
    let changes = [
        successes(status.value()),
        successes(allow.value()),
        successes(rotate.value()),
        successes(revoke.value()),
    ];
    let detail = Resource::new(
        move || (tenant.get(), id.get(), changes.map(|c| c.get())),
        |(tenant, id, _)| get_client(tenant, id),
    );
    view! {
        <Transition fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(detail).await {
                    Ok(d) => view! {
                        <Title text=format!("{} · Agent Ops", d.client.name) />
                        <p><a class="link text-sm" href=format!("/t/{}/agent-ops", tenant.get_untracked())>"← All API clients"</a></p>
                        <Summary detail=d.clone() />
                        <Actions tenant id client=d.client.clone() status allow rotate revoke />
                        <Keys keys=d.keys.clone() />
                        <Events title="Status history and changes" testid="client-history" rows=d.history.clone()
                            empty=("No changes recorded", "Status, key and allowlist changes to this client will be listed here, newest first.") />
                        <Events title="Recent deny and error events of its tokens" testid="client-denials" rows=d.denials
                            empty=("No refusals or errors", "None of this client's tokens has been refused or met an error recently.") />
                    }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
        {move || rotate.value().get().and_then(Result::ok).map(|key| view! {
            <RevealSecret heading=format!("Key v{} created. Give it to the integration; the old key works only as long as you chose.", key.version) secret=key.secret testid="client-key" />
        })}
    }
    .into_any()
}

#[component]
fn Summary(detail: ClientDetail) -> impl IntoView {
    let c = detail.client;
    view! {
        <h1 class="mt-2 text-2xl font-semibold">{c.name.clone()}</h1>
        <dl class="mt-3 grid max-w-3xl grid-cols-[auto_1fr] gap-x-6 gap-y-1 text-sm" data-testid="client-summary">
            <dt class="text-slate-500">"Status"</dt>
            <dd><span class=status_badge(c.status.as_str()) data-testid="client-status">{c.status.as_str()}</span>
                {c.status_reason.map(|r| view! { <span class="ml-2 text-slate-600">{r}</span> })}</dd>
            <dt class="text-slate-500">"Allowlisted"</dt><dd>{if c.allowlisted { "yes" } else { "no" }}</dd>
            <dt class="text-slate-500">"Live tokens"</dt><dd>{c.live_tokens}</dd>
            <dt class="text-slate-500">"Active key"</dt><dd>{c.key_version.map(|v| format!("v{v}")).unwrap_or_else(|| "none".into())}</dd>
            <dt class="text-slate-500">"Id"</dt><dd class="font-mono">{c.id.to_string()}</dd>
        </dl>
    }
    .into_any()
}

#[component]
fn Actions(
    tenant: Memo<String>,
    id: Memo<String>,
    client: ClientRow,
    status: ServerAction<SetClientStatus>,
    allow: ServerAction<SetClientAllowlisted>,
    rotate: ServerAction<RotateClientKey>,
    revoke: ServerAction<RevokeClient>,
) -> impl IntoView {
    if client.status == ClientStatus::Revoked {
        return view! { <p class="mt-4 text-sm text-slate-600">"This client is revoked: nothing more can be changed."</p> }.into_any();
    }
    let (status_errors, allow_errors, rotate_errors) = (
        FormErrors::of(status.value()),
        FormErrors::of(allow.value()),
        FormErrors::of(rotate.value()),
    );
    let next_status = if client.status == ClientStatus::Active {
        "suspended"
    } else {
        "active"
    };
    let status_label = if client.status == ClientStatus::Active {
        "Suspend client"
    } else {
        "Reactivate client"
    };
    let next_allow = if client.allowlisted { "false" } else { "true" };
    let allow_label = if client.allowlisted {
        "Take off the allowlist"
    } else {
        "Put on the allowlist"
    };
    view! {
        <Show when=move || allowed(Permission::Operate).get()>
            <div class="mt-6 grid max-w-5xl gap-4 md:grid-cols-3">
                <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-label="Status">
                    <ActionForm action=status attr:class="space-y-2" attr:novalidate="true">
                        <input type="hidden" name="tenant" value=tenant />
                        <input type="hidden" name="id" value=id />
                        <input type="hidden" name="status" value=next_status />
                        <ReasonField id="status-reason" name="reason" error=status_errors.field("reason") />
                        <button type="submit" class="btn-primary" disabled=move || status.pending().get()>{status_label}</button>
                    </ActionForm>
                    <FormFeedback error=status_errors.other() />
                </section>
                <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-label="Allowlist">
                    <ActionForm action=allow attr:class="space-y-2" attr:novalidate="true">
                        <input type="hidden" name="tenant" value=tenant />
                        <input type="hidden" name="id" value=id />
                        <input type="hidden" name="allowlisted" value=next_allow />
                        <ReasonField id="allow-reason" name="reason" error=allow_errors.field("reason") />
                        <button type="submit" class="btn" disabled=move || allow.pending().get()>{allow_label}</button>
                    </ActionForm>
                    <FormFeedback error=allow_errors.other() />
                </section>
                <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-label="Key rotation">
                    <ActionForm action=rotate attr:class="space-y-2" attr:novalidate="true">
                        <input type="hidden" name="tenant" value=tenant />
                        <input type="hidden" name="id" value=id />
                        <Field id="grace" label="Old key keeps working for (hours; 0 = retire at once)" error=rotate_errors.field("grace_hours")>
                            <input id="grace" name="grace_hours" type="number" min="0" max=MAX_KEY_GRACE_HOURS value="0" class="input w-24" aria-describedby="grace-error" />
                        </Field>
                        <ReasonField id="rotate-reason" name="reason" error=rotate_errors.field("reason") />
                        <button type="submit" class="btn" disabled=move || rotate.pending().get()>"Rotate key"</button>
                    </ActionForm>
                    <FormFeedback error=rotate_errors.other() />
                </section>
            </div>
        </Show>
        <Show when=move || allowed(Permission::CommandIncident).get()>
            <RevokeSection tenant id action=revoke />
        </Show>
    }
    .into_any()
}

#[component]
fn RevokeSection(
    tenant: Memo<String>,
    id: Memo<String>,
    action: ServerAction<RevokeClient>,
) -> impl IntoView {
    let preview = RwSignal::new(None::<Result<RevokePreview, AppError>>);
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let load = move |_| {
        leptos::task::spawn_local(async move {
            preview.set(Some(
                preview_client_revoke(tenant.get_untracked(), id.get_untracked()).await,
            ));
        });
    };
    let errors = FormErrors::of(action.value());
    view! {
        <section class="mt-6 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="revoke-heading">
            <h2 id="revoke-heading" class="font-semibold text-red-900">"Revoke client"</h2>
            <p class="mt-1 text-sm text-slate-600">"Final: the client, its keys and every token it owns stop working, and it cannot be reactivated."</p>
            <button type="button" class="btn mt-3" on:click=load>"Preview what it revokes"</button>
            {move || preview.get().map(|result| match result {
                Err(error) => view! { <div class="mt-3"><ErrorNotice error /></div> }.into_any(),
                Ok(p) => {
                    let summary = format!("Revokes {} active token(s) and {} working key(s) of “{}”.", p.live_tokens, p.live_keys, p.name);
                    let preview = move || view! {
                        <p class="text-sm font-medium" data-testid="revoke-preview">{summary.clone()}</p>
                    };
                    let on_submit = Callback::new(move |expected| {
                        action.dispatch(RevokeClient {
                            tenant: tenant.get_untracked(),
                            id: id.get_untracked(),
                            reason: reason.get_untracked(),
                            confirmation: confirmation.get_untracked(),
                            expected,
                        });
                    });
                    view! {
                        <DangerousAction id="revoke" count=p.live_tokens preview confirm_with=p.name
                            button="Revoke client".to_owned()
                            reason confirmation errors pending=action.pending() on_submit />
                    }.into_any()
                }
            })}
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}

#[component]
fn Keys(keys: Vec<KeyRow>) -> impl IntoView {
    view! {
        <h2 class="mt-8 font-semibold">"Keys"</h2>
        <DataTable caption="Client keys" testid="client-keys" class="mt-2"
            rows=keys.len()
            empty=("No keys", "A client gets its first key when it is created, and a new one each time its key is rotated.")
            columns=vec![Col::new("Version"), Col::new("State"), Col::new("Created (UTC)"), Col::new("Stops / stopped")]>
                {keys.into_iter().map(|k| view! {
                    <tr>
                        <td class="font-mono">{format!("v{}", k.version)}</td>
                        <td>{k.state.as_str()}</td>
                        <td>{format!("{} by {}", utc_minutes(k.created_at), k.created_by)}</td>
                        <td>{k.retire_after.or(k.retired_at).map(utc_minutes).unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </DataTable>
    }
    .into_any()
}

/// A list of events under the heading `title`, or `empty` (title, sentence) when there are
/// none.
#[component]
fn Events(
    title: &'static str,
    testid: &'static str,
    rows: Vec<TokenEvent>,
    empty: (&'static str, &'static str),
) -> impl IntoView {
    view! {
        <h2 class="mt-8 font-semibold">{title}</h2>
        <DataTable caption=title testid=testid class="mt-2" rows=rows.len() empty
            columns=vec![Col::new("When (UTC)"), Col::new("Event"), Col::new("Outcome"), Col::new("Who"), Col::new("Reason / calls")]>
                {rows.into_iter().map(|e| view! {
                    <tr>
                        <td>{utc_minutes(e.ts)}</td>
                        <td class="font-mono text-xs">{e.kind.clone()}</td>
                        <td><span class=outcome_badge(e.outcome)>{e.code.clone().unwrap_or_else(|| e.outcome.as_str().to_owned())}</span></td>
                        <td>{e.actor.clone()}</td>
                        <td>{e.reason.clone().unwrap_or_else(|| if e.count > 1 { format!("{} calls", e.count) } else { String::new() })}</td>
                    </tr>
                }).collect_view()}
            </DataTable>
    }
    .into_any()
}
