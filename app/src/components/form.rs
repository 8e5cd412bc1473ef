//! The pieces every form is made of, so each field reads, announces its error and confirms
//! the same way in every panel:
//!
//! - [`FormErrors`]: what an action's last answer says, per field and for the rest;
//! - [`Field`]: a label, the control, and the field's error (`{id}-error`);
//! - [`ReasonField`]: the reason every change records in the audit log;
//! - [`TypedConfirm`]: "Type … to confirm";
//! - [`FormFeedback`]: the line under a form, an error (alert) or what was done (status);
//! - [`DangerousAction`]: DESIGN's rule for dangerous actions as one component: it cannot be
//!   shown without the preview of what it touches, the count, a reason and the typed word,
//!   and it asks for a step-up when the server wants one ([`super::step_up::StepUp`]).
//!
//! A field is either part of an `ActionForm` (give it a `name`) or bound to a signal the
//! form's own submit reads (give it a `value`).

use super::feedback::{field_message, form_message};
use crate::error::AppError;
use leptos::prelude::*;

/// An action's last error, read per field ([`FormErrors::field`]) and for what belongs to
/// no field ([`FormErrors::other`]).
#[derive(Clone, Copy)]
pub struct FormErrors(Signal<Option<AppError>>);

impl FormErrors {
    /// The errors of an action's answers (`action.value()`).
    pub fn of<T, S>(value: S) -> Self
    where
        T: Clone + Send + Sync + 'static,
        S: Get<Value = Option<Result<T, AppError>>> + Copy + Send + Sync + 'static,
    {
        Self(Signal::derive(move || value.get().and_then(Result::err)))
    }

    /// The last error, whatever it is about.
    pub fn error(self) -> Signal<Option<AppError>> {
        self.0
    }

    /// The message for `field`, when the last error is about it.
    pub fn field(self, field: &'static str) -> Signal<Option<String>> {
        Signal::derive(move || field_message(self.0.get(), field))
    }

    /// The message for the form as a whole: any error not about one field (a request for
    /// step-up is the [`super::step_up::StepUp`] prompt's, not a message).
    pub fn other(self) -> Signal<Option<String>> {
        Signal::derive(move || {
            form_message(
                self.0
                    .get()
                    .filter(|e| !matches!(e, AppError::StepUpRequired)),
            )
        })
    }
}

/// The id of the element holding `id`'s error message.
fn error_id(id: &str) -> String {
    format!("{id}-error")
}

/// Keeps what is typed in `value`, for a form that submits itself (nothing for a field of
/// an `ActionForm`, which reads its inputs by name).
fn typed_into(value: Option<RwSignal<String>>) -> impl Fn(leptos::ev::Event) {
    move |ev| {
        if let Some(value) = value {
            value.set(event_target_value(&ev));
        }
    }
}

/// A labelled control with its error beneath it. The control (the children) should name
/// `{id}-error` in its `aria-describedby`, so the error is read with it.
#[component]
pub fn Field(
    /// The control's id.
    #[prop(into)]
    id: String,
    /// What the field is.
    label: &'static str,
    /// This field's message, if the last answer has one.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// The control.
    children: Children,
) -> impl IntoView {
    view! {
        <div>
            <label for=id.clone() class="block text-sm font-medium">{label}</label>
            {children()}
            <p id=error_id(&id) class="field-error">{move || error.get()}</p>
        </div>
    }
}

/// The reason a change records in the audit log.
#[component]
pub fn ReasonField(
    /// The textarea's id.
    #[prop(into)]
    id: String,
    /// This field's message, if the last answer has one.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// For an `ActionForm`: the field's name (`reason`).
    #[prop(optional)]
    name: Option<&'static str>,
    /// For a form that submits itself: the signal holding the text.
    #[prop(optional)]
    value: Option<RwSignal<String>>,
    /// The label, when it is not "Reason".
    #[prop(default = "Reason")]
    label: &'static str,
) -> impl IntoView {
    view! {
        <Field id=id.clone() label error>
            <textarea id=id.clone() name=name rows="2" class="input mt-1 w-full max-w-xl"
                aria-describedby=error_id(&id)
                aria-invalid=move || error.get().map(|_| "true")
                prop:value=move || value.map(|v| v.get()).unwrap_or_default()
                on:input=typed_into(value)></textarea>
        </Field>
    }
}

/// "Type `word` to confirm": what a person types before an action that removes a
/// protection or cannot be undone.
#[component]
pub fn TypedConfirm(
    /// The input's id.
    #[prop(into)]
    id: String,
    /// What must be typed.
    #[prop(into)]
    word: Signal<String>,
    /// This field's message, if the last answer has one.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// For an `ActionForm`: the field's name (`confirmation`).
    #[prop(optional)]
    name: Option<&'static str>,
    /// For a form that submits itself: the signal holding the text.
    #[prop(optional)]
    value: Option<RwSignal<String>>,
) -> impl IntoView {
    view! {
        <div>
            <label for=id.clone() class="block text-sm font-medium">
                "Type " <span class="font-mono">{move || word.get()}</span> " to confirm"
            </label>
            <input id=id.clone() name=name type="text" autocomplete="off" class="input mt-1 w-72"
                aria-describedby=error_id(&id)
                aria-invalid=move || error.get().map(|_| "true")
                prop:value=move || value.map(|v| v.get()).unwrap_or_default()
                on:input=typed_into(value) />
            <p id=error_id(&id) class="field-error">{move || error.get()}</p>
        </div>
    }
}

/// The line under a form: what went wrong that is about no field (an alert), or what was
/// done (a status).
#[component]
pub fn FormFeedback(
    /// The form-level error, if any.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// What the last answer did, if it succeeded.
    #[prop(into, optional)]
    done: Option<Signal<Option<String>>>,
) -> impl IntoView {
    let done = done.unwrap_or_else(|| Signal::derive(|| None));
    view! {
        <Show when=move || error.get().is_some()>
            <p role="alert" class="mt-2 text-sm text-red-800">{move || error.get()}</p>
        </Show>
        <Show when=move || done.get().is_some()>
            <p role="status" class="mt-2 text-sm text-emerald-800">{move || done.get()}</p>
        </Show>
    }
}

/// A dangerous action's form (DESIGN: a reason, a typed confirmation, and a preview of how
/// many objects it touches), shown once its preview has loaded. The submit carries the
/// previewed count, so the server refuses when more would be touched now than were shown.
#[component]
pub fn DangerousAction(
    /// Prefix of the fields' ids: `{id}-reason`, `{id}-confirm`.
    id: &'static str,
    /// How many objects the action touches, as previewed.
    count: i64,
    /// What the action takes, as previewed: shown above the fields.
    #[prop(into)]
    preview: ViewFn,
    /// What must be typed to confirm.
    confirm_with: String,
    /// The button: what is done, with the count ("Revoke 3 token(s)").
    button: String,
    /// The reason typed.
    reason: RwSignal<String>,
    /// The confirmation typed.
    confirmation: RwSignal<String>,
    /// The action's errors, for the fields.
    errors: FormErrors,
    /// Whether the action is running.
    #[prop(into)]
    pending: Signal<bool>,
    /// Dispatches the action with the previewed count.
    on_submit: Callback<i64>,
) -> impl IntoView {
    let (reason_id, confirm_id) = (format!("{id}-reason"), format!("{id}-confirm"));
    // The prompt's ids must be unique on the page: one per dangerous form.
    let step_up_id = format!("{id}-step-up");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        on_submit.run(count);
    };
    view! {
        <form class="mt-3 space-y-3" novalidate on:submit=submit>
            {preview.run()}
            <ReasonField id=reason_id value=reason error=errors.field("reason") />
            <TypedConfirm id=confirm_id word=confirm_with value=confirmation error=errors.field("confirmation") />
            <super::step_up::StepUp errors retry=Callback::new(move |()| on_submit.run(count)) id=step_up_id />
            <button type="submit" class="btn-danger" disabled=move || pending.get()>{button}</button>
        </form>
    }
}

/// How many of an action's answers were successes. A resource keyed on it loads again
/// after a change and not after a refusal: reloading then would redraw the form below it
/// and lose what was typed, and the preview a dangerous action was confirmed against.
pub fn successes<T, S>(value: S) -> ReadSignal<u32>
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Copy + Send + Sync + 'static,
{
    let count = RwSignal::new(0u32);
    Effect::new(move |_| {
        if matches!(value.get(), Some(Ok(_))) {
            count.update(|n| *n += 1);
        }
    });
    count.read_only()
}
