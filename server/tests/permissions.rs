//! Every server function against the role it needs: the table below names each one's
//! permission, and the test derives the rest from `Permission::minimum_role`. The role just
//! below the minimum is refused (403, audited with the permission), the minimum role is not,
//! and a signed-out caller gets 401. Together these pin the permission exactly: a table
//! entry naming too low or too high a permission fails one of the two. The table must name
//! every registered server function, so a new one cannot be added without its row.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;
use app::auth::api::{
    SignIn, SignOut, StartPasskeySignIn, StartPasskeyStepUp, StepUp, StepUpWithPasskey,
    VerifyPasskey, VerifySecondFactor, Whoami,
};
use app::auth::{Permission, Role};
use app::panels::account::api::{
    ChangePassword, ConfirmTotpEnrolment, EndMyOtherSessions, EndMySession,
    FinishPasskeyRegistration, MintAdminToken, MyAdminTokens, MySessions, NewRecoveryCodes,
    RemovePasskey, RemoveTotp, RevokeAdminToken, Security, StartPasskeyRegistration,
    StartTotpEnrolment,
};
use app::panels::agent_ops::api::{
    CreateClient, GetClient, ListClients, PreviewClientRevoke, RevokeClient, RotateClientKey,
    SetClientAllowlisted, SetClientStatus,
};
use app::panels::audit::api::{
    AuditEvent, AuditHistogram, AuditOverview, AuditPage, SetAuditRetention,
};
use app::panels::freeze::api::{FreezeOverview, LiftFreeze, StartFreeze};
use app::panels::integrations::api::{
    GetToken, IntegrationsContext, ListTokens, MintToken, PreviewRevokeAll, RevokeAllTokens,
    RevokeToken,
};
use app::panels::keys::api::{
    ActivateSigningKey, AskInstances, InstanceRequest, KeyInstances, PreviewKeyRevocation,
    RevokeAllSigningKeys, RevokeSigningKey, SigningKeys, StageSigningKey,
};
use app::panels::limits::api::{BlockIp, GetLimits, RemoveRateLimit, SetRateLimit, UnblockIp};
use app::panels::overview::api::RecentActivity;
use app::panels::overview::api::{GetTenant, ListTenants};
use app::panels::pepper::api::{
    PepperVersions, PreviewPepperCompromise, RotatePepper, RotatePepperCompromised,
};
use app::panels::staff::api::{
    ChangeStaffRole, CreateStaff, EndAllStaffSessions, EndStaffSession, ListStaff,
    ResetStaffFactors, ResetStaffPassword, SetStaffActive, StaffSessions,
};
use app::panels::switches::api::{FlipSwitch, ListSwitches, RemoveSwitchOverride};
use app::panels::tenants::api::{
    CreateTenant, GetTenantSettings, RenameTenant, UpdateTenantSettings,
};
use app::panels::users::api::{
    CreateEndUser, DeleteEndUser, DropEndUserMail, EndUserDetail, ForceEndUserPasswordReset,
    ImportEndUsers, ListEndUsers, LockEndUser, OutboxMail, PlatformSessionsPreview, RestoreEndUser,
    RevokeEndUserSessions, RevokePlatformEndUserSessions, RevokeTenantEndUserSessions,
    SendEndUserRecovery, SetTenantEmailDomains, TenantMail, UnlockEndUser,
};
use axum::http::StatusCode;
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// Who may call a server function.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Needs {
    /// Anyone, signed in or not (signing in, asking who one is).
    Anyone,
    /// Whoever gave the right password in this browser: the second step of signing in.
    PasswordFirst,
    /// A signed-in staff member holding the permission.
    Staff(Permission),
    /// A dangerous action: the permission, and a second factor used in the session within
    /// `STEP_UP_SECONDS`.
    SteppedUp(Permission),
}

impl Needs {
    /// The permission a signed-in caller needs, if any.
    fn permission(self) -> Option<Permission> {
        match self {
            Self::Staff(p) | Self::SteppedUp(p) => Some(p),
            Self::Anyone | Self::PasswordFirst => None,
        }
    }
}

/// Every server function: its path, who may call it, and a body that decodes (so the call
/// reaches the authorization check; what it asks for may be refused afterwards, as input).
fn table(sign_in_as: &str) -> Vec<(&'static str, Needs, String)> {
    use Needs::{Staff, SteppedUp};
    use Permission::*;
    let nil = uuid::Uuid::nil();
    vec![
        (Whoami::PATH, Needs::Anyone, String::new()),
        (
            SignIn::PATH,
            Needs::Anyone,
            format!(
                "email={}&password={}",
                common::urlencode(sign_in_as),
                common::urlencode(common::PERSON_PASSWORD)
            ),
        ),
        (
            VerifySecondFactor::PATH,
            Needs::PasswordFirst,
            "code=123456".into(),
        ),
        // Last in its role's run below: it ends the session it is called with.
        (SignOut::PATH, Staff(OwnAccount), String::new()),
        (StepUp::PATH, Staff(OwnAccount), "code=123456".into()),
        (Security::PATH, Staff(OwnAccount), String::new()),
        (StartTotpEnrolment::PATH, Staff(OwnAccount), String::new()),
        (
            ConfirmTotpEnrolment::PATH,
            Staff(OwnAccount),
            "code=12".into(),
        ),
        (NewRecoveryCodes::PATH, SteppedUp(OwnAccount), String::new()),
        (MySessions::PATH, Staff(ViewConsole), String::new()),
        (
            EndMySession::PATH,
            Staff(ViewConsole),
            format!("session_id={nil}"),
        ),
        (EndMyOtherSessions::PATH, Staff(ViewConsole), String::new()),
        (StaffSessions::PATH, Staff(ManageStaff), String::new()),
        (
            EndStaffSession::PATH,
            Staff(ManageStaff),
            format!("session_id={nil}&reason=r"),
        ),
        (
            EndAllStaffSessions::PATH,
            Staff(ManageStaff),
            format!("staff_id={nil}&reason=r"),
        ),
        (RemoveTotp::PATH, SteppedUp(OwnAccount), String::new()),
        (
            StartPasskeySignIn::PATH,
            Needs::PasswordFirst,
            String::new(),
        ),
        (
            VerifyPasskey::PATH,
            Needs::PasswordFirst,
            "ceremony=x&credential=x".into(),
        ),
        (StartPasskeyStepUp::PATH, Staff(OwnAccount), String::new()),
        (
            StepUpWithPasskey::PATH,
            Staff(OwnAccount),
            "ceremony=x&credential=x".into(),
        ),
        // Adding a factor beside another needs a recent one (the first is the enrolment).
        (
            StartPasskeyRegistration::PATH,
            SteppedUp(OwnAccount),
            "name=k".into(),
        ),
        (
            FinishPasskeyRegistration::PATH,
            Staff(OwnAccount),
            "ceremony=x&credential=x".into(),
        ),
        (
            RemovePasskey::PATH,
            SteppedUp(OwnAccount),
            format!("passkey_id={nil}"),
        ),
        (
            ResetStaffFactors::PATH,
            SteppedUp(ManageStaff),
            format!("staff_id={nil}&reason=r"),
        ),
        (
            ChangePassword::PATH,
            Staff(OwnAccount),
            "current=not%20it&new=a%20new%20one%20long%20enough&confirm=another".into(),
        ),
        (RecentActivity::PATH, Staff(ViewConsole), String::new()),
        (ListTenants::PATH, Staff(ViewConsole), String::new()),
        (GetTenant::PATH, Staff(ViewConsole), "slug=acme".into()),
        (ListClients::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (
            GetClient::PATH,
            Staff(ViewConsole),
            format!("tenant=acme&id={nil}"),
        ),
        (
            CreateClient::PATH,
            Staff(Operate),
            "tenant=acme&name=".into(),
        ),
        (
            SetClientStatus::PATH,
            Staff(Operate),
            format!("tenant=acme&id={nil}&status=suspended&reason=r"),
        ),
        (
            SetClientAllowlisted::PATH,
            Staff(Operate),
            format!("tenant=acme&id={nil}&allowlisted=true&reason=r"),
        ),
        (
            RotateClientKey::PATH,
            Staff(Operate),
            format!("tenant=acme&id={nil}&grace_hours=0&reason=r"),
        ),
        (
            PreviewClientRevoke::PATH,
            Staff(CommandIncident),
            format!("tenant=acme&id={nil}"),
        ),
        (
            RevokeClient::PATH,
            SteppedUp(CommandIncident),
            format!("tenant=acme&id={nil}&reason=r&confirmation=x&expected=0"),
        ),
        (AuditOverview::PATH, Staff(ViewConsole), String::new()),
        (
            AuditPage::PATH,
            Staff(ViewConsole),
            "query[source]=&after=".into(),
        ),
        (
            AuditHistogram::PATH,
            Staff(ViewConsole),
            "query[source]=".into(),
        ),
        (AuditEvent::PATH, Staff(ViewConsole), "seq=999999".into()),
        (
            SetAuditRetention::PATH,
            SteppedUp(ManageRetention),
            "tenant=acme&months=2&reason=r".into(),
        ),
        (
            IntegrationsContext::PATH,
            Staff(ViewConsole),
            "tenant=acme".into(),
        ),
        (ListTokens::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (
            GetToken::PATH,
            Staff(ViewConsole),
            "tenant=acme&token_id=nosuchtoken".into(),
        ),
        (
            MintToken::PATH,
            Staff(Operate),
            "tenant=acme&form[name]=".into(),
        ),
        (
            RevokeToken::PATH,
            Staff(Operate),
            "tenant=acme&token_id=nosuchtoken&reason=r".into(),
        ),
        (
            PreviewRevokeAll::PATH,
            Staff(CommandIncident),
            "tenant=acme&scope=tenant".into(),
        ),
        (
            RevokeAllTokens::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&scope=tenant&reason=r&confirmation=x&expected=0".into(),
        ),
        (GetLimits::PATH, Staff(ViewConsole), String::new()),
        (SetRateLimit::PATH, Staff(Operate), "form[scope]=".into()),
        (
            RemoveRateLimit::PATH,
            Staff(Operate),
            format!("id={nil}&reason=r"),
        ),
        (BlockIp::PATH, Staff(Operate), "network=&reason=r".into()),
        (
            UnblockIp::PATH,
            SteppedUp(Operate),
            "network=10.9.9.0%2F24&reason=r".into(),
        ),
        (PepperVersions::PATH, Staff(ViewConsole), String::new()),
        (
            RotatePepper::PATH,
            SteppedUp(CommandIncident),
            "grace_hours=24&reason=r&confirmation=x".into(),
        ),
        (
            PreviewPepperCompromise::PATH,
            Staff(CommandIncident),
            String::new(),
        ),
        (
            RotatePepperCompromised::PATH,
            SteppedUp(CommandIncident),
            "reason=r&confirmation=x&expected=0".into(),
        ),
        (ListStaff::PATH, Staff(ManageStaff), String::new()),
        (
            CreateStaff::PATH,
            SteppedUp(ManageStaff),
            "email=not-an-email&display_name=&role=viewer".into(),
        ),
        (
            ChangeStaffRole::PATH,
            SteppedUp(ManageStaff),
            format!("staff_id={nil}&role=viewer"),
        ),
        (
            SetStaffActive::PATH,
            SteppedUp(ManageStaff),
            format!("staff_id={nil}&active=false"),
        ),
        (
            ResetStaffPassword::PATH,
            SteppedUp(ManageStaff),
            format!("staff_id={nil}"),
        ),
        (ListSwitches::PATH, Staff(ViewConsole), String::new()),
        (FreezeOverview::PATH, Staff(ViewConsole), String::new()),
        (
            StartFreeze::PATH,
            SteppedUp(CommandIncident),
            "reason=&expires_minutes=".into(),
        ),
        (
            LiftFreeze::PATH,
            SteppedUp(CommandIncident),
            "reason=r&confirmation=x".into(),
        ),
        // Turning the agent API off is dangerous (turning it back on removes a protection:
        // both need the step-up; a switch like magicLinkEnabled does not).
        (
            FlipSwitch::PATH,
            SteppedUp(CommandIncident),
            "key=agentApiEnabled&value=off&reason=r".into(),
        ),
        (
            RemoveSwitchOverride::PATH,
            Staff(CommandIncident),
            "key=agentApiEnabled&tenant=acme&reason=r".into(),
        ),
        (GetTenantSettings::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (
            CreateTenant::PATH,
            Staff(ManageTenants),
            "form[slug]=x&form[name]=&form[retention_months]=&form[max_token_days]=&form[audiences]=&form[algorithm]=".into(),
        ),
        (
            RenameTenant::PATH,
            Staff(ManageTenants),
            "tenant=acme&name=".into(),
        ),
        (
            UpdateTenantSettings::PATH,
            Staff(ManageTenants),
            "tenant=acme&max_token_days=&audiences=&algorithm=".into(),
        ),
        (SigningKeys::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (
            StageSigningKey::PATH,
            Staff(CommandIncident),
            "tenant=acme&reason=".into(),
        ),
        (
            ActivateSigningKey::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&kid=x&reason=r".into(),
        ),
        (
            PreviewKeyRevocation::PATH,
            Staff(CommandIncident),
            "tenant=acme".into(),
        ),
        (
            RevokeSigningKey::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&kid=x&reason=r&confirmation=x".into(),
        ),
        (
            RevokeAllSigningKeys::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&reason=r&confirmation=x&expected=0".into(),
        ),
        (KeyInstances::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (ListEndUsers::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (
            EndUserDetail::PATH,
            Staff(ViewConsole),
            "tenant=acme&id=x".into(),
        ),
        (
            CreateEndUser::PATH,
            Staff(CommandIncident),
            "tenant=acme&email=&password=".into(),
        ),
        (
            RevokeEndUserSessions::PATH,
            Staff(CommandIncident),
            "tenant=acme&id=x&reason=".into(),
        ),
        (
            LockEndUser::PATH,
            Staff(CommandIncident),
            "tenant=acme&id=x&reason=".into(),
        ),
        (
            RevokeTenantEndUserSessions::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&reason=r&confirmation=acme".into(),
        ),
        (
            ForceEndUserPasswordReset::PATH,
            Staff(CommandIncident),
            "tenant=acme&id=x&reason=".into(),
        ),
        (
            DeleteEndUser::PATH,
            Staff(CommandIncident),
            "tenant=acme&id=x&reason=".into(),
        ),
        (
            UnlockEndUser::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&id=x&reason=r".into(),
        ),
        (
            RestoreEndUser::PATH,
            SteppedUp(CommandIncident),
            "tenant=acme&id=x&reason=r".into(),
        ),
        (
            SendEndUserRecovery::PATH,
            Staff(CommandIncident),
            "tenant=acme&id=x&reason=".into(),
        ),
        (TenantMail::PATH, Staff(ViewConsole), "tenant=acme".into()),
        (
            DropEndUserMail::PATH,
            Staff(CommandIncident),
            "tenant=acme&reason=".into(),
        ),
        (
            OutboxMail::PATH,
            Staff(CommandIncident),
            "tenant=acme&id=x".into(),
        ),
        (
            SetTenantEmailDomains::PATH,
            Staff(CommandIncident),
            "tenant=acme&domains=&reason=".into(),
        ),
        (PlatformSessionsPreview::PATH, Staff(ViewConsole), "".into()),
        (MyAdminTokens::PATH, Staff(ViewConsole), "".into()),
        (
            MintAdminToken::PATH,
            SteppedUp(ViewConsole),
            "name=n&days=7".into(),
        ),
        (RevokeAdminToken::PATH, Staff(ViewConsole), "id=x".into()),
        (
            ImportEndUsers::PATH,
            Staff(CommandIncident),
            "tenant=acme&csv=".into(),
        ),
        (
            RevokePlatformEndUserSessions::PATH,
            SteppedUp(CommandIncident),
            "reason=r&confirmation=x".into(),
        ),
        (
            AskInstances::PATH,
            Staff(CommandIncident),
            "tenant=acme&kind=verify".into(),
        ),
        (
            InstanceRequest::PATH,
            Staff(ViewConsole),
            "tenant=acme&id=x".into(),
        ),
    ]
}

/// The role just below `role`, if there is one.
fn below(role: Role) -> Option<Role> {
    let i = Role::ALL.iter().position(|r| *r == role)?;
    i.checked_sub(1).map(|i| Role::ALL[i])
}

#[test]
fn the_table_names_every_server_function_once() {
    let registered: BTreeSet<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    let rows = table("x@example.com");
    let named: BTreeSet<&str> = rows.iter().map(|(path, _, _)| *path).collect();
    assert_eq!(named.len(), rows.len(), "a server function is named twice");
    let missing: Vec<_> = registered.difference(&named).collect();
    let unknown: Vec<_> = named.difference(&registered).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "server functions without a row: {missing:?}; rows of no server function: {unknown:?}"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn each_server_function_refuses_the_role_just_below_its_minimum(pool: PgPool) {
    common::tenant(&pool, "acme", "Acme Payments").await;
    let app = common::app(pool.clone());
    let mut cookies = std::collections::HashMap::new();
    for role in Role::ALL {
        cookies.insert(role, common::person(&pool, &app, role).await.1);
    }
    let caller = format!("caller-{}@example.com", uuid::Uuid::new_v4().simple());
    common::staff(&pool, &caller, Role::Viewer, common::PERSON_PASSWORD).await;
    // An admin who must still replace a handed-over password: everything but their own
    // account is closed to them, whatever their role.
    let handed = format!("handed-{}@example.com", uuid::Uuid::new_v4().simple());
    common::staff_handed_over(&pool, &handed, Role::Admin, common::PERSON_PASSWORD).await;
    let (_, handed_over) = common::sign_in(&app, &handed, common::PERSON_PASSWORD).await;
    let handed_over = handed_over.expect("a handed-over password signs in");

    let mut rows = table(&caller);
    // Sign-out ends the session it is called with: last, so every other row's callers are
    // still signed in.
    rows.sort_by_key(|(path, _, _)| *path == SignOut::PATH);
    let mut refused = Vec::new();
    for (path, needs, body) in &rows {
        // Signed out: only what anyone may call answers as if signed in.
        let signed_out = common::send(&app, common::post_form(path, None, body)).await;
        match needs {
            Needs::Anyone => assert_ne!(
                signed_out.status,
                StatusCode::UNAUTHORIZED,
                "{path} signed out: {}",
                signed_out.body
            ),
            Needs::PasswordFirst => assert_eq!(
                signed_out.json()["kind"],
                "sign_in_expired",
                "{path} signed out: {}",
                signed_out.body
            ),
            Needs::Staff(_) | Needs::SteppedUp(_) => assert_eq!(
                signed_out.status,
                StatusCode::UNAUTHORIZED,
                "{path} signed out: {}",
                signed_out.body
            ),
        }
        // Second factors are optional on this router and these people have none: a
        // dangerous action needs only its permission here (the step-up has its own test).
        let Some(permission) = needs.permission() else {
            continue;
        };
        if permission != Permission::OwnAccount {
            let answer = common::call(&app, path, &handed_over, body).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{path}: {}",
                answer.body
            );
            assert_eq!(
                answer.json()["kind"],
                "password_change_required",
                "{path} with a handed-over password"
            );
        }
        let minimum = permission.minimum_role();
        if let Some(below) = below(minimum) {
            let answer = common::call(&app, path, &cookies[&below], body).await;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{path} as {below:?} (needs {permission:?}, {minimum:?} and up): {}",
                answer.body
            );
            assert_eq!(answer.json()["kind"], "forbidden", "{path}");
            refused.push(((*path).to_owned(), permission.as_str().to_owned()));
        }
        let answer = common::call(&app, path, &cookies[&minimum], body).await;
        assert!(
            ![
                StatusCode::UNAUTHORIZED,
                StatusCode::FORBIDDEN,
                StatusCode::BAD_REQUEST
            ]
            .contains(&answer.status),
            "{path} as {minimum:?}, its minimum role for {permission:?}: {} {}",
            answer.status,
            answer.body
        );
    }
    // Each refusal is in the audit log with the function and the permission it lacked.
    let mut logged: Vec<(String, String)> = sqlx::query_as(
        "SELECT details ->> 'path', details ->> 'permission' FROM audit_events
         WHERE action = 'authorization.refused' AND code = 'FORBIDDEN' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected = refused;
    logged.sort();
    expected.sort();
    assert_eq!(logged, expected);
    assert!(expected.len() >= 20, "{} refusals", expected.len());
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn each_dangerous_server_function_needs_a_recent_second_factor(pool: PgPool) {
    // As production runs: everyone has an authenticator app. Each person signed in with
    // theirs eleven minutes ago, past the ten a second factor counts as recent for.
    common::tenant(&pool, "acme", "Acme Payments").await;
    let app = common::app_requiring_mfa(pool.clone());
    let mut people = std::collections::HashMap::new();
    for role in Role::ALL {
        let (id, cookie, _) = common::person_with_totp(&pool, &app, role).await;
        common::stepped_up_ago(&pool, id, 660.0).await;
        people.insert(role, cookie);
    }
    let mut dangerous = 0;
    for (path, needs, body) in table("x@example.com") {
        let Some(permission) = needs.permission() else {
            continue;
        };
        if path == SignOut::PATH {
            continue;
        }
        let answer = common::call(&app, path, &people[&permission.minimum_role()], &body).await;
        if needs == Needs::SteppedUp(permission) {
            dangerous += 1;
            assert_eq!(
                answer.status,
                StatusCode::FORBIDDEN,
                "{path}: {}",
                answer.body
            );
            assert_eq!(
                answer.json()["kind"],
                "step_up_required",
                "{path}: {}",
                answer.body
            );
        } else {
            let kind = serde_json::from_str::<serde_json::Value>(&answer.body)
                .ok()
                .and_then(|v| v["kind"].as_str().map(str::to_owned));
            assert_ne!(
                kind.as_deref(),
                Some("step_up_required"),
                "{path} is not in the table as dangerous: {}",
                answer.body
            );
        }
    }
    assert!(dangerous >= 14, "{dangerous} dangerous functions");
}
