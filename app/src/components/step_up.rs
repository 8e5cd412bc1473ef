//! Step-up: when a dangerous action answers `StepUpRequired`, the page asks for the
//! person's passkey or a code from their authenticator app, steps the session up, and sends
//! the same request again, once, with what was typed for it. The server decides which
//! actions need it; this only asks.

use super::form::{Field, FormErrors};
use crate::auth::api::StepUp as StepUpAction;
use crate::error::AppError;
use leptos::html;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The prompt, shown while an action's last answer is `StepUpRequired`; after a good code
/// it calls `retry`, which sends the action's request again. Give every action that may
/// need a step-up one (a [`super::form::DangerousAction`] has its own); for an action sent
/// by an `ActionForm`, [`redispatch`] is the `retry`.
#[component]
pub fn StepUp(
    /// The action's errors.
    errors: FormErrors,
    /// Sends the request that asked for the step-up again.
    retry: Callback<()>,
    /// Prefix of the prompt's ids, unique on the page.
    #[prop(into, default = "step-up".into())]
    id: String,
) -> impl IntoView {
    use super::passkey::{Fetched, PasskeyButton};
    use crate::auth::api::{start_passkey_step_up, StepUpWithPasskey};
    let needed =
        Signal::derive(move || matches!(errors.error().get(), Some(AppError::StepUpRequired)));
    let action = ServerAction::<StepUpAction>::new();
    let passkey = ServerAction::<StepUpWithPasskey>::new();
    let passkey_errors = FormErrors::of(passkey.value());
    // Asked for only while the prompt shows, and again after each refused answer (a
    // challenge is used once): `Ok(None)` for a person without a passkey.
    let fetched = Fetched::new(start_passkey_step_up, Some(needed));
    Effect::new(move |_| {
        if matches!(passkey.value().get(), Some(Err(_))) {
            fetched.refetch.run(());
        }
    });
    Effect::new(move |_| {
        if matches!(passkey.value().get(), Some(Ok(()))) {
            passkey.value().set(None);
            retry.run(());
        }
    });
    let answer = Callback::new(move |(ceremony, credential): (String, String)| {
        passkey.dispatch(StepUpWithPasskey {
            ceremony,
            credential,
        });
    });
    let passkey_error = Signal::derive(move || {
        passkey_errors
            .field("passkey")
            .get()
            .or_else(|| passkey_errors.other().get())
    });
    let code = RwSignal::new(String::new());
    let input = NodeRef::<html::Input>::new();
    let step_errors = FormErrors::of(action.value());
    Effect::new(move |_| {
        if needed.get() {
            if let Some(input) = input.get() {
                let _ = input.focus();
            }
        }
    });
    // Stepped up: the answer is used once, and the request goes again as it was.
    Effect::new(move |_| {
        if matches!(action.value().get(), Some(Ok(()))) {
            action.value().set(None);
            code.set(String::new());
            retry.run(());
        }
    });
    let send = move || {
        action.dispatch(StepUpAction {
            code: crate::secret::SecretString::new(code.get_untracked()),
        });
    };
    let ids = StoredValue::new((format!("{id}-title"), format!("{id}-code")));
    let title_id = move || ids.with_value(|(title, _)| title.clone());
    let code_id = move || ids.with_value(|(_, code)| code.clone());
    view! {
        <Show when=move || needed.get()>
            <div role="group" aria-labelledby=title_id() data-testid="step-up"
                class="mt-3 max-w-xl rounded-md border border-amber-300 bg-amber-50 p-3 text-amber-950">
                <p id=title_id() class="font-medium">"Confirm it is you"</p>
                <p class="mt-1 text-sm">
                    "This action needs a second factor used in the last few minutes. Use your passkey, or enter the code your authenticator app shows: the action then goes ahead as you filled it in."
                </p>
                <PasskeyButton fetched answer checking=passkey.pending() id=format!("{id}-passkey") error=passkey_error />
                <Field id=code_id() label="Authenticator code" error=step_errors.field("code")>
                    <input id=code_id() node_ref=input type="text" inputmode="numeric"
                        autocomplete="one-time-code" maxlength="8" spellcheck="false"
                        class="input mt-1 w-40 font-mono tracking-widest"
                        aria-describedby=format!("{}-error", code_id())
                        prop:value=move || code.get()
                        on:input=move |ev| code.set(event_target_value(&ev))
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            // Enter confirms the code, not the form around the prompt.
                            if ev.key() == "Enter" {
                                ev.prevent_default();
                                send();
                            }
                        } />
                </Field>
                <Show when=move || step_errors.other().get().is_some()>
                    <p role="alert" class="mt-1 text-sm text-red-800">{move || step_errors.other().get()}</p>
                </Show>
                <button type="button" class="btn-primary mt-2" on:click=move |_| send()
                    disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Checking…" } else { "Confirm and continue" }}
                </button>
            </div>
        </Show>
    }
}

/// Sends `action`'s last request again: the [`StepUp`] `retry` of an action sent by an
/// `ActionForm` (the request is kept as it is sent, so nothing is read from the form,
/// which may have changed or gone since).
pub fn redispatch<S>(action: ServerAction<S>) -> Callback<()>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let last = StoredValue::new(None::<S>);
    Effect::new(move |_| {
        if let Some(input) = action.input().get() {
            last.set_value(Some(input));
        }
    });
    Callback::new(move |()| {
        if let Some(input) = last.get_value() {
            action.dispatch(input);
        }
    })
}
