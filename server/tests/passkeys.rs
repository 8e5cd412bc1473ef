//! Passkeys: enrolled at the first sign-in, signing in and stepping up with one, and each
//! refused answer (an unknown credential, another site's origin, a challenge answered
//! twice or too late) refused with its message, audited, and counted toward the lock.
//! The answers come from a software authenticator signing real assertions.

use crate::common::{self, authenticator::SoftAuthenticator};
use app::auth::api::{StartPasskeySignIn, StartPasskeyStepUp, StepUpWithPasskey, VerifyPasskey};
use app::auth::Role;
use app::domain::factors::recovery;
use app::panels::account::api::{
    FinishPasskeyRegistration, NewRecoveryCodes, RemovePasskey, RemoveTotp,
    StartPasskeyRegistration,
};
use app::panels::overview::api::ListTenants;
use axum::http::StatusCode;
use axum::Router;
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;

fn email() -> String {
    format!("passkey-{}@example.com", uuid::Uuid::new_v4().simple())
}

fn answer_body(challenge: &serde_json::Value, credential: &str) -> String {
    format!(
        "ceremony={}&credential={}",
        common::urlencode(challenge["ceremony"].as_str().expect("ceremony")),
        common::urlencode(credential)
    )
}

fn options(challenge: &serde_json::Value) -> &str {
    challenge["options"].as_str().expect("options")
}

/// Adds a passkey named `name` from `authenticator` in the session `cookie`: the answer
/// of the registration's second half.
async fn register(
    app: &Router,
    cookie: &str,
    name: &str,
    authenticator: &mut SoftAuthenticator,
) -> common::Answer {
    let started = common::call(
        app,
        StartPasskeyRegistration::PATH,
        cookie,
        &format!("name={}", common::urlencode(name)),
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let challenge = started.json();
    let credential = authenticator.register(options(&challenge));
    common::call(
        app,
        FinishPasskeyRegistration::PATH,
        cookie,
        &answer_body(&challenge, &credential),
    )
    .await
}

/// Signs in with the password: the cookie of the pending second step, and its passkey
/// challenge.
async fn password_step(app: &Router, email: &str) -> (String, serde_json::Value) {
    let (first, cookie) = common::sign_in(app, email, common::PERSON_PASSWORD).await;
    let cookie = cookie.unwrap_or_else(|| panic!("password step: {} {}", first.status, first.body));
    let challenge = common::call(app, StartPasskeySignIn::PATH, &cookie, "").await;
    assert_eq!(challenge.status, StatusCode::OK, "{}", challenge.body);
    (cookie, challenge.json())
}

/// The second step answered by `key`'s assertion of `challenge`, in the pending sign-in
/// `pending`.
async fn answer_sign_in(
    app: &Router,
    pending: &str,
    challenge: &serde_json::Value,
    key: &mut SoftAuthenticator,
) -> common::Answer {
    let body = answer_body(challenge, &key.assert(options(challenge)));
    common::send(
        app,
        common::post_form(VerifyPasskey::PATH, Some(pending), &body),
    )
    .await
}

/// A person with one passkey (registered through the console), signed out: their id,
/// email and authenticator.
async fn person_with_passkey(
    pool: &PgPool,
    app: &Router,
) -> (uuid::Uuid, String, SoftAuthenticator) {
    let email = email();
    let id = common::staff(pool, &email, Role::Admin, common::PERSON_PASSWORD).await;
    let (_, cookie) = common::sign_in(app, &email, common::PERSON_PASSWORD).await;
    let mut key = SoftAuthenticator::new(common::PASSKEY_ORIGIN);
    let added = register(app, &cookie.expect("enrolment session"), "Laptop", &mut key).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    (id, email, key)
}

async fn failures(pool: &PgPool, id: uuid::Uuid) -> i32 {
    sqlx::query_scalar("SELECT failed_sign_ins FROM staff WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_passkey_enrolled_at_first_sign_in_signs_in_and_steps_up(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let email = email();
    let id = common::staff(&pool, &email, Role::Admin, common::PERSON_PASSWORD).await;
    let (_, cookie) = common::sign_in(&app, &email, common::PERSON_PASSWORD).await;
    let cookie = cookie.expect("signed in to enrol");

    // A name is required, of at most 100 characters: said at the field, nothing started.
    for (bad, message) in [
        ("", "Name the passkey"),
        (&*"k".repeat(101), "Use at most 100"),
    ] {
        let refused = common::call(
            &app,
            StartPasskeyRegistration::PATH,
            &cookie,
            &format!("name={}", common::urlencode(bad)),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.body
        );
        assert_eq!(refused.json()["field"], "name");
        assert!(
            refused.json()["message"]
                .as_str()
                .unwrap()
                .starts_with(message),
            "{}",
            refused.body
        );
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM staff_webauthn_ceremonies")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(waiting, 0);

    let mut key = SoftAuthenticator::new(common::PASSKEY_ORIGIN);
    let added = register(&app, &cookie, "Work laptop", &mut key).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    // The first factor brings the recovery codes, shown once; the console opens.
    assert_eq!(added.json().as_array().map(Vec::len), Some(recovery::COUNT));
    let opened = common::call(&app, ListTenants::PATH, &cookie, "").await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.body);
    let factor: String =
        sqlx::query_scalar("SELECT factor FROM staff_sessions WHERE staff_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(factor, "passkey");
    let logged = common::audit(&pool, "staff.factor_added").await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].3["passkey"], "Work laptop");

    // Signing in again: the password, then the passkey (the challenge names it).
    let (pending, challenge) = password_step(&app, &email).await;
    let listed: serde_json::Value = serde_json::from_str(options(&challenge)).unwrap();
    assert_eq!(
        listed["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(listed["publicKey"]["userVerification"], "required");
    let signed_in = answer_sign_in(&app, &pending, &challenge, &mut key).await;
    assert!(
        signed_in.status.is_success() || signed_in.status.is_redirection(),
        "{}",
        signed_in.body
    );
    let session = common::session_cookie(&signed_in).expect("signed in");
    assert_eq!(
        common::call(&app, ListTenants::PATH, &session, "")
            .await
            .status,
        StatusCode::OK
    );
    let sign_ins = common::audit(&pool, "staff.sign_in").await;
    let last = sign_ins.last().unwrap();
    assert_eq!(
        (last.0.as_str(), &last.3["factor"]),
        ("success", &serde_json::json!("passkey"))
    );
    let used: Option<time::OffsetDateTime> =
        sqlx::query_scalar("SELECT last_used_at FROM staff_passkeys WHERE staff_id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(used.is_some());

    // Eleven minutes on, a dangerous action asks for a step-up; the passkey gives it.
    common::stepped_up_ago(&pool, id, 660.0).await;
    let asked = common::call(&app, NewRecoveryCodes::PATH, &session, "").await;
    assert_eq!(asked.json()["kind"], "step_up_required", "{}", asked.body);
    let challenge = common::call(&app, StartPasskeyStepUp::PATH, &session, "")
        .await
        .json();
    let assertion = key.assert(options(&challenge));
    let stepped = common::call(
        &app,
        StepUpWithPasskey::PATH,
        &session,
        &answer_body(&challenge, &assertion),
    )
    .await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.body);
    let renewed = common::call(&app, NewRecoveryCodes::PATH, &session, "").await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    // A step-up's challenge belongs to its session: another session cannot answer it.
    common::stepped_up_ago(&pool, id, 660.0).await;
    let challenge = common::call(&app, StartPasskeyStepUp::PATH, &session, "")
        .await
        .json();
    let assertion = key.assert(options(&challenge));
    let elsewhere = common::call(
        &app,
        StepUpWithPasskey::PATH,
        &cookie,
        &answer_body(&challenge, &assertion),
    )
    .await;
    assert_eq!(elsewhere.json()["field"], "passkey", "{}", elsewhere.body);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn refused_passkey_answers_say_why_and_count_toward_the_lock(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let (id, email, mut key) = person_with_passkey(&pool, &app).await;
    let refused = |answer: &common::Answer, code_start: &str| {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.body
        );
        assert_eq!(answer.json()["field"], "passkey", "{}", answer.body);
        assert!(
            answer.json()["message"]
                .as_str()
                .unwrap()
                .starts_with(code_start),
            "{}",
            answer.body
        );
    };

    // A credential the console never registered (another authenticator).
    let (pending, challenge) = password_step(&app, &email).await;
    let mut stranger = SoftAuthenticator::new(common::PASSKEY_ORIGIN);
    let answer = answer_sign_in(&app, &pending, &challenge, &mut stranger).await;
    refused(&answer, "That passkey is not one of yours");
    assert_eq!(failures(&pool, id).await, 1);

    // The right passkey, answering a phishing site's page: its client data names that site.
    let (pending, challenge) = password_step(&app, &email).await;
    key.origin = "https://console.example.evil".into();
    let answer = answer_sign_in(&app, &pending, &challenge, &mut key).await;
    key.origin = common::PASSKEY_ORIGIN.into();
    refused(&answer, "The passkey answered for another site");
    assert_eq!(failures(&pool, id).await, 2);

    // A challenge is checked once: the same good answer again, from a new password step,
    // is refused.
    let (pending, challenge) = password_step(&app, &email).await;
    let good = answer_body(&challenge, &key.assert(options(&challenge)));
    let first = common::call(&app, VerifyPasskey::PATH, &pending, &good).await;
    assert!(first.status.is_success(), "{}", first.body);
    let (again, _) = password_step(&app, &email).await;
    refused(
        &common::call(&app, VerifyPasskey::PATH, &again, &good).await,
        "This passkey request was already answered",
    );

    // A challenge past its five minutes: refused as expired, and not held against anyone.
    let before = failures(&pool, id).await;
    let (pending, challenge) = password_step(&app, &email).await;
    sqlx::query("UPDATE staff_webauthn_ceremonies SET expires_at = now() - interval '1 second'")
        .execute(&mut common::fixture(&pool).await)
        .await
        .unwrap();
    let late = answer_sign_in(&app, &pending, &challenge, &mut key).await;
    refused(&late, "This passkey request expired");
    assert_eq!(failures(&pool, id).await, before);

    let codes: Vec<String> = sqlx::query_scalar(
        "SELECT code FROM audit_events WHERE action = 'staff.sign_in' AND outcome = 'deny' ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        codes,
        [
            "UNKNOWN_PASSKEY",
            "PASSKEY_WRONG_ORIGIN",
            "PASSKEY_CHALLENGE_USED",
            "PASSKEY_CHALLENGE_EXPIRED"
        ]
    );

    // Refusals lock the account like wrong codes: five in the window.
    sqlx::query("UPDATE staff SET failed_sign_ins = 0, failed_window_start = NULL WHERE id = $1")
        .bind(id)
        .execute(&mut common::fixture(&pool).await)
        .await
        .unwrap();
    let mut last = None;
    for _ in 0..5 {
        let (pending, challenge) = password_step(&app, &email).await;
        last = Some(answer_sign_in(&app, &pending, &challenge, &mut stranger).await);
    }
    let last = last.unwrap();
    assert_eq!(last.status.as_u16(), 423, "{}", last.body);
    assert_eq!(common::audit(&pool, "staff.locked").await.len(), 1);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_last_factor_stays_and_a_second_passkey_needs_a_step_up(pool: PgPool) {
    let app = common::app_requiring_mfa(pool.clone());
    let (id, email, mut key) = person_with_passkey(&pool, &app).await;
    let (pending, challenge) = password_step(&app, &email).await;
    let signed_in = answer_sign_in(&app, &pending, &challenge, &mut key).await;
    let cookie = common::session_cookie(&signed_in).expect("signed in");
    let only: uuid::Uuid = sqlx::query_scalar("SELECT id FROM staff_passkeys WHERE staff_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();

    // The only factor: removing it is refused at the field, nothing removed.
    let refused = common::call(
        &app,
        RemovePasskey::PATH,
        &cookie,
        &format!("passkey_id={only}"),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert!(refused.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("This is your only second factor"));

    // The same authenticator again is refused; a name already used is refused.
    let again = register(&app, &cookie, "Laptop again", &mut key).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let same_name =
        common::call(&app, StartPasskeyRegistration::PATH, &cookie, "name=Laptop").await;
    assert_eq!(same_name.json()["field"], "name", "{}", same_name.body);

    // A second passkey, beside the first, needs a recent factor.
    common::stepped_up_ago(&pool, id, 660.0).await;
    let asked = common::call(&app, StartPasskeyRegistration::PATH, &cookie, "name=Phone").await;
    assert_eq!(asked.json()["kind"], "step_up_required", "{}", asked.body);
    common::stepped_up_ago(&pool, id, 0.0).await;
    let mut phone = SoftAuthenticator::new(common::PASSKEY_ORIGIN);
    let added = register(&app, &cookie, "Phone", &mut phone).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    // Not the first factor: the recovery codes stay as they are, none are shown.
    assert_eq!(added.json(), serde_json::json!([]));

    // Now the first can go; the second is then the last.
    let removed = common::call(
        &app,
        RemovePasskey::PATH,
        &cookie,
        &format!("passkey_id={only}"),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT name FROM staff_passkeys WHERE staff_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, ["Phone"]);
    // With an authenticator app beside it, the app can go too, but not both.
    common::enrol_totp(&pool, id).await;
    let app_removed = common::call(&app, RemoveTotp::PATH, &cookie, "").await;
    assert_eq!(app_removed.status, StatusCode::OK, "{}", app_removed.body);
    let removed_events = common::audit(&pool, "staff.factor_removed").await;
    assert_eq!(removed_events.len(), 2);
    assert_eq!(removed_events[0].3["passkey"], "Laptop");
    assert_eq!(removed_events[1].3["factor"], "totp");
}
