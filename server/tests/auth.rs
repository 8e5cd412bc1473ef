//! Staff sign-in, sessions, roles and the cross-site check, through the real router.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use app::auth::api::{SignInPolicy, SignOut, Whoami};
use app::auth::Role;
use app::panels::account::api::ChangePassword;
use app::panels::overview::api::ListTenants;
use app::panels::staff::api::{
    ChangeStaffRole, CreateStaff, ListStaff, ResetStaffPassword, SetStaffActive,
};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use leptos::server_fn::ServerFn as _;
use server::web::middleware::SecurityPolicy;
use server::web::{router, AppState};
use sqlx::PgPool;
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn app_with_policy(pool: PgPool, policy: SignInPolicy) -> axum::Router {
    router(AppState {
        leptos_options: leptos::prelude::LeptosOptions::builder()
            .output_name("staff_console")
            .site_root("target/site")
            .build(),
        pool: pool.clone(),
        security: Arc::new(SecurityPolicy {
            https: false,
            public_origin: ORIGIN.to_owned(),
            trusted_proxies: Vec::new(),
        }),
        sign_in_policy: policy,
        verifier: common::verifier(pool.clone()),
        controls: common::controls(pool),
        session_keys: common::session_keys(),
        passkeys: common::relying_party(),
        key_policy: app::domain::keys::KeyPolicy::default(),
        jwks_refresh_token: None,
        end_users: common::end_users(),
    })
}

async fn whoami(app: &axum::Router, cookie: &str) -> serde_json::Value {
    call(app, Whoami::PATH, cookie, "").await.json()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sign_in_succeeds_and_both_failures_read_the_same(pool: PgPool) {
    staff(&pool, "ada@example.com", Role::Operator, PASSWORD).await;
    let router = app(pool.clone());

    let (wrong, cookie) = sign_in(&router, "ada@example.com", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    let (unknown, _) = sign_in(&router, "nobody@example.com", "not the password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body, unknown.body,
        "same message for unknown email and wrong password"
    );
    assert!(wrong.body.contains("invalid_credentials"));

    let (ok, cookie) = sign_in(&router, "  ADA@example.com ", PASSWORD).await;
    assert!(
        ok.status.is_success() || ok.status.is_redirection(),
        "{} {}",
        ok.status,
        ok.body
    );
    let set_cookie = ok.header("set-cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let cookie = cookie.expect("session cookie");
    assert_eq!(whoami(&router, &cookie).await["email"], "ada@example.com");

    let events = audit(&pool, "staff.sign_in").await;
    let outcomes: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|(o, c, _, _)| (o.as_str(), c.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("deny", Some("INVALID_CREDENTIALS")),
            ("deny", Some("INVALID_CREDENTIALS")),
            ("success", None)
        ]
    );
    // The unknown email is not kept: people type passwords into the wrong field.
    assert_eq!(events[1].2, "anonymous");
    let all = sqlx::query_scalar::<_, String>("SELECT audit_canonical(e) FROM audit_events e")
        .fetch_all(&pool)
        .await
        .unwrap()
        .join("\n");
    assert!(!all.contains("nobody@example.com") && !all.contains("not the password"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn repeated_failures_lock_the_account_until_the_lock_ends(pool: PgPool) {
    staff(&pool, "bo@example.com", Role::Viewer, PASSWORD).await;
    let policy = SignInPolicy {
        max_failures: 3,
        window_secs: 60.0,
        lock_secs: 3.0,
        max_failures_per_ip: 1000,
        mfa_required: false,
        ..SignInPolicy::default()
    };
    let router = app_with_policy(pool.clone(), policy);
    for _ in 0..3 {
        let (res, _) = sign_in(&router, "bo@example.com", "wrong wrong wrong").await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    // While locked, a wrong guess and the right password get the very same answer: the
    // lock message is no oracle for guesses.
    let (wrong_while_locked, _) = sign_in(&router, "bo@example.com", "another guess here").await;
    let (locked, cookie) = sign_in(&router, "bo@example.com", PASSWORD).await;
    assert_eq!(locked.status.as_u16(), 423, "{}", locked.body);
    assert_eq!(wrong_while_locked.status.as_u16(), 423);
    assert_eq!(wrong_while_locked.body, locked.body);
    assert_eq!(locked.json()["kind"], "locked");
    assert!(locked.json()["until"].as_str().unwrap().ends_with("UTC"));
    assert!(cookie.is_none());
    assert_eq!(audit(&pool, "staff.locked").await.len(), 1);

    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let (after, cookie) = sign_in(&router, "bo@example.com", PASSWORD).await;
    assert!(
        cookie.is_some(),
        "signs in once the lock has ended: {}",
        after.body
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn one_address_failing_too_often_is_throttled(pool: PgPool) {
    staff(&pool, "cy@example.com", Role::Viewer, PASSWORD).await;
    let policy = SignInPolicy {
        max_failures_per_ip: 2,
        mfa_required: false,
        ..SignInPolicy::default()
    };
    let router = app_with_policy(pool.clone(), policy);
    sign_in(&router, "x1@example.com", "nope nope nope").await;
    sign_in(&router, "x2@example.com", "nope nope nope").await;
    let (throttled, cookie) = sign_in(&router, "cy@example.com", PASSWORD).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(cookie.is_none());
    // Further refusals answer 429 but add nothing to the append-only log.
    for _ in 0..5 {
        let (again, _) = sign_in(&router, "cy@example.com", PASSWORD).await;
        assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    }
    let throttle_events = audit(&pool, "staff.sign_in")
        .await
        .into_iter()
        .filter(|e| e.1.as_deref() == Some("IP_THROTTLED"))
        .count();
    assert_eq!(throttle_events, 1);
    let codes: Vec<Option<String>> = audit(&pool, "staff.sign_in")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(codes.last().unwrap().as_deref(), Some("IP_THROTTLED"));
}

/// Refused sign-ins recorded as `IP_THROTTLED` from `ip`.
async fn throttle_events_from(pool: &PgPool, ip: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM audit_events
         WHERE action = 'staff.sign_in' AND code = 'IP_THROTTLED' AND ip = $1::inet",
    )
    .bind(ip)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Sends `n` sign-ins for `email` from `peer` (the right password and guesses in turn);
/// returns the statuses.
async fn attempts_from(
    router: &axum::Router,
    email: &str,
    peer: std::net::SocketAddr,
    n: usize,
) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for i in 0..n {
        let password = if i % 2 == 0 {
            PASSWORD
        } else {
            "a wrong guess here"
        };
        let (answer, cookie) = sign_in_from(router, email, password, peer).await;
        assert!(cookie.is_none(), "attempt {i} signed in: {}", answer.body);
        statuses.push(answer.status.as_u16());
    }
    statuses
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn attempts_on_a_locked_account_count_against_the_address(pool: PgPool) {
    staff(&pool, "lou@example.com", Role::Viewer, PASSWORD).await;
    let policy = SignInPolicy {
        max_failures: 3,
        window_secs: 600.0,
        lock_secs: 600.0,
        max_failures_per_ip: 10,
        mfa_required: false,
        ..SignInPolicy::default()
    };
    let router = app_with_policy(pool.clone(), policy);
    // Locked from one address...
    let locker = std::net::SocketAddr::from(([198, 18, 1, 10], 40000));
    for _ in 0..3 {
        let (res, _) = sign_in_from(&router, "lou@example.com", "wrong wrong wrong", locker).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    // ...then hammered from another: every attempt on the locked account costs a hash and
    // an event, so it counts, and the address is refused at its limit.
    let attacker = std::net::SocketAddr::from(([198, 18, 1, 11], 40000));
    let statuses = attempts_from(&router, "lou@example.com", attacker, 30).await;
    assert_eq!(statuses[..10], [423; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(throttle_events_from(&pool, "198.18.1.11").await, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn attempts_on_a_disabled_account_count_against_the_address(pool: PgPool) {
    let id = staff(&pool, "dee@example.com", Role::Viewer, PASSWORD).await;
    let actor = app::auth::Actor::command_line_unchecked(pool.clone(), "test");
    app::panels::staff::ops::set_active(&actor, id, false)
        .await
        .unwrap();
    let policy = SignInPolicy {
        max_failures_per_ip: 10,
        mfa_required: false,
        ..SignInPolicy::default()
    };
    let router = app_with_policy(pool.clone(), policy);
    let attacker = std::net::SocketAddr::from(([198, 18, 2, 11], 40000));
    let statuses = attempts_from(&router, "dee@example.com", attacker, 30).await;
    assert_eq!(statuses[..10], [401; 10], "{statuses:?}");
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(throttle_events_from(&pool, "198.18.2.11").await, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn ipv6_failures_count_per_64_not_per_address(pool: PgPool) {
    // The default policy: 50 failures per caller per 15 minutes.
    let router = app(pool.clone());
    let from = |network: u16, host: u16| {
        std::net::SocketAddr::new(
            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x64, network, 0, 0, 0, host).into(),
            40000,
        )
    };
    let mut statuses = Vec::new();
    for host in 1..=60 {
        let (answer, _) = sign_in_from(
            &router,
            "nobody@example.com",
            "not the password",
            from(1, host),
        )
        .await;
        statuses.push(answer.status.as_u16());
    }
    // Sixty addresses of one /64 are one caller: refused from the 51st.
    assert_eq!(statuses[..50], [401; 50], "{statuses:?}");
    assert_eq!(statuses[50..], [429; 10], "{statuses:?}");
    // One throttle event for the /64 in this window, recorded with the caller's address.
    let throttled: Vec<String> = sqlx::query_scalar(
        "SELECT host(ip) FROM audit_events WHERE action = 'staff.sign_in' AND code = 'IP_THROTTLED'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(throttled, ["2001:db8:64:1::33"]);
    // The next /64 is another caller.
    let (other, _) = sign_in_from(
        &router,
        "nobody@example.com",
        "not the password",
        from(2, 1),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn signing_in_cycles_the_session_id(pool: PgPool) {
    staff(&pool, "di@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool.clone());
    let (_, first) = sign_in(&router, "di@example.com", PASSWORD).await;
    let first = first.expect("cookie");
    let body = format!("email=di%40example.com&password={}", urlencode(PASSWORD));
    let again = send(
        &router,
        post_form(app::auth::api::SignIn::PATH, Some(&first), &body),
    )
    .await;
    let second = session_cookie(&again).expect("a new cookie");
    assert_ne!(first, second, "a new id on sign-in");
    assert!(
        whoami(&router, &first).await.is_null(),
        "the old id is worthless"
    );
    assert_eq!(whoami(&router, &second).await["email"], "di@example.com");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn sessions_expire_after_thirty_idle_minutes(pool: PgPool) {
    staff(&pool, "ed@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool.clone());
    let (_, cookie) = sign_in(&router, "ed@example.com", PASSWORD).await;
    let cookie = cookie.expect("cookie");
    let minutes: f64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(expiry_date) - now()) / 60)::float8 FROM tower_sessions.session",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        (29.0..=30.5).contains(&minutes),
        "idle expiry in {minutes} minutes"
    );

    // Thirty idle minutes later (moved forward in the store), the session is gone.
    sqlx::query("UPDATE tower_sessions.session SET expiry_date = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(whoami(&router, &cookie).await.is_null());
    assert_eq!(
        call(&router, ListTenants::PATH, &cookie, "").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_staff_function_refuses_lower_roles_and_records_the_refusal(pool: PgPool) {
    let target = staff(&pool, "target@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool.clone());
    let calls = [
        (
            CreateStaff::PATH,
            "email=new%40example.com&display_name=New&role=viewer".to_owned(),
        ),
        (
            ChangeStaffRole::PATH,
            format!("staff_id={target}&role=admin"),
        ),
        (
            SetStaffActive::PATH,
            format!("staff_id={target}&active=false"),
        ),
        (ResetStaffPassword::PATH, format!("staff_id={target}")),
        (ListStaff::PATH, String::new()),
    ];
    let mut expected_denials = 0;
    for role in [
        Role::Viewer,
        Role::Auditor,
        Role::Operator,
        Role::IncidentCommander,
    ] {
        let email = format!("{}@example.com", role.as_str().replace('_', "-"));
        staff(&pool, &email, role, PASSWORD).await;
        let (_, cookie) = sign_in(&router, &email, PASSWORD).await;
        let cookie = cookie.expect("cookie");
        for (path, body) in &calls {
            let res = call(&router, path, &cookie, body).await;
            assert_eq!(
                res.status,
                StatusCode::FORBIDDEN,
                "{role:?} calling {path}: {}",
                res.body
            );
            assert_eq!(res.json()["kind"], "forbidden");
            expected_denials += 1;
        }
    }
    let denials = audit(&pool, "authorization.refused").await;
    assert_eq!(denials.len(), expected_denials);
    assert!(denials.iter().all(|(outcome, code, actor, details)| {
        outcome == "deny"
            && code.as_deref() == Some("FORBIDDEN")
            && actor.starts_with("staff:")
            && details["permission"] == "manage_staff"
    }));
    // Nothing changed.
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM staff WHERE email = 'new@example.com'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(count, 0);
    assert_eq!(audit(&pool, "staff.role_changed").await.len(), 0);

    // Signed out, every function answers 401.
    for (path, body) in &calls {
        let res = send(&router, post_form(path, None, body)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn cross_site_posts_are_refused_before_anything_runs(pool: PgPool) {
    staff(&pool, "admin@example.com", Role::Admin, PASSWORD).await;
    let router = app(pool.clone());
    let (_, cookie) = sign_in(&router, "admin@example.com", PASSWORD).await;
    let cookie = cookie.expect("cookie");
    let body = "email=evil%40example.com&display_name=Evil&role=admin";

    for origin in [
        Some("https://evil.example"),
        Some("http://127.0.0.1:3001"),
        None,
    ] {
        let mut builder = Request::post(CreateStaff::PATH)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie);
        if let Some(origin) = origin {
            builder = builder.header("origin", origin);
        }
        let res = send(&router, builder.body(Body::from(body)).unwrap()).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "origin {origin:?}");
    }
    let same_site = Request::post(CreateStaff::PATH)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(
            "email=fine%40example.com&display_name=Fine&role=viewer",
        ))
        .unwrap();
    assert_eq!(send(&router, same_site).await.status, StatusCode::OK);

    let evil: i64 =
        sqlx::query_scalar("SELECT count(*) FROM staff WHERE email = 'evil@example.com'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(evil, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn disabling_someone_ends_their_live_session(pool: PgPool) {
    staff(&pool, "admin@example.com", Role::Admin, PASSWORD).await;
    let victim = staff(&pool, "fay@example.com", Role::Operator, PASSWORD).await;
    let router = app(pool.clone());
    let (_, admin) = sign_in(&router, "admin@example.com", PASSWORD).await;
    let (_, fay) = sign_in(&router, "fay@example.com", PASSWORD).await;
    let (admin, fay) = (admin.unwrap(), fay.unwrap());
    assert_eq!(
        call(&router, ListTenants::PATH, &fay, "").await.status,
        StatusCode::OK
    );

    let res = call(
        &router,
        SetStaffActive::PATH,
        &admin,
        &format!("staff_id={victim}&active=false"),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        call(&router, ListTenants::PATH, &fay, "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(whoami(&router, &fay).await.is_null());
    let (refused, _) = sign_in(&router, "fay@example.com", PASSWORD).await;
    assert_eq!(
        refused.json()["kind"],
        "invalid_credentials",
        "no oracle for disabled accounts"
    );
    assert_eq!(audit(&pool, "staff.disabled").await.len(), 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_last_active_admin_cannot_be_removed(pool: PgPool) {
    let only = staff(&pool, "admin@example.com", Role::Admin, PASSWORD).await;
    let router = app(pool.clone());
    let (_, cookie) = sign_in(&router, "admin@example.com", PASSWORD).await;
    let cookie = cookie.unwrap();

    let demote = call(
        &router,
        ChangeStaffRole::PATH,
        &cookie,
        &format!("staff_id={only}&role=operator"),
    )
    .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.body);
    assert!(demote.json()["message"]
        .as_str()
        .unwrap()
        .contains("last active admin"));

    // With a second admin, the first may step down; then the second is the last one.
    let second = staff(&pool, "second@example.com", Role::Admin, PASSWORD).await;
    let (_, second_cookie) = sign_in(&router, "second@example.com", PASSWORD).await;
    let ok = call(
        &router,
        ChangeStaffRole::PATH,
        &cookie,
        &format!("staff_id={only}&role=operator"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let disable_last = call(
        &router,
        SetStaffActive::PATH,
        &second_cookie.unwrap(),
        &format!("staff_id={second}&active=false"),
    )
    .await;
    assert_eq!(
        disable_last.status,
        StatusCode::CONFLICT,
        "{}",
        disable_last.body
    );
    let admins: i64 =
        sqlx::query_scalar("SELECT count(*) FROM staff WHERE role = 'admin' AND status = 'active'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(admins, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_admin_creates_staff_who_can_then_sign_in_with_their_role(pool: PgPool) {
    staff(&pool, "admin@example.com", Role::Admin, PASSWORD).await;
    let router = app(pool.clone());
    let (_, admin) = sign_in(&router, "admin@example.com", PASSWORD).await;
    let admin = admin.unwrap();

    let bad = call(
        &router,
        CreateStaff::PATH,
        &admin,
        "email=not-an-email&display_name=X&role=viewer",
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json()["field"], "email");
    let bad_role = call(
        &router,
        CreateStaff::PATH,
        &admin,
        "email=gi%40example.com&display_name=Gi&role=root",
    )
    .await;
    assert_eq!(bad_role.json()["field"], "role");

    let created = call(
        &router,
        CreateStaff::PATH,
        &admin,
        "email=gi%40example.com&display_name=Gi&role=viewer",
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let password = created.json()["password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 20);

    let dup = call(
        &router,
        CreateStaff::PATH,
        &admin,
        "email=GI%40example.com&display_name=Gi&role=viewer",
    )
    .await;
    assert_eq!(dup.json()["field"], "email");

    let (_, viewer) = sign_in(&router, "gi@example.com", &password).await;
    let viewer = viewer.expect("the new person signs in with the one-time password");
    assert_eq!(whoami(&router, &viewer).await["role"], "viewer");
    // ... and must choose their own password before anything else opens.
    let refused = call(&router, ListTenants::PATH, &viewer, "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.json()["kind"], "password_change_required");
    let changed = call(
        &router,
        ChangePassword::PATH,
        &viewer,
        &format!(
            "current={}&new=plum%20orbit%20lantern%20gravel&confirm=plum%20orbit%20lantern%20gravel",
            urlencode(&password)
        ),
    )
    .await;
    assert!(
        changed.status.is_success() || changed.status.is_redirection(),
        "{} {}",
        changed.status,
        changed.body
    );
    let viewer = session_cookie(&changed).expect("the session goes on under a new id");
    assert_eq!(
        call(&router, ListTenants::PATH, &viewer, "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&router, ListStaff::PATH, &viewer, "").await.status,
        StatusCode::FORBIDDEN
    );

    let created_events = audit(&pool, "staff.created").await;
    let last = created_events.last().unwrap();
    assert_eq!(last.3["email"], "gi@example.com");
    assert!(!serde_json::to_string(&created_events)
        .unwrap()
        .contains(&password));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn signing_out_ends_the_session_and_is_recorded(pool: PgPool) {
    staff(&pool, "hal@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool.clone());
    let (_, cookie) = sign_in(&router, "hal@example.com", PASSWORD).await;
    let cookie = cookie.unwrap();
    let res = call(&router, SignOut::PATH, &cookie, "").await;
    assert!(
        res.status.is_success() || res.status.is_redirection(),
        "{}",
        res.status
    );
    assert!(whoami(&router, &cookie).await.is_null());
    assert_eq!(audit(&pool, "staff.sign_out").await.len(), 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn pages_send_signed_out_visitors_to_sign_in(pool: PgPool) {
    let router = app(pool.clone());
    let res = get(&router, "/t/demo").await;
    assert!(res.status.is_redirection(), "{}", res.status);
    assert_eq!(res.header("location"), "/sign-in?next=/t/demo");
    let page = get(&router, "/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Sign in to staff-console"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn using_the_console_pushes_the_idle_expiry_forward(pool: PgPool) {
    staff(&pool, "ivy@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool.clone());
    let (_, cookie) = sign_in(&router, "ivy@example.com", PASSWORD).await;
    let cookie = cookie.unwrap();
    // Twenty-five idle minutes later...
    sqlx::query("UPDATE tower_sessions.session SET expiry_date = now() + interval '5 minutes'")
        .execute(&pool)
        .await
        .unwrap();
    // ...one request renews the full thirty.
    assert_eq!(
        call(&router, ListTenants::PATH, &cookie, "").await.status,
        StatusCode::OK
    );
    let minutes: f64 = sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(expiry_date) - now()) / 60)::float8 FROM tower_sessions.session",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(minutes > 29.0, "renewed to {minutes} minutes");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_password_reset_or_a_disable_ends_sessions_for_good(pool: PgPool) {
    staff(&pool, "admin@example.com", Role::Admin, PASSWORD).await;
    let jo = staff(&pool, "jo@example.com", Role::Operator, PASSWORD).await;
    let router = app(pool.clone());
    let (_, admin) = sign_in(&router, "admin@example.com", PASSWORD).await;
    let admin = admin.unwrap();

    // A reset (the answer to a suspected compromise) ends the session someone else holds.
    let (_, stolen) = sign_in(&router, "jo@example.com", PASSWORD).await;
    let stolen = stolen.unwrap();
    let reset = call(
        &router,
        ResetStaffPassword::PATH,
        &admin,
        &format!("staff_id={jo}"),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    assert!(whoami(&router, &stolen).await.is_null());

    // Disable, then re-enable: the old session does not come back.
    let new_password = reset.json()["password"].as_str().unwrap().to_owned();
    let (_, session) = sign_in(&router, "jo@example.com", &new_password).await;
    let session = session.unwrap();
    for active in [false, true] {
        let res = call(
            &router,
            SetStaffActive::PATH,
            &admin,
            &format!("staff_id={jo}&active={active}"),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    }
    assert!(
        whoami(&router, &session).await.is_null(),
        "re-enabling does not revive it"
    );
    let (_, again) = sign_in(&router, "jo@example.com", &new_password).await;
    assert!(again.is_some(), "signing in again works");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_plain_form_sign_in_error_goes_back_to_the_form_not_to_json(pool: PgPool) {
    let router = app(pool);
    let mut req = post_form(
        app::auth::api::SignIn::PATH,
        None,
        "email=x%40example.com&password=wrong+password&next=",
    );
    req.headers_mut()
        .insert("accept", "text/html".parse().unwrap());
    req.headers_mut()
        .insert("referer", "http://127.0.0.1:3000/sign-in".parse().unwrap());
    let res = send(&router, req).await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.body);
    assert!(res
        .header("location")
        .starts_with("http://127.0.0.1:3000/sign-in"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_return_path_with_a_tab_cannot_leave_the_console(pool: PgPool) {
    staff(&pool, "kim@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool);
    let body = format!(
        "email=kim%40example.com&password={}&next=%2F%09%2Fevil.example",
        urlencode(PASSWORD)
    );
    let mut req = post_form(app::auth::api::SignIn::PATH, None, &body);
    req.headers_mut()
        .insert("accept", "text/html".parse().unwrap());
    let res = send(&router, req).await;
    assert_eq!(res.status, StatusCode::FOUND, "{}", res.body);
    assert_eq!(res.header("location"), "/");
}

/// Signs in and returns the cookie, or fails the test with the answer.
async fn signed_in(router: &axum::Router, email: &str, password: &str) -> String {
    let (answer, cookie) = sign_in(router, email, password).await;
    cookie.unwrap_or_else(|| panic!("sign-in failed: {} {}", answer.status, answer.body))
}

fn change_body(current: &str, new: &str, confirm: &str) -> String {
    format!(
        "current={}&new={}&confirm={}&next=%2Faudit",
        urlencode(current),
        urlencode(new),
        urlencode(confirm)
    )
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_handed_over_password_opens_only_the_password_page_until_replaced(pool: PgPool) {
    let handed_over = "handed over by the admin 42";
    let id = staff_handed_over(&pool, "kim.lee@example.com", Role::Operator, handed_over).await;
    let router = app(pool.clone());
    let elsewhere = signed_in(&router, "kim.lee@example.com", handed_over).await;
    let cookie = signed_in(&router, "kim.lee@example.com", handed_over).await;
    assert_eq!(whoami(&router, &cookie).await["must_change_password"], true);

    // Every page but the password page sends them there, coming back afterwards; every
    // other server function refuses.
    let page = get_as(&router, "/audit", &cookie).await;
    assert!(
        page.status.is_redirection(),
        "{} {}",
        page.status,
        page.body
    );
    assert_eq!(page.header("location"), "/account/password?next=/audit");
    let form = get_as(&router, "/account/password", &cookie).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.body.contains("Choose your own password"),
        "{}",
        form.body
    );
    let refused = call(&router, ListTenants::PATH, &cookie, "").await;
    assert_eq!(refused.json()["kind"], "password_change_required");
    assert!(
        audit(&pool, "authorization.refused").await.is_empty(),
        "a person who did nothing wrong leaves no refusal in the log"
    );

    // Bad input: a message on the field, nothing changed.
    let good = "quiet meadow copper kite";
    for (body, field, says) in [
        (
            change_body(handed_over, "too short", "too short"),
            "new",
            "at least 12",
        ),
        (
            change_body(handed_over, good, "quiet meadow copper kit"),
            "confirm",
            "differ",
        ),
        (
            change_body(handed_over, "Password123!", "Password123!"),
            "new",
            "common passwords",
        ),
        (
            change_body(handed_over, "qwertyuiop12", "qwertyuiop12"),
            "new",
            "common passwords",
        ),
        (
            change_body(
                handed_over,
                "hello kim.lee@example.com",
                "hello kim.lee@example.com",
            ),
            "new",
            "email",
        ),
        (
            change_body(
                handed_over,
                "KIM.LEE and a long tail",
                "KIM.LEE and a long tail",
            ),
            "new",
            "email",
        ),
        (
            change_body(handed_over, &"x".repeat(129), &"x".repeat(129)),
            "new",
            "at most 128",
        ),
        (
            change_body(handed_over, handed_over, handed_over),
            "new",
            "different",
        ),
        (change_body("", good, good), "current", "current password"),
        (
            change_body("not the password at all", good, good),
            "current",
            "not your current",
        ),
    ] {
        let answer = call(&router, ChangePassword::PATH, &cookie, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.body
        );
        let json = answer.json();
        assert_eq!(json["field"], field, "{body}: {json}");
        assert!(
            json["message"].as_str().unwrap().contains(says),
            "{body}: {json}"
        );
    }
    let wrong = audit(&pool, "staff.password_change").await;
    assert_eq!(wrong.len(), 1, "the wrong current password is recorded");
    assert_eq!(
        (wrong[0].0.as_str(), wrong[0].1.as_deref()),
        ("deny", Some("INVALID_CREDENTIALS"))
    );
    let failures: i32 = sqlx::query_scalar("SELECT failed_sign_ins FROM staff WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        failures, 1,
        "and counts towards the lockout like a failed sign-in"
    );

    // The change: this session goes on (under a new id), every other one ends.
    let changed = call(
        &router,
        ChangePassword::PATH,
        &cookie,
        &change_body(handed_over, good, good),
    )
    .await;
    assert!(
        changed.status.is_success() || changed.status.is_redirection(),
        "{} {}",
        changed.status,
        changed.body
    );
    let cookie = session_cookie(&changed).expect("a new session id");
    assert_eq!(
        whoami(&router, &cookie).await["must_change_password"],
        false
    );
    assert!(
        whoami(&router, &elsewhere).await.is_null(),
        "the other session ended"
    );
    assert_eq!(
        call(&router, ListTenants::PATH, &cookie, "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_as(&router, "/audit", &cookie).await.status,
        StatusCode::OK
    );
    let done = audit(&pool, "staff.password_changed").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].3["required"], true);
    let log = serde_json::to_string(&audit(&pool, "staff.password_change").await).unwrap()
        + &serde_json::to_string(&done).unwrap();
    assert!(
        !log.contains(good) && !log.contains(handed_over),
        "no password in the log"
    );

    // The old password is gone, the new one works.
    let (old, _) = sign_in(&router, "kim.lee@example.com", handed_over).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    signed_in(&router, "kim.lee@example.com", good).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_reset_password_must_be_replaced_again_and_anyone_may_change_their_own(pool: PgPool) {
    staff(&pool, "admin@example.com", Role::Admin, PASSWORD).await;
    let jo = staff(&pool, "jo@example.com", Role::Viewer, PASSWORD).await;
    let router = app(pool.clone());
    let admin = signed_in(&router, "admin@example.com", PASSWORD).await;

    // Self-service, without being asked to: a viewer changes their own.
    let viewer = signed_in(&router, "jo@example.com", PASSWORD).await;
    let mine = "violet harbor seven drums";
    let changed = call(
        &router,
        ChangePassword::PATH,
        &viewer,
        &change_body(PASSWORD, mine, mine),
    )
    .await;
    assert!(
        changed.status.is_success() || changed.status.is_redirection(),
        "{}",
        changed.body
    );
    assert_eq!(
        audit(&pool, "staff.password_changed").await[0].3["required"],
        false
    );

    // An admin resets it: the one-time password opens only the password page again.
    let reset = call(
        &router,
        ResetStaffPassword::PATH,
        &admin,
        &format!("staff_id={jo}"),
    )
    .await;
    let one_time = reset.json()["password"].as_str().unwrap().to_owned();
    let cookie = signed_in(&router, "jo@example.com", &one_time).await;
    assert_eq!(
        call(&router, ListTenants::PATH, &cookie, "").await.json()["kind"],
        "password_change_required"
    );
    // Signing out still works.
    let out = call(&router, SignOut::PATH, &cookie, "").await;
    assert!(
        out.status.is_success() || out.status.is_redirection(),
        "{}",
        out.body
    );
    assert!(whoami(&router, &cookie).await.is_null());
    // Guessing the current password from a (stolen) session stops where sign-in would:
    // the account locks, this session ends, and nothing more is checked.
    let guesser = signed_in(&router, "jo@example.com", &one_time).await;
    let before_lock = signed_in(&router, "jo@example.com", &one_time).await;
    let guess = change_body(
        "a wrong guess at it",
        "violet harbor seven drums 2",
        "violet harbor seven drums 2",
    );
    for n in 1..=4 {
        let answer = call(&router, ChangePassword::PATH, &guesser, &guess).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "guess {n}: {}",
            answer.body
        );
    }
    let fifth = call(&router, ChangePassword::PATH, &guesser, &guess).await;
    assert_eq!(fifth.status.as_u16(), 423, "{}", fifth.body);
    assert!(
        whoami(&router, &guesser).await.is_null(),
        "the guessing session ended"
    );
    let (locked, _) = sign_in(&router, "jo@example.com", &one_time).await;
    assert_eq!(locked.status.as_u16(), 423, "{}", locked.body);
    assert_eq!(
        call(
            &router,
            ChangePassword::PATH,
            &before_lock,
            &change_body(&one_time, mine, mine)
        )
        .await
        .status
        .as_u16(),
        423,
        "while locked, even the right password is not checked"
    );
}
