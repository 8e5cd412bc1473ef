//! The users pages: the list with its search, the tenant-wide revocation and the creation
//! form; an account's page with its sessions, events and actions.

use super::api::{
    end_user_detail, list_end_users, CreateEndUser, LockEndUser, RevokeEndUserSessions,
    RevokeTenantEndUserSessions,
};
use super::{UserDetail, UsersPage, STATES};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{
    successes, DangerousAction, Field, FormErrors, FormFeedback, ReasonField,
};
use crate::components::loaded::loaded;
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_seconds;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

fn state_badge(state: &str) -> &'static str {
    match state {
        "active" => "badge badge-success",
        "locked" | "deleted" => "badge badge-error",
        _ => "badge badge-deny",
    }
}

/// `/t/{tenant}/users`: the tenant's end users.
#[component]
pub fn UsersListPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let state = Memo::new(move |_| query.read().get("state").unwrap_or_default());
    let after = Memo::new(move |_| query.read().get("after").unwrap_or_default());
    let create = ServerAction::<CreateEndUser>::new();
    let revoke_all = ServerAction::<RevokeTenantEndUserSessions>::new();
    let created = successes(create.value());
    let revoked = successes(revoke_all.value());
    let page = Resource::new(
        move || {
            (
                tenant.get(),
                q.get(),
                state.get(),
                after.get(),
                created.get(),
                revoked.get(),
            )
        },
        |(tenant, q, state, after, _, _)| list_end_users(tenant, Some(q), Some(state), Some(after)),
    );
    view! {
        <Title text="Users" />
        <h1 class="text-2xl font-semibold">"Users"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "This tenant's end users. Revoking sessions takes effect on every instance within a second: their access tokens are refused at once, their refresh tokens no longer refresh."
        </p>
        <form method="get" class="mt-4 flex flex-wrap items-end gap-3" role="search" aria-label="Find users">
            <div>
                <label for="users-q" class="block text-sm font-medium">"Email or id"</label>
                <input id="users-q" name="q" type="search" class="input" prop:value=move || q.get() />
            </div>
            <div>
                <label for="users-state" class="block text-sm font-medium">"State"</label>
                <select id="users-state" name="state" class="input">
                    <option value="" selected=move || state.get().is_empty()>"Any"</option>
                    {STATES.iter().map(|s| view! { <option value=*s selected=move || state.get() == *s>{*s}</option> }).collect_view()}
                </select>
            </div>
            <button type="submit" class="btn">"Search"</button>
        </form>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(page).await {
                    Ok(page) => view! { <UsersTable page=page.clone() q state /> <TenantActions page create revoke_all /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn UsersTable(page: UsersPage, q: Memo<String>, state: Memo<String>) -> impl IntoView {
    let slug = page.slug.clone();
    let next = page.next.clone().map(|after| {
        let mut url = url_query(&[
            ("q", q.get_untracked()),
            ("state", state.get_untracked()),
            ("after", after),
        ]);
        url.insert_str(0, &format!("/t/{slug}/users"));
        url
    });
    view! {
        <DataTable caption="End users" testid="end-users" class="mt-4"
            rows=page.rows.len()
            empty=("No users", "No account matches; create one below.")
            columns=vec![Col::new("Email"), Col::new("State"), Col::new("Created (UTC)"), Col::new("Live sessions")]>
            {page.rows.into_iter().map(|u| {
                let href = format!("/t/{}/users/{}", page.slug, u.id);
                let state = u.state.clone();
                view! {
                    <tr data-user=u.id.clone()>
                        <td><a class="link" href=href>{u.email}</a></td>
                        <td><span class=state_badge(&state)>{state.clone()}</span></td>
                        <td>{utc_seconds(u.created_at)}</td>
                        <td>{u.live_sessions}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
        {next.map(|href| view! { <p class="mt-2"><a class="link" href=href rel="next">"Next page"</a></p> })}
    }
    .into_any()
}

/// `?a=1&b=2` of the non-empty pairs.
fn url_query(pairs: &[(&str, String)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", js_encode(v)))
        .collect();
    if encoded.is_empty() {
        String::new()
    } else {
        format!("?{}", encoded.join("&"))
    }
}

fn js_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
fn TenantActions(
    page: UsersPage,
    create: ServerAction<CreateEndUser>,
    revoke_all: ServerAction<RevokeTenantEndUserSessions>,
) -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let slug = page.slug.clone();
    let live = page.live_sessions;
    let create_errors = FormErrors::of(create.value());
    let revoke_errors = FormErrors::of(revoke_all.value());
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let done = Signal::derive(move || match revoke_all.value().get() {
        Some(Ok(n)) => Some(format!(
            "Every session of the tenant is revoked ({n} were live)."
        )),
        _ => None,
    });
    let created = Signal::derive(move || match create.value().get() {
        Some(Ok(_)) => Some("The account is created.".to_owned()),
        _ => None,
    });
    let tenant = StoredValue::new(slug.clone());
    let on_submit = Callback::new(move |_| {
        revoke_all.dispatch(RevokeTenantEndUserSessions {
            tenant: tenant.get_value(),
            reason: reason.get_untracked(),
            confirmation: confirmation.get_untracked(),
        });
    });
    view! {
        <Show when=move || can.get()>
            <section class="mt-8 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="revoke-tenant-heading">
                <h2 id="revoke-tenant-heading" class="font-semibold text-red-900">"Revoke every session of the tenant"</h2>
                <p class="mt-1 text-sm text-slate-600">"Runbook 000 §1: every end user of the tenant is signed out at once; access tokens are refused on every instance within a second, refresh tokens no longer refresh."</p>
                <p role="status" class="mt-2 text-sm text-emerald-800" data-testid="revoke-tenant-done">{move || done.get()}</p>
                <DangerousAction id="revoke-tenant" count=live
                    preview=move || view! { <p class="text-sm" data-testid="revoke-tenant-preview">{format!("{live} live session(s) will be revoked.")}</p> }
                    confirm_with=tenant.get_value()
                    button=format!("Revoke {live} session(s)")
                    reason confirmation errors=revoke_errors pending=revoke_all.pending() on_submit />
                <FormFeedback error=revoke_errors.other() />
            </section>
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="create-user-heading">
                <h2 id="create-user-heading" class="font-semibold">"Create a user"</h2>
                <p role="status" class="mt-2 text-sm text-emerald-800">{move || created.get()}</p>
                <ActionForm action=create attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=tenant.get_value() />
                    <Field id="new-user-email" label="Email" error=create_errors.field("email")>
                        <input id="new-user-email" name="email" type="email" class="input" autocomplete="off" />
                    </Field>
                    <Field id="new-user-password" label="Password (12 to 128 characters)" error=create_errors.field("password")>
                        <input id="new-user-password" name="password" type="password" class="input" autocomplete="new-password" />
                    </Field>
                    <button type="submit" class="btn-primary" disabled=move || create.pending().get()>"Create user"</button>
                </ActionForm>
                <FormFeedback error=create_errors.other() />
            </section>
        </Show>
    }
    .into_any()
}

/// `/t/{tenant}/users/{id}`: one account.
#[component]
pub fn UserDetailPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let id = Memo::new(move |_| params.read().get("id").unwrap_or_default());
    let revoke = ServerAction::<RevokeEndUserSessions>::new();
    let lock = ServerAction::<LockEndUser>::new();
    let revoked = successes(revoke.value());
    let locked = successes(lock.value());
    let detail = Resource::new(
        move || (tenant.get(), id.get(), revoked.get(), locked.get()),
        |(tenant, id, _, _)| end_user_detail(tenant, id),
    );
    view! {
        <Title text="User" />
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(detail).await {
                    Ok(detail) => view! { <UserShown detail revoke lock /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn UserShown(
    detail: UserDetail,
    revoke: ServerAction<RevokeEndUserSessions>,
    lock: ServerAction<LockEndUser>,
) -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let UserDetail {
        slug,
        user,
        sessions,
        events,
    } = detail;
    let revoke_errors = FormErrors::of(revoke.value());
    let lock_errors = FormErrors::of(lock.value());
    let done = Signal::derive(move || match (revoke.value().get(), lock.value().get()) {
        (_, Some(Ok(n))) => Some(format!(
            "The account is locked; {n} session(s) were revoked."
        )),
        (Some(Ok(n)), _) => Some(format!("{n} session(s) revoked.")),
        _ => None,
    });
    let live = user.live_sessions;
    let (tenant, uid) = (
        StoredValue::new(slug.clone()),
        StoredValue::new(user.id.clone()),
    );
    let state = user.state.clone();
    view! {
        <p class="text-sm"><a class="link" href=format!("/t/{slug}/users")>"Users"</a></p>
        <h1 class="mt-1 text-2xl font-semibold break-all">{user.email.clone()}</h1>
        <p class="mt-1 text-sm" data-testid="user-state">
            <span class=state_badge(&state)>{state.clone()}</span>
            <span class="ml-2 font-mono text-xs">{user.id.clone()}</span>
            <span>{format!(" · created {} UTC · {live} live session(s)", utc_seconds(user.created_at))}</span>
            {user.locked_until.map(|until| view! { <span>{format!(" · failed sign-ins lock it until {} UTC", utc_seconds(until))}</span> })}
        </p>
        <p role="status" class="mt-2 text-sm text-emerald-800" data-testid="user-done">{move || done.get()}</p>
        <DataTable caption="Sessions" testid="user-sessions" class="mt-4"
            rows=sessions.len()
            empty=("No sessions", "This account has not signed in.")
            columns=vec![Col::new("Signed in (UTC)"), Col::new("Last used (UTC)"), Col::new("Address"), Col::new("User agent"), Col::new("Refreshes"), Col::new("Ended")]>
            {sessions.into_iter().map(|s| view! {
                <tr data-session=s.id.clone()>
                    <td>{utc_seconds(s.created_at)}</td>
                    <td>{utc_seconds(s.last_used_at)}</td>
                    <td>{s.ip.unwrap_or_default()}</td>
                    <td class="max-w-xs truncate">{s.user_agent.unwrap_or_default()}</td>
                    <td>{s.refreshes}</td>
                    <td>{match (s.ended_at, s.end_reason) {
                        (Some(at), Some(why)) => format!("{} ({why})", utc_seconds(at)),
                        _ => "live".to_owned(),
                    }}</td>
                </tr>
            }).collect_view()}
        </DataTable>
        <DataTable caption="Recent events" testid="user-events" class="mt-6"
            rows=events.len()
            empty=("No events", "Nothing recorded in the last 90 days.")
            columns=vec![Col::new("When (UTC)"), Col::new("Event"), Col::new("Outcome"), Col::new("Address"), Col::new("By")]>
            {events.into_iter().map(|e| view! {
                <tr>
                    <td><a class="link" href=format!("/audit/{}", e.seq)>{utc_seconds(e.ts)}</a></td>
                    <td>{e.action}</td>
                    <td>{match e.code { Some(code) => format!("{} ({code})", e.outcome), None => e.outcome }}</td>
                    <td>{e.ip.unwrap_or_default()}</td>
                    <td>{e.actor}</td>
                </tr>
            }).collect_view()}
        </DataTable>
        <Show when=move || can.get()>
            <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="revoke-user-heading">
                <h2 id="revoke-user-heading" class="font-semibold">"Revoke this user's sessions"</h2>
                <p class="mt-1 text-sm text-slate-600">{format!("{live} live session(s): their access tokens are refused at once, their refresh tokens no longer refresh. The user can sign in again.")}</p>
                <ActionForm action=revoke attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=tenant.get_value() />
                    <input type="hidden" name="id" value=uid.get_value() />
                    <ReasonField id="revoke-user-reason" name="reason" error=revoke_errors.field("reason") />
                    <button type="submit" class="btn-danger" disabled=move || revoke.pending().get()>"Revoke sessions"</button>
                </ActionForm>
                <FormFeedback error=revoke_errors.other() />
            </section>
            <section class="mt-6 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="lock-user-heading">
                <h2 id="lock-user-heading" class="font-semibold text-red-900">"Lock the account"</h2>
                <p class="mt-1 text-sm text-slate-600" data-testid="lock-preview">{format!("Runbook 004: revokes the {live} live session(s) and refuses every sign-in until the account is unlocked or recovers.")}</p>
                <ActionForm action=lock attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=tenant.get_value() />
                    <input type="hidden" name="id" value=uid.get_value() />
                    <ReasonField id="lock-user-reason" name="reason" error=lock_errors.field("reason") />
                    <button type="submit" class="btn-danger" disabled=move || lock.pending().get()>"Lock the account"</button>
                </ActionForm>
                <FormFeedback error=lock_errors.other() />
            </section>
        </Show>
    }
    .into_any()
}
