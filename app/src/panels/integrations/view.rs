//! The Integrations panel's pages: the token list with its filters, mint and mass revoke,
//! and a token's detail with its history.

use super::api::{
    get_token, integrations_context, list_tokens, preview_revoke_all, MintToken, RevokeAllTokens,
    RevokeToken,
};
use super::{
    MintForm, MintedToken, Owner, OwnerChoice, PanelContext, RevokePreview, TokenDetail,
    TokenFilter, TokenPage, TokenRow, WINDOWS,
};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::{outcome_badge, status_badge, ErrorNotice, RevealSecret};
use crate::components::form::{
    successes, DangerousAction, Field, FormErrors, FormFeedback, ReasonField,
};
use crate::components::loaded::loaded;
use crate::components::table::{Col, DataTable, KeysetPager};
use crate::components::time::utc_minutes;
use crate::domain::status::TokenStatus;
use crate::domain::tokens::SCOPES;
use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

/// `/t/{tenant}/integrations`: the tenant's tokens.
#[component]
pub fn IntegrationsPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let filter = Memo::new(move |_| {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default();
        TokenFilter {
            status: get("status"),
            owner: get("owner"),
            client: get("client"),
            scope: get("scope"),
            created: get("created"),
            used: get("used"),
            // A whole token that reached the URL (a form sent before the page was
            // interactive) is cut to its id here, so it is never echoed back.
            id: super::strip_pasted_token(&get("id")),
        }
    });
    let after = Memo::new(move |_| query.read().get("after").filter(|a| !a.is_empty()));

    let mint = ServerAction::<MintToken>::new();
    let revoke_all = ServerAction::<RevokeAllTokens>::new();
    let context = Resource::new(move || tenant.get(), integrations_context);
    let mint_changes = successes(mint.value());
    let revoke_all_changes = successes(revoke_all.value());
    let page = Resource::new(
        move || {
            (
                tenant.get(),
                filter.get(),
                after.get(),
                mint_changes.get(),
                revoke_all_changes.get(),
            )
        },
        |(tenant, filter, after, _, _)| list_tokens(tenant, filter, after),
    );

    view! {
        <Title text="Integrations" />
        <h1 class="text-2xl font-semibold">"Integrations"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Personal access tokens of this tenant. A revoke is enforced by the agent API gateway within a second; every use and refusal lands in the token's history."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(context).await {
                    Ok(ctx) => {
                        let (for_mint, for_revoke) = (ctx.clone(), ctx.clone());
                        view! {
                            <Show when=move || allowed(Permission::Operate).get()>
                                {let ctx = for_mint.clone(); view! { <MintSection tenant ctx action=mint /> }}
                            </Show>
                            <Show when=move || allowed(Permission::CommandIncident).get()>
                                {let ctx = for_revoke.clone(); view! { <RevokeAllSection tenant ctx action=revoke_all /> }}
                            </Show>
                            <FilterBar filter ctx />
                        }.into_any()
                    }
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <div class="mt-4">
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match loaded(page).await {
                        Ok(page) => view! { <TokenTable tenant page filter /> }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
    .into_any()
}

/// The filters, as a plain GET form: the view lives in the URL and can be bookmarked.
#[component]
fn FilterBar(filter: Memo<TokenFilter>, ctx: PanelContext) -> impl IntoView {
    let f = filter.get_untracked();
    let staff: Vec<OwnerChoice> = ctx
        .owners
        .iter()
        .filter(|o| matches!(o.owner, Owner::Staff(_)))
        .cloned()
        .collect();
    let clients: Vec<OwnerChoice> = ctx
        .owners
        .iter()
        .filter(|o| matches!(o.owner, Owner::Client(_)))
        .cloned()
        .collect();
    let option = |value: String, label: String, current: &str| {
        let selected = value == current;
        view! { <option value=value selected=selected>{label}</option> }
    };
    let id_of = |o: &OwnerChoice| match o.owner {
        Owner::Staff(id) | Owner::Client(id) => id.to_string(),
    };
    let id_input = NodeRef::<leptos::html::Input>::new();
    // A pasted whole token is replaced by its id before the form puts it in the URL.
    let on_submit = move |_: leptos::ev::SubmitEvent| {
        if let Some(input) = id_input.get() {
            let value = input.value();
            let cut = super::strip_pasted_token(&value);
            if cut != value {
                input.set_value(&cut);
            }
        }
    };
    view! {
        <form method="get" on:submit=on_submit class="mt-6 flex max-w-5xl flex-wrap items-end gap-3 rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200" aria-label="Filter tokens">
            <div>
                <label for="f-status" class="block text-xs font-medium text-slate-600">"Status"</label>
                <select id="f-status" name="status" class="input mt-1">
                    {option(String::new(), "Any".into(), &f.status)}
                    {["active", "expired", "revoked"].into_iter().map(|s| option(s.into(), s.into(), &f.status)).collect_view()}
                </select>
            </div>
            <div>
                <label for="f-owner" class="block text-xs font-medium text-slate-600">"Owner (staff)"</label>
                <select id="f-owner" name="owner" class="input mt-1 max-w-48">
                    {option(String::new(), "Anyone".into(), &f.owner)}
                    {staff.iter().map(|o| option(id_of(o), o.label.clone(), &f.owner)).collect_view()}
                </select>
            </div>
            <div>
                <label for="f-client" class="block text-xs font-medium text-slate-600">"Client"</label>
                <select id="f-client" name="client" class="input mt-1 max-w-48">
                    {option(String::new(), "Any client".into(), &f.client)}
                    {clients.iter().map(|o| option(id_of(o), o.label.clone(), &f.client)).collect_view()}
                </select>
            </div>
            <div>
                <label for="f-scope" class="block text-xs font-medium text-slate-600">"Scope"</label>
                <select id="f-scope" name="scope" class="input mt-1">
                    {option(String::new(), "Any".into(), &f.scope)}
                    {SCOPES.into_iter().map(|s| option(s.into(), s.into(), &f.scope)).collect_view()}
                </select>
            </div>
            <div>
                <label for="f-created" class="block text-xs font-medium text-slate-600">"Created"</label>
                <select id="f-created" name="created" class="input mt-1">
                    {option(String::new(), "Any time".into(), &f.created)}
                    {WINDOWS.into_iter().map(|(k, l, _)| option(k.into(), l.into(), &f.created)).collect_view()}
                </select>
            </div>
            <div>
                <label for="f-used" class="block text-xs font-medium text-slate-600">"Last used"</label>
                <select id="f-used" name="used" class="input mt-1">
                    {option(String::new(), "Any time".into(), &f.used)}
                    {WINDOWS.into_iter().map(|(k, l, _)| option(k.into(), l.into(), &f.used)).collect_view()}
                    {option("never".into(), "Never used".into(), &f.used)}
                    {option("stale30".into(), "Not in 30 days".into(), &f.used)}
                </select>
            </div>
            <div>
                <label for="f-id" class="block text-xs font-medium text-slate-600">"Id or pasted token"</label>
                <input id="f-id" node_ref=id_input name="id" type="search" autocomplete="off" spellcheck="false" class="input mt-1 w-56 font-mono" value=f.id.clone() />
            </div>
            <button type="submit" class="btn">"Apply"</button>
            <a href="?" class="link text-sm">"Clear"</a>
        </form>
    }
    .into_any()
}

/// The list's URL for `filter`, from the start or after `cursor`.
fn page_href(filter: &TokenFilter, cursor: Option<&str>) -> String {
    let mut pairs = vec![
        ("status", filter.status.as_str()),
        ("owner", filter.owner.as_str()),
        ("client", filter.client.as_str()),
        ("scope", filter.scope.as_str()),
        ("created", filter.created.as_str()),
        ("used", filter.used.as_str()),
        ("id", filter.id.as_str()),
    ];
    if let Some(cursor) = cursor {
        pairs.push(("after", cursor));
    }
    pairs.retain(|(_, v)| !v.is_empty());
    let query: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", encode_query(v)))
        .collect();
    format!("?{}", query.join("&"))
}

fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[component]
fn TokenTable(tenant: Memo<String>, page: TokenPage, filter: Memo<TokenFilter>) -> impl IntoView {
    let rows = page.rows.len();
    let next = page
        .next
        .as_deref()
        .map(|cursor| page_href(&filter.get_untracked(), Some(cursor)));
    let slug = tenant.get_untracked();
    view! {
        <DataTable caption="Tokens" testid="token-table" class="max-w-6xl"
            rows
            empty=("No tokens match", "No token of this tenant matches these filters. Operators mint tokens above; clear the filters to see every token.")
            columns=vec![Col::new("Name"), Col::new("Id"), Col::new("Owner"), Col::new("Scopes"), Col::new("Status"), Col::new("Expires (UTC)"), Col::new("Last used (UTC)")]>
                {page.rows.into_iter().map(|row: TokenRow| {
                    let href = format!("/t/{slug}/integrations/{}", row.id);
                    let badge = status_badge(row.status.as_str());
                    view! {
                        <tr>
                            <td><a class="link" href=href>{row.name}</a></td>
                            <td class="font-mono text-xs">{row.id}</td>
                            <td>{row.owner_label}</td>
                            <td class="font-mono text-xs">{row.scopes.join(" ")}</td>
                            <td><span class=badge>{row.status.as_str()}</span></td>
                            <td class="whitespace-nowrap">{utc_minutes(row.expires_at)}</td>
                            <td class="whitespace-nowrap">
                                {row.last_used_at.map(utc_minutes).unwrap_or_else(|| "never".into())}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
        {(rows > 0).then(|| view! { <KeysetPager first=page_href(&filter.get_untracked(), None) next /> })}
    }
    .into_any()
}

#[component]
fn MintSection(
    tenant: Memo<String>,
    ctx: PanelContext,
    action: ServerAction<MintToken>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let owner = RwSignal::new(Owner::Staff(ctx.me).encode());
    let scopes = RwSignal::new(vec!["agent:read".to_owned()]);
    let lifetime = RwSignal::new(ctx.max_lifetime_days.min(30).to_string());
    let revealed = RwSignal::new(None::<MintedToken>);
    Effect::new(move |_| {
        if let Some(Ok(minted)) = action.value().get() {
            revealed.set(Some(minted));
            name.set(String::new());
        }
    });
    let errors = FormErrors::of(action.value());
    let field = move |f: &'static str| errors.field(f);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        revealed.set(None);
        action.dispatch(MintToken {
            tenant: tenant.get_untracked(),
            form: MintForm {
                name: name.get_untracked(),
                owner: owner.get_untracked(),
                scopes: scopes.get_untracked(),
                lifetime_days: lifetime.get_untracked(),
            },
        });
    };
    let max_days = ctx.max_lifetime_days;
    let owners = ctx.owners.clone();
    view! {
        <section class="mt-6 max-w-5xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="mint-heading">
            <h2 id="mint-heading" class="font-semibold">"Mint a token"</h2>
            <form class="mt-3 grid grid-cols-1 gap-3 sm:grid-cols-4 sm:items-start" novalidate on:submit=submit>
                <Field id="mint-name" label="Name" error=field("name")>
                    <input id="mint-name" type="text" class="input mt-1 w-full" maxlength="200"
                        aria-describedby="mint-name-error"
                        prop:value=name on:input=move |ev| name.set(event_target_value(&ev)) />
                </Field>
                <Field id="mint-owner" label="Owner" error=field("owner")>
                    <select id="mint-owner" class="input mt-1 w-full" aria-describedby="mint-owner-error"
                        on:change=move |ev| owner.set(event_target_value(&ev))>
                        {owners.into_iter().filter(|o| o.active).map(|o| {
                            let value = o.owner.encode();
                            let selected = value == owner.get_untracked();
                            let label = match o.owner {
                                Owner::Staff(_) => format!("Staff: {}", o.label),
                                Owner::Client(_) => format!("Client: {}", o.label),
                            };
                            view! { <option value=value selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                </Field>
                <fieldset>
                    <legend class="block text-sm font-medium">"Scopes"</legend>
                    <div class="mt-1 space-y-1 text-sm">
                        {SCOPES.into_iter().map(|scope| {
                            let id = format!("mint-scope-{}", scope.replace(':', "-"));
                            let label_for = id.clone();
                            view! {
                                <label for=label_for class="flex items-center gap-2">
                                    <input id=id type="checkbox" value=scope
                                        prop:checked=move || scopes.read().iter().any(|s| s == scope)
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            scopes.update(|list| {
                                                list.retain(|s| s != scope);
                                                if on { list.push(scope.to_owned()); }
                                            });
                                        } />
                                    <span class="font-mono">{scope}</span>
                                </label>
                            }
                        }).collect_view()}
                    </div>
                    <p class="field-error">{field("scopes")}</p>
                </fieldset>
                <div>
                    <label for="mint-lifetime" class="block text-sm font-medium">"Lifetime (days)"</label>
                    <input id="mint-lifetime" type="number" min="1" max=max_days class="input mt-1 w-24"
                        aria-describedby="mint-lifetime-help mint-lifetime-error"
                        prop:value=lifetime on:input=move |ev| lifetime.set(event_target_value(&ev)) />
                    <p id="mint-lifetime-help" class="mt-1 text-xs text-slate-500">{format!("At most {max_days} days in this tenant.")}</p>
                    <p id="mint-lifetime-error" class="field-error">{field("lifetime_days")}</p>
                    <button type="submit" class="btn-primary mt-2" disabled=move || action.pending().get()>
                        {move || if action.pending().get() { "Minting…" } else { "Mint token" }}
                    </button>
                </div>
            </form>
            <FormFeedback error=errors.other() />
            {move || revealed.get().map(|minted| view! { <RevealToken minted /> })}
        </section>
    }
    .into_any()
}

/// The one time a token's plaintext is on screen.
#[component]
fn RevealToken(minted: MintedToken) -> impl IntoView {
    view! {
        <RevealSecret
            heading=format!("Token {} minted; it expires {}.", minted.id, utc_minutes(minted.expires_at))
            secret=minted.plaintext
            testid="minted-token"
        />
    }
}

#[component]
fn RevokeAllSection(
    tenant: Memo<String>,
    ctx: PanelContext,
    action: ServerAction<RevokeAllTokens>,
) -> impl IntoView {
    let scope = RwSignal::new("tenant".to_owned());
    let preview = RwSignal::new(None::<Result<RevokePreview, AppError>>);
    let previewing = RwSignal::new(false);
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let load_preview = move |_| {
        previewing.set(true);
        let (tenant, scope) = (tenant.get_untracked(), scope.get_untracked());
        leptos::task::spawn_local(async move {
            preview.set(Some(preview_revoke_all(tenant, scope).await));
            previewing.set(false);
        });
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = action.value().get() {
            preview.set(None);
            reason.set(String::new());
            confirmation.set(String::new());
        }
    });
    let errors = FormErrors::of(action.value());
    let done = Signal::derive(move || match action.value().get() {
        Some(Ok(outcome)) => Some(format!("Revoked {} token(s).", outcome.revoked)),
        _ => None,
    });
    let choices: Vec<(String, String)> = std::iter::once((
        "tenant".to_owned(),
        format!("Every token of {}", ctx.tenant_name),
    ))
    .chain(ctx.owners.iter().map(|o| match o.owner {
        Owner::Staff(id) => (
            format!("owner:{id}"),
            format!("Tokens owned by {}", o.label),
        ),
        Owner::Client(id) => (
            format!("client:{id}"),
            format!("Tokens of client {}", o.label),
        ),
    }))
    .collect();
    view! {
        <details class="mt-4 max-w-5xl rounded-lg border border-red-200 bg-white p-4">
            <summary class="cursor-pointer font-semibold text-red-900">"Revoke many tokens (incident)"</summary>
            <div class="mt-3 flex flex-wrap items-end gap-3">
                <div>
                    <label for="ra-scope" class="block text-sm font-medium">"Revoke"</label>
                    <select id="ra-scope" class="input mt-1" on:change=move |ev| { scope.set(event_target_value(&ev)); preview.set(None); }>
                        {choices.into_iter().map(|(value, label)| view! { <option value=value>{label}</option> }).collect_view()}
                    </select>
                </div>
                <button type="button" class="btn" on:click=load_preview disabled=move || previewing.get()>"Preview"</button>
            </div>
            {move || preview.get().map(|result| match result {
                Err(error) => view! { <div class="mt-3"><ErrorNotice error /></div> }.into_any(),
                Ok(p) => {
                    let count = p.active_tokens;
                    let description = p.description;
                    let preview = move || view! {
                        <p data-testid="revoke-preview" class="rounded bg-red-50 p-3 text-sm text-red-900">
                            {format!("This revokes {count} active token(s): {description}. Callers using them are refused from the next call.")}
                        </p>
                    };
                    let on_submit = Callback::new(move |expected| {
                        action.dispatch(RevokeAllTokens {
                            tenant: tenant.get_untracked(),
                            scope: scope.get_untracked(),
                            reason: reason.get_untracked(),
                            confirmation: confirmation.get_untracked(),
                            expected,
                        });
                    });
                    view! {
                        <DangerousAction id="ra" count preview confirm_with=p.confirm_with
                            button=format!("Revoke {count} token(s)")
                            reason confirmation errors pending=action.pending() on_submit />
                    }.into_any()
                }
            })}
            <FormFeedback error=errors.other() done />
        </details>
    }
    .into_any()
}

/// `/t/{tenant}/integrations/{id}`: one token, its history, and revoke.
#[component]
pub fn TokenDetailPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let revoke = ServerAction::<RevokeToken>::new();
    let revoke_changes = successes(revoke.value());
    let detail = Resource::new(
        move || (tenant.get(), id.get(), revoke_changes.get()),
        |(tenant, id, _)| get_token(tenant, id),
    );
    view! {
        <Transition fallback=|| view! { <p class="text-slate-500">"Loading token…"</p> }>
            {move || Suspend::new(async move {
                match loaded(detail).await {
                    Ok(detail) => view! { <TokenDetailView tenant detail revoke /> }.into_any(),
                    Err(error) => view! {
                        <Title text="Token not available" />
                        <ErrorNotice error />
                    }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn TokenDetailView(
    tenant: Memo<String>,
    detail: TokenDetail,
    revoke: ServerAction<RevokeToken>,
) -> impl IntoView {
    let t = detail.token;
    let badge = status_badge(t.status.as_str());
    let errors = FormErrors::of(revoke.value());
    let back = format!("/t/{}/integrations", tenant.get_untracked());
    let active = t.status == TokenStatus::Active;
    let id = t.id.clone();
    view! {
        <Title text=format!("Token {}", t.name) />
        <p class="text-sm"><a class="link" href=back>"← Integrations"</a></p>
        <h1 class="mt-2 text-2xl font-semibold" data-testid="token-heading">{t.name.clone()}</h1>
        <dl class="mt-4 grid max-w-3xl grid-cols-[max-content_1fr] gap-x-6 gap-y-2 text-sm">
            <dt class="text-slate-500">"Id"</dt><dd class="font-mono">{t.id.clone()}</dd>
            <dt class="text-slate-500">"Status"</dt><dd><span class=badge data-testid="token-status">{t.status.as_str()}</span></dd>
            <dt class="text-slate-500">"Owner"</dt><dd>{t.owner_label.clone()}</dd>
            <dt class="text-slate-500">"Scopes"</dt><dd class="font-mono">{t.scopes.join(" ")}</dd>
            <dt class="text-slate-500">"Created"</dt>
            <dd>{format!("{}{}", utc_minutes(t.created_at), t.created_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default())}</dd>
            <dt class="text-slate-500">"Expires"</dt><dd>{utc_minutes(t.expires_at)}</dd>
            <dt class="text-slate-500">"Last used"</dt>
            <dd>{match (t.last_used_at, t.last_used_ip.clone()) {
                (Some(at), Some(ip)) => format!("{} from {ip}", utc_minutes(at)),
                (Some(at), None) => utc_minutes(at),
                _ => "never".into(),
            }}</dd>
            <dt class="text-slate-500">"Pepper version"</dt><dd>{t.pepper_version}</dd>
            {t.revoked_at.map(|at| view! {
                <dt class="text-slate-500">"Revoked"</dt>
                <dd>{format!("{} by {}: {}", utc_minutes(at), t.revoked_by.clone().unwrap_or_default(), t.revoke_reason.clone().unwrap_or_default())}</dd>
            })}
        </dl>
        <Show when=move || active && allowed(Permission::Operate).get()>
            {let token_id = id.clone(); view! {
            <section class="mt-6 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="revoke-heading">
                <h2 id="revoke-heading" class="font-semibold text-red-900">"Revoke this token"</h2>
                <ActionForm action=revoke attr:class="mt-2 space-y-2" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=tenant.get_untracked() />
                    <input type="hidden" name="token_id" value=token_id />
                    <ReasonField id="revoke-reason" name="reason" error=errors.field("reason") />
                    <button type="submit" class="btn-danger">"Revoke"</button>
                </ActionForm>
            </section>
            }}
        </Show>
        <FormFeedback error=errors.other() />
        <section class="mt-8" aria-labelledby="history-heading">
            <h2 id="history-heading" class="text-lg font-semibold">"History"</h2>
            <p class="text-sm text-slate-600">"Gateway calls within the same second from the same address are counted in one event."</p>
            <div class="mt-3">
                <DataTable caption="Token history" testid="token-history"
                    rows=detail.events.len()
                    empty=("No events", "Nothing recorded for this token yet.")
                    columns=vec![Col::new("When (UTC)"), Col::new("Event"), Col::new("Outcome"), Col::new("Who"), Col::new("Address"), Col::new("Calls"), Col::new("Reason")]>
                        {detail.events.into_iter().map(|e| {
                            let badge = outcome_badge(e.outcome);
                            view! {
                                <tr>
                                    <td class="whitespace-nowrap">{utc_minutes(e.ts)}</td>
                                    <td class="font-mono text-xs">{e.kind}</td>
                                    <td>
                                        <span class=badge>{e.outcome.as_str()}</span>
                                        {e.code.map(|c| view! { <span class="ml-2 font-mono text-xs text-slate-600">{c}</span> })}
                                    </td>
                                    <td>{e.actor}</td>
                                    <td class="font-mono text-xs">{e.ip.unwrap_or_default()}</td>
                                    <td>{e.count}</td>
                                    <td>{e.reason.unwrap_or_default()}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </DataTable>
            </div>
        </section>
    }
    .into_any()
}
