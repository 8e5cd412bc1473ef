//! The users pages: the list with its search, the tenant-wide revocation and the creation
//! form; an account's page with its sessions, events and actions.

use super::api::{
    end_user_detail, list_end_users, outbox_mail, platform_sessions_preview, tenant_mail,
    CreateEndUser, DeleteEndUser, DropEndUserMail, ForceEndUserPasswordReset, ImportEndUsers,
    LockEndUser, RestoreEndUser, RevokeEndUserSessions, RevokePlatformEndUserSessions,
    RevokeTenantEndUserSessions, SendEndUserRecovery, SetTenantEmailDomains, UnlockEndUser,
};
use super::{ImportReport, MailPage, MailRow, UserDetail, UsersPage, LOCK_BLOCK_DAYS, STATES};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{
    successes, DangerousAction, Field, FormErrors, FormFeedback, ReasonField,
};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
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
    let import = ServerAction::<ImportEndUsers>::new();
    let created = successes(create.value());
    let revoked = successes(revoke_all.value());
    // Only an import that created users changes the list (a dry run does not).
    let imported = RwSignal::new(0u32);
    Effect::new(move |_| {
        if let Some(Ok(report)) = import.value().get() {
            if !report.dry_run {
                imported.update(|n| *n += 1);
            }
        }
    });
    let page = Resource::new(
        move || {
            (
                tenant.get(),
                q.get(),
                state.get(),
                after.get(),
                created.get(),
                revoked.get(),
                imported.get(),
            )
        },
        |(tenant, q, state, after, _, _, _)| {
            list_end_users(tenant, Some(q), Some(state), Some(after))
        },
    );
    let can = allowed(Permission::CommandIncident);
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
        // Outside the list's Transition: reloading the list keeps what was typed and checked.
        <Show when=move || can.get()>
            <ImportForm tenant action=import />
        </Show>
        <PlatformRevocation />
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
    let actions = UserActions {
        revoke: ServerAction::new(),
        lock: ServerAction::new(),
        reset: ServerAction::new(),
        delete: ServerAction::new(),
        unlock: ServerAction::new(),
        restore: ServerAction::new(),
        recovery: ServerAction::new(),
    };
    let changes = [
        successes(actions.revoke.value()),
        successes(actions.lock.value()),
        successes(actions.reset.value()),
        successes(actions.delete.value()),
        successes(actions.unlock.value()),
        successes(actions.restore.value()),
        successes(actions.recovery.value()),
    ];
    let detail = Resource::new(
        move || (tenant.get(), id.get(), changes.map(|c| c.get())),
        |(tenant, id, _)| end_user_detail(tenant, id),
    );
    view! {
        <Title text="User" />
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(detail).await {
                    Ok(detail) => view! { <UserShown detail actions /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

/// The account page's actions.
#[derive(Clone, Copy)]
struct UserActions {
    revoke: ServerAction<RevokeEndUserSessions>,
    lock: ServerAction<LockEndUser>,
    reset: ServerAction<ForceEndUserPasswordReset>,
    delete: ServerAction<DeleteEndUser>,
    unlock: ServerAction<UnlockEndUser>,
    restore: ServerAction<RestoreEndUser>,
    recovery: ServerAction<SendEndUserRecovery>,
}

impl UserActions {
    /// What the latest successful action did.
    fn done(self) -> Signal<Option<String>> {
        Signal::derive(move || {
            let said = |v: Option<Result<String, crate::error::AppError>>| match v {
                Some(Ok(said)) => Some(said),
                _ => None,
            };
            if let Some(Ok(lock)) = self.lock.value().get() {
                let mut said = format!(
                    "The account is {}; {} session(s) were revoked.",
                    lock.after, lock.live_sessions
                );
                if lock.recovery_queued {
                    said.push_str(" A recovery mail is queued.");
                }
                if !lock.blocked.is_empty() {
                    said.push_str(&format!(
                        " Blocked for {LOCK_BLOCK_DAYS} days: {}.",
                        lock.blocked.join(", ")
                    ));
                }
                return Some(said);
            }
            if let Some(Ok(n)) = self.revoke.value().get() {
                return Some(format!("{n} session(s) revoked."));
            }
            if let Some(Ok(())) = self.recovery.value().get() {
                return Some("A recovery mail is queued.".to_owned());
            }
            said(self.reset.value().get())
                .or_else(|| said(self.delete.value().get()))
                .or_else(|| said(self.unlock.value().get()))
                .or_else(|| said(self.restore.value().get()))
        })
    }
}

#[component]
fn UserShown(detail: UserDetail, actions: UserActions) -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let UserDetail {
        slug,
        user,
        sessions,
        live_refresh,
        events,
        sources,
        mail,
        mail_allowed,
    } = detail;
    let done = actions.done();
    let live = user.live_sessions;
    let state = user.state.clone();
    let email = user.email.clone();
    let ids = AccountIds {
        tenant: StoredValue::new(slug.clone()),
        user: StoredValue::new(user.id.clone()),
    };
    let blockable: Vec<String> = sources
        .iter()
        .filter(|s| !s.blocked)
        .map(|s| s.ip.clone())
        .collect();
    view! {
        <p class="text-sm"><a class="link" href=format!("/t/{slug}/users")>"Users"</a></p>
        <h1 class="mt-1 text-2xl font-semibold break-all">{user.email.clone()}</h1>
        <p class="mt-1 text-sm" data-testid="user-state">
            <span class=state_badge(&state)>{state.clone()}</span>
            <span class="ml-2 font-mono text-xs">{user.id.clone()}</span>
            <span>{format!(" · created {} UTC · {live} live session(s) · {live_refresh} usable refresh token(s)", utc_seconds(user.created_at))}</span>
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
        <DataTable caption="Sign-in addresses (last 30 days)" testid="user-sources" class="mt-6"
            rows=sources.len()
            empty=("No addresses", "No sign-in from a known address in the last 30 days.")
            columns=vec![Col::new("Address"), Col::new("Failures and reuses"), Col::new("Sign-ins"), Col::new("Last seen (UTC)"), Col::new("Blocked")]>
            {sources.into_iter().map(|s| view! {
                <tr data-source=s.ip.clone()>
                    <td class="font-mono">{s.ip.clone()}</td>
                    <td>{s.suspicious}</td>
                    <td>{s.signed_in}</td>
                    <td>{utc_seconds(s.last_seen)}</td>
                    <td>{if s.blocked { "blocked" } else { "" }}</td>
                </tr>
            }).collect_view()}
        </DataTable>
        <DataTable caption="Mail" testid="user-mail" class="mt-6"
            rows=mail.len()
            empty=("No mail", "No recovery or sign-in link was sent to this account.")
            columns=vec![Col::new("Queued (UTC)"), Col::new("Kind"), Col::new("To"), Col::new("State"), Col::new("Sent (UTC)")]>
            {mail.into_iter().map(|m| view! {
                <tr data-mail=m.id.clone()>
                    <td>{utc_seconds(m.created_at)}</td>
                    <td>{m.kind}</td>
                    <td class="break-all">{m.to_address}</td>
                    <td>{mail_state(&m.state, m.dropped_reason.as_deref(), m.last_error.as_deref())}</td>
                    <td>{m.sent_at.map(utc_seconds).unwrap_or_default()}</td>
                </tr>
            }).collect_view()}
        </DataTable>
        <p class="mt-2 text-sm"><a class="link" href=format!("/t/{slug}/mail")>"The tenant's mail queue"</a></p>
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
            <AccountActions state=state.clone() email=email.clone() live live_refresh mail_allowed blockable=blockable.clone() ids actions />
        </Show>
    }
    .into_any()
}

fn mail_state(state: &str, dropped: Option<&str>, error: Option<&str>) -> String {
    match (state, dropped, error) {
        ("dropped", Some(why), _) => format!("dropped: {why}"),
        ("failed", _, Some(error)) => format!("failed: {error}"),
        ("pending", _, Some(error)) => format!("retrying: {error}"),
        (state, _, _) => state.to_owned(),
    }
}

#[derive(Clone, Copy)]
struct AccountIds {
    tenant: StoredValue<String>,
    user: StoredValue<String>,
}

#[component]
fn Hidden(ids: AccountIds) -> impl IntoView {
    view! {
        <input type="hidden" name="tenant" value=ids.tenant.get_value() />
        <input type="hidden" name="id" value=ids.user.get_value() />
    }
}

#[component]
fn AccountActions(
    state: String,
    email: String,
    live: i64,
    live_refresh: i64,
    mail_allowed: bool,
    blockable: Vec<String>,
    ids: AccountIds,
    actions: UserActions,
) -> impl IntoView {
    let deleted = state == "deleted";
    let locked = state == "locked";
    let must_reset = state == "needs_password_reset";
    let outside =
        format!("{email} is outside the tenant's email domains: no recovery mail can go to it.");
    let no_mail = move || {
        (!mail_allowed)
            .then(|| view! { <p class="mt-1 text-sm text-amber-800">{outside.clone()}</p> })
    };
    view! {
        {(!deleted).then(|| view! {
            <LockForm email=email.clone() live live_refresh mail_allowed blockable ids action=actions.lock already=locked />
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="revoke-user-heading">
                <h2 id="revoke-user-heading" class="font-semibold">"Revoke this user's sessions"</h2>
                <p class="mt-1 text-sm text-slate-600">{format!("{live} live session(s): their access tokens are refused at once, their refresh tokens no longer refresh. The user can sign in again.")}</p>
                <ActionForm action=actions.revoke attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Hidden ids />
                    <ReasonField id="revoke-user-reason" name="reason" error=FormErrors::of(actions.revoke.value()).field("reason") />
                    <button type="submit" class="btn-danger" disabled=move || actions.revoke.pending().get()>"Revoke sessions"</button>
                </ActionForm>
                <FormFeedback error=FormErrors::of(actions.revoke.value()).other() />
            </section>
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="recovery-heading">
                <h2 id="recovery-heading" class="font-semibold">"Send a recovery mail"</h2>
                <p class="mt-1 text-sm text-slate-600">{format!("A one-time link to set a new password goes to {email}; it lasts 15 minutes from when it is sent, and setting the password ends every session.")}</p>
                {no_mail.clone()()}
                <ActionForm action=actions.recovery attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Hidden ids />
                    <ReasonField id="recovery-reason" name="reason" error=FormErrors::of(actions.recovery.value()).field("reason") />
                    <button type="submit" class="btn" disabled=move || actions.recovery.pending().get() || !mail_allowed>"Send recovery"</button>
                </ActionForm>
                <FormFeedback error=FormErrors::of(actions.recovery.value()).other() />
            </section>
        })}
        {(!deleted && !must_reset).then(|| view! {
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="reset-heading">
                <h2 id="reset-heading" class="font-semibold">"Force a password reset"</h2>
                <p class="mt-1 text-sm text-slate-600">{format!("The account becomes needs_password_reset: its {live} live session(s) are revoked and it signs in again only after setting a new password through recovery.")}</p>
                <ActionForm action=actions.reset attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Hidden ids />
                    <ReasonField id="reset-reason" name="reason" error=FormErrors::of(actions.reset.value()).field("reason") />
                    <label class="flex items-center gap-2 text-sm">
                        <input type="checkbox" name="send_recovery" value="true" checked=mail_allowed disabled=!mail_allowed />
                        "Send a recovery mail"
                    </label>
                    <button type="submit" class="btn-danger" disabled=move || actions.reset.pending().get()>"Force a reset"</button>
                </ActionForm>
                <FormFeedback error=FormErrors::of(actions.reset.value()).other() />
            </section>
        })}
        {locked.then(|| view! {
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="unlock-heading">
                <h2 id="unlock-heading" class="font-semibold">"Unlock"</h2>
                <p class="mt-1 text-sm text-slate-600">"The account becomes active and can sign in with its password again. It gives access back: a recent second factor is asked for, and a freeze refuses it."</p>
                <ActionForm action=actions.unlock attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Hidden ids />
                    <ReasonField id="unlock-reason" name="reason" error=FormErrors::of(actions.unlock.value()).field("reason") />
                    <StepUp errors=FormErrors::of(actions.unlock.value()) retry=redispatch(actions.unlock) id="unlock-step-up" />
                    <button type="submit" class="btn" disabled=move || actions.unlock.pending().get()>"Unlock"</button>
                </ActionForm>
                <FormFeedback error=FormErrors::of(actions.unlock.value()).other() />
            </section>
        })}
        {(!deleted).then(|| view! {
            <section class="mt-6 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="delete-heading">
                <h2 id="delete-heading" class="font-semibold text-red-900">"Mark deleted (recoverable)"</h2>
                <p class="mt-1 text-sm text-slate-600">{format!("Revokes the {live} live session(s), cancels its links and refuses sign-in and mail. Restoring it later brings it back as needs_password_reset.")}</p>
                <ActionForm action=actions.delete attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Hidden ids />
                    <ReasonField id="delete-reason" name="reason" error=FormErrors::of(actions.delete.value()).field("reason") />
                    <button type="submit" class="btn-danger" disabled=move || actions.delete.pending().get()>"Mark deleted"</button>
                </ActionForm>
                <FormFeedback error=FormErrors::of(actions.delete.value()).other() />
            </section>
        })}
        {deleted.then(|| view! {
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="restore-heading">
                <h2 id="restore-heading" class="font-semibold">"Restore"</h2>
                <p class="mt-1 text-sm text-slate-600">"The account comes back as needs_password_reset: it signs in once it sets a new password through recovery. It gives access back: a recent second factor is asked for, and a freeze refuses it."</p>
                {no_mail()}
                <ActionForm action=actions.restore attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Hidden ids />
                    <ReasonField id="restore-reason" name="reason" error=FormErrors::of(actions.restore.value()).field("reason") />
                    <label class="flex items-center gap-2 text-sm">
                        <input type="checkbox" name="send_recovery" value="true" checked=mail_allowed disabled=!mail_allowed />
                        "Send a recovery mail"
                    </label>
                    <StepUp errors=FormErrors::of(actions.restore.value()) retry=redispatch(actions.restore) id="restore-step-up" />
                    <button type="submit" class="btn" disabled=move || actions.restore.pending().get()>"Restore"</button>
                </ActionForm>
                <FormFeedback error=FormErrors::of(actions.restore.value()).other() />
            </section>
        })}
    }
    .into_any()
}

/// Runbook 004's lock, one action with its preview: every session and refresh token
/// revoked, the account locked, a recovery mail, and the addresses chosen blocked.
#[component]
fn LockForm(
    email: String,
    live: i64,
    live_refresh: i64,
    mail_allowed: bool,
    blockable: Vec<String>,
    ids: AccountIds,
    action: ServerAction<LockEndUser>,
    already: bool,
) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let send_recovery = RwSignal::new(mail_allowed);
    let block = RwSignal::new(Vec::<String>::new());
    let errors = FormErrors::of(action.value());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(LockEndUser {
            tenant: ids.tenant.get_value(),
            id: ids.user.get_value(),
            reason: reason.get_untracked(),
            send_recovery: send_recovery.get_untracked(),
            block: block.get_untracked(),
        });
    };
    let heading = if already {
        "Lock again"
    } else {
        "Lock the account"
    };
    view! {
        <section class="mt-8 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="lock-user-heading">
            <h2 id="lock-user-heading" class="font-semibold text-red-900">{heading}</h2>
            <p class="mt-1 text-sm text-slate-600" data-testid="lock-preview">{format!("Runbook 004: revokes the {live} live session(s) and {live_refresh} refresh token(s) at once, cancels unused links and queued mail, and refuses every sign-in.")}</p>
            <p class="mt-1 text-sm text-slate-600">{move || if send_recovery.get() {
                "With a recovery mail: the account becomes needs_password_reset, and only the mailbox's owner can set a new password and sign in again.".to_owned()
            } else {
                "Without a recovery mail: the account is locked until an operator unlocks it (with a recent second factor, never during a freeze).".to_owned()
            }}</p>
            <form class="mt-3 space-y-3" novalidate on:submit=submit>
                <ReasonField id="lock-user-reason" value=reason error=errors.field("reason") />
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" id="lock-send-recovery" prop:checked=move || send_recovery.get() disabled=!mail_allowed
                        on:change=move |ev| send_recovery.set(event_target_checked(&ev)) />
                    {format!("Send a recovery mail to {email}")}
                </label>
                <p class="field-error">{move || errors.field("send_recovery").get()}</p>
                {(!blockable.is_empty()).then(|| view! {
                    <fieldset>
                        <legend class="text-sm font-medium">{format!("Block for {LOCK_BLOCK_DAYS} days (addresses seen on this account)")}</legend>
                        {blockable.iter().map(|ip| {
                            let ip = ip.clone();
                            let (checked_ip, toggle_ip) = (ip.clone(), ip.clone());
                            view! {
                                <label class="mt-1 flex items-center gap-2 text-sm font-mono">
                                    <input type="checkbox" data-block=ip.clone()
                                        prop:checked=move || block.read().contains(&checked_ip)
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            block.update(|b| {
                                                b.retain(|x| x != &toggle_ip);
                                                if on {
                                                    b.push(toggle_ip.clone());
                                                }
                                            });
                                        } />
                                    {ip}
                                </label>
                            }
                        }).collect_view()}
                        <p class="field-error">{move || errors.field("block").get()}</p>
                    </fieldset>
                })}
                <button type="submit" class="btn-danger" disabled=move || action.pending().get()>{heading}</button>
            </form>
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}

/// `/t/{tenant}/mail`: the tenant's end-user mail, the queue first.
#[component]
pub fn MailQueuePage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let drop = ServerAction::<DropEndUserMail>::new();
    let domains = ServerAction::<SetTenantEmailDomains>::new();
    let dropped = successes(drop.value());
    let changed = successes(domains.value());
    let page = Resource::new(
        move || (tenant.get(), dropped.get(), changed.get()),
        |(tenant, _, _)| tenant_mail(tenant),
    );
    view! {
        <Title text="Mail" />
        <h1 class="text-2xl font-semibold">"Mail"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Recovery and sign-in links sent to this tenant's end users. While emailSendingEnabled is off (runbook 000 §3, an SMTP breach) nothing is sent: mail waits here until it is on again, or is dropped with a reason. Each link is made when its mail is sent, and lasts 15 minutes from then."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(page).await {
                    Ok(page) => view! { <MailShown page drop domains /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn MailShown(
    page: MailPage,
    drop: ServerAction<DropEndUserMail>,
    domains: ServerAction<SetTenantEmailDomains>,
) -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let MailPage {
        slug,
        transport,
        sending_enabled,
        magic_links_enabled,
        queued,
        recent,
        domains: allowed_domains,
    } = page;
    let held = queued.len();
    let transport_line = match transport.as_str() {
        "smtp" => "Mail goes out through SMTP (SMTP_URL).".to_owned(),
        "outbox" => "Development: mail goes to files in DATA_DIR/outbox, listed below.".to_owned(),
        _ => "No mail transport: SMTP_URL is not set, so mail stays queued.".to_owned(),
    };
    let sending_line = if sending_enabled {
        format!("emailSendingEnabled is on: {held} mail waiting to be sent or retried.")
    } else {
        format!("emailSendingEnabled is off for this tenant: {held} mail held. Turn it back on in Kill switches to send it.")
    };
    let magic_line = format!(
        "magicLinkEnabled is {}.",
        if magic_links_enabled {
            "on"
        } else {
            "off: no sign-in links are sent or accepted"
        }
    );
    let tenant = StoredValue::new(slug.clone());
    let shown = RwSignal::new(None::<(String, Result<String, crate::error::AppError>)>);
    let outbox = transport == "outbox";
    let drop_errors = FormErrors::of(drop.value());
    let domain_errors = FormErrors::of(domains.value());
    let drop_done = Signal::derive(move || match drop.value().get() {
        Some(Ok(n)) => Some(format!("{n} mail dropped.")),
        _ => None,
    });
    let domains_done = Signal::derive(move || match domains.value().get() {
        Some(Ok(d)) if d.is_empty() => Some("Links may go to any domain.".to_owned()),
        Some(Ok(d)) => Some(format!("Links go only to: {}.", d.join(", "))),
        _ => None,
    });
    let domains_text = StoredValue::new(allowed_domains.join("\n"));
    let domains_line = if allowed_domains.is_empty() {
        "No allowlist: magic links and recovery mail may go to any domain.".to_owned()
    } else {
        format!("Only to: {}.", allowed_domains.join(", "))
    };
    let row = move |m: MailRow, with_drop: bool| {
        let view_id = m.id.clone();
        let drop_id = m.id.clone();
        let viewable = outbox && m.transport.as_deref() == Some("outbox");
        view! {
            <tr data-mail=m.id.clone()>
                <td>{utc_seconds(m.created_at)}</td>
                <td>{m.kind.clone()}</td>
                <td class="break-all"><a class="link" href=format!("/t/{}/users/{}", tenant.get_value(), m.user_id)>{m.to_address.clone()}</a></td>
                <td>{mail_state(&m.state, m.dropped_reason.as_deref(), m.last_error.as_deref())}</td>
                <td>{m.requested_by.clone()}</td>
                <td>{m.sent_at.map(utc_seconds).unwrap_or_default()}</td>
                <td>
                    {viewable.then(|| view! {
                        <button type="button" class="link" on:click=move |_| {
                            let id = view_id.clone();
                            leptos::task::spawn_local(async move {
                                let body = outbox_mail(tenant.get_value(), id.clone()).await;
                                shown.set(Some((id, body)));
                            });
                        }>"View"</button>
                    })}
                    // Reactive, as every role-dependent part of a page: a value read once
                    // could differ between the server's render and the browser's hydration.
                    {with_drop.then(|| {
                        let drop_id = StoredValue::new(drop_id.clone());
                        view! {
                            <Show when=move || can.get()>
                                <ActionForm action=drop attr:class="inline">
                                    <input type="hidden" name="tenant" value=tenant.get_value() />
                                    <input type="hidden" name="mail" value=drop_id.get_value() />
                                    <input type="hidden" name="reason" value="dropped from the queue" />
                                    <button type="submit" class="link text-red-800">"Drop"</button>
                                </ActionForm>
                            </Show>
                        }
                    })}
                </td>
            </tr>
        }
    };
    let columns = || {
        vec![
            Col::new("Queued (UTC)"),
            Col::new("Kind"),
            Col::new("To"),
            Col::new("State"),
            Col::new("Asked by"),
            Col::new("Sent (UTC)"),
            Col::new(""),
        ]
    };
    view! {
        <ul class="mt-4 max-w-3xl list-disc pl-5 text-sm" data-testid="mail-status">
            <li>{transport_line}</li>
            <li class=if sending_enabled { "" } else { "font-semibold text-red-900" }>{sending_line}</li>
            <li>{magic_line}</li>
            <li>{domains_line}</li>
        </ul>
        <DataTable caption="Queued" testid="mail-queued" class="mt-4"
            rows=queued.len()
            empty=("Nothing queued", "Every mail asked for has been sent or dropped.")
            columns=columns()>
            {queued.into_iter().map(|m| row(m, true)).collect_view()}
        </DataTable>
        <Show when=move || can.get() && (held > 0)>
            <section class="mt-4 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="drop-all-heading">
                <h2 id="drop-all-heading" class="font-semibold text-red-900">{format!("Drop all {held} queued mail")}</h2>
                <p class="mt-1 text-sm text-slate-600">"For mail asked for by an attacker during a breach: it is never sent. The accounts can ask again."</p>
                <ActionForm action=drop attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=tenant.get_value() />
                    <ReasonField id="drop-all-reason" name="reason" error=drop_errors.field("reason") />
                    <button type="submit" class="btn-danger" disabled=move || drop.pending().get()>"Drop all queued"</button>
                </ActionForm>
            </section>
        </Show>
        <FormFeedback error=drop_errors.other() done=drop_done />
        <DataTable caption="Sent, dropped and failed (latest 50)" testid="mail-recent" class="mt-6"
            rows=recent.len()
            empty=("No mail yet", "No mail has been sent to this tenant's users.")
            columns=columns()>
            {recent.into_iter().map(|m| row(m, false)).collect_view()}
        </DataTable>
        {move || shown.get().map(|(id, body)| view! {
            <section class="mt-4 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-label="Outbox message" data-testid="outbox-message">
                <h2 class="font-semibold">{format!("Outbox message {id}")}</h2>
                {match body {
                    Ok(text) => view! { <pre class="mt-2 whitespace-pre-wrap break-all text-xs">{text}</pre> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }}
            </section>
        })}
        <Show when=move || can.get()>
            <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="domains-heading">
                <h2 id="domains-heading" class="font-semibold">"Email domains"</h2>
                <p class="mt-1 text-sm text-slate-600">"Magic links and recovery mail go only to addresses of these domains (one per line; empty: any). Narrowing applies to queued mail too. Widening gives access back: a recent second factor is asked for, and a freeze refuses it."</p>
                <ActionForm action=domains attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=tenant.get_value() />
                    <Field id="email-domains" label="Domains" error=domain_errors.field("domains")>
                        <textarea id="email-domains" name="domains" rows="4" class="input mt-1 w-full max-w-md font-mono">{domains_text.get_value()}</textarea>
                    </Field>
                    <ReasonField id="domains-reason" name="reason" error=domain_errors.field("reason") />
                    <StepUp errors=domain_errors retry=redispatch(domains) id="domains-step-up" />
                    <button type="submit" class="btn" disabled=move || domains.pending().get()>"Save domains"</button>
                </ActionForm>
                <FormFeedback error=domain_errors.other() done=domains_done />
            </section>
        </Show>
    }
    .into_any()
}

/// Runbook 004's mass revocation: every session and refresh token of every tenant.
#[component]
fn PlatformRevocation() -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let revoke = ServerAction::<RevokePlatformEndUserSessions>::new();
    let revoked = successes(revoke.value());
    let preview = Resource::new(move || revoked.get(), |_| platform_sessions_preview());
    let errors = FormErrors::of(revoke.value());
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let done = Signal::derive(move || match revoke.value().get() {
        Some(Ok(n)) => Some(format!(
            "Every session of every tenant is revoked ({n} were live)."
        )),
        _ => None,
    });
    view! {
        <Show when=move || can.get()>
            <section class="mt-8 max-w-3xl rounded-lg border border-red-300 bg-white p-4" aria-labelledby="revoke-platform-heading">
                <h2 id="revoke-platform-heading" class="font-semibold text-red-900">"Revoke every session of every tenant"</h2>
                <p class="mt-1 text-sm text-slate-600">"Runbook 004, a systemic compromise: every end user of every tenant must sign in again. Treat it as a Sev 1."</p>
                <p role="status" class="mt-2 text-sm text-emerald-800" data-testid="revoke-platform-done">{move || done.get()}</p>
                <Transition fallback=|| view! { <p class="mt-2 text-slate-500">"Counting…"</p> }>
                    {move || Suspend::new(async move {
                        match loaded(preview).await {
                            Ok(p) => {
                                let on_submit = Callback::new(move |_| {
                                    revoke.dispatch(RevokePlatformEndUserSessions {
                                        reason: reason.get_untracked(),
                                        confirmation: confirmation.get_untracked(),
                                    });
                                });
                                let (live, tenants) = (p.live_sessions, p.tenants);
                                view! {
                                    <DangerousAction id="revoke-platform" count=live
                                        preview=move || view! { <p class="text-sm" data-testid="revoke-platform-preview">{format!("{live} live session(s) in {tenants} tenant(s) will be revoked.")}</p> }
                                        confirm_with=p.confirmation.clone()
                                        button=format!("Revoke {live} session(s) everywhere")
                                        reason confirmation errors pending=revoke.pending() on_submit />
                                }.into_any()
                            }
                            Err(error) => view! { <ErrorNotice error /> }.into_any(),
                        }
                    })}
                </Transition>
                <FormFeedback error=errors.other() />
            </section>
        </Show>
    }
    .into_any()
}

/// The text of the file chosen in the input `ev` came from (the browser reads it; nothing
/// is uploaded until the form is sent).
#[cfg(feature = "hydrate")]
fn read_chosen_file(
    ev: leptos::ev::Event,
    into: RwSignal<String>,
    error: RwSignal<Option<String>>,
) {
    use wasm_bindgen::JsCast as _;
    let file = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        .and_then(|input| input.files())
        .and_then(|files| files.get(0));
    let Some(file) = file else {
        return;
    };
    if file.size() > 1024.0 * 1024.0 {
        error.set(Some("The file is over 1 MiB: split it.".into()));
        return;
    }
    leptos::task::spawn_local(async move {
        match wasm_bindgen_futures::JsFuture::from(file.text()).await {
            Ok(text) => {
                error.set(None);
                into.set(text.as_string().unwrap_or_default());
            }
            Err(_) => error.set(Some("The file could not be read.".into())),
        }
    });
}

#[cfg(not(feature = "hydrate"))]
fn read_chosen_file(_: leptos::ev::Event, _: RwSignal<String>, _: RwSignal<Option<String>>) {}

/// Users from a CSV: a dry run lists what would be created and which lines are wrong; the
/// import creates all of them or none.
#[component]
fn ImportForm(tenant: Memo<String>, action: ServerAction<ImportEndUsers>) -> impl IntoView {
    let csv = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let send_recovery = RwSignal::new(true);
    let file_error = RwSignal::new(None::<String>);
    // The text the last clean dry run checked: the import is offered for it alone.
    let checked = RwSignal::new(None::<String>);
    let errors = FormErrors::of(action.value());
    Effect::new(move |_| {
        if let Some(Ok(report)) = action.value().get() {
            let clean = report.dry_run && report.lines.iter().all(|l| l.problem.is_none());
            checked.set(clean.then(|| csv.get_untracked()));
        }
    });
    let dispatch = move |dry_run: bool| {
        action.dispatch(ImportEndUsers {
            tenant: tenant.get_untracked(),
            csv: csv.get_untracked(),
            dry_run,
            send_recovery: send_recovery.get_untracked(),
            reason: reason.get_untracked(),
        });
    };
    let ready = move || checked.get().is_some_and(|c| c == csv.get());
    view! {
        <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="import-heading">
            <h2 id="import-heading" class="font-semibold">"Import users (CSV)"</h2>
            <p class="mt-1 text-sm text-slate-600">"One email per line (an email header is allowed). Accounts start as needs_password_reset, with no password: they set one through recovery. Check the file first: the import creates every line or none."</p>
            <form class="mt-3 space-y-3" novalidate on:submit=move |ev| { ev.prevent_default(); dispatch(true); }>
                <div>
                    <label for="import-file" class="block text-sm font-medium">"CSV file"</label>
                    <input id="import-file" type="file" accept=".csv,text/csv,text/plain" class="mt-1 text-sm"
                        on:change=move |ev| read_chosen_file(ev, csv, file_error) />
                    <p class="field-error">{move || file_error.get()}</p>
                </div>
                <Field id="import-csv" label="Or paste it" error=errors.field("csv")>
                    <textarea id="import-csv" rows="5" class="input mt-1 w-full max-w-xl font-mono text-xs"
                        prop:value=move || csv.get()
                        on:input=move |ev| csv.set(event_target_value(&ev))></textarea>
                </Field>
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" id="import-send-recovery" prop:checked=move || send_recovery.get()
                        on:change=move |ev| send_recovery.set(event_target_checked(&ev)) />
                    "Send each a recovery mail"
                </label>
                <p class="field-error">{move || errors.field("send_recovery").get()}</p>
                <ReasonField id="import-reason" value=reason error=errors.field("reason") />
                <div class="flex gap-3">
                    <button type="submit" class="btn" disabled=move || action.pending().get()>"Check the file"</button>
                    <button type="button" class="btn-primary" disabled=move || action.pending().get() || !ready()
                        on:click=move |_| dispatch(false)>"Import"</button>
                </div>
            </form>
            <FormFeedback error=errors.other() />
            {move || match action.value().get() {
                Some(Ok(report)) => Some(view! { <ImportShown report /> }.into_any()),
                _ => None,
            }}
        </section>
    }
    .into_any()
}

#[component]
fn ImportShown(report: ImportReport) -> impl IntoView {
    let wrong = report.lines.iter().filter(|l| l.problem.is_some()).count();
    let good = report.lines.len() - wrong;
    let summary = if report.dry_run {
        if wrong == 0 {
            format!("{good} user(s) will be created. Import to create them.")
        } else {
            format!("{good} user(s) would be created; {wrong} line(s) are wrong: fix them and check again.")
        }
    } else {
        format!(
            "{} user(s) created; {} recovery mail queued.",
            report.created, report.mailed
        )
    };
    let mut lines = report.lines;
    // The wrong lines first.
    lines.sort_by_key(|l| (l.problem.is_none(), l.line));
    view! {
        <p role="status" class="mt-3 text-sm font-medium" data-testid="import-summary">{summary}</p>
        <DataTable caption="Lines" testid="import-lines" class="mt-2"
            rows=lines.len()
            empty=("No lines", "The file has no email.")
            columns=vec![Col::new("Line"), Col::new("Email"), Col::new("Result")]>
            {lines.into_iter().take(200).map(|l| {
                let class = if l.problem.is_some() { "text-red-800" } else { "" };
                view! {
                    <tr data-line=l.line.to_string()>
                        <td>{l.line}</td>
                        <td class="break-all">{l.email}</td>
                        <td class=class>{l.problem.unwrap_or_else(|| "ok".to_owned())}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}
