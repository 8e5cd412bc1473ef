//! `/account/password`: choose one's own password (required after a handed-over one);
//! `/account/security`: second factors (required at the first sign-in where they are).

use super::api::ChangePassword;
use crate::auth::password_policy::{MAX_LEN, MIN_LEN};
use crate::components::form::{Field, FormErrors, FormFeedback};
use crate::components::step_up::{redispatch, StepUp};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The password form. Works as a plain form before the WebAssembly loads; on success the
/// server sends the person on to `next` (or home), signed in under a new session id, with
/// every other session of theirs ended.
#[component]
pub fn AccountPasswordPage() -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let staff = use_context::<crate::components::context::StaffResource>().map(|s| s.0);
    let required = move || {
        staff
            .and_then(|staff| staff.get())
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|s| s.must_change_password)
    };
    let errors = FormErrors::of(action.value());
    let field = move |f: &'static str| errors.field(f);
    let hint = format!(
        "{MIN_LEN} to {MAX_LEN} characters. Not a common password, and not containing your email address. A few unrelated words make a good one."
    );

    view! {
        <Title text="Change password" />
        <h1 class="text-2xl font-semibold">
            {move || if required() { "Choose your own password" } else { "Change password" }}
        </h1>
        <Show when=required>
            <p role="status" class="mt-2 max-w-prose rounded-md bg-amber-50 p-3 text-sm text-amber-900" data-testid="password-required">
                "You signed in with a password someone else chose or saw. Choose one only you know before you continue: nothing else in the console opens until you do."
            </p>
        </Show>
        <p class="mt-2 max-w-prose text-slate-600">
            "Changing your password signs you out everywhere else: other browsers and devices need the new password."
        </p>
        <section class="mt-4 max-w-md rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200">
            <ActionForm action attr:class="space-y-4" attr:novalidate="true">
                <input type="hidden" name="next" value=next />
                <Field id="current-password" label="Current password" error=field("current")>
                    <input id="current-password" name="current" type="password" autocomplete="current-password"
                        required class="input mt-1 w-full" aria-describedby="current-password-error" />
                </Field>
                <Field id="new-password" label="New password" error=field("new")>
                    <input id="new-password" name="new" type="password" autocomplete="new-password"
                        required minlength=MIN_LEN maxlength=MAX_LEN
                        class="input mt-1 w-full" aria-describedby="new-hint new-password-error" />
                    <p id="new-hint" class="mt-1 text-xs text-slate-600">{hint}</p>
                </Field>
                <Field id="confirm-password" label="New password again" error=field("confirm")>
                    <input id="confirm-password" name="confirm" type="password" autocomplete="new-password"
                        required class="input mt-1 w-full" aria-describedby="confirm-password-error" />
                </Field>
                <FormFeedback error=errors.other() />
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Changing…" } else { "Change password" }}
                </button>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// `/account/security`: the person's second factors. A first sign-in where one is required
/// is kept here until a passkey or an authenticator app is set up; afterwards it is where
/// passkeys, the app and the recovery codes are managed.
#[component]
pub fn AccountSecurityPage() -> impl IntoView {
    use super::api::{
        security, ConfirmTotpEnrolment, FinishPasskeyRegistration, NewRecoveryCodes, RemovePasskey,
        RemoveTotp, StartPasskeyRegistration, StartTotpEnrolment,
    };
    use crate::components::feedback::ErrorNotice;
    use crate::components::form::successes;
    use crate::components::loaded::loaded;
    use crate::components::time::utc_minutes;

    let query = use_query_map();
    let next = Memo::new(move |_| crate::auth::api::safe_next(query.read().get("next").as_deref()));
    let recovery_left = move || query.read().get("recovery_codes_left");
    let start = ServerAction::<StartTotpEnrolment>::new();
    let confirm = ServerAction::<ConfirmTotpEnrolment>::new();
    let renew = ServerAction::<NewRecoveryCodes>::new();
    let add_key = ServerAction::<StartPasskeyRegistration>::new();
    let finish_key = ServerAction::<FinishPasskeyRegistration>::new();
    let remove_key = ServerAction::<RemovePasskey>::new();
    let remove_app = ServerAction::<RemoveTotp>::new();
    let (confirmed_n, finished_n, removed_key_n, removed_app_n) = (
        successes(confirm.value()),
        successes(finish_key.value()),
        successes(remove_key.value()),
        successes(remove_app.value()),
    );
    let data = Resource::new(
        move || {
            (
                confirmed_n.get(),
                finished_n.get(),
                removed_key_n.get(),
                removed_app_n.get(),
            )
        },
        |_| security(),
    );
    let staff = use_context::<crate::components::context::StaffResource>().map(|s| s.0);
    let must_enrol = move || {
        staff
            .and_then(|staff| staff.get())
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|s| s.must_enrol_factor)
    };
    // Views switch on these once, never on each answer: a branch rebuilt while the form
    // in it still handles its answer would dispose what that form is using. The first
    // factor (app or passkey) brings the recovery codes; a later one brings none.
    let first_codes = Memo::new(move |_| {
        [
            confirm.value().get().and_then(Result::ok),
            finish_key.value().get().and_then(Result::ok),
        ]
        .into_iter()
        .flatten()
        .find(|codes| !codes.0.is_empty())
    });
    let renewed = Memo::new(move |_| renew.value().get().and_then(Result::ok));
    let confirm_errors = FormErrors::of(confirm.value());
    let renew_errors = FormErrors::of(renew.value());
    let renew_retry = redispatch(renew);
    let remove_app_errors = FormErrors::of(remove_app.value());
    let remove_app_retry = redispatch(remove_app);

    view! {
        <Title text="Security" />
        <h1 class="text-2xl font-semibold">"Security"</h1>
        <Show when=must_enrol>
            <p role="status" class="mt-2 max-w-prose rounded-md bg-amber-50 p-3 text-sm text-amber-900" data-testid="enrol-required">
                "Set up a second factor before you continue (a passkey, or an authenticator app): this console can turn off the agent API and revoke every token, so a password alone must not open it. Nothing else opens until you do."
            </p>
        </Show>
        {move || recovery_left().map(|left| view! {
            <p role="status" class="mt-2 max-w-prose rounded-md bg-amber-50 p-3 text-sm text-amber-900" data-testid="recovery-used">
                {format!("You signed in with a recovery code: {left} left. If your passkeys and phone are lost, ask an admin to reset your second factors, then set them up again; make new recovery codes below when few are left.")}
            </p>
        })}
        {move || first_codes.get().map(|codes| view! {
            <RecoveryCodesReveal codes=codes.0 />
            <p class="mt-4"><a class="btn-primary" href=next.get() rel="external" data-testid="enrol-continue">"I have saved them: continue"</a></p>
        })}
        <div class:hidden=move || first_codes.get().is_some()>
            <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match loaded(data).await {
                        Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                        Ok(sec) => {
                            let has_app = sec.factors.totp_added_at.is_some();
                            let has_factor = has_app || !sec.factors.passkeys.is_empty();
                            let left = sec.factors.recovery_codes_left;
                            view! {
                                <PasskeysSection keys=sec.factors.passkeys.clone() unavailable=sec.passkeys_unavailable.clone()
                                    add=add_key finish=finish_key remove=remove_key />
                                <section class="mt-6 max-w-2xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="totp-heading">
                                    <h2 id="totp-heading" class="font-semibold">"Authenticator app"</h2>
                                    {match sec.factors.totp_added_at {
                                        Some(added) => view! {
                                            <p class="mt-1 text-sm text-slate-700" data-testid="totp-status">
                                                // One text: two adjacent ones would hydrate as one.
                                                {format!(
                                                    "Set up {}{}",
                                                    utc_minutes(added),
                                                    sec.factors.totp_last_used_at.map(|at| format!(" · last used {}", utc_minutes(at))).unwrap_or_default()
                                                )}
                                            </p>
                                            <ActionForm action=remove_app attr:class="mt-3" attr:novalidate="true">
                                                <StepUp errors=remove_app_errors retry=remove_app_retry id="remove-app-step-up" />
                                                <p id="totp-error" role="alert" class="mt-1 text-sm text-red-800">{move || remove_app_errors.field("totp").get()}</p>
                                                <FormFeedback error=remove_app_errors.other() />
                                                <button type="submit" class="btn" disabled=move || remove_app.pending().get()>"Remove the authenticator app"</button>
                                            </ActionForm>
                                        }.into_any(),
                                        None => view! { <TotpSetUp start confirm errors=confirm_errors /> }.into_any(),
                                    }}
                                </section>
                                <section class="mt-6 max-w-2xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="recovery-heading">
                                    <h2 id="recovery-heading" class="font-semibold">"Recovery codes"</h2>
                                    <p class="mt-1 text-sm text-slate-700" data-testid="recovery-left">
                                        {move || format!(
                                            "{} unused. Each one signs you in once when your passkey and app are not at hand; they do not confirm dangerous actions.",
                                            renewed.get().map_or(left, |codes| codes.0.len() as i64)
                                        )}
                                    </p>
                                    <ActionForm action=renew attr:class=if has_factor { "mt-3" } else { "hidden" } attr:novalidate="true">
                                        <StepUp errors=renew_errors retry=renew_retry id="renew-step-up" />
                                        <FormFeedback error=renew_errors.other() />
                                        <button type="submit" class="btn" disabled=move || renew.pending().get()>"Make new recovery codes"</button>
                                    </ActionForm>
                                    {move || renewed.get().map(|codes| view! { <RecoveryCodesReveal codes=codes.0 /> })}
                                </section>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </div>
    }
    .into_any()
}

/// The person's passkeys: the list (name, added, last used, remove), and adding one by
/// name. Adding asks the server for the options (it checks the name first, and a step-up
/// beside another factor), has the browser make the passkey, and sends it back.
#[component]
fn PasskeysSection(
    keys: Vec<super::PasskeyInfo>,
    unavailable: Option<String>,
    add: ServerAction<super::api::StartPasskeyRegistration>,
    finish: ServerAction<super::api::FinishPasskeyRegistration>,
    remove: ServerAction<super::api::RemovePasskey>,
) -> impl IntoView {
    use super::api::{FinishPasskeyRegistration, StartPasskeyRegistration};
    use crate::components::passkey::{perform, Ceremony};
    use crate::components::time::utc_minutes;
    let name = RwSignal::new(String::new());
    let browser_error = RwSignal::new(None::<String>);
    let waiting = RwSignal::new(false);
    let add_errors = FormErrors::of(add.value());
    let finish_errors = FormErrors::of(finish.value());
    let remove_errors = FormErrors::of(remove.value());
    let add_retry = redispatch(add);
    let remove_retry = redispatch(remove);
    // The server's options arrived: the browser makes the passkey, then it goes back.
    Effect::new(move |_| {
        let Some(Ok(challenge)) = add.value().get() else {
            return;
        };
        add.value().set(None);
        waiting.set(true);
        browser_error.set(None);
        leptos::task::spawn_local(async move {
            let outcome = perform(Ceremony::Create, &challenge.options).await;
            // The page may have gone while the browser asked: then nothing is left to do.
            if waiting.try_set(false).is_some() {
                return;
            }
            match outcome {
                Ok(credential) => {
                    finish.dispatch(FinishPasskeyRegistration {
                        ceremony: challenge.ceremony,
                        credential,
                    });
                }
                Err(message) => browser_error.set(Some(message)),
            }
        });
    });
    let added = Signal::derive(move || match finish.value().get() {
        Some(Ok(codes)) if codes.0.is_empty() => Some("Passkey added.".to_owned()),
        _ => None,
    });
    let passkey_error = Signal::derive(move || {
        browser_error
            .get()
            .or_else(|| finish_errors.field("passkey").get())
            .or_else(|| finish_errors.other().get())
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        browser_error.set(None);
        add.dispatch(StartPasskeyRegistration {
            name: name.get_untracked(),
        });
    };
    let empty = keys.is_empty();
    view! {
        <section class="mt-6 max-w-2xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="passkeys-heading">
            <h2 id="passkeys-heading" class="font-semibold">"Passkeys"</h2>
            <p class="mt-1 text-sm text-slate-700">
                "A passkey is kept by this device, a security key or your password manager, and unlocked with your fingerprint, face or PIN. It cannot be phished: it answers only to this console's address."
            </p>
            {(!empty).then(|| view! {
                <ul class="mt-3 divide-y divide-slate-200" data-testid="passkeys">
                    {keys.into_iter().map(|key| {
                        let label = format!("Remove the passkey {}", key.name);
                        view! {
                            <li class="flex flex-wrap items-center gap-3 py-2">
                                <span class="font-medium">{key.name.clone()}</span>
                                <span class="text-sm text-slate-600">
                                    // One text: two adjacent ones would hydrate as one.
                                    {format!(
                                        "added {}{}",
                                        utc_minutes(key.created_at),
                                        key.last_used_at.map(|at| format!(" · last used {}", utc_minutes(at))).unwrap_or_default()
                                    )}
                                </span>
                                <ActionForm action=remove attr:class="ml-auto">
                                    <input type="hidden" name="passkey_id" value=key.id.to_string() />
                                    <button type="submit" class="btn" aria-label=label disabled=move || remove.pending().get()>"Remove"</button>
                                </ActionForm>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
            <StepUp errors=remove_errors retry=remove_retry id="remove-passkey-step-up" />
            <p id="remove-passkey-error" role="alert" class="mt-1 text-sm text-red-800">
                {move || remove_errors.field("passkey").get().or_else(|| remove_errors.other().get())}
            </p>
            {match unavailable {
                Some(why) => view! { <p class="mt-3 text-sm text-amber-900" data-testid="passkeys-unavailable">{why}</p> }.into_any(),
                None => view! {
                    <form class="mt-3 space-y-3" novalidate on:submit=submit>
                        <Field id="passkey-name" label="Name of the new passkey" error=add_errors.field("name")>
                            <input id="passkey-name" type="text" maxlength="120" autocomplete="off"
                                placeholder="Work laptop" class="input mt-1 w-64"
                                aria-describedby="passkey-name-error"
                                prop:value=move || name.get()
                                on:input=move |ev| name.set(event_target_value(&ev)) />
                        </Field>
                        <StepUp errors=add_errors retry=add_retry id="add-passkey-step-up" />
                        <p id="passkey-error" role="alert" class="text-sm text-red-800">{move || passkey_error.get()}</p>
                        <FormFeedback error=add_errors.other() done=added />
                        <button type="submit" class="btn-primary"
                            disabled=move || add.pending().get() || finish.pending().get() || waiting.get()>
                            {move || if waiting.get() { "Waiting for the passkey…" } else if finish.pending().get() { "Adding…" } else { "Add a passkey" }}
                        </button>
                    </form>
                }.into_any(),
            }}
        </section>
    }
    .into_any()
}

/// Setting up an authenticator app: a button, then the QR code, the secret in text and the
/// field for the first code.
#[component]
fn TotpSetUp(
    start: ServerAction<super::api::StartTotpEnrolment>,
    confirm: ServerAction<super::api::ConfirmTotpEnrolment>,
    errors: FormErrors,
) -> impl IntoView {
    let start_errors = FormErrors::of(start.value());
    // Switched on once (see the page): the set-up appears, the button goes.
    let enrolment = Memo::new(move |_| start.value().get().and_then(Result::ok));
    view! {
        <p class="mt-1 text-sm text-slate-700">
            "Use an app such as 1Password, Google Authenticator or Aegis. You will get ten recovery codes for when the phone is not at hand."
        </p>
        <ActionForm action=start attr:class=move || if enrolment.get().is_some() { "hidden" } else { "mt-3" }>
            <FormFeedback error=start_errors.other() />
            <button type="submit" class="btn-primary" disabled=move || start.pending().get()>"Set up an authenticator app"</button>
        </ActionForm>
        {move || enrolment.get().map(|enrolment| view! {
            <div class="mt-3 flex flex-wrap items-start gap-6">
                // Drawn by the server from the secret: no image service sees it.
                <div class="h-52 w-52 shrink-0" role="img" aria-label="QR code of the authenticator set-up" data-testid="totp-qr" inner_html=enrolment.qr_svg.clone()></div>
                <div class="min-w-0 flex-1">
                    <p class="text-sm">"Scan the code with the app, or type this secret into it:"</p>
                    <code data-testid="totp-secret" class="mt-1 block select-all break-all rounded bg-slate-100 px-2 py-1 font-mono text-sm">{enrolment.secret.clone()}</code>
                    <ActionForm action=confirm attr:class="mt-3 space-y-3" attr:novalidate="true">
                        <Field id="totp-code" label="Code from the app" error=errors.field("code")>
                            <input id="totp-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code"
                                maxlength="8" spellcheck="false" class="input mt-1 w-40 font-mono tracking-widest"
                                aria-describedby="totp-code-error" />
                        </Field>
                        <FormFeedback error=errors.other() />
                        <button type="submit" class="btn-primary" disabled=move || confirm.pending().get()>
                            {move || if confirm.pending().get() { "Checking…" } else { "Confirm" }}
                        </button>
                    </ActionForm>
                </div>
            </div>
        })}
    }
    .into_any()
}

/// A set of recovery codes, shown once.
#[component]
fn RecoveryCodesReveal(codes: Vec<String>) -> impl IntoView {
    view! {
        <div role="status" class="mt-4 max-w-2xl rounded-md border border-emerald-200 bg-emerald-50 p-4 text-emerald-950">
            <p class="font-medium">"Your recovery codes"</p>
            <p class="mt-1 text-sm">"Save them somewhere safe (a password manager). Each works once; they are shown only now, and any older ones no longer work."</p>
            <ul class="mt-2 grid grid-cols-2 gap-1 font-mono text-sm sm:grid-cols-5" data-testid="recovery-codes">
                {codes.into_iter().map(|code| view! { <li class="select-all">{code}</li> }).collect_view()}
            </ul>
        </div>
    }
}

/// `/account/sessions`: where the person is signed in; end any other session, or all.
#[component]
pub fn AccountSessionsPage() -> impl IntoView {
    use super::api::{my_sessions, EndMyOtherSessions, EndMySession};
    use crate::components::feedback::ErrorNotice;
    use crate::components::form::successes;
    use crate::components::loaded::loaded;
    use crate::components::sessions::SessionsTable;
    let end_one = ServerAction::<EndMySession>::new();
    let end_others = ServerAction::<EndMyOtherSessions>::new();
    let ended_one = successes(end_one.value());
    let ended_others = successes(end_others.value());
    let sessions = Resource::new(
        move || (ended_one.get(), ended_others.get()),
        |_| my_sessions(),
    );
    let one_errors = FormErrors::of(end_one.value());
    let others_errors = FormErrors::of(end_others.value());
    let done = Signal::derive(move || match end_others.value().get() {
        Some(Ok(n)) => Some(format!("{n} other session(s) ended.")),
        _ => None,
    });
    let action = Callback::new(move |s: crate::auth::StaffSession| {
        if s.current {
            view! { <span class="badge badge-success">"This session"</span> }.into_any()
        } else {
            let id = s.id.to_string();
            view! {
                <ActionForm action=end_one>
                    <input type="hidden" name="session_id" value=id />
                    <button type="submit" class="btn" aria-label=format!("End the session on {}", s.device)>"End"</button>
                </ActionForm>
            }
            .into_any()
        }
    });
    view! {
        <Title text="Your sessions" />
        <h1 class="text-2xl font-semibold">"Your sessions"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Where you are signed in. End a session you do not recognise, then change your password: ending it signs that browser out at its next request, on every server."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(sessions).await {
                    Ok(rows) => view! {
                        <SessionsTable rows whose=false caption="Your sessions" testid="my-sessions"
                            empty=("No sessions", "Signing in opens one.") action />
                    }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <FormFeedback error=one_errors.other() />
        <ActionForm action=end_others attr:class="mt-4">
            <button type="submit" class="btn-danger" disabled=move || end_others.pending().get()>"End all other sessions"</button>
        </ActionForm>
        <FormFeedback error=others_errors.other() done />
    }
    .into_any()
}

/// `/account/admin-tokens`: the person's admin API tokens for runbook automation. Minting
/// asks for a recent second factor and is refused during a freeze; the token is shown once.
#[component]
pub fn AdminTokensPage() -> impl IntoView {
    use super::api::{my_admin_tokens, MintAdminToken, RevokeAdminToken};
    use crate::components::feedback::{ErrorNotice, RevealSecret};
    use crate::components::form::{successes, Field, FormErrors, FormFeedback};
    use crate::components::loaded::loaded;
    use crate::components::step_up::StepUp;
    use crate::components::table::{Col, DataTable};
    use crate::components::time::utc_minutes;
    use crate::domain::admin::Scope;

    let mint = ServerAction::<MintAdminToken>::new();
    let revoke = ServerAction::<RevokeAdminToken>::new();
    let (minted_n, revoked_n) = (successes(mint.value()), successes(revoke.value()));
    let tokens = Resource::new(
        move || (minted_n.get(), revoked_n.get()),
        |_| my_admin_tokens(),
    );
    let name = RwSignal::new(String::new());
    let tenant = RwSignal::new(String::new());
    let days = RwSignal::new("30".to_owned());
    let scopes = RwSignal::new(Vec::<String>::new());
    let errors = FormErrors::of(mint.value());
    let dispatch = move || {
        mint.dispatch(MintAdminToken {
            name: name.get_untracked(),
            scopes: scopes.get_untracked(),
            tenant: tenant.get_untracked(),
            days: days.get_untracked(),
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        dispatch();
    };
    view! {
        <Title text="Admin API tokens" />
        <h1 class="text-2xl font-semibold">"Admin API tokens"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "For runbook automation: send one as Authorization: Bearer <token> (or the runbooks' x-admin-secret header) to /a/{tenant}/admin/…. A token acts as you, with your role as it is at each call, only within its scopes and its tenant, until it expires (90 days at most) or is revoked."
        </p>
        {move || match mint.value().get() {
            Some(Ok(minted)) => Some(view! {
                <div class="mt-4 max-w-3xl">
                    <RevealSecret heading=format!("Token {} (expires {} UTC)", minted.id, utc_minutes(minted.expires_at)) secret=minted.plaintext.clone() testid="admin-token-secret" />
                </div>
            }),
            _ => None,
        }}
        <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="mint-admin-heading">
            <h2 id="mint-admin-heading" class="font-semibold">"Mint a token"</h2>
            <form class="mt-3 space-y-3" novalidate on:submit=submit>
                <Field id="admin-token-name" label="Name (what will use it)" error=errors.field("name")>
                    <input id="admin-token-name" class="input" autocomplete="off" prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev)) />
                </Field>
                <Field id="admin-token-tenant" label="Tenant (its slug; empty for the platform, admins only)" error=errors.field("tenant")>
                    <input id="admin-token-tenant" class="input" autocomplete="off" prop:value=move || tenant.get()
                        on:input=move |ev| tenant.set(event_target_value(&ev)) />
                </Field>
                <fieldset>
                    <legend class="text-sm font-medium">"Scopes"</legend>
                    {Scope::ALL.into_iter().map(|scope| {
                        let wire = scope.as_str();
                        view! {
                            <label class="mt-1 flex items-center gap-2 text-sm font-mono">
                                <input type="checkbox" prop:checked=move || scopes.read().iter().any(|s| s == wire)
                                    on:change=move |ev| {
                                        let on = event_target_checked(&ev);
                                        scopes.update(|list| {
                                            list.retain(|s| s != wire);
                                            if on {
                                                list.push(wire.to_owned());
                                            }
                                        });
                                    } />
                                {wire}
                            </label>
                        }
                    }).collect_view()}
                    <p class="field-error">{move || errors.field("scopes").get()}</p>
                </fieldset>
                <Field id="admin-token-days" label="Expires in (days, 1 to 90)" error=errors.field("days")>
                    <input id="admin-token-days" class="input w-24" inputmode="numeric" prop:value=move || days.get()
                        on:input=move |ev| days.set(event_target_value(&ev)) />
                </Field>
                <StepUp errors retry=Callback::new(move |()| dispatch()) id="admin-token-step-up" />
                <button type="submit" class="btn-primary" disabled=move || mint.pending().get()>"Mint token"</button>
            </form>
            <FormFeedback error=errors.other() />
        </section>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(tokens).await {
                    Ok(rows) => view! {
                        <DataTable caption="Your tokens" testid="admin-tokens" class="mt-6"
                            rows=rows.len()
                            empty=("No tokens", "Mint one above for a runbook's script.")
                            columns=vec![Col::new("Name"), Col::new("Id"), Col::new("Scopes"), Col::new("Tenant"), Col::new("Expires (UTC)"), Col::new("Last used"), Col::new("State"), Col::new("")]>
                            {rows.into_iter().map(|t| {
                                let id = t.id.clone();
                                let live = t.state == "live";
                                view! {
                                    <tr data-admin-token=t.id.clone()>
                                        <td>{t.name}</td>
                                        <td class="font-mono text-xs">{t.id.clone()}</td>
                                        <td class="font-mono text-xs">{t.scopes.join(" ")}</td>
                                        <td>{t.tenant.unwrap_or_else(|| "platform".to_owned())}</td>
                                        <td>{utc_minutes(t.expires_at)}</td>
                                        <td>{match (t.last_used_at, t.last_used_ip) {
                                            (Some(at), ip) => format!("{} UTC {}", utc_minutes(at), ip.unwrap_or_default()),
                                            _ => "never".to_owned(),
                                        }}</td>
                                        <td>{t.state}</td>
                                        <td>{live.then(|| view! {
                                            <button type="button" class="link text-red-800"
                                                on:click=move |_| { revoke.dispatch(RevokeAdminToken { id: id.clone() }); }>"Revoke"</button>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </DataTable>
                    }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}
