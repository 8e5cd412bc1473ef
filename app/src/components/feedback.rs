//! Error and empty-state blocks, so every panel reports problems the same way.

use crate::domain::audit::Outcome;
use crate::error::AppError;
use leptos::prelude::*;

/// A readable block for an error: what happened and, for internal errors, the reference id.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let title = match &error {
        AppError::NotFound { .. } => "Not found",
        AppError::Forbidden => "Not allowed",
        AppError::PasswordChangeRequired => "Choose your own password first",
        AppError::Unauthenticated => "Signed out",
        AppError::Internal { .. } => "Something went wrong",
        _ => "That did not work",
    };
    view! {
        <div role="alert" class="rounded-md border border-red-200 bg-red-50 p-4 text-red-900">
            <p class="font-semibold">{title}</p>
            <p class="mt-1 text-sm">{error.to_string()}</p>
        </div>
    }
}

/// A calm, explanatory block for "nothing here yet".
#[component]
pub fn EmptyState(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="rounded-lg border border-dashed border-slate-300 bg-white p-8 text-center">
            <p class="font-medium text-slate-800">{title}</p>
            <div class="mx-auto mt-2 max-w-prose text-sm text-slate-600">{children()}</div>
        </div>
    }
}

/// The one time a secret (a token, a client key) is on screen, with a copy button.
#[component]
pub fn RevealSecret(heading: String, secret: String, testid: &'static str) -> impl IntoView {
    let copied = RwSignal::new(false);
    let text = secret.clone();
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clipboard = window().navigator().clipboard();
            let _ = clipboard.write_text(&text);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <div role="status" class="mt-4 rounded-md border border-emerald-200 bg-emerald-50 p-4 text-emerald-950">
            <p class="font-medium">{heading}</p>
            <p class="mt-1 text-sm">"Copy it now: it is shown only this once and cannot be recovered. Store it in the integration's secret store."</p>
            <div class="mt-2 flex items-center gap-2">
                <code data-testid=testid class="block select-all break-all rounded bg-white px-2 py-1 font-mono text-sm">
                    {secret}
                </code>
                <button type="button" class="btn" on:click=copy>
                    {move || if copied.get() { "Copied" } else { "Copy" }}
                </button>
            </div>
        </div>
    }
}

/// The message to show beside `field`, when `error` is about that field.
pub fn field_message(error: Option<AppError>, field: &str) -> Option<String> {
    error.and_then(|e| e.field_message(field).map(str::to_owned))
}

/// The message to show above a form: any error that is not about one field.
pub fn form_message(error: Option<AppError>) -> Option<String> {
    error
        .filter(|e| !e.is_about_a_field())
        .map(|e| e.to_string())
}

/// The badge class for a token's or client's status (`active`, `revoked`, anything else:
/// `expired`, `suspended`).
pub fn status_badge(status: &str) -> &'static str {
    match status {
        "active" => "badge badge-success",
        "revoked" => "badge badge-error",
        _ => "badge badge-deny",
    }
}

/// The badge class for an audit outcome.
pub fn outcome_badge(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "badge badge-success",
        Outcome::Deny => "badge badge-deny",
        Outcome::Error => "badge badge-error",
    }
}
