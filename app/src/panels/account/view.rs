//! `/account/password`: choose one's own password (required after a handed-over one).

use super::api::ChangePassword;
use crate::auth::password_policy::{MAX_LEN, MIN_LEN};
use crate::components::form::{Field, FormErrors, FormFeedback};
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
