//! Staff second factors: enrolment at the first sign-in, the second step of signing in, a
//! code accepted once, lockout on wrong codes, recovery codes, step-up.

use crate::common;
use app::auth::api::{SignInPolicy, StepUp, Whoami};
use app::auth::Role;
use app::domain::factors::totp::TotpSecret;
use app::domain::factors::{recovery, CODE_SHAPE};
use app::domain::tokens::pepper::MasterKey;
use app::panels::account::api::{ConfirmTotpEnrolment, StartTotpEnrolment};
use app::panels::overview::api::ListTenants;
use app::panels::staff::api::{ResetStaffFactors, SetStaffActive};
use axum::http::StatusCode;
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;

fn email() -> String {
    format!("mfa-{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn staged_secret(pool: &PgPool, staff: uuid::Uuid) -> TotpSecret {
    let (nonce, sealed): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("SELECT nonce, secret_sealed FROM staff_totp WHERE staff_id = $1")
            .bind(staff)
            .fetch_one(pool)
            .await
            .unwrap();
    TotpSecret::open(&MasterKey::new(common::MASTER_KEY), staff, &nonce, &sealed).expect("opens")
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_first_sign_in_opens_nothing_but_enrolling_an_app(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Admin, common::PERSON_PASSWORD).await;
    let (_, cookie) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let cookie = cookie.expect("signed in to enrol");
    // Someone else with the password, signed in before the owner enrols.
    let (_, other) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let other = other.expect("a second password-only session");
    let me = common::call(&app, Whoami::PATH, &cookie, "").await.json();
    assert_eq!(me["must_enrol_factor"], true, "{me}");
    let refused = common::call(&app, ListTenants::PATH, &cookie, "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.json()["kind"], "enrolment_required");

    let started = common::call(&app, StartTotpEnrolment::PATH, &cookie, "").await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let shown = started.json();
    assert!(shown["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = staged_secret(&pool, id).await;
    assert_eq!(shown["secret"], secret.base32());

    // Another session with the same password cannot confirm the set-up this one started.
    let body = format!("code={}", common::totp_code(&secret, 0));
    let elsewhere = common::call(&app, ConfirmTotpEnrolment::PATH, &other, &body).await;
    assert_eq!(elsewhere.status, StatusCode::CONFLICT, "{}", elsewhere.body);

    // A wrong first code, or one of the wrong shape: beside the field, nothing confirmed.
    for (bad, message) in [
        ("000000", "That code does not match"),
        ("12a456", "Enter the 6 digits"),
    ] {
        let answer = common::call(
            &app,
            ConfirmTotpEnrolment::PATH,
            &cookie,
            &format!("code={bad}"),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.body
        );
        assert_eq!(answer.json()["field"], "code");
        assert!(
            answer.json()["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{}",
            answer.body
        );
    }
    let body = format!("code={}", common::totp_code(&secret, 0));
    let confirmed = common::call(&app, ConfirmTotpEnrolment::PATH, &cookie, &body).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let codes = confirmed.json();
    assert_eq!(
        codes.as_array().map(Vec::len),
        Some(recovery::COUNT),
        "{codes}"
    );

    let opened = common::call(&app, ListTenants::PATH, &cookie, "").await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    // The other password-only session gains nothing from the enrolment: it is signed out.
    let stale = common::call(&app, ListTenants::PATH, &other, "").await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.body);
    let added = common::audit(&pool, "staff.factor_added").await;
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].3["recovery_codes"], 10);
    // The codes are never stored in clear.
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT code_hash FROM staff_recovery_codes WHERE staff_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    let first = codes[0].as_str().unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 32 && !String::from_utf8_lossy(h).contains(first)));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_password_alone_signs_nobody_in_who_has_an_app(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Admin, common::PERSON_PASSWORD).await;
    let secret = common::enrol_totp(&pool, id).await;
    let (first, cookie) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    assert!(
        first.header("location").starts_with("/sign-in/verify"),
        "{:?}",
        first.headers
    );
    let halfway = cookie.expect("a cookie for the second step");
    assert_eq!(
        common::call(&app, Whoami::PATH, &halfway, "").await.body,
        "null"
    );
    let refused = common::call(&app, ListTenants::PATH, &halfway, "").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let (second, cookie) =
        common::verify_code(&app, &halfway, &common::totp_code(&secret, 0)).await;
    assert!(
        second.status.is_success() || second.status.is_redirection(),
        "{} {}",
        second.status,
        second.body
    );
    assert_eq!(second.header("location"), "/");
    let cookie = cookie.expect("signed in");
    assert_ne!(cookie, halfway, "the session id changes at sign-in");
    let me = common::call(&app, Whoami::PATH, &cookie, "").await.json();
    assert_eq!(me["email"], email);
    let signed_in = common::audit(&pool, "staff.sign_in").await;
    assert_eq!(signed_in.last().unwrap().3["factor"], "totp");
    assert_eq!(
        common::audit(&pool, "staff.password_accepted").await.len(),
        1
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_code_is_accepted_once(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Viewer, common::PERSON_PASSWORD).await;
    let secret = common::enrol_totp(&pool, id).await;
    let code = common::totp_code(&secret, 0);
    let (_, first) = common::sign_in_with_code(&app, &email, common::PERSON_PASSWORD, &code).await;
    assert!(first.is_some());
    // Seen over a shoulder and typed in another browser within its 30 seconds: refused.
    let (replayed, _) =
        common::sign_in_with_code(&app, &email, common::PERSON_PASSWORD, &code).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        replayed.body
    );
    assert!(replayed.json()["message"]
        .as_str()
        .unwrap()
        .contains("already used"));
    let denied = common::audit(&pool, "staff.sign_in").await;
    assert_eq!(
        denied.last().unwrap().1.as_deref(),
        Some("SECOND_FACTOR_REPLAYED")
    );
    // Two tries of the same code at once: exactly one gets in.
    let next = common::totp_code(&secret, 1);
    let (_, a) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let (_, b) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ra, rb) = tokio::join!(
        common::verify_code(&app, &a, &next),
        common::verify_code(&app, &b, &next)
    );
    let wins = [ra, rb]
        .iter()
        .filter(|(answer, _)| answer.status.is_success() || answer.status.is_redirection())
        .count();
    assert_eq!(wins, 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn wrong_codes_lock_the_account_like_wrong_passwords(pool: PgPool) {
    let app = crate::auth::app_with_policy(
        pool.clone(),
        SignInPolicy {
            max_failures: 3,
            ..SignInPolicy::default()
        },
    );
    let email = email();
    let id = common::staff(&pool, &email, Role::Viewer, common::PERSON_PASSWORD).await;
    let secret = common::enrol_totp(&pool, id).await;
    let right = common::totp_code(&secret, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (_, cookie) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let cookie = cookie.unwrap();
    for _ in 0..2 {
        let (answer, _) = common::verify_code(&app, &cookie, wrong).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.body
        );
    }
    let (locked, _) = common::verify_code(&app, &cookie, wrong).await;
    assert_eq!(locked.status, StatusCode::LOCKED, "{}", locked.body);
    // The right code no longer helps: the lock holds, and the half sign-in is gone.
    let (after, _) = common::verify_code(&app, &cookie, &right).await;
    assert_eq!(after.json()["kind"], "sign_in_expired", "{}", after.body);
    let (again, _) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    assert_eq!(again.status, StatusCode::LOCKED, "{}", again.body);
    assert_eq!(common::audit(&pool, "staff.locked").await.len(), 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_recovery_code_signs_in_once_and_is_no_step_up(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Admin, common::PERSON_PASSWORD).await;
    common::enrol_totp(&pool, id).await;
    let master = MasterKey::new(common::MASTER_KEY);
    let codes = recovery::generate();
    for code in &codes {
        sqlx::query("INSERT INTO staff_recovery_codes (staff_id, code_hash) VALUES ($1, $2)")
            .bind(id)
            .bind(&recovery::hash(&master, code)[..])
            .execute(&mut common::fixture(&pool).await)
            .await
            .unwrap();
    }
    let typed = codes[3].to_uppercase();
    let (answer, cookie) =
        common::sign_in_with_code(&app, &email, common::PERSON_PASSWORD, &typed).await;
    assert!(
        answer.header("location").contains("recovery_codes_left=9"),
        "{:?}",
        answer.headers
    );
    let cookie = cookie.unwrap();
    let used = common::audit(&pool, "staff.recovery_code_used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].3["left"], 9);
    // It opened the console, but a dangerous action still asks for the app.
    let body = format!("staff_id={}&active=false", uuid::Uuid::new_v4());
    let dangerous = common::call(&app, SetStaffActive::PATH, &cookie, &body).await;
    assert_eq!(
        dangerous.json()["kind"],
        "step_up_required",
        "{}",
        dangerous.body
    );
    // Used up.
    let (again, _) = common::sign_in_with_code(&app, &email, common::PERSON_PASSWORD, &typed).await;
    assert_eq!(
        again.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        again.body
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_code_of_the_wrong_shape_is_answered_at_the_field_and_counts_for_nothing(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Viewer, common::PERSON_PASSWORD).await;
    common::enrol_totp(&pool, id).await;
    let (_, cookie) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let cookie = cookie.unwrap();
    for bad in ["", "12345", "1234567", "12a456", "abcde-fghi!"] {
        let (answer, _) = common::verify_code(&app, &cookie, bad).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}: {}",
            answer.body
        );
        assert_eq!(answer.json()["field"], "code");
        assert_eq!(answer.json()["message"], CODE_SHAPE);
    }
    let failures: i32 = sqlx::query_scalar("SELECT failed_sign_ins FROM staff WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failures, 0);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_second_step_without_the_first_says_to_start_again(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let (answer, _) = common::verify_code(&app, &common::some_session(), "123456").await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["kind"], "sign_in_expired");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_step_up_opens_dangerous_actions_for_ten_minutes(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let (id, cookie, secret) = common::person_with_totp(&pool, &app, Role::Admin).await;
    let other = common::staff(&pool, &email(), Role::Viewer, common::PERSON_PASSWORD).await;
    let disable = format!("staff_id={other}&active=false");
    common::stepped_up_ago(&pool, id, 601.0).await;
    let refused = common::call(&app, SetStaffActive::PATH, &cookie, &disable).await;
    assert_eq!(
        refused.json()["kind"],
        "step_up_required",
        "{}",
        refused.body
    );
    // The code that signed in cannot step up again; the next one can, once. Both from the
    // step the sign-in used, as recorded: computed from the clock instead, a 30-second
    // boundary passing since the sign-in would make "the same code" a fresh one.
    let used: i64 = sqlx::query_scalar("SELECT last_step FROM staff_totp WHERE staff_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let used = u64::try_from(used).unwrap();
    let same = format!("code={}", secret.code_at(used * 30));
    let replayed = common::call(&app, StepUp::PATH, &cookie, &same).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        replayed.body
    );
    let next = format!("code={}", secret.code_at((used + 1) * 30));
    let stepped = common::call(&app, StepUp::PATH, &cookie, &next).await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.body);
    let done = common::call(&app, SetStaffActive::PATH, &cookie, &disable).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let events = common::audit(&pool, "staff.stepped_up").await;
    assert_eq!(
        events.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["deny", "success"]
    );
    // A recovery code is refused at step-up with a message, not counted as a wrong code.
    let recovery = common::call(&app, StepUp::PATH, &cookie, "code=k7m2q-9xw4d").await;
    assert_eq!(recovery.json()["field"], "code", "{}", recovery.body);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_factor_reset_hands_over_a_new_password_so_the_old_one_enrols_nothing(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let (_, admin, _) = common::person_with_totp(&pool, &app, Role::Admin).await;
    let (id, victim, _) = common::person_with_totp(&pool, &app, Role::Operator).await;
    let victim_email: String = sqlx::query_scalar("SELECT email FROM staff WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let no_reason = common::call(
        &app,
        ResetStaffFactors::PATH,
        &admin,
        &format!("staff_id={id}&reason="),
    )
    .await;
    assert_eq!(no_reason.json()["field"], "reason", "{}", no_reason.body);
    let reset = common::call(
        &app,
        ResetStaffFactors::PATH,
        &admin,
        &format!("staff_id={id}&reason=lost%20phone"),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
    let handed = reset.json()["password"].as_str().unwrap().to_owned();
    // Their session ended; whoever knew the old password cannot sign in to enrol.
    let stale = common::call(&app, ListTenants::PATH, &victim, "").await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let (old, cookie) = common::sign_in(&app, &victim_email, common::PERSON_PASSWORD).await;
    assert!(cookie.is_none(), "{}", old.body);
    assert_eq!(old.json()["kind"], "invalid_credentials", "{}", old.body);
    // The handed-over one signs in to a password change, then the enrolment.
    let (_, cookie) = common::sign_in(&app, &victim_email, &handed).await;
    let me = common::call(
        &app,
        Whoami::PATH,
        &cookie.expect("the one-time password signs in"),
        "",
    )
    .await
    .json();
    assert_eq!(me["must_change_password"], true, "{me}");
    let reset = common::audit(&pool, "staff.factors_reset").await;
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0].3["one_time_password"], true);
    assert!(!reset[0].3.to_string().contains(&handed));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_password_checked_while_a_reset_commits_opens_nothing(pool: PgPool) {
    let app = common::app(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Operator, common::PERSON_PASSWORD).await;
    // Hold the account row, as a reset in progress would, while a sign-in with the old
    // password computes its hash and then waits for the row.
    let mut reset = common::fixture(&pool).await;
    sqlx::query("BEGIN").execute(&mut reset).await.unwrap();
    sqlx::query("SELECT 1 FROM staff WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut reset)
        .await
        .unwrap();
    let attempt = {
        let app = app.clone();
        let email = email.clone();
        tokio::spawn(async move { common::sign_in(&app, &email, common::PERSON_PASSWORD).await })
    };
    common::until_a_session_waits_for_a_lock(&pool, "the sign-in never waited for the row").await;
    let new_hash = app::auth::password::hash("a new password after the reset")
        .await
        .unwrap();
    sqlx::query("UPDATE staff SET password_hash = $2, must_change_password = true WHERE id = $1")
        .bind(id)
        .bind(&new_hash)
        .execute(&mut reset)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut reset).await.unwrap();

    let (answer, cookie) = attempt.await.unwrap();
    assert!(cookie.is_none(), "{} {}", answer.status, answer.body);
    assert_eq!(
        answer.json()["kind"],
        "invalid_credentials",
        "{}",
        answer.body
    );
    // Told apart in the log: someone still holds the replaced password.
    let refused = common::audit(&pool, "staff.sign_in").await;
    assert_eq!(
        refused.last().unwrap().1.as_deref(),
        Some("PASSWORD_REPLACED")
    );
}
