//! `/account/password`: choose one's own password (required after a handed-over one).

use super::api::ChangePassword;
use crate::auth::password_policy::{MAX_LEN, MIN_LEN};
use crate::components::feedback::{field_message, form_message};
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
    let error = move || action.value().get().and_then(Result::err);
    let field = move |name: &'static str| move || field_message(error(), name);
    let other = move || form_message(error());
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
                <div>
                    <label for="current-password" class="block text-sm font-medium">"Current password"</label>
                    <input id="current-password" name="current" type="password" autocomplete="current-password"
                        required class="input mt-1 w-full" aria-describedby="current-error" />
                    <p id="current-error" class="field-error">{field("current")}</p>
                </div>
                <div>
                    <label for="new-password" class="block text-sm font-medium">"New password"</label>
                    <input id="new-password" name="new" type="password" autocomplete="new-password"
                        required minlength=MIN_LEN maxlength=MAX_LEN
                        class="input mt-1 w-full" aria-describedby="new-hint new-error" />
                    <p id="new-hint" class="mt-1 text-xs text-slate-600">{hint}</p>
                    <p id="new-error" class="field-error">{field("new")}</p>
                </div>
                <div>
                    <label for="confirm-password" class="block text-sm font-medium">"New password again"</label>
                    <input id="confirm-password" name="confirm" type="password" autocomplete="new-password"
                        required class="input mt-1 w-full" aria-describedby="confirm-error" />
                    <p id="confirm-error" class="field-error">{field("confirm")}</p>
                </div>
                <Show when=move || other().is_some()>
                    <p role="alert" class="rounded-md bg-red-50 p-3 text-sm text-red-800">{other}</p>
                </Show>
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Changing…" } else { "Change password" }}
                </button>
            </ActionForm>
        </section>
    }
    .into_any()
}
