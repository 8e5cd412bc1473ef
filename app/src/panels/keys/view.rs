//! The signing keys page: the tenant's keys, and the buttons their states allow.

use super::api::{
    key_instances, preview_key_revocation, signing_keys, ActivateSigningKey, AskInstances,
    RevokeAllSigningKeys, RevokeSigningKey, StageSigningKey,
};
use super::{
    InstanceRequest, InstanceRequestKind, InstancesView, KeyChanged, KeysPage, RevokePreview,
    SigningKey, ANSWER_WITHIN_SECS,
};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::{status_badge, ErrorNotice};
use crate::components::form::{
    successes, DangerousAction, FormErrors, FormFeedback, ReasonField, TypedConfirm,
};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::table::{Col, DataTable};
use crate::components::time::{utc_seconds, Countdown};
use crate::domain::status::SigningKeyState;
use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// What a row's button asked for.
#[derive(Clone, PartialEq)]
enum Chosen {
    Activate(SigningKey),
    Revoke(String),
}

fn changed_message(changed: &KeyChanged) -> String {
    let mut parts = Vec::new();
    if let Some(kid) = &changed.staged {
        parts.push(format!("Key {kid} is staged: it is published and will be ready to sign once relying services have had time to fetch it."));
    }
    if let Some(kid) = &changed.activated {
        parts.push(format!("Key {kid} is now active."));
    }
    if let Some(kid) = &changed.retired {
        parts.push(format!(
            "Key {kid} is retired: it verifies until its countdown ends."
        ));
    }
    if !changed.revoked.is_empty() {
        parts.push(format!("Revoked: {}.", changed.revoked.join(", ")));
    }
    parts.join(" ")
}

/// When `value` (an action's answer) becomes a success: says what it did, closes the row's
/// form.
fn on_success<S>(value: S, done: RwSignal<Option<String>>, chosen: RwSignal<Option<Chosen>>)
where
    S: Get<Value = Option<Result<KeyChanged, AppError>>> + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if let Some(Ok(changed)) = value.get() {
            done.set(Some(changed_message(&changed)));
            chosen.set(None);
        }
    });
}

/// `/t/{tenant}/keys`: a tenant's signing keys.
#[component]
pub fn SigningKeysPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let stage = ServerAction::<StageSigningKey>::new();
    let activate = ServerAction::<ActivateSigningKey>::new();
    let revoke = ServerAction::<RevokeSigningKey>::new();
    let revoke_all = ServerAction::<RevokeAllSigningKeys>::new();
    let changes = [
        successes(stage.value()),
        successes(activate.value()),
        successes(revoke.value()),
        successes(revoke_all.value()),
    ];
    let page = Resource::new(
        move || (tenant.get(), changes.map(|c| c.get())),
        |(tenant, _)| signing_keys(tenant),
    );
    let chosen = RwSignal::new(None::<Chosen>);
    // What the last change did, whichever form made it; a change that went through also
    // closes the row's form. A refusal leaves both as they are.
    let done = RwSignal::new(None::<String>);
    on_success(stage.value(), done, chosen);
    on_success(activate.value(), done, chosen);
    on_success(revoke.value(), done, chosen);
    on_success(revoke_all.value(), done, chosen);
    view! {
        <Title text="Signing keys" />
        <h1 class="text-2xl font-semibold">"Signing keys"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "The keys that sign this tenant's delegated tokens. A staged key is published but does not sign until relying services have had time to fetch it; activating it retires the active key, which keeps verifying until its countdown ends. Revoking a key unpublishes it at once."
        </p>
        <p class="mt-1 text-sm">
            <a class="link" href=move || format!("/a/{}/.well-known/jwks.json", tenant.get()) rel="external">"The published JWKS"</a>
        </p>
        <p role="status" class="mt-2 text-sm text-emerald-800" data-testid="key-done">{move || done.get()}</p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(page).await {
                    Ok(page) => view! {
                        <KeyTable page=page.clone() chosen />
                        <Show when=move || allowed(Permission::CommandIncident).get()>
                            <Actions page=page.clone() chosen stage activate revoke revoke_all />
                        </Show>
                    }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <Instances tenant />
    }
    .into_any()
}

#[component]
fn KeyTable(page: KeysPage, chosen: RwSignal<Option<Chosen>>) -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let max_age = page.jwks_max_age_secs;
    let usage = page.usage;
    view! {
        <DataTable caption="Signing keys" testid="signing-keys" class="mt-4"
            rows=page.keys.len()
            empty=("No signing keys", "The server gives a tenant an active key when it starts; stage one below.")
            columns=vec![Col::new("Kid"), Col::new("Algorithm"), Col::new("State"), Col::new("Staged (UTC)"), Col::new("Activated / retired (UTC)"), Col::new("Verifies"), Col::new("Signed / verified, 24 h"), Col::new("Actions")]>
                {page.keys.into_iter().map(|key| {
                    let state = key.state;
                    let badge = match state {
                        SigningKeyState::Active => status_badge("active"),
                        SigningKeyState::Revoked => status_badge("revoked"),
                        _ => status_badge("other"),
                    };
                    let times = match (key.activated_at, key.retired_at) {
                        (Some(a), Some(r)) => format!("{} / {}", utc_seconds(a), utc_seconds(r)),
                        (Some(a), None) => utc_seconds(a),
                        _ => String::new(),
                    };
                    let verifies = match (state, key.verify_until, key.ended_at) {
                        (SigningKeyState::Retired, Some(until), _) => view! { <Countdown until label="removed in" /> }.into_any(),
                        (SigningKeyState::Staged, _, _) => {
                            let ready = key.activatable_at(max_age);
                            view! { <span>{format!("no (signs from {} at the earliest)", utc_seconds(ready))}</span> }.into_any()
                        }
                        (SigningKeyState::Active, _, _) => view! { <span>"signs and verifies"</span> }.into_any(),
                        (_, _, Some(ended)) => view! { <span>{format!("no: {} {}{}", state, utc_seconds(ended), key.revoke_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())}</span> }.into_any(),
                        _ => view! { <span>"no"</span> }.into_any(),
                    };
                    let kid = key.kid.clone();
                    let for_activate = key.clone();
                    let used = usage
                        .iter()
                        .find(|u| u.kid == key.kid)
                        .map(|u| format!("{} / {}", u.signed, u.verified))
                        .unwrap_or_else(|| "0 / 0".to_owned());
                    view! {
                        <tr data-kid=key.kid.clone()>
                            <td class="font-mono text-xs break-all">{key.kid.clone()}</td>
                            <td>{key.algorithm.as_str()}</td>
                            <td><span class=badge>{state.as_str()}</span></td>
                            <td>{format!("{} by {}", utc_seconds(key.staged_at), key.created_by)}</td>
                            <td>{times}</td>
                            <td>{verifies}</td>
                            <td data-testid="key-use">{used}</td>
                            <td class="space-x-2 whitespace-nowrap">
                                <Show when=move || can.get() && state == SigningKeyState::Staged>
                                    <button type="button" class="btn" on:click={
                                        let key = for_activate.clone();
                                        move |_| chosen.set(Some(Chosen::Activate(key.clone())))
                                    }>"Activate"</button>
                                </Show>
                                <Show when=move || can.get() && state.published()>
                                    <button type="button" class="btn-danger" on:click={
                                        let kid = kid.clone();
                                        move |_| chosen.set(Some(Chosen::Revoke(kid.clone())))
                                    }>"Revoke"</button>
                                </Show>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
    }
    .into_any()
}

#[component]
fn Actions(
    page: KeysPage,
    chosen: RwSignal<Option<Chosen>>,
    stage: ServerAction<StageSigningKey>,
    activate: ServerAction<ActivateSigningKey>,
    revoke: ServerAction<RevokeSigningKey>,
    revoke_all: ServerAction<RevokeAllSigningKeys>,
) -> impl IntoView {
    let slug = page.slug.clone();
    let stage_errors = FormErrors::of(stage.value());
    let (max_age, now) = (page.jwks_max_age_secs, page.now);
    let slug_for_chosen = slug.clone();
    let slug_for_stage = slug.clone();
    view! {
        {move || chosen.get().map(|c| match c {
            Chosen::Activate(key) => view! { <ActivateForm slug=slug_for_chosen.clone() key max_age now action=activate /> }.into_any(),
            Chosen::Revoke(kid) => view! { <RevokeForm slug=slug_for_chosen.clone() kid action=revoke /> }.into_any(),
        })}
        <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="stage-heading">
            <h2 id="stage-heading" class="font-semibold">"Stage a new key"</h2>
            <p class="mt-1 text-sm text-slate-600">{format!("A new {} key, published at once; it may be activated after {} s (JWKS_MAX_AGE_SECONDS).", page.algorithm, max_age)}</p>
            <ActionForm action=stage attr:class="mt-3 space-y-3" attr:novalidate="true">
                <input type="hidden" name="tenant" value=slug_for_stage />
                <ReasonField id="stage-reason" name="reason" error=stage_errors.field("reason") />
                <button type="submit" class="btn-primary" disabled=move || stage.pending().get()>"Stage a key"</button>
            </ActionForm>
            <FormFeedback error=stage_errors.other() />
        </section>
        <RevokeAll slug action=revoke_all />
    }
    .into_any()
}

#[component]
fn ActivateForm(
    slug: String,
    key: SigningKey,
    max_age: i64,
    now: time::OffsetDateTime,
    action: ServerAction<ActivateSigningKey>,
) -> impl IntoView {
    let errors = FormErrors::of(action.value());
    let emergency = RwSignal::new(false);
    let ready = key.activatable_at(max_age);
    let waiting = ready > now;
    view! {
        <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-amber-300" aria-labelledby="activate-heading">
            <h2 id="activate-heading" class="font-semibold">"Activate a staged key"</h2>
            <p class="mt-1 break-all font-mono text-xs">{key.kid.clone()}</p>
            <p class="mt-1 text-sm text-slate-600">
                {if waiting {
                    format!("Published at {}: relying services may not have it until {}. Activating now needs an emergency activation.", utc_seconds(key.staged_at), utc_seconds(ready))
                } else {
                    format!("Published at {}, long enough for relying services to have it. The active key will be retired.", utc_seconds(key.staged_at))
                }}
            </p>
            <ActionForm action attr:class="mt-3 space-y-3" attr:novalidate="true">
                <input type="hidden" name="tenant" value=slug.clone() />
                <input type="hidden" name="kid" value=key.kid.clone() />
                <ReasonField id="activate-reason" name="reason" error=errors.field("reason") />
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" name="emergency" value="on" on:change=move |ev| emergency.set(event_target_checked(&ev)) />
                    "Emergency activation: sign with it now, without waiting for relying services"
                </label>
                <Show when=move || emergency.get()>
                    <TypedConfirm id="activate-confirm" name="confirmation" word=slug.clone() error=errors.field("confirmation") />
                </Show>
                <StepUp errors retry=redispatch(action) id="activate-step-up" />
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>"Activate this key"</button>
            </ActionForm>
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}

fn preview_list(preview: &RevokePreview) -> impl IntoView {
    let replaces = preview.replaces_active;
    let live = preview.live_tokens;
    let keys = preview.keys.clone();
    view! {
        <div data-testid="revoke-preview">
            <p class="text-sm font-medium">{format!("{} key(s) would be unpublished at once, and tokens they signed refused:", keys.len())}</p>
            <ul class="mt-1 list-disc pl-6 text-sm">
                {keys.into_iter().map(|(kid, state)| view! { <li class="break-all font-mono text-xs">{format!("{kid} ({state})")}</li> }).collect_view()}
            </ul>
            <p class="mt-1 text-sm" data-testid="live-tokens">{format!("{live} delegated token(s) they signed may still be live: each is refused from the revocation on.")}</p>
            {replaces.then(|| view! { <p class="mt-1 text-sm">"The active key is among them: a fresh key is activated in its place, in the same change."</p> })}
        </div>
    }
}

#[component]
fn RevokeForm(slug: String, kid: String, action: ServerAction<RevokeSigningKey>) -> impl IntoView {
    let preview = RwSignal::new(None::<Result<RevokePreview, AppError>>);
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let errors = FormErrors::of(action.value());
    {
        let (slug, kid) = (slug.clone(), kid.clone());
        leptos::task::spawn_local(async move {
            let answer = preview_key_revocation(slug, Some(kid)).await;
            let _ = preview.try_set(Some(answer));
        });
    }
    view! {
        <section class="mt-8 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="revoke-heading">
            <h2 id="revoke-heading" class="font-semibold text-red-900">"Revoke by kid"</h2>
            {move || preview.get().map(|result| match result {
                Err(error) => view! { <div class="mt-3"><ErrorNotice error /></div> }.into_any(),
                Ok(p) => {
                    let (slug, kid) = (slug.clone(), kid.clone());
                    let shown = p.clone();
                    let on_submit = Callback::new(move |_| {
                        action.dispatch(RevokeSigningKey {
                            tenant: slug.clone(),
                            kid: kid.clone(),
                            reason: reason.get_untracked(),
                            confirmation: confirmation.get_untracked(),
                        });
                    });
                    view! {
                        <DangerousAction id="revoke" count=1 preview=move || preview_list(&shown)
                            confirm_with=p.keys.first().map(|(k, _)| k.clone()).unwrap_or_default()
                            button="Revoke this key".to_owned()
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
fn RevokeAll(slug: String, action: ServerAction<RevokeAllSigningKeys>) -> impl IntoView {
    let preview = RwSignal::new(None::<Result<RevokePreview, AppError>>);
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let errors = FormErrors::of(action.value());
    let load = {
        let slug = slug.clone();
        move |_| {
            let slug = slug.clone();
            leptos::task::spawn_local(async move {
                let answer = preview_key_revocation(slug, None).await;
                let _ = preview.try_set(Some(answer));
            });
        }
    };
    view! {
        <section class="mt-6 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="revoke-all-heading">
            <h2 id="revoke-all-heading" class="font-semibold text-red-900">"Revoke all keys"</h2>
            <p class="mt-1 text-sm text-slate-600">"For a signing key compromise: a fresh key is activated at once and every other published key revoked, in one change. Every delegated token signed so far is refused."</p>
            <button type="button" class="btn mt-3" on:click=load>"Preview what it revokes"</button>
            {move || preview.get().map(|result| match result {
                Err(error) => view! { <div class="mt-3"><ErrorNotice error /></div> }.into_any(),
                Ok(p) => {
                    let count = p.keys.len() as i64;
                    let shown = p.clone();
                    let tenant = slug.clone();
                    let on_submit = Callback::new(move |expected| {
                        action.dispatch(RevokeAllSigningKeys {
                            tenant: tenant.clone(),
                            reason: reason.get_untracked(),
                            confirmation: confirmation.get_untracked(),
                            expected,
                        });
                    });
                    view! {
                        <DangerousAction id="revoke-all" count preview=move || preview_list(&shown)
                            confirm_with=slug.clone()
                            button=format!("Revoke {count} key(s) and activate a fresh one")
                            reason confirmation errors pending=action.pending() on_submit />
                    }.into_any()
                }
            })}
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}

/// `12 s ago`, from the server's clock at reading.
fn ago(then: time::OffsetDateTime, now: time::OffsetDateTime) -> String {
    format!("{} s ago", (now - then).whole_seconds().max(0))
}

/// The instances: each one's key epoch, and the buttons that ask all of them to refresh
/// or to verify (runbook 001), with their answers as they arrive.
#[component]
fn Instances(tenant: Memo<String>) -> impl IntoView {
    let can = allowed(Permission::CommandIncident);
    let ask = ServerAction::<AskInstances>::new();
    let errors = FormErrors::of(ask.value());
    // Every second while a request waits for answers, every five otherwise.
    let tick = RwSignal::new(0u32);
    let fast = RwSignal::new(false);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let beat = Memo::new(move |_| {
        let t = tick.get();
        if fast.get() {
            t
        } else {
            t / 5
        }
    });
    let asked = successes(ask.value());
    let view_of = Resource::new(
        move || (tenant.get(), beat.get(), asked.get()),
        |(tenant, _, _)| key_instances(tenant),
    );
    // Follow a request closely while some instance has yet to answer it.
    Effect::new(move |_| {
        let waiting = view_of
            .get()
            .and_then(Result::ok)
            .and_then(|shown| shown.latest)
            .is_some_and(|r| {
                !r.waiting().is_empty()
                    && (r.now - r.requested_at).whole_seconds() <= ANSWER_WITHIN_SECS
            });
        fast.set(waiting);
    });
    let dispatch = move |kind: InstanceRequestKind| {
        move |_| {
            fast.set(true);
            ask.dispatch(AskInstances {
                tenant: tenant.get_untracked(),
                kind: kind.as_str().to_owned(),
            });
        }
    };
    let refresh = dispatch(InstanceRequestKind::Refresh);
    let verify = dispatch(InstanceRequestKind::Verify);
    view! {
        <section class="mt-8 max-w-6xl" aria-labelledby="instances-heading">
            <h2 id="instances-heading" class="text-lg font-semibold">"Instances"</h2>
            <p class="mt-1 max-w-prose text-sm text-slate-600">
                "Every running instance of the server and the key epoch it holds. Refresh makes every instance reload its keys now; Verify checks on each one that tokens of the keys no longer trusted are refused and the active key's accepted. Requests and answers are recorded in the audit log."
            </p>
            <Show when=move || can.get()>
                <div class="mt-3 flex gap-2">
                    <button type="button" class="btn" data-testid="refresh-instances" on:click=refresh disabled=move || ask.pending().get()>"Refresh on all instances"</button>
                    <button type="button" class="btn" data-testid="verify-instances" on:click=verify disabled=move || ask.pending().get()>"Verify on all instances"</button>
                </div>
            </Show>
            <FormFeedback error=errors.other() />
            <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match loaded(view_of).await {
                        Ok(shown) => view! { <InstancesShown shown /> }.into_any(),
                        Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
    .into_any()
}

#[component]
fn InstancesShown(shown: InstancesView) -> impl IntoView {
    let InstancesView {
        database_epoch,
        instances,
        latest,
        now,
    } = shown;
    view! {
        <DataTable caption="Running instances" testid="instances" class="mt-4"
            rows=instances.len()
            empty=("No instance is live", "An instance lists itself once it listens for changes, and every 5 s after; none has in the last 20 s.")
            columns=vec![Col::new("Instance"), Col::new("Host"), Col::new("Version"), Col::new("Started (UTC)"), Col::new("Last seen"), Col::new("Key epoch")]>
            {instances.into_iter().map(|i| {
                let epoch = match (i.key_epoch == database_epoch, i.listening) {
                    (_, false) => format!("{}: NOT LISTENING for changes (it reloads by its 5 s poll; requests do not reach it)", i.key_epoch),
                    (true, true) => format!("{} (current)", i.key_epoch),
                    (false, true) => format!("{} (the database is at {database_epoch})", i.key_epoch),
                };
                view! {
                    <tr data-instance=i.id.clone()>
                        <td class="font-mono text-xs">{i.id.chars().take(8).collect::<String>()}</td>
                        <td>{i.host}</td>
                        <td>{i.version}</td>
                        <td>{utc_seconds(i.started_at)}</td>
                        <td>{ago(i.last_seen, now)}</td>
                        <td data-testid="instance-epoch">{epoch}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
        {latest.map(|request| view! { <RequestShown request /> })}
    }
    .into_any()
}

#[component]
fn RequestShown(request: InstanceRequest) -> impl IntoView {
    let waiting: Vec<super::InstanceRow> = request.waiting().into_iter().cloned().collect();
    let late = (request.now - request.requested_at).whole_seconds() > ANSWER_WITHIN_SECS;
    let answered = request.acks.len();
    let expected = request.expected.len();
    let what = match request.kind {
        InstanceRequestKind::Refresh => "Refresh",
        InstanceRequestKind::Verify => "Verification",
    };
    let verdict = match request.kind {
        InstanceRequestKind::Verify if waiting.is_empty() && answered > 0 => {
            if request.acks.iter().all(|a| a.passed == Some(true)) {
                " Every instance passed."
            } else {
                " Some instance FAILED: see below."
            }
        }
        _ => "",
    };
    let summary = format!(
        "{what} requested by {} at {} UTC (key epoch {}): {answered} of {expected} instance(s) answered.{}{verdict}",
        request.requested_by,
        utc_seconds(request.requested_at),
        request.epoch,
        match (waiting.is_empty(), late) {
            (true, _) => "",
            (false, false) => " Waiting for the others…",
            (false, true) => " The others did not answer within 15 s: they may have stopped, or lost their connection to the database.",
        },
    );
    let requested_at = request.requested_at;
    let kind = request.kind;
    view! {
        <div class="mt-4 rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" data-testid="instance-request" data-kind=kind.as_str()>
            <p role="status" class="text-sm" data-testid="instance-request-summary">{summary}</p>
            <ul class="mt-2 space-y-2 text-sm">
                {request.acks.into_iter().map(|ack| {
                    let after_ms = (ack.acked_at - requested_at).whole_milliseconds().max(0);
                    let result = match ack.passed {
                        Some(true) => "passed",
                        Some(false) => "FAILED",
                        None => "refreshed",
                    };
                    let badge = if ack.passed == Some(false) { "badge badge-error" } else { "badge badge-success" };
                    view! {
                        <li data-testid="instance-ack" data-passed=ack.passed.map(|p| p.to_string()).unwrap_or_default()>
                            <span class=badge>{result}</span>
                            <span class="ml-2 font-mono text-xs">{ack.instance_id.chars().take(8).collect::<String>()}</span>
                            <span>{format!(" on {}: key epoch {}, answered at {} UTC ({after_ms} ms after the request)", ack.host, ack.epoch, utc_seconds(ack.acked_at))}</span>
                            {(!ack.probes.is_empty()).then(|| view! {
                                <ul class="mt-1 list-disc pl-6 text-xs" aria-label="Probes">
                                    {ack.probes.into_iter().map(|p| {
                                        let mark = if p.passed { "ok" } else { "FAIL" };
                                        let expected = if p.expect_accepted { "accepted" } else { "refused" };
                                        view! {
                                            <li data-testid="probe" data-passed=p.passed.to_string()>
                                                <span class="font-medium">{mark}</span>
                                                <span class="font-mono">{format!(" {} ", p.kid)}</span>
                                                <span>{format!("({}): expected {expected}, got {}. {}", p.state, p.outcome, p.note)}</span>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            })}
                        </li>
                    }
                }).collect_view()}
                {waiting.into_iter().map(|i| view! {
                    <li data-testid="instance-waiting">
                        <span class="badge badge-deny">{if late { "no answer" } else { "waiting" }}</span>
                        <span class="ml-2 font-mono text-xs">{i.id.chars().take(8).collect::<String>()}</span>
                        <span>{format!(" on {}", i.host)}</span>
                    </li>
                }).collect_view()}
            </ul>
        </div>
    }
    .into_any()
}
