//! Error and empty-state blocks, so every panel reports problems the same way.

use crate::error::AppError;
use leptos::prelude::*;

/// A readable block for an error: what happened and, for internal errors, the reference id.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    let title = match &error {
        AppError::NotFound { .. } => "Not found",
        AppError::Forbidden => "Not allowed",
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

/// The message to show beside `field`, when `error` is about that field.
pub fn field_message(error: Option<AppError>, field: &str) -> Option<String> {
    error.and_then(|e| e.field_message(field).map(str::to_owned))
}

/// The message to show above a form: any error that is not about one field.
pub fn form_message(error: Option<AppError>) -> Option<String> {
    error
        .filter(|e| !matches!(e, AppError::Validation { .. }))
        .map(|e| e.to_string())
}

/// The badge class for an audit outcome (`success`, `deny`, `error`).
pub fn outcome_badge(outcome: &str) -> &'static str {
    match outcome {
        "success" => "badge badge-success",
        "deny" => "badge badge-deny",
        _ => "badge badge-error",
    }
}
