//! The Freeze page (`/freeze`) and the top bar's notice of a freeze.

use super::api::{freeze_overview, LiftFreeze, StartFreeze};
use super::{FreezeState, FrozenOp, CONFIRM_LIFT};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::context::FreezeNotice;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{
    successes, Field, FormErrors, FormFeedback, ReasonField, TypedConfirm,
};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_minutes;
use crate::domain::freeze::describe;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

/// The top bar's notice while a freeze is on, on every page of the console: what `whoami`
/// said when the frame was drawn (`initial`), until the [`FreezeNotice`] has news.
#[component]
pub fn FreezeBanner(initial: Option<String>) -> impl IntoView {
    let notice = use_context::<FreezeNotice>().map(|n| n.0);
    let text = move || {
        notice
            .and_then(|n| n.get())
            .unwrap_or_else(|| initial.clone())
    };
    view! {
        <Show when={let text = text.clone(); move || text().is_some()}>
            <p role="status" data-testid="freeze-banner"
                class="bg-red-700 px-4 py-1 text-center text-sm font-medium text-white">
                {text.clone()} " "
                <a href="/freeze" class="underline">"See the freeze"</a>
            </p>
        </Show>
    }
}

/// `/freeze`: the freeze on now, turning one on or lifting it, and the last ones.
#[component]
pub fn FreezePage() -> impl IntoView {
    let start = ServerAction::<StartFreeze>::new();
    let lift = ServerAction::<LiftFreeze>::new();
    let started = successes(start.value());
    let lifted = successes(lift.value());
    let state = Resource::new(move || (started.get(), lifted.get()), |_| freeze_overview());
    // The top bar follows at once.
    let banner = use_context::<FreezeNotice>().map(|n| n.0);
    Effect::new(move |_| {
        if let (Some(banner), Some(Ok(on))) = (banner, start.value().get()) {
            banner.set(Some(Some(describe(&on))));
        }
    });
    Effect::new(move |_| {
        if let (Some(banner), Some(Ok(()))) = (banner, lift.value().get()) {
            banner.set(Some(None));
        }
    });
    view! {
        <Title text="Freeze" />
        <h1 class="text-2xl font-semibold">"Freeze high-risk operations"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "During an incident, a freeze stops every operation that adds access or removes a protection, for everyone, until it is lifted or its expiry passes. Protective actions — revoking, suspending, blocking, turning switches off, ending sessions — keep working."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(state).await {
                    Ok(state) => view! { <FreezeNow state start lift /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <section class="mt-8 max-w-3xl" aria-labelledby="frozen-heading">
            <h2 id="frozen-heading" class="font-semibold">"What a freeze refuses"</h2>
            <ul class="mt-2 list-disc pl-6 text-sm text-slate-700" data-testid="frozen-operations">
                {FrozenOp::ALL.iter().map(|op| view! { <li>{op.label()}</li> }).collect_view()}
            </ul>
        </section>
    }
    .into_any()
}

#[component]
fn FreezeNow(
    state: FreezeState,
    start: ServerAction<StartFreeze>,
    lift: ServerAction<LiftFreeze>,
) -> impl IntoView {
    let may = allowed(Permission::CommandIncident);
    let history = state.history;
    let now = match state.on {
        Some(on) => {
            let errors = FormErrors::of(lift.value());
            view! {
                <section class="mt-6 max-w-3xl rounded-lg border border-red-300 bg-red-50 p-4" aria-labelledby="freeze-on-heading">
                    <h2 id="freeze-on-heading" class="font-semibold text-red-900">"A freeze is on"</h2>
                    <p class="mt-1 text-sm text-red-950" data-testid="freeze-on">{describe(&on)}</p>
                    <Show when=move || may.get()>
                        <ActionForm action=lift attr:class="mt-3 space-y-3" attr:novalidate="true">
                            <ReasonField id="lift-reason" name="reason" error=errors.field("reason") />
                            <TypedConfirm id="lift-confirm" name="confirmation" word=CONFIRM_LIFT.to_owned() error=errors.field("confirmation") />
                            <StepUp errors retry=redispatch(lift) id="lift-step-up" />
                            <button type="submit" class="btn-primary" disabled=move || lift.pending().get()>"Lift the freeze"</button>
                        </ActionForm>
                        <FormFeedback error=errors.other() />
                    </Show>
                </section>
            }
            .into_any()
        }
        None => {
            let errors = FormErrors::of(start.value());
            view! {
                <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="freeze-off-heading">
                    <h2 id="freeze-off-heading" class="font-semibold">"No freeze is on"</h2>
                    <Show when=move || may.get()
                        fallback=|| view! { <p class="mt-1 text-sm text-slate-600">"An incident commander can turn one on."</p> }>
                        <ActionForm action=start attr:class="mt-3 space-y-3" attr:novalidate="true">
                            <ReasonField id="freeze-reason" name="reason" error=errors.field("reason") />
                            <Field id="freeze-expires" label="Lifts by itself after (minutes, optional)" error=errors.field("expires_minutes")>
                                <input id="freeze-expires" name="expires_minutes" type="number" min="1" max="10080"
                                    class="input mt-1 w-32" aria-describedby="freeze-expires-error" />
                            </Field>
                            <StepUp errors retry=redispatch(start) id="freeze-step-up" />
                            <button type="submit" class="btn-danger" disabled=move || start.pending().get()>"Freeze high-risk operations"</button>
                        </ActionForm>
                        <FormFeedback error=errors.other() />
                    </Show>
                </section>
            }
            .into_any()
        }
    };
    view! {
        {now}
        <DataTable caption="Recent freezes" testid="freeze-history" class="mt-6"
            rows=history.len()
            empty=("No freezes yet", "Freezes turned on here are listed with who lifted them and why.")
            columns=vec![Col::new("Started (UTC)"), Col::new("By"), Col::new("Reason"), Col::new("Lifted")]>
            {history.into_iter().map(|past| {
                let lifted = match (past.lifted_at, past.lifted_by, past.lift_reason) {
                    (Some(at), Some(by), reason) => format!(
                        "{} by {}{}", utc_minutes(at), by,
                        reason.map(|r| format!(": {r}")).unwrap_or_default()),
                    _ => match past.freeze.expires_at {
                        Some(at) => format!("lifts at {}", utc_minutes(at)),
                        None => "on".to_owned(),
                    },
                };
                view! {
                    <tr>
                        <td>{utc_minutes(past.freeze.started_at)}</td>
                        <td>{past.freeze.started_by}</td>
                        <td>{past.freeze.reason}</td>
                        <td>{lifted}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
    .into_any()
}
