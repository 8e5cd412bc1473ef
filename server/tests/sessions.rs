//! Staff sessions one can see and end: one's own ("Your sessions"), and anyone's for an
//! admin (the runbook's deny-list). An ended session is refused at its next request on any
//! instance; every ending is recorded with its reason.

use crate::common;
use app::auth::api::{SignOut, Whoami};
use app::auth::{Role, StaffSession};
use app::panels::account::api::{EndMyOtherSessions, EndMySession, MySessions};
use app::panels::staff::api::{EndAllStaffSessions, EndStaffSession, StaffSessions};
use axum::http::StatusCode;
use leptos::server_fn::ServerFn as _;
use sqlx::PgPool;

fn sessions(answer: &common::Answer) -> Vec<StaffSession> {
    assert!(
        answer.status.is_success(),
        "{} {}",
        answer.status,
        answer.body
    );
    serde_json::from_str(&answer.body).expect("sessions")
}

/// Whether `cookie` is still signed in on `app`.
async fn signed_in(app: &axum::Router, cookie: &str) -> bool {
    let answer = common::call(app, Whoami::PATH, cookie, "").await;
    answer.status.is_success() && answer.body != "null"
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn people_see_their_sessions_and_end_the_others(pool: PgPool) {
    let a = common::app(pool.clone());
    let b = common::app(pool.clone());
    let email = "ops@example.com";
    let id = common::staff(&pool, email, Role::Operator, common::PERSON_PASSWORD).await;
    let (_, laptop) = common::sign_in(&a, email, common::PERSON_PASSWORD).await;
    let laptop = laptop.unwrap();
    let (_, phone) = common::sign_in(&b, email, common::PERSON_PASSWORD).await;
    let phone = phone.unwrap();
    let (_, tablet) = common::sign_in(&a, email, common::PERSON_PASSWORD).await;
    let tablet = tablet.unwrap();

    let mine = sessions(&common::call(&a, MySessions::PATH, &laptop, "").await);
    assert_eq!(mine.len(), 3);
    assert!(mine.iter().all(|s| s.staff_id == id));
    assert_eq!(mine.iter().filter(|s| s.current).count(), 1);
    assert!(
        mine.iter().all(|s| s.ip.as_deref() == Some("203.0.113.7")),
        "{mine:?}"
    );
    let current = mine.iter().find(|s| s.current).unwrap().id;

    // This session is ended by signing out, not here.
    let refused = common::call(
        &a,
        EndMySession::PATH,
        &laptop,
        &format!("session_id={current}"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    // Someone else's session is not theirs to end.
    let (_, other) = common::person(&pool, &a, Role::Viewer).await;
    let theirs = sessions(&common::call(&a, MySessions::PATH, &other, "").await);
    let refused = common::call(
        &a,
        EndMySession::PATH,
        &laptop,
        &format!("session_id={}", theirs[0].id),
    )
    .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert!(signed_in(&a, &other).await);

    // Ending the phone's session on instance A signs it out on instance B.
    let phone_row = sessions(&common::call(&b, MySessions::PATH, &phone, "").await)
        .into_iter()
        .find(|s| s.current)
        .unwrap()
        .id;
    let ended = common::call(
        &a,
        EndMySession::PATH,
        &laptop,
        &format!("session_id={phone_row}"),
    )
    .await;
    assert!(ended.status.is_success(), "{} {}", ended.status, ended.body);
    assert!(
        !signed_in(&b, &phone).await,
        "the ended session still works on B"
    );
    assert!(signed_in(&a, &laptop).await);

    let all = common::call(&a, EndMyOtherSessions::PATH, &laptop, "").await;
    assert_eq!(all.body, "1", "{}", all.body);
    assert!(!signed_in(&a, &tablet).await);
    assert!(signed_in(&a, &laptop).await);
    let events = common::audit(&pool, "staff.session_ended").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].3["session"], phone_row.to_string());
    assert_eq!(common::audit(&pool, "staff.sessions_ended").await.len(), 1);

    // Signing out ends the row too: it leaves the list.
    let out = common::call(&a, SignOut::PATH, &laptop, "").await;
    assert!(
        out.status.is_success() || out.status.is_redirection(),
        "{}",
        out.status
    );
    let ended_by: Option<String> =
        sqlx::query_scalar("SELECT end_reason FROM staff_sessions WHERE id = $1")
            .bind(current)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(ended_by.as_deref(), Some("signed out"));
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn admins_end_anyones_session_with_a_reason_seen_on_every_instance(pool: PgPool) {
    let a = common::app(pool.clone());
    let b = common::app(pool.clone());
    let admin = common::admin_cookie(&pool, &a).await;
    let email = "ic@example.com";
    let id = common::staff(
        &pool,
        email,
        Role::IncidentCommander,
        common::PERSON_PASSWORD,
    )
    .await;
    let (_, stolen) = common::sign_in(&b, email, common::PERSON_PASSWORD).await;
    let stolen = stolen.unwrap();
    let (_, own) = common::sign_in(&b, email, common::PERSON_PASSWORD).await;
    let own = own.unwrap();

    let everyone = sessions(&common::call(&a, StaffSessions::PATH, &admin, "").await);
    let theirs: Vec<_> = everyone.iter().filter(|s| s.staff_id == id).collect();
    assert_eq!(theirs.len(), 2, "{everyone:?}");
    assert!(everyone.iter().any(|s| s.current && s.staff_id != id));
    let target = theirs[1].id;

    let no_reason = common::call(
        &a,
        EndStaffSession::PATH,
        &admin,
        &format!("session_id={target}&reason=%20"),
    )
    .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_reason.json()["field"], "reason");
    assert_eq!(
        sessions(&common::call(&a, StaffSessions::PATH, &admin, "").await).len(),
        everyone.len(),
        "nothing ended without a reason"
    );

    let ended = common::call(
        &a,
        EndStaffSession::PATH,
        &admin,
        &format!("session_id={target}&reason=token%20theft%20suspected"),
    )
    .await;
    assert!(ended.status.is_success(), "{} {}", ended.status, ended.body);
    // One of the two sessions, signed in on B, is refused at its next request there.
    let still = [signed_in(&b, &stolen).await, signed_in(&b, &own).await];
    assert_eq!(still.iter().filter(|s| **s).count(), 1, "{still:?}");
    let events = common::audit(&pool, "staff.session_ended").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].3["email"], email);
    let again = common::call(
        &a,
        EndStaffSession::PATH,
        &admin,
        &format!("session_id={target}&reason=again"),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);

    // Every session of the person, in one action.
    let all = common::call(
        &a,
        EndAllStaffSessions::PATH,
        &admin,
        &format!("staff_id={id}&reason=account%20compromised"),
    )
    .await;
    assert_eq!(all.body, "1", "{}", all.body);
    assert!(!signed_in(&b, &stolen).await && !signed_in(&b, &own).await);
    let events = common::audit(&pool, "staff.sessions_ended").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].3["sessions"], 1);
    assert!(
        sessions(&common::call(&a, StaffSessions::PATH, &admin, "").await)
            .iter()
            .all(|s| s.staff_id != id)
    );
    assert!(signed_in(&a, &admin).await);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn everyones_sessions_end_at_once_from_the_command_line(pool: PgPool) {
    let a = common::app(pool.clone());
    let b = common::app(pool.clone());
    let (_, viewer) = common::person(&pool, &a, Role::Viewer).await;
    let (_, admin) = common::person(&pool, &b, Role::Admin).await;
    let cli = app::auth::Actor::command_line_unchecked(pool.clone(), "ic");
    let refused = app::panels::staff::ops::end_everyones_sessions(&cli, " ").await;
    assert!(
        matches!(refused, Err(app::error::AppError::Validation { ref field, .. }) if field == "reason"),
        "{refused:?}"
    );
    assert!(signed_in(&a, &viewer).await && signed_in(&b, &admin).await);

    let (people, sessions) =
        app::panels::staff::ops::end_everyones_sessions(&cli, "session store leaked")
            .await
            .unwrap();
    assert_eq!((people, sessions), (2, 2));
    assert!(!signed_in(&a, &viewer).await);
    assert!(!signed_in(&b, &admin).await);
    let events = common::audit(&pool, "staff.all_sessions_ended").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].2, "cli:ic");
    assert_eq!(events[0].3["sessions"], 2);
}
