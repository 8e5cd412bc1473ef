//! The sign-in page and the signed-in person's corner of the top bar.

use super::api::{SignIn, SignOut, VerifySecondFactor};
use super::StaffIdentity;
use crate::components::form::{Field, FormErrors, FormFeedback};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// `/sign-in`: email and password. Works as a plain form before the WebAssembly loads.
#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let errors = FormErrors::of(action.value());

    view! {
        <Title text="Sign in" />
        <section class="mx-auto mt-16 max-w-sm rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h1 class="text-xl font-semibold">"Sign in to staff-console"</h1>
            <ActionForm action attr:class="mt-4 space-y-4" attr:novalidate="true">
                <input type="hidden" name="next" value=next />
                <Field id="email" label="Email" error=errors.field("email")>
                    <input id="email" name="email" type="email" autocomplete="username" required
                        class="input mt-1 w-full"
                        aria-describedby="email-error" />
                </Field>
                <Field id="password" label="Password" error=errors.field("password")>
                    <input id="password" name="password" type="password" autocomplete="current-password" required
                        class="input mt-1 w-full"
                        aria-describedby="password-error" />
                </Field>
                <FormFeedback error=errors.other() />
                <button type="submit" class="btn-primary w-full" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </section>
    }
    .into_any()
}

/// `/sign-in/verify`: the second step, a code from the authenticator app or a recovery
/// code. Works as a plain form before the WebAssembly loads. The server remembers (for five
/// minutes) that this browser gave the right password; without that, it says to start
/// again.
#[component]
pub fn SecondFactorPage() -> impl IntoView {
    use super::api::{start_passkey_sign_in, VerifyPasskey};
    use crate::components::passkey::{Fetched, PasskeyButton};
    let action = ServerAction::<VerifySecondFactor>::new();
    let passkey = ServerAction::<VerifyPasskey>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_default();
    let errors = FormErrors::of(action.value());
    let passkey_errors = FormErrors::of(passkey.value());
    // Fetched in the browser (passkeys need it anyway), and again after each refused
    // answer: a challenge is used once.
    let fetched = Fetched::new(start_passkey_sign_in, None);
    Effect::new(move |_| {
        if matches!(passkey.value().get(), Some(Err(_))) {
            fetched.refetch.run(());
        }
    });
    let answer = Callback::new(move |(ceremony, credential): (String, String)| {
        passkey.dispatch(VerifyPasskey {
            ceremony,
            credential,
            next: Some(query.read_untracked().get("next").unwrap_or_default()),
        });
    });
    let passkey_error = Signal::derive(move || {
        passkey_errors
            .field("passkey")
            .get()
            .or_else(|| passkey_errors.other().get())
    });
    let expired = move || {
        [action.value().get(), passkey.value().get()]
            .into_iter()
            .any(|v| matches!(v, Some(Err(crate::error::AppError::SignInExpired))))
            || matches!(
                fetched.error.get(),
                Some(crate::error::AppError::SignInExpired)
            )
    };

    view! {
        <Title text="Second factor" />
        <section class="mx-auto mt-16 max-w-sm rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
            <h1 class="text-xl font-semibold">"Confirm it is you"</h1>
            <PasskeyButton fetched answer checking=passkey.pending() id="use-passkey" error=passkey_error />
            <p class="mt-3 text-sm text-slate-600">
                "Or enter the 6-digit code your authenticator app shows for staff-console. Lost both? Enter one of your recovery codes instead."
            </p>
            <ActionForm action attr:class="mt-4 space-y-4" attr:novalidate="true">
                <input type="hidden" name="next" value=next />
                <Field id="code" label="Code" error=errors.field("code")>
                    <input id="code" name="code" type="text" inputmode="text" autocomplete="one-time-code"
                        required autofocus maxlength="16" spellcheck="false"
                        class="input mt-1 w-full font-mono tracking-widest"
                        aria-describedby="code-error" />
                </Field>
                <FormFeedback error=errors.other() />
                <Show when=expired>
                    <p><a class="link" href="/sign-in">"Sign in again"</a></p>
                </Show>
                <button type="submit" class="btn-primary w-full" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Checking…" } else { "Continue" }}
                </button>
            </ActionForm>
            <p class="mt-4 text-xs text-slate-500">
                "No passkey, no app and no recovery codes left? An admin can reset your second factors."
            </p>
        </section>
    }
    .into_any()
}

/// The top bar's right side: who is signed in, their role, and a sign-out button.
#[component]
pub fn UserMenu(staff: StaffIdentity) -> impl IntoView {
    let action = ServerAction::<SignOut>::new();
    view! {
        <div class="ml-auto flex items-center gap-3 text-sm">
            <span data-testid="signed-in-as">
                <span class="font-medium">{staff.display_name.clone()}</span>
                <span class="ml-2 rounded bg-slate-700 px-1.5 py-0.5 text-xs text-slate-200">{staff.role.label()}</span>
            </span>
            <a href="/account/security" class="rounded-md px-2 py-1 hover:bg-slate-800">"Security"</a>
            <a href="/account/sessions" class="rounded-md px-2 py-1 hover:bg-slate-800">"Sessions"</a>
            <a href="/account/admin-tokens" class="rounded-md px-2 py-1 hover:bg-slate-800">"API tokens"</a>
            <a href="/account/password" class="rounded-md px-2 py-1 hover:bg-slate-800">"Change password"</a>
            <ActionForm action>
                <button type="submit" class="rounded-md border border-slate-600 px-2 py-1 hover:bg-slate-800">
                    "Sign out"
                </button>
            </ActionForm>
        </div>
    }
    .into_any()
}

/// Whether the signed-in person may do what `permission` guards, for showing or hiding
/// controls. The server checks again: this is never the check.
pub fn allowed(permission: super::Permission) -> Signal<bool> {
    // Outside the console layout (or on a view outliving its page) there is nobody to ask:
    // offer nothing rather than panic.
    let staff = use_context::<crate::components::context::StaffResource>().map(|s| s.0);
    Signal::derive(move || {
        staff
            .and_then(|staff| staff.try_get().flatten())
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|s| s.can(permission))
    })
}
