//! The freeze of high-risk operations: each frozen operation is refused while a freeze is
//! on and works once it is lifted; protective actions work throughout; the expiry lifts it
//! as the system; the switches API and the server functions say so.

use crate::common;
use app::auth::{Actor, Role};
use app::domain::freeze::FrozenOp;
use app::error::AppError;
use app::panels::freeze::api::{LiftFreeze, StartFreeze};
use app::panels::freeze::ops;
use axum::http::StatusCode;
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;
use uuid::Uuid;

/// What the table's operations act on, made before the freeze.
struct Fixture {
    tenant: Uuid,
    /// A viewer whose role, password and factors the operations change.
    viewer: Uuid,
    /// A disabled staff member, to enable.
    disabled: Uuid,
    /// A suspended client, to reactivate.
    client: Uuid,
    /// An active client, to suspend (protective), allowlist and rotate.
    active_client: Uuid,
    /// An operator, to own a token.
    operator: Uuid,
    /// A staged signing key of `acme`, to activate.
    staged_kid: String,
    /// A locked end user of `acme`, to unlock.
    locked_user: Uuid,
    /// The peppers, to mint an admin token with.
    ring: std::sync::Arc<app::domain::tokens::pepper::PepperRing>,
}

async fn fixture(pool: &PgPool, cli: &Actor) -> Fixture {
    common::tenant(pool, "acme", "Acme Payments").await;
    let tenant = sqlx::query_scalar::<_, Uuid>("SELECT id FROM tenants WHERE slug = 'acme'")
        .fetch_one(pool)
        .await
        .unwrap();
    app::domain::tokens::pepper::create_first_if_none(
        cli,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
    )
    .await
    .unwrap();
    let viewer = common::staff(
        pool,
        "viewer@example.com",
        Role::Viewer,
        common::PERSON_PASSWORD,
    )
    .await;
    common::enrol_totp(pool, viewer).await;
    let disabled = common::staff(
        pool,
        "gone@example.com",
        Role::Viewer,
        common::PERSON_PASSWORD,
    )
    .await;
    app::panels::staff::ops::set_active(cli, disabled, false)
        .await
        .unwrap();
    let client = app::panels::agent_ops::ops::create(cli, tenant, "payments-bot", false)
        .await
        .unwrap()
        .client_id;
    app::panels::agent_ops::ops::set_active(cli, tenant, client, false, "suspected leak")
        .await
        .unwrap();
    let active_client = app::panels::agent_ops::ops::create(cli, tenant, "search-bot", false)
        .await
        .unwrap()
        .client_id;
    app::panels::limits::ops::add_block(cli, "10.9.9.0/24", "scanner", "")
        .await
        .unwrap();
    app::panels::limits::ops::add_block(cli, "10.8.8.8", "scanner", "")
        .await
        .unwrap();
    app::panels::limits::ops::set_override(cli, ip_limit("60"))
        .await
        .unwrap();
    let operator = common::staff(
        pool,
        "op@example.com",
        Role::Operator,
        common::PERSON_PASSWORD,
    )
    .await;
    let master = app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY);
    let staged_kid = app::panels::keys::ops::stage(cli, &master, "acme", "next rotation")
        .await
        .unwrap()
        .staged
        .unwrap();
    let locked_user = app::domain::endusers::ops::create_user(
        cli,
        "acme",
        "eve@example.com",
        common::PERSON_PASSWORD,
    )
    .await
    .unwrap();
    app::domain::endusers::ops::lock(
        cli,
        "acme",
        locked_user,
        "credential stuffing",
        &app::domain::endusers::ops::LockOptions {
            send_recovery: false,
            block: vec![],
            block_for: time::Duration::days(7),
        },
    )
    .await
    .unwrap();
    let ring = common::verifier(pool.clone()).pepper_ring().await.unwrap();
    Fixture {
        ring,
        locked_user,
        staged_kid,
        tenant,
        viewer,
        disabled,
        client,
        active_client,
        operator,
    }
}

/// Runs `op` once. The match is exhaustive: a new frozen operation does not compile until
/// it has its row here.
async fn attempt(op: FrozenOp, cli: &Actor, f: &Fixture) -> Result<(), AppError> {
    use app::panels::{agent_ops, audit, limits, pepper, staff, switches};
    let master = app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY);
    match op {
        FrozenOp::CreateStaff => {
            staff::ops::create(cli, "new@example.com", "New Person", Role::Viewer, None)
                .await
                .map(drop)
        }
        FrozenOp::ChangeStaffRole => staff::ops::change_role(cli, f.viewer, Role::Operator).await,
        FrozenOp::EnableStaff => staff::ops::set_active(cli, f.disabled, true).await,
        FrozenOp::ResetStaffPassword => staff::ops::reset_password(cli, f.viewer, None)
            .await
            .map(drop),
        FrozenOp::ResetStaffFactors => staff::ops::reset_factors(cli, f.viewer, "lost phone")
            .await
            .map(drop),
        FrozenOp::StagePepperRotation => {
            pepper::ops::rotate_staged(cli, &master, "24", "schedule", "rotate")
                .await
                .map(drop)
        }
        FrozenOp::CreateServiceToken => {
            app::domain::gateway::controls::service_token::mint(cli, "payments-service")
                .await
                .map(drop)
        }
        FrozenOp::UnblockAddress => {
            limits::ops::remove_block(cli, "10.9.9.0/24", "false positive").await
        }
        FrozenOp::ReactivateClient => {
            agent_ops::ops::set_active(cli, f.tenant, f.client, true, "cleared").await
        }
        FrozenOp::LowerRetention => audit::ops::set_retention(cli, "acme", "1", "cost").await,
        FrozenOp::RemoveSwitchProtection => switches::ops::flip(
            cli,
            switches::ops::FlipRequest {
                key: "TURNSTILE_DISABLED",
                value: "on",
                reason: "captcha provider down",
                confirmation: "TURNSTILE_DISABLED",
                ..Default::default()
            },
        )
        .await
        .map(drop),
        FrozenOp::MintToken => {
            let tenant = app::domain::tenants::queries::find(&pool_of(cli), "acme").await?;
            app::panels::integrations::ops::mint(
                cli,
                &tenant,
                &app::panels::integrations::MintForm {
                    name: "incident bot".into(),
                    owner: format!("staff:{}", f.operator),
                    scopes: vec!["agent:read".into()],
                    lifetime_days: "7".into(),
                },
                &master,
            )
            .await
            .map(drop)
        }
        FrozenOp::CreateClient => agent_ops::ops::create(cli, f.tenant, "new-bot", false)
            .await
            .map(drop),
        FrozenOp::AllowlistClient => {
            agent_ops::ops::set_allowlisted(cli, f.tenant, f.active_client, true, "partner").await
        }
        FrozenOp::RotateClientKey => {
            agent_ops::ops::rotate_key(cli, f.tenant, f.active_client, "24", "schedule")
                .await
                .map(drop)
        }
        FrozenOp::ShortenBlock => limits::ops::add_block(cli, "10.8.8.8", "scanner", "5").await,
        FrozenOp::LoosenRateLimit => limits::ops::set_override(cli, ip_limit("600"))
            .await
            .map(drop),
        FrozenOp::CreateTenant => app::panels::tenants::ops::create(
            cli,
            &master,
            &app::panels::tenants::NewTenantForm {
                slug: "newco".into(),
                name: "NewCo".into(),
                retention_months: "12".into(),
                max_token_days: "90".into(),
                audiences: "agent-api".into(),
                algorithm: "ES256".into(),
            },
        )
        .await
        .map(drop),
        FrozenOp::WidenTenantSettings => {
            app::panels::tenants::ops::update_settings(cli, "acme", "365", "agent-api", "")
                .await
                .map(drop)
        }
        FrozenOp::ActivateSigningKey => app::panels::keys::ops::activate(
            cli,
            app::domain::keys::KeyPolicy::default(),
            "acme",
            &f.staged_kid,
            "compromise: the active key leaked",
            true,
            "acme",
        )
        .await
        .map(drop),
        FrozenOp::MintAdminToken => app::domain::admin::tokens::mint(
            cli,
            &f.ring,
            &app::domain::admin::tokens::MintRequest {
                name: "runbook".into(),
                scopes: vec!["read".into()],
                tenant: "acme".into(),
                days: "7".into(),
            },
            Some(f.operator),
        )
        .await
        .map(drop),
        FrozenOp::RestoreEndUser => app::domain::endusers::ops::change_state(
            cli,
            "acme",
            f.locked_user,
            app::domain::endusers::ops::StateChange::Unlock,
            "false positive",
            false,
        )
        .await
        .map(drop),
    }
}

/// An override of 10.7.7.7's rate.
fn ip_limit(per_minute: &str) -> app::panels::limits::ops::OverrideRequest<'_> {
    app::panels::limits::ops::OverrideRequest {
        scope: "ip",
        tenant: "",
        client: "",
        network: "10.7.7.7",
        limit_per_minute: per_minute,
        burst: "6",
        reason: "noisy scanner",
        expires_minutes: "",
    }
}

/// The pool behind a command-line actor, for look-ups in the table.
fn pool_of(actor: &Actor) -> app::auth::Reader {
    actor.reader().clone()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn each_frozen_operation_is_refused_during_a_freeze_and_works_after_it(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let f = fixture(&pool, &cli).await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let freeze = ops::start(&cli, "JWKS compromise suspected", "")
        .await
        .unwrap();

    for op in FrozenOp::ALL {
        let err = attempt(op, &cli, &f).await.expect_err(op.as_str());
        assert!(
            matches!(&err, AppError::Frozen { reason, .. } if reason == "JWKS compromise suspected"),
            "{}: {err:?}",
            op.as_str()
        );
        assert_eq!(err.status_code(), 423);
        assert!(
            err.to_string().contains("JWKS compromise suspected"),
            "{err}"
        );
    }
    // Nothing changed: one refusal event each, beside the freeze's own.
    let refused = common::audit(&pool, "freeze.refused").await;
    let operations: Vec<&str> = refused
        .iter()
        .map(|(outcome, code, _, details)| {
            assert_eq!(
                (outcome.as_str(), code.as_deref()),
                ("deny", Some("FROZEN"))
            );
            details["operation"].as_str().unwrap()
        })
        .collect();
    let expected: Vec<&str> = FrozenOp::ALL.iter().map(|op| op.as_str()).collect();
    assert_eq!(operations, expected);
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events_after - events_before, 1 + FrozenOp::ALL.len() as i64);
    let role: String = sqlx::query_scalar("SELECT role::text FROM staff WHERE id = $1")
        .bind(f.viewer)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(role, "viewer");

    ops::lift(&cli, "keys rotated, sessions reviewed", "lift")
        .await
        .unwrap();
    let lifted = common::audit(&pool, "freeze.lifted").await;
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0].2, "cli:ic");
    assert!(sqlx::query_scalar::<_, bool>(
        "SELECT lifted_by = 'cli:ic' FROM freezes WHERE id = $1"
    )
    .bind(freeze.id)
    .fetch_one(&pool)
    .await
    .unwrap());
    for op in FrozenOp::ALL {
        attempt(op, &cli, &f)
            .await
            .unwrap_or_else(|err| panic!("{} after the freeze: {err:?}", op.as_str()));
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn protective_actions_keep_working_during_a_freeze(pool: PgPool) {
    use app::panels::{agent_ops, limits, staff, switches};
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let f = fixture(&pool, &cli).await;
    ops::start(&cli, "incident 42", "30").await.unwrap();
    agent_ops::ops::set_active(&cli, f.tenant, f.active_client, false, "contain")
        .await
        .expect("suspending a client");
    limits::ops::add_block(&cli, "192.0.2.0/24", "attacker", "")
        .await
        .expect("blocking an address");
    switches::ops::flip(
        &cli,
        switches::ops::FlipRequest {
            key: "agentApiEnabled",
            value: "off",
            reason: "contain",
            ..Default::default()
        },
    )
    .await
    .expect("turning the agent API off");
    staff::ops::change_role(&cli, f.operator, Role::Viewer)
        .await
        .expect("lowering a role");
    limits::ops::set_override(&cli, ip_limit("30"))
        .await
        .expect("tightening a rate limit");
    agent_ops::ops::rotate_key(&cli, f.tenant, f.active_client, "0", "leaked key")
        .await
        .expect("re-keying a client, the old key retired at once");
    staff::ops::end_all_sessions(&cli, f.viewer, "contain")
        .await
        .expect("ending someone's sessions");
    staff::ops::set_active(&cli, f.viewer, false)
        .await
        .expect("disabling someone (their sessions end)");
    let master = app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY);
    app::panels::pepper::ops::rotate_compromised(&cli, &master, "leak", "revoke all tokens", 0)
        .await
        .expect("the compromise rotation");
    assert!(common::audit(&pool, "freeze.refused").await.is_empty());
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_freeze_at_a_time_lifted_by_its_expiry_as_the_system(pool: PgPool) {
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    let freeze = ops::start(&cli, "incident 7", "5").await.unwrap();
    let again = ops::start(&cli, "incident 8", "").await.unwrap_err();
    assert!(matches!(again, AppError::Conflict { .. }), "{again:?}");
    assert!(matches!(
        ops::start(&cli, " ", "").await,
        Err(AppError::Validation { ref field, .. }) if field == "reason"
    ));
    assert!(matches!(
        ops::start(&cli, "r", "0").await,
        Err(AppError::Validation { ref field, .. }) if field == "expires_minutes"
    ));
    assert!(matches!(
        ops::lift(&cli, "done", "lif").await,
        Err(AppError::Validation { ref field, .. }) if field == "confirmation"
    ));
    // Nothing is due yet.
    let system = Actor::system(pool.clone(), "freeze timer");
    assert_eq!(ops::lift_expired(&system).await.unwrap(), 0);

    sqlx::query(
        "UPDATE freezes SET started_at = now() - interval '10 minutes',
                expires_at = now() - interval '1 second' WHERE id = $1",
    )
    .bind(freeze.id)
    .execute(&mut common::fixture(&pool).await)
    .await
    .unwrap();
    // Past its expiry it refuses nothing, even before the timer runs.
    app::panels::limits::ops::add_block(&cli, "10.1.1.1", "r", "")
        .await
        .unwrap();
    app::panels::limits::ops::remove_block(&cli, "10.1.1.1", "r")
        .await
        .expect("an expired freeze refuses nothing");
    assert_eq!(ops::lift_expired(&system).await.unwrap(), 1);
    let lifted = common::audit(&pool, "freeze.lifted").await;
    assert_eq!(lifted.len(), 1);
    assert_eq!(lifted[0].2, "system");
    assert_eq!(lifted[0].3["freeze_reason"], "incident 7");
    assert_eq!(ops::lift_expired(&system).await.unwrap(), 0);
    // And a new one can start.
    ops::start(&cli, "incident 8", "").await.unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_console_answers_423_and_the_switches_api_carries_the_freeze(pool: PgPool) {
    let (app, _verifier, controls) = common::app_parts(pool.clone(), false);
    let (_, commander) = common::person(&pool, &app, Role::Admin).await;
    let started = common::call(
        &app,
        StartFreeze::PATH,
        &commander,
        "reason=JWKS%20compromise&expires_minutes=",
    )
    .await;
    assert!(
        started.status.is_success(),
        "{} {}",
        started.status,
        started.body
    );

    let unblock = common::call(
        &app,
        app::panels::limits::api::UnblockIp::PATH,
        &commander,
        "network=10.9.9.0%2F24&reason=r",
    )
    .await;
    assert_eq!(unblock.status, StatusCode::LOCKED, "{}", unblock.body);
    assert_eq!(unblock.json()["kind"], "frozen");
    assert_eq!(unblock.json()["reason"], "JWKS compromise");

    // Every instance's snapshot carries it (the trigger notifies them; reloaded here).
    controls.reload_switches().await.unwrap();
    let document: serde_json::Value = serde_json::from_str(&controls.switches().document).unwrap();
    assert_eq!(document["freeze"]["reason"], "JWKS compromise");
    assert!(document["freeze"]["by"]
        .as_str()
        .unwrap()
        .starts_with("admin-"));

    let lifted = common::call(
        &app,
        LiftFreeze::PATH,
        &commander,
        "reason=rotated&confirmation=lift",
    )
    .await;
    assert!(
        lifted.status.is_success(),
        "{} {}",
        lifted.status,
        lifted.body
    );
    controls.reload_switches().await.unwrap();
    let document: serde_json::Value = serde_json::from_str(&controls.switches().document).unwrap();
    assert!(document["freeze"].is_null(), "{document}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn loosening_through_a_side_door_is_frozen_too(pool: PgPool) {
    use app::panels::{limits, switches};
    let cli = Actor::command_line_unchecked(pool.clone(), "ic");
    // The tenant acme and the 60/min limit on 10.7.7.7.
    let _fixture = fixture(&pool, &cli).await;
    // A tenant kept on the strict allowlist for an hour (the global value is off).
    let strict = |minutes: &'static str| switches::ops::FlipRequest {
        key: "strictAllowlist",
        tenant: "acme",
        value: "on",
        reason: "contain",
        expires_minutes: minutes,
        ..Default::default()
    };
    switches::ops::flip(&cli, strict("60")).await.unwrap();
    ops::start(&cli, "incident 9", "").await.unwrap();
    let frozen = |result: Result<(), AppError>, what: &str| {
        assert!(
            matches!(result, Err(AppError::Frozen { .. })),
            "{what}: {result:?}"
        );
    };
    // The same protection on a one-minute timer would end it sooner.
    frozen(
        switches::ops::flip(&cli, strict("1")).await.map(drop),
        "a shorter timer on a tenant's protection",
    );
    // Removing the 60/min limit, or a new limit far above the default.
    let id: Uuid =
        sqlx::query_scalar("SELECT id FROM rate_limit_overrides WHERE network = '10.7.7.7/32'")
            .fetch_one(&pool)
            .await
            .unwrap();
    frozen(
        limits::ops::remove_override(&cli, &id.to_string(), "done").await,
        "removing a strict limit",
    );
    let mut generous = ip_limit("100000");
    generous.network = "10.6.6.6";
    generous.burst = "5000";
    frozen(
        limits::ops::set_override(&cli, generous).await.map(drop),
        "a new limit above the default",
    );
    // A longer protection, or a new limit below the default, still go through.
    switches::ops::flip(&cli, strict("120")).await.unwrap();
    let mut tight = ip_limit("10");
    tight.network = "10.6.6.6";
    limits::ops::set_override(&cli, tight).await.unwrap();
    assert_eq!(common::audit(&pool, "freeze.refused").await.len(), 3);
}
