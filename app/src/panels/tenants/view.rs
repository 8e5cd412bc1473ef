//! Tenant management pages: creating a tenant, and a tenant's settings.

use super::api::{get_tenant_settings, CreateTenant, RenameTenant, UpdateTenantSettings};
use super::{TenantSettings, AGENT_API_AUDIENCE, MAX_TOKEN_DAYS};
use crate::auth::view::allowed;
use crate::auth::Permission;
use crate::components::feedback::ErrorNotice;
use crate::components::form::{successes, Field, FormErrors, FormFeedback};
use crate::components::loaded::loaded;
use crate::components::time::utc_minutes;
use crate::domain::audit::RETENTION_CLASSES;
use crate::domain::status::SigningAlgorithm;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

fn algorithm_options(selected: SigningAlgorithm) -> impl IntoView {
    SigningAlgorithm::ALL
        .iter()
        .map(|a| {
            let label = match a {
                SigningAlgorithm::Es256 => "ES256 (ECDSA P-256)",
                SigningAlgorithm::EdDsa => "EdDSA (Ed25519)",
            };
            view! { <option value=a.as_str() selected=*a == selected>{label}</option> }
        })
        .collect_view()
}

/// `/tenants/new`: create a tenant (admin).
#[component]
pub fn NewTenantPage() -> impl IntoView {
    let action = ServerAction::<CreateTenant>::new();
    let errors = FormErrors::of(action.value());
    view! {
        <Title text="Create a tenant" />
        <h1 class="text-2xl font-semibold">"Create a tenant"</h1>
        <p class="mt-1 max-w-prose text-slate-600">"A tenant gets its first active signing key at once. Its slug appears in console and API paths and in its tokens' issuer, and cannot be changed."</p>
        <Show when=move || allowed(Permission::ManageTenants).get()
            fallback=|| view! { <p class="mt-4 text-slate-600">"Only an admin can create tenants."</p> }>
            <ActionForm action attr:class="mt-4 max-w-2xl space-y-3 rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" attr:novalidate="true">
                <Field id="tenant-slug" label="Slug (2 to 40 lowercase letters, digits and hyphens)" error=errors.field("slug")>
                    <input id="tenant-slug" name="form[slug]" type="text" maxlength="40" autocomplete="off" class="input mt-1 w-72 font-mono" aria-describedby="tenant-slug-error" />
                </Field>
                <Field id="tenant-name" label="Name" error=errors.field("name")>
                    <input id="tenant-name" name="form[name]" type="text" maxlength="200" class="input mt-1 w-96" aria-describedby="tenant-name-error" />
                </Field>
                <Field id="tenant-retention" label="Audit retention" error=errors.field("retention_months")>
                    <select id="tenant-retention" name="form[retention_months]" class="input mt-1" aria-describedby="tenant-retention-error">
                        {RETENTION_CLASSES.into_iter().map(|m| view! { <option value=m.to_string() selected=m == 12>{format!("{m} months")}</option> }).collect_view()}
                    </select>
                </Field>
                <Field id="tenant-days" label="Longest token lifetime (days)" error=errors.field("max_token_days")>
                    <input id="tenant-days" name="form[max_token_days]" type="number" min="1" max=MAX_TOKEN_DAYS value="90" class="input mt-1 w-28" aria-describedby="tenant-days-error" />
                </Field>
                <Field id="tenant-audiences" label="Allowed audiences (comma-separated)" error=errors.field("audiences")>
                    <input id="tenant-audiences" name="form[audiences]" type="text" value=AGENT_API_AUDIENCE class="input mt-1 w-96 font-mono" aria-describedby="tenant-audiences-error" />
                </Field>
                <Field id="tenant-algorithm" label="Signing algorithm" error=errors.field("algorithm")>
                    <select id="tenant-algorithm" name="form[algorithm]" class="input mt-1" aria-describedby="tenant-algorithm-error">
                        {algorithm_options(SigningAlgorithm::Es256)}
                    </select>
                </Field>
                <button type="submit" class="btn-primary" disabled=move || action.pending().get()>"Create tenant"</button>
            </ActionForm>
            <FormFeedback error=errors.other() />
            {move || action.value().get().and_then(Result::ok).map(|slug| view! {
                <p role="status" class="mt-3 text-sm text-emerald-800">
                    {format!("Tenant “{slug}” created with an active signing key. ")}
                    <a class="link" href=format!("/t/{slug}/settings")>"Open its settings"</a>
                </p>
            })}
        </Show>
    }
    .into_any()
}

/// `/t/{tenant}/settings`: a tenant's name and settings.
#[component]
pub fn TenantSettingsPage() -> impl IntoView {
    let params = use_params_map();
    let tenant = Memo::new(move |_| params.read().get("tenant").unwrap_or_default());
    let rename = ServerAction::<RenameTenant>::new();
    let update = ServerAction::<UpdateTenantSettings>::new();
    let changes = [successes(rename.value()), successes(update.value())];
    let settings = Resource::new(
        move || (tenant.get(), changes.map(|c| c.get())),
        |(tenant, _)| get_tenant_settings(tenant),
    );
    view! {
        <Title text="Tenant settings" />
        <h1 class="text-2xl font-semibold">"Tenant settings"</h1>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(settings).await {
                    Ok(s) => view! { <Summary settings=s.clone() /> <SettingsForms settings=s rename update /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn Summary(settings: TenantSettings) -> impl IntoView {
    let slug = settings.slug.clone();
    view! {
        <dl class="mt-4 grid max-w-3xl grid-cols-[12rem_1fr] gap-x-4 gap-y-2 text-sm" data-testid="tenant-summary">
            <dt class="font-medium">"Name"</dt><dd>{settings.name}</dd>
            <dt class="font-medium">"Slug"</dt><dd class="font-mono">{settings.slug.clone()}</dd>
            <dt class="font-medium">"Created"</dt><dd>{utc_minutes(settings.created_at)}</dd>
            <dt class="font-medium">"Audit retention"</dt>
            <dd><span>{format!("{} months ", settings.audit_retention_months)}</span><a class="link" href="/audit">"(changed in the audit log)"</a></dd>
            <dt class="font-medium">"Longest token lifetime"</dt><dd>{format!("{} days", settings.max_token_lifetime_days)}</dd>
            <dt class="font-medium">"Allowed audiences"</dt><dd class="font-mono">{settings.allowed_audiences.join(", ")}</dd>
            <dt class="font-medium">"Signing algorithm"</dt><dd>{settings.signing_algorithm.as_str()}</dd>
            <dt class="font-medium">"Active signing key"</dt>
            <dd class="break-all font-mono text-xs">
                <span>{settings.active_kid.unwrap_or_else(|| "none".into())}</span>
                " "<a class="link font-sans text-sm" href=format!("/t/{slug}/keys")>"Signing keys"</a>
            </dd>
        </dl>
    }
}

#[component]
fn SettingsForms(
    settings: TenantSettings,
    rename: ServerAction<RenameTenant>,
    update: ServerAction<UpdateTenantSettings>,
) -> impl IntoView {
    let rename_errors = FormErrors::of(rename.value());
    let update_errors = FormErrors::of(update.value());
    let renamed = Signal::derive(move || {
        matches!(rename.value().get(), Some(Ok(()))).then(|| "Renamed.".to_owned())
    });
    let saved = Signal::derive(move || {
        matches!(update.value().get(), Some(Ok(_))).then(|| "Settings saved.".to_owned())
    });
    let slug = StoredValue::new(settings.slug.clone());
    let settings = StoredValue::new(settings);
    view! {
        <Show when=move || allowed(Permission::ManageTenants).get()>
            <section class="mt-8 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="rename-heading">
                <h2 id="rename-heading" class="font-semibold">"Rename"</h2>
                <ActionForm action=rename attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=slug.get_value() />
                    <Field id="rename-name" label="Name" error=rename_errors.field("name")>
                        <input id="rename-name" name="name" type="text" maxlength="200" value=settings.with_value(|s| s.name.clone()) class="input mt-1 w-96" aria-describedby="rename-name-error" />
                    </Field>
                    <button type="submit" class="btn-primary" disabled=move || rename.pending().get()>"Rename"</button>
                </ActionForm>
                <FormFeedback error=rename_errors.other() done=renamed />
            </section>
            <section class="mt-6 max-w-3xl rounded-lg bg-white p-4 shadow-sm ring-1 ring-slate-200" aria-labelledby="settings-heading">
                <h2 id="settings-heading" class="font-semibold">"Tokens and keys"</h2>
                <p class="mt-1 text-sm text-slate-600">"Raising the lifetime or allowing a new audience is refused during a freeze. The algorithm applies to keys staged from now on."</p>
                <ActionForm action=update attr:class="mt-3 space-y-3" attr:novalidate="true">
                    <input type="hidden" name="tenant" value=slug.get_value() />
                    <Field id="settings-days" label="Longest token lifetime (days)" error=update_errors.field("max_token_days")>
                        <input id="settings-days" name="max_token_days" type="number" min="1" max=MAX_TOKEN_DAYS value=settings.with_value(|s| s.max_token_lifetime_days.to_string()) class="input mt-1 w-28" aria-describedby="settings-days-error" />
                    </Field>
                    <Field id="settings-audiences" label="Allowed audiences (comma-separated)" error=update_errors.field("audiences")>
                        <input id="settings-audiences" name="audiences" type="text" value=settings.with_value(|s| s.allowed_audiences.join(", ")) class="input mt-1 w-96 font-mono" aria-describedby="settings-audiences-error" />
                    </Field>
                    <Field id="settings-algorithm" label="Signing algorithm of new keys" error=update_errors.field("algorithm")>
                        <select id="settings-algorithm" name="algorithm" class="input mt-1" aria-describedby="settings-algorithm-error">
                            {algorithm_options(settings.with_value(|s| s.signing_algorithm))}
                        </select>
                    </Field>
                    <button type="submit" class="btn-primary" disabled=move || update.pending().get()>"Save settings"</button>
                </ActionForm>
                <FormFeedback error=update_errors.other() done=saved />
            </section>
        </Show>
    }
    .into_any()
}
