//! The Staff panel's page.

use super::api::list_staff;
use super::api::{
    ChangeStaffRole, CreateStaff, ResetStaffFactors, ResetStaffPassword, SetStaffActive,
};
use super::{OneTimePassword, StaffRow};
use crate::auth::Role;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{successes, Field, FormErrors, FormFeedback};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_minutes;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

/// `/staff`: list, create, change role, disable/enable, reset password or second factors.
/// Each of these is dangerous: a prompt asks for a step-up when the server wants one.
#[component]
pub fn StaffPage() -> impl IntoView {
    let create = ServerAction::<CreateStaff>::new();
    let change_role = ServerAction::<ChangeStaffRole>::new();
    let set_active = ServerAction::<SetStaffActive>::new();
    let reset = ServerAction::<ResetStaffPassword>::new();
    let reset_factors = ServerAction::<ResetStaffFactors>::new();
    let reset_factors_changes = successes(reset_factors.value());
    let create_changes = successes(create.value());
    let change_role_changes = successes(change_role.value());
    let set_active_changes = successes(set_active.value());
    let reset_changes = successes(reset.value());
    let staff = Resource::new(
        move || {
            (
                create_changes.get(),
                change_role_changes.get(),
                set_active_changes.get(),
                reset_changes.get(),
                reset_factors_changes.get(),
            )
        },
        |_| list_staff(),
    );

    // The one-time password to show: whichever creation or reset finished last. Each
    // action's result sets it when it arrives, so the two cannot be confused.
    let revealed = RwSignal::new(None::<OneTimePassword>);
    Effect::new(move |_| {
        if let Some(Ok(secret)) = create.value().get() {
            revealed.set(Some(secret));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(secret)) = reset.value().get() {
            revealed.set(Some(secret));
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(secret)) = reset_factors.value().get() {
            revealed.set(Some(secret));
        }
    });
    // The latest row action's error; cleared when a later row action succeeds.
    let row_error = RwSignal::new(None::<crate::error::AppError>);
    Effect::new(move |_| {
        if let Some(result) = change_role.value().get() {
            row_error.set(result.err());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = set_active.value().get() {
            row_error.set(result.err());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = reset.value().get() {
            row_error.set(result.err());
        }
    });
    Effect::new(move |_| {
        if let Some(result) = reset_factors.value().get() {
            row_error.set(result.err());
        }
    });
    // A request for step-up is the prompt's, below, not an error.
    let row_error = move || {
        row_error
            .get()
            .filter(|e| !matches!(e, crate::error::AppError::StepUpRequired))
    };

    view! {
        <Title text="Staff" />
        <h1 class="text-2xl font-semibold">"Staff"</h1>
        <p class="mt-1 text-slate-600">
            "Who can use the console, and with which role. Disabling someone ends their sessions at once."
            " " <a href="/staff/sessions" class="underline">"See who is signed in"</a>
        </p>
        <Show when=move || revealed.get().is_some()>
            <RevealPassword secret=Signal::derive(move || revealed.get()) />
        </Show>
        <Show when=move || row_error().is_some()>
            {move || row_error().map(|error| view! { <div class="mt-4"><ErrorNotice error /></div> })}
        </Show>
        <StepUp errors=FormErrors::of(change_role.value()) retry=redispatch(change_role) id="role-step-up" />
        <StepUp errors=FormErrors::of(set_active.value()) retry=redispatch(set_active) id="active-step-up" />
        <StepUp errors=FormErrors::of(reset.value()) retry=redispatch(reset) id="reset-step-up" />
        <StepUp errors=FormErrors::of(reset_factors.value()) retry=redispatch(reset_factors) id="factors-step-up" />
        <CreateStaffForm action=create />
        <div class="mt-8">
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading staff…"</p> }>
                {move || Suspend::new(async move {
                    match loaded(staff).await {
                        Ok(rows) => view! { <StaffTable rows change_role set_active reset reset_factors /> }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
    .into_any()
}

#[component]
fn RevealPassword(secret: Signal<Option<OneTimePassword>>) -> impl IntoView {
    view! {
        <div role="status" class="mt-4 rounded-md border border-emerald-200 bg-emerald-50 p-4 text-emerald-950">
            {move || secret.get().map(|s| view! {
                <p class="font-medium">"One-time password for " {s.email.clone()}</p>
                <p class="mt-1 text-sm">"Shown only now. Hand it over in person or through a secure channel."</p>
                <code data-testid="one-time-password" class="mt-2 block select-all rounded bg-white px-2 py-1 font-mono text-base">
                    {s.password.clone()}
                </code>
            })}
        </div>
    }
}

#[component]
fn CreateStaffForm(action: ServerAction<CreateStaff>) -> impl IntoView {
    let errors = FormErrors::of(action.value());
    let field = move |f: &'static str| errors.field(f);
    view! {
        <section class="mt-6 max-w-4xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="create-heading">
            <h2 id="create-heading" class="font-semibold">"Add a staff member"</h2>
            <ActionForm action attr:class="mt-3 grid grid-cols-1 gap-3 sm:grid-cols-4 sm:items-start" attr:novalidate="true">
                <Field id="new-email" label="Email" error=field("email")>
                    <input id="new-email" name="email" type="email" class="input mt-1 w-full" aria-describedby="new-email-error" />
                </Field>
                <Field id="new-name" label="Name" error=field("display_name")>
                    <input id="new-name" name="display_name" type="text" class="input mt-1 w-full" aria-describedby="new-name-error" />
                </Field>
                <Field id="new-role" label="Role" error=field("role")>
                    <select id="new-role" name="role" class="input mt-1 w-full" aria-describedby="new-role-error">
                        {Role::ALL.into_iter().map(|r| view! {
                            <option value=r.as_str() selected=r == Role::Viewer>{r.label()}</option>
                        }).collect_view()}
                    </select>
                </Field>
                <div class="sm:pt-6">
                    <button type="submit" class="btn-primary" disabled=move || action.pending().get()>"Add"</button>
                </div>
            </ActionForm>
            <StepUp errors retry=redispatch(action) id="create-step-up" />
            <FormFeedback error=errors.other() />
        </section>
    }
    .into_any()
}

#[component]
fn StaffTable(
    rows: Vec<StaffRow>,
    change_role: ServerAction<ChangeStaffRole>,
    set_active: ServerAction<SetStaffActive>,
    reset: ServerAction<ResetStaffPassword>,
    reset_factors: ServerAction<ResetStaffFactors>,
) -> impl IntoView {
    view! {
        <DataTable caption="Staff" testid="staff-table"
            rows=rows.len()
            empty=("No staff", "Add the people who use the console above.")
            columns=vec![Col::new("Email"), Col::new("Name"), Col::new("Role"), Col::new("Status"), Col::new("Last sign-in (UTC)"), Col::hidden("Actions")]>
                {rows.into_iter().map(|row| {
                    let id = row.id.to_string();
                    let (id_role, id_active, id_reset) = (id.clone(), id.clone(), id.clone());
                    let factors_reason = format!("factors-reason-{id}");
                    let factors_label = format!("Reason for resetting the second factors of {}", row.email);
                    let role_select = format!("role-{}", row.id);
                    let role_label = format!("Role of {}", row.email);
                    let current_role = row.role;
                    let next_active = (!row.active).to_string();
                    let active = row.active;
                    let status = if !row.active {
                        "Disabled".to_owned()
                    } else if let Some(until) = row.locked_until {
                        format!("Locked until {}", utc_minutes(until))
                    } else {
                        "Active".to_owned()
                    };
                    view! {
                        <tr>
                            <td>{row.email}</td>
                            <td>{row.display_name}</td>
                            <td>
                                <ActionForm action=change_role attr:class="flex items-center gap-2">
                                    <input type="hidden" name="staff_id" value=id_role.clone() />
                                    <label for=role_select.clone() class="sr-only">{role_label.clone()}</label>
                                    <select id=role_select.clone() name="role" class="input">
                                        {Role::ALL.into_iter().map(|r| view! {
                                            <option value=r.as_str() selected=r == current_role>{r.label()}</option>
                                        }).collect_view()}
                                    </select>
                                    <button type="submit" class="btn">"Save role"</button>
                                </ActionForm>
                            </td>
                            <td>{status}</td>
                            <td>{row.last_sign_in_at.map(utc_minutes).unwrap_or_else(|| "never".into())}</td>
                            <td class="flex gap-2">
                                <ActionForm action=set_active>
                                    <input type="hidden" name="staff_id" value=id_active.clone() />
                                    <input type="hidden" name="active" value=next_active.clone() />
                                    <button type="submit" class=if active { "btn-danger" } else { "btn" }>
                                        {if active { "Disable" } else { "Re-enable" }}
                                    </button>
                                </ActionForm>
                                <ActionForm action=reset>
                                    <input type="hidden" name="staff_id" value=id_reset.clone() />
                                    <button type="submit" class="btn">"Reset password"</button>
                                </ActionForm>
                                <ActionForm action=reset_factors attr:class="flex gap-2">
                                    <input type="hidden" name="staff_id" value=id.clone() />
                                    <label for=factors_reason.clone() class="sr-only">{factors_label.clone()}</label>
                                    <input id=factors_reason.clone() name="reason" class="input w-36" placeholder="Reason" />
                                    <button type="submit" class="btn">"Reset second factors"</button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
    }
    .into_any()
}

/// `/staff/sessions`: every live staff session (the runbook's deny-list): end one believed
/// stolen, or every session of one person, each with a reason.
#[component]
pub fn StaffSessionsPage() -> impl IntoView {
    use super::api::{staff_sessions, EndAllStaffSessions, EndStaffSession};
    use crate::components::sessions::SessionsTable;
    let end_one = ServerAction::<EndStaffSession>::new();
    let end_all = ServerAction::<EndAllStaffSessions>::new();
    let ended_one = successes(end_one.value());
    let ended_all = successes(end_all.value());
    let sessions = Resource::new(
        move || (ended_one.get(), ended_all.get()),
        |_| staff_sessions(),
    );
    let one_errors = FormErrors::of(end_one.value());
    let all_errors = FormErrors::of(end_all.value());
    let done_one = Signal::derive(move || {
        matches!(end_one.value().get(), Some(Ok(()))).then(|| "Session ended.".to_owned())
    });
    let done_all = Signal::derive(move || match end_all.value().get() {
        Some(Ok(n)) => Some(format!("{n} session(s) ended.")),
        _ => None,
    });
    let action = Callback::new(move |s: crate::auth::StaffSession| {
        let id = s.id.to_string();
        let reason_id = format!("end-reason-{id}");
        let label = format!(
            "Reason for ending the session of {} on {}",
            s.email, s.device
        );
        view! {
            <ActionForm action=end_one attr:class="flex gap-2">
                <input type="hidden" name="session_id" value=id />
                <label for=reason_id.clone() class="sr-only">{label}</label>
                <input id=reason_id name="reason" class="input w-40" placeholder="Reason" />
                <button type="submit" class="btn-danger">{if s.current { "End (yours)" } else { "End" }}</button>
            </ActionForm>
        }
        .into_any()
    });
    view! {
        <Title text="Staff sessions" />
        <h1 class="text-2xl font-semibold">"Staff sessions"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Everyone signed in to the console. A session ended here is signed out at its next request, on every server; each ending is recorded with its reason."
        </p>
        // The rows' forms have no place for a message beside their reason: every error of
        // ending one session shows here.
        <FormFeedback error=Signal::derive(move || one_errors.error().get().map(|e| e.to_string())) done=done_one />
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(sessions).await {
                    Ok(rows) => {
                        let mut people: Vec<(String, String)> = rows
                            .iter()
                            .map(|s| (s.staff_id.to_string(), s.email.clone()))
                            .collect();
                        people.sort_by(|a, b| a.1.cmp(&b.1));
                        people.dedup();
                        view! {
                            <SessionsTable rows whose=true caption="Live staff sessions" testid="staff-sessions"
                                empty=("Nobody is signed in", "Sessions appear here as people sign in.") action />
                            <EndAllForm people action=end_all errors=all_errors />
                        }.into_any()
                    }
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <FormFeedback error=all_errors.other() done=done_all />
    }
    .into_any()
}

#[component]
fn EndAllForm(
    people: Vec<(String, String)>,
    action: ServerAction<super::api::EndAllStaffSessions>,
    errors: FormErrors,
) -> impl IntoView {
    use crate::components::form::ReasonField;
    (!people.is_empty()).then(|| view! {
        <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="end-all-heading">
            <h2 id="end-all-heading" class="font-semibold">"End every session of one person"</h2>
            <ActionForm action attr:class="mt-3 space-y-3" attr:novalidate="true">
                <Field id="end-all-person" label="Person" error=errors.field("staff_id")>
                    <select id="end-all-person" name="staff_id" class="input mt-1" aria-describedby="end-all-person-error">
                        {people.into_iter().map(|(id, email)| view! { <option value=id>{email}</option> }).collect_view()}
                    </select>
                </Field>
                <ReasonField id="end-all-reason" name="reason" error=errors.field("reason") />
                <button type="submit" class="btn-danger" disabled=move || action.pending().get()>"End all their sessions"</button>
            </ActionForm>
        </section>
    })
}
