//! The frame around every page: top bar, side navigation, main region.

use crate::auth::api::whoami;
use crate::auth::view::UserMenu;
use crate::auth::{Permission, StaffIdentity};
use crate::components::context::{FreezeNotice, StaffResource, TenantsResource};
use crate::components::feedback::ErrorNotice;
use crate::components::loaded::loaded;
use crate::components::tenant_switcher::TenantSwitcher;
use crate::panels::freeze::view::FreezeBanner;
use crate::panels::overview::api::list_tenants;
use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};
use leptos_router::hooks::use_location;

/// The tenant slug in a console path (`/t/{slug}/...`), if the page is inside a tenant.
pub fn tenant_from_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/t/")?;
    let slug = rest.split('/').next().unwrap_or_default();
    (!slug.is_empty()).then(|| slug.to_owned())
}

/// The path a person who must still choose their own password is kept on.
pub const PASSWORD_PATH: &str = "/account/password";

/// The account's second factors; where a person without one is kept, where one is
/// required, until they enrol one.
pub const SECURITY_PATH: &str = "/account/security";

/// Signed in: top bar, side navigation and the routed page. Signed out: off to sign-in,
/// coming back here afterwards. Signed in with a handed-over password: only the password
/// page, until they choose their own.
///
/// Who is signed in is read once when the console is entered (a page load, or coming from
/// the sign-in page) and checked again after every navigation; the frame is rebuilt only
/// when the answer changes (signed out elsewhere, disabled, role or password changed).
/// Rebuilding it on every navigation, as an earlier version did, rendered each page twice
/// and disposed the page being left while its data still loaded.
#[component]
pub fn ConsoleLayout() -> impl IntoView {
    let staff = Resource::new(|| (), |_| whoami());
    provide_context(StaffResource(staff));
    let notice = RwSignal::new(None::<Option<String>>);
    provide_context(FreezeNotice(notice));
    let location = use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        // Read here, in the effect: a resource read in a spawned task outside a Suspense
        // is a hydration hazard Leptos warns about. (A change of `staff` re-runs this
        // effect with the same path, which checks nothing.)
        let known = staff.get();
        if previous.is_some_and(|previous| previous != path) {
            leptos::task::spawn_local(async move {
                // A failed check (network down) keeps what we knew: the server refuses
                // whatever the answer would have changed anyway.
                let Ok(fresh) = whoami().await else { return };
                // A freeze turned on or lifted shows in the top bar; it does not redraw
                // the frame (only who is signed in, and as what, does).
                let _ = notice.try_set(Some(fresh.as_ref().and_then(|s| s.freeze.clone())));
                let same = match &known {
                    Some(Ok(known)) => {
                        known.as_ref().map(without_freeze) == fresh.as_ref().map(without_freeze)
                    }
                    _ => false,
                };
                if !same {
                    let _ = staff.try_set(Some(Ok(fresh)));
                }
            });
        }
        path
    });
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match loaded(staff).await {
                    Ok(Some(staff)) if staff.must_change_password => {
                        view! { <OneTaskChrome staff path=PASSWORD_PATH /> }.into_any()
                    }
                    Ok(Some(staff)) if staff.must_enrol_factor => {
                        view! { <OneTaskChrome staff path=SECURITY_PATH /> }.into_any()
                    }
                    Ok(Some(staff)) => view! { <Chrome staff /> }.into_any(),
                    Ok(None) => {
                        let here = location.pathname.get_untracked();
                        let path = if here == "/" {
                            "/sign-in".to_owned()
                        } else {
                            format!("/sign-in?next={}", encode_path(&here))
                        };
                        view! { <Redirect path /> }.into_any()
                    }
                    Err(error) => view! {
                        <main class="p-6"><ErrorNotice error /></main>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The frame while one task must come first (replacing a handed-over password, then
/// enrolling a second factor): no navigation, just that task's page (`path`) and signing
/// out. Any other path (typed, or the back button) redirects to it, coming back
/// afterwards: on the server as a 302, in the browser as a navigation. The server refuses
/// every other action meanwhile anyway.
#[component]
fn OneTaskChrome(staff: StaffIdentity, path: &'static str) -> impl IntoView {
    let location = use_location();
    // What the pages under the outlet expect of the frame (the server refuses the list
    // while the password is handed over; nothing shows it here).
    provide_context(TenantsResource(Resource::new(|| (), |_| list_tenants())));
    // The outlet stays (rebuilding it would lose the router's place); a page other than
    // the task's shows at most for the moment the redirect takes, and what it asks the
    // server is refused ("Choose a new password before you continue").
    let away = move || {
        let here = location.pathname.get();
        (here != path).then(|| {
            let path = format!("{path}?next={}", encode_path(&here));
            view! { <Redirect path /> }
        })
    };
    view! {
        <a href="#main" class="skip-link">"Skip to content"</a>
        <div class="flex min-h-screen flex-col">
            <header class="flex items-center gap-6 border-b border-slate-800 bg-slate-900 px-4 py-2 text-slate-100">
                <span class="flex items-center gap-2 font-semibold tracking-tight">
                    <img src="/favicon.svg" alt="" class="h-6 w-6" />
                    <span>"staff-console"</span>
                </span>
                <UserMenu staff />
            </header>
            <main id="main" tabindex="-1" class="flex-1 p-6 focus:outline-none">
                {away}
                <Outlet />
            </main>
        </div>
    }
    .into_any()
}

/// Who is signed in, leaving out the freeze notice.
fn without_freeze(staff: &StaffIdentity) -> StaffIdentity {
    StaffIdentity {
        freeze: None,
        ..staff.clone()
    }
}

/// Percent-encodes what a path may hold that a query value may not.
pub fn encode_path(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '/' | '-' | '_' | '.' | '~' => c.to_string(),
            other => {
                let mut buf = [0u8; 4];
                other
                    .encode_utf8(&mut buf)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
        })
        .collect()
}

#[component]
fn Chrome(staff: StaffIdentity) -> impl IntoView {
    let location = use_location();
    let current = Memo::new(move |_| tenant_from_path(&location.pathname.get()));
    provide_context(TenantsResource(Resource::new(|| (), |_| list_tenants())));
    let freeze = staff.freeze.clone();
    let can_manage_staff = staff.can(Permission::ManageStaff);
    let mfa_optional = staff.mfa_optional;

    view! {
        <a href="#main" class="skip-link">"Skip to content"</a>
        <div class="flex min-h-screen flex-col">
            {mfa_optional.then(|| view! {
                <p role="note" class="bg-amber-300 px-4 py-1 text-center text-sm font-medium text-amber-950" data-testid="mfa-optional">
                    "Second factors are optional on this server (MFA_REQUIRED=false, for development only): a password alone opens accounts without one."
                </p>
            })}
            <FreezeBanner initial=freeze />
            <header class="flex items-center gap-6 border-b border-slate-800 bg-slate-900 px-4 py-2 text-slate-100">
                <a href="/" class="flex items-center gap-2 rounded font-semibold tracking-tight">
                    <img src="/favicon.svg" alt="" class="h-6 w-6" />
                    <span>"staff-console"</span>
                </a>
                <TenantSwitcher current />
                <UserMenu staff />
            </header>
            <div class="flex flex-1">
                <SideNav current can_manage_staff />
                <main id="main" tabindex="-1" class="flex-1 p-6 focus:outline-none">
                    <Outlet />
                </main>
            </div>
        </div>
    }
    .into_any()
}

/// Navigation listing only the panels that exist.
#[component]
fn SideNav(current: Memo<Option<String>>, can_manage_staff: bool) -> impl IntoView {
    let location = use_location();
    let link = move |href: String, label: &'static str| {
        let active = {
            let href = href.clone();
            move || location.pathname.get() == href
        };
        view! {
            <li>
                <a
                    href=href
                    class="nav-link"
                    aria-current=move || active().then_some("page")
                >
                    {label}
                </a>
            </li>
        }
    };
    view! {
        <nav aria-label="Panels" class="w-56 shrink-0 border-r border-slate-200 bg-white p-3">
            <ul class="space-y-1 text-sm">
                {link("/".to_owned(), "Tenants")}
                {move || current.get().map(|slug| view! {
                    {link(format!("/t/{slug}"), "Overview")}
                    {link(format!("/t/{slug}/integrations"), "Integrations")}
                    {link(format!("/t/{slug}/agent-ops"), "Agent Ops")}
                    {link(format!("/t/{slug}/keys"), "Signing keys")}
                    {link(format!("/t/{slug}/users"), "Users")}
                    {link(format!("/t/{slug}/mail"), "Mail")}
                    {link(format!("/t/{slug}/settings"), "Settings")}
                })}
            </ul>
            <p class="mt-6 px-3 text-xs font-semibold uppercase tracking-wide text-slate-500">"Platform"</p>
            <ul class="mt-1 space-y-1 text-sm">
                {link("/audit".to_owned(), "Audit log")}
                {link("/switches".to_owned(), "Kill switches")}
                {link("/limits".to_owned(), "Rate limits & blocks")}
                {link("/pepper".to_owned(), "Token pepper")}
                {link("/freeze".to_owned(), "Freeze")}
                {can_manage_staff.then(|| link("/staff".to_owned(), "Staff"))}
            </ul>
        </nav>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::tenant_from_path;

    #[test]
    fn finds_the_tenant_in_console_paths() {
        assert_eq!(tenant_from_path("/t/demo"), Some("demo".into()));
        assert_eq!(tenant_from_path("/t/demo/tokens"), Some("demo".into()));
        assert_eq!(tenant_from_path("/t/"), None);
        assert_eq!(tenant_from_path("/"), None);
        assert_eq!(tenant_from_path("/tenants"), None);
    }

    #[test]
    fn return_paths_are_encoded_for_the_query() {
        assert_eq!(super::encode_path("/t/demo"), "/t/demo");
        assert_eq!(super::encode_path("/t/a b&c"), "/t/a%20b%26c");
    }
}
