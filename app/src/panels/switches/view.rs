//! `/switches`: every kill switch, its tenant overrides and timers, and the flip form.

use super::api::{list_switches, FlipSwitch, RemoveSwitchOverride};
use super::{removes_protection, MAX_EXPIRY_MINUTES};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::context::TenantsResource;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{
    successes, Field, FormErrors, FormFeedback, ReasonField, TypedConfirm,
};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::time::{utc_minutes, Countdown};
use crate::domain::gateway::controls::{SwitchKey, SwitchRow};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

/// What the flip form is set to; the switch cards' buttons fill it in.
#[derive(Clone, Copy)]
struct FlipDraft {
    key: RwSignal<SwitchKey>,
    tenant: RwSignal<String>,
    value: RwSignal<bool>,
    reason: RwSignal<String>,
    minutes: RwSignal<String>,
    confirmation: RwSignal<String>,
}

impl FlipDraft {
    /// Empties what the person types, so no earlier expiry or confirmation rides along.
    fn clear_typed(self) {
        self.reason.set(String::new());
        self.minutes.set(String::new());
        self.confirmation.set(String::new());
    }
}

/// `/switches`: kill switches, platform-wide.
#[component]
pub fn SwitchesPage() -> impl IntoView {
    let flip = ServerAction::<FlipSwitch>::new();
    let remove = ServerAction::<RemoveSwitchOverride>::new();
    // Timed flips revert on the server: look again every few seconds so the page follows.
    let tick = RwSignal::new(0u32);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(5),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let flip_changes = successes(flip.value());
    let remove_changes = successes(remove.value());
    let rows = Resource::new(
        move || (flip_changes.get(), remove_changes.get(), tick.get()),
        |_| list_switches(),
    );
    let draft = FlipDraft {
        key: RwSignal::new(SwitchKey::AgentApiEnabled),
        tenant: RwSignal::new(String::new()),
        value: RwSignal::new(false),
        reason: RwSignal::new(String::new()),
        minutes: RwSignal::new(String::new()),
        confirmation: RwSignal::new(String::new()),
    };
    // After a flip went through, the form starts empty again.
    Effect::new(move |_| {
        if matches!(flip.value().get(), Some(Ok(()))) {
            draft.clear_typed();
        }
    });
    view! {
        <Title text="Kill switches" />
        <h1 class="text-2xl font-semibold">"Kill switches"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Each switch has a global value and optional per-tenant overrides. A flip takes effect on every gateway instance within a second; a timed flip reverts by itself. Incident commanders can flip; everyone can see."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(rows).await {
                    Ok(rows) => view! {
                        <div class="mt-6 grid max-w-5xl gap-4" data-testid="switches">
                            {SwitchKey::ALL.into_iter().map(|key| {
                                let mine: Vec<SwitchRow> = rows.iter().filter(|r| r.key == key).cloned().collect();
                                view! { <SwitchCard key rows=mine draft remove /> }
                            }).collect_view()}
                        </div>
                    }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <StepUp errors=FormErrors::of(remove.value()) retry=redispatch(remove) id="remove-step-up" />
        <Show when=move || allowed(Permission::CommandIncident).get()>
            <FlipForm action=flip draft />
        </Show>
    }
    .into_any()
}

#[component]
fn SwitchCard(
    key: SwitchKey,
    rows: Vec<SwitchRow>,
    draft: FlipDraft,
    remove: ServerAction<RemoveSwitchOverride>,
) -> impl IntoView {
    let global = rows.iter().find(|r| r.tenant.is_none()).cloned();
    let value = global
        .as_ref()
        .map(|g| g.value)
        .unwrap_or(key.default_value());
    let overrides: Vec<SwitchRow> = rows.into_iter().filter(|r| r.tenant.is_some()).collect();
    let can_flip = allowed(Permission::CommandIncident);
    let prefill = move |value: bool| {
        move |_| {
            draft.key.set(key);
            draft.tenant.set(String::new());
            draft.value.set(value);
            draft.clear_typed();
            #[cfg(feature = "hydrate")]
            if let Some(el) = document().get_element_by_id("flip-reason") {
                use wasm_bindgen::JsCast as _;
                if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
                    let _ = el.focus();
                }
            }
        }
    };
    let badge = move |value: bool| {
        let protective = value == key.protective_value();
        let class = if protective {
            "badge badge-deny"
        } else {
            "badge badge-success"
        };
        view! { <span class=class>{key.value_label(value)}</span> }
    };
    view! {
        <section class="rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200"
            data-testid=format!("switch-{}", key.as_str()) aria-labelledby=format!("sw-{}", key.as_str())>
            <div class="flex flex-wrap items-baseline gap-3">
                <h2 id=format!("sw-{}", key.as_str()) class="font-mono font-semibold">{key.as_str()}</h2>
                <span data-testid="global-value">"global: " {badge(value)}</span>
                {global.as_ref().and_then(|g| g.expires_at).map(|until| view! { <Countdown until /> })}
                <Show when=move || can_flip.get()>
                    <button type="button" class="btn ml-auto" on:click=prefill(!value)>
                        {format!("Set {} globally…", key.value_label(!value))}
                    </button>
                </Show>
            </div>
            <p class="mt-1 text-sm text-slate-600">{key.describe()}</p>
            {global.map(|g| view! {
                <p class="mt-1 text-xs text-slate-500">
                    {format!("Set {} by {}: {}", utc_minutes(g.set_at), g.set_by, g.reason)}
                </p>
            })}
            {(!overrides.is_empty()).then(|| view! {
                <ul class="mt-3 space-y-2 text-sm" aria-label=format!("{} tenant overrides", key.as_str())>
                    {overrides.into_iter().map(|o| {
                        let slug = o.tenant.clone().unwrap_or_default();
                        let stored = StoredValue::new(slug.clone());
                        // Removing it would leave the tenant on a global value that lacks
                        // this protection: the key must be typed, as for such a flip.
                        let confirm = o.value == key.protective_value() && removes_protection(key, value);
                        view! {
                            <li class="flex flex-wrap items-center gap-2" data-testid=format!("override-{slug}")>
                                <span class="font-mono">{slug.clone()}</span> {badge(o.value)}
                                {o.expires_at.map(|until| view! { <Countdown until /> })}
                                <span class="text-xs text-slate-500">{format!("by {}: {}", o.set_by, o.reason)}</span>
                                <Show when=move || can_flip.get()>
                                    <ActionForm action=remove attr:class="ml-auto flex items-center gap-2">
                                        <input type="hidden" name="key" value=key.as_str() />
                                        <input type="hidden" name="tenant" value=stored.get_value() />
                                        <label class="sr-only" for=format!("rm-{}-{}", key.as_str(), stored.get_value())>"Reason for removing"</label>
                                        <input id=format!("rm-{}-{}", key.as_str(), stored.get_value()) name="reason" class="input w-48" placeholder="Reason" />
                                        {confirm.then(|| view! {
                                            <label class="sr-only" for=format!("rmc-{}-{}", key.as_str(), stored.get_value())>{format!("Type {} to confirm", key.as_str())}</label>
                                            <input id=format!("rmc-{}-{}", key.as_str(), stored.get_value()) name="confirmation" class="input w-44" autocomplete="off" placeholder=format!("type {}", key.as_str()) />
                                        })}
                                        <button type="submit" class="btn">"Remove override"</button>
                                    </ActionForm>
                                </Show>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            })}
        </section>
    }
    .into_any()
}

#[component]
fn FlipForm(action: ServerAction<FlipSwitch>, draft: FlipDraft) -> impl IntoView {
    let TenantsResource(tenants) = expect_context::<TenantsResource>();
    let FlipDraft {
        reason,
        minutes,
        confirmation,
        ..
    } = draft;
    let strong = move || removes_protection(draft.key.get(), draft.value.get());
    let errors = FormErrors::of(action.value());
    let field = move |f: &'static str| errors.field(f);
    let done = move || {
        matches!(action.value().get(), Some(Ok(())))
            .then_some("Switch set. Every instance applies it within a second.")
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(FlipSwitch {
            key: draft.key.get_untracked().as_str().to_owned(),
            tenant: draft.tenant.get_untracked(),
            value: draft.value.get_untracked().to_string(),
            reason: reason.get_untracked(),
            expires_minutes: minutes.get_untracked(),
            confirmation: confirmation.get_untracked(),
        });
    };
    view! {
        <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="flip-heading">
            <h2 id="flip-heading" class="font-semibold">"Flip a switch"</h2>
            <form class="mt-3 space-y-3" novalidate on:submit=submit data-testid="flip-form">
                <div class="flex flex-wrap gap-4">
                    <Field id="flip-key" label="Switch" error=field("key")>
                        <select id="flip-key" aria-describedby="flip-key-error" class="input mt-1"
                            on:change=move |ev| if let Some(k) = SwitchKey::parse(&event_target_value(&ev)) { draft.key.set(k) }>
                            {SwitchKey::ALL.into_iter().map(|k| view! {
                                <option value=k.as_str() selected=move || draft.key.get() == k>{k.as_str()}</option>
                            }).collect_view()}
                        </select>
                    </Field>
                    <Field id="flip-tenant" label="Scope" error=field("tenant")>
                        <select id="flip-tenant" aria-describedby="flip-tenant-error" class="input mt-1"
                            on:change=move |ev| draft.tenant.set(event_target_value(&ev))>
                            <option value="" selected=move || draft.tenant.get().is_empty()>"All tenants (global)"</option>
                            <Transition fallback=|| ()>
                                {move || Suspend::new(async move {
                                    loaded(tenants).await.unwrap_or_default().into_iter().map(|t| {
                                        let slug = t.slug.clone();
                                        let is = slug.clone();
                                        view! { <option value=slug selected=move || draft.tenant.get() == is>{format!("{} ({})", t.name, t.slug)}</option> }
                                    }).collect_view()
                                })}
                            </Transition>
                        </select>
                    </Field>
                    <fieldset>
                        <legend class="block text-sm font-medium">"Value"</legend>
                        <div class="mt-2 flex gap-4 text-sm">
                            <label><input type="radio" name="flip-value" prop:checked=move || draft.value.get()
                                on:change=move |_| draft.value.set(true) /> " on / true"</label>
                            <label><input type="radio" name="flip-value" prop:checked=move || !draft.value.get()
                                on:change=move |_| draft.value.set(false) /> " off / false"</label>
                        </div>
                        <p class="field-error">{field("value")}</p>
                    </fieldset>
                </div>
                <ReasonField id="flip-reason" value=reason error=field("reason") />
                <Field id="flip-minutes" label="Revert after (minutes, optional)" error=field("expires_minutes")>
                    <input id="flip-minutes" aria-describedby="flip-minutes-error" type="number" min="1" max=MAX_EXPIRY_MINUTES class="input mt-1 w-32"
                        prop:value=minutes on:input=move |ev| minutes.set(event_target_value(&ev)) />
                </Field>
                <Show when=strong>
                    <div class="rounded-md border border-amber-300 bg-amber-50 p-3">
                        <p class="text-sm text-amber-900">"This removes a protection. Type the switch's key to confirm."</p>
                        <TypedConfirm id="flip-confirm" value=confirmation error=field("confirmation")
                            word=Signal::derive(move || draft.key.get().as_str().to_owned()) />
                    </div>
                </Show>
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>
                    {move || format!("Set {} {}", draft.key.get().as_str(), draft.key.get().value_label(draft.value.get()))}
                </button>
            </form>
            <StepUp errors retry=redispatch(action) id="flip-step-up" />
            <FormFeedback error=errors.other() done=Signal::derive(move || done().map(str::to_owned)) />
        </section>
    }
    .into_any()
}
