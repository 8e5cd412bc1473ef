//! The pepper page: versions, and the staged and compromise rotations.

use super::api::{
    pepper_versions, preview_pepper_compromise, RotatePepper, RotatePepperCompromised,
};
use super::{CompromisePreview, PepperVersion, CONFIRM_COMPROMISE, CONFIRM_STAGED};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{
    successes, DangerousAction, Field, FormErrors, FormFeedback, ReasonField, TypedConfirm,
};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_minutes;
use crate::domain::status::PepperState;
use crate::error::AppError;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

/// `/pepper`: the token pepper, platform-wide.
#[component]
pub fn PepperPage() -> impl IntoView {
    let staged = ServerAction::<RotatePepper>::new();
    let compromise = ServerAction::<RotatePepperCompromised>::new();
    let staged_changes = successes(staged.value());
    let compromise_changes = successes(compromise.value());
    let versions = Resource::new(
        move || (staged_changes.get(), compromise_changes.get()),
        |_| pepper_versions(),
    );
    view! {
        <Title text="Token pepper" />
        <h1 class="text-2xl font-semibold">"Token pepper"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Every token is stored as an HMAC of its secret under a pepper, kept encrypted under the server's ENCRYPTION_KEY. Rotate it on a schedule (staged), or at once when it may have leaked (compromise: every token is revoked)."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(versions).await {
                    Ok(list) => view! { <VersionTable list=list.clone() /> <Rotations list staged compromise /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn VersionTable(list: Vec<PepperVersion>) -> impl IntoView {
    view! {
        <DataTable caption="Pepper versions" testid="pepper-versions" class="mt-6"
            rows=list.len()
            empty=("No pepper versions", "The server creates the first pepper when it starts; until then no token can be minted or checked.")
            columns=vec![Col::new("Version"), Col::new("State"), Col::new("Active tokens on it"), Col::new("Created (UTC)"), Col::new("Grace / retired")]>
                {list.into_iter().map(|v| {
                    let note = match (v.grace_until, v.retired_at) {
                        (Some(until), _) => format!("verifies until {}", utc_minutes(until)),
                        (None, Some(at)) => format!("retired {}", utc_minutes(at)),
                        _ => String::new(),
                    };
                    view! {
                        <tr>
                            <td class="font-mono">{format!("v{}", v.version)}</td>
                            <td>{v.state.as_str()}</td>
                            <td>{v.active_tokens}</td>
                            <td>{format!("{} by {}", utc_minutes(v.created_at), v.created_by)}</td>
                            <td>{note}</td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
    }
}

#[component]
fn Rotations(
    list: Vec<PepperVersion>,
    staged: ServerAction<RotatePepper>,
    compromise: ServerAction<RotatePepperCompromised>,
) -> impl IntoView {
    let current = list
        .iter()
        .find(|v| v.state == PepperState::Current)
        .cloned();
    let on_current = current.as_ref().map(|v| v.active_tokens).unwrap_or(0);
    let current_version = current.map(|v| v.version).unwrap_or(0);
    let errors = FormErrors::of(staged.value());
    let done = Signal::derive(move || match staged.value().get() {
        Some(Ok(rotated)) => Some(format!("Version {} is now current.", rotated.version)),
        _ => None,
    });
    view! {
        <Show when=move || allowed(Permission::CommandIncident).get()>
            <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="staged-heading">
                <h2 id="staged-heading" class="font-semibold">"Staged rotation"</h2>
                <p class="mt-1 text-sm text-slate-600">
                    {format!("{on_current} active token(s) are on version {current_version}. They keep working during the grace period and move to the new version on their next use; those not used before it ends are revoked.")}
                </p>
                <ActionForm action=staged attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <Field id="grace" label="Grace period (hours)" error=errors.field("grace_hours")>
                        <input id="grace" name="grace_hours" type="number" min="1" max="720" value="24" class="input mt-1 w-24" aria-describedby="grace-error" />
                    </Field>
                    <ReasonField id="staged-reason" name="reason" error=errors.field("reason") />
                    <TypedConfirm id="staged-confirm" name="confirmation" word=CONFIRM_STAGED.to_owned() error=errors.field("confirmation") />
                    <StepUp errors retry=redispatch(staged) id="staged-step-up" />
                    <button type="submit" class="btn-primary" disabled=move || staged.pending().get()>"Rotate the pepper"</button>
                </ActionForm>
                <FormFeedback error=errors.other() done />
            </section>
            <CompromiseSection action=compromise />
        </Show>
    }
    .into_any()
}

#[component]
fn CompromiseSection(action: ServerAction<RotatePepperCompromised>) -> impl IntoView {
    let preview = RwSignal::new(None::<Result<CompromisePreview, AppError>>);
    let reason = RwSignal::new(String::new());
    let confirmation = RwSignal::new(String::new());
    let load = move |_| {
        leptos::task::spawn_local(async move {
            preview.set(Some(preview_pepper_compromise().await));
        });
    };
    let errors = FormErrors::of(action.value());
    let done = Signal::derive(move || {
        match action.value().get() {
        Some(Ok(rotated)) => Some(format!(
            "Version {} is now current; {} token(s) were revoked. Ask integrators to mint new tokens.",
            rotated.version, rotated.revoked
        )),
        _ => None,
    }
    });
    view! {
        <section class="mt-6 max-w-3xl rounded-lg border border-red-200 bg-white p-4" aria-labelledby="compromise-heading">
            <h2 id="compromise-heading" class="font-semibold text-red-900">"Compromise rotation"</h2>
            <p class="mt-1 text-sm text-slate-600">"For a suspected pepper leak: a new version, and every active token of every tenant revoked at once."</p>
            <button type="button" class="btn mt-3" on:click=load>"Preview what it revokes"</button>
            {move || preview.get().map(|result| match result {
                Err(error) => view! { <div class="mt-3"><ErrorNotice error /></div> }.into_any(),
                Ok(p) => {
                    let total = p.total;
                    let tenants = p.tenants;
                    let preview = move || view! {
                        <div data-testid="compromise-preview">
                            <p class="text-sm font-medium">{format!("{total} active token(s) would be revoked:")}</p>
                            <ul class="mt-1 list-disc pl-6 text-sm">
                                {tenants.iter().map(|t| view! {
                                    <li>{format!("{} ({}): {}", t.name, t.slug, t.active_tokens)}</li>
                                }).collect_view()}
                            </ul>
                        </div>
                    };
                    let on_submit = Callback::new(move |expected| {
                        action.dispatch(RotatePepperCompromised {
                            reason: reason.get_untracked(),
                            confirmation: confirmation.get_untracked(),
                            expected,
                        });
                    });
                    view! {
                        <DangerousAction id="compromise" count=total preview
                            confirm_with=CONFIRM_COMPROMISE.to_owned()
                            button=format!("Rotate and revoke {total} token(s)")
                            reason confirmation errors pending=action.pending() on_submit />
                    }.into_any()
                }
            })}
            <FormFeedback error=errors.other() done />
        </section>
    }
    .into_any()
}
