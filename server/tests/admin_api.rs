//! The admin API (issue 18, part 1): admin tokens minted in the console, and runbook 000's
//! three `curl` commands run verbatim with one in `x-admin-secret`; every refusal (missing,
//! garbled, wrong scope, another tenant's, expired, revoked, owner disabled, owner's role
//! too low) answered with its code and nothing changed.

use crate::common;
use app::auth::{Actor, Role};
use app::panels::account::api::{MintAdminToken, RevokeAdminToken};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use leptos::server_fn::ServerFn as _;
use serde_json::json;
use sqlx::PgPool;

async fn setup(pool: &PgPool) -> uuid::Uuid {
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    let master = app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY);
    app::domain::tokens::pepper::create_first_if_none(&cli, &master)
        .await
        .unwrap();
    for slug in ["acme", "globex"] {
        app::panels::tenants::ops::create(
            &cli,
            &master,
            &app::panels::tenants::NewTenantForm {
                slug: slug.into(),
                name: slug.into(),
                retention_months: "12".into(),
                max_token_days: "90".into(),
                audiences: "agent-api".into(),
                algorithm: "".into(),
            },
        )
        .await
        .unwrap();
    }
    app::domain::endusers::ops::create_user(
        &cli,
        "acme",
        "ada@example.com",
        common::PERSON_PASSWORD,
    )
    .await
    .unwrap()
}

/// Mints a token through the console's server function: its plaintext.
async fn mint(
    app: &Router,
    cookie: &str,
    tenant: &str,
    scopes: &[&str],
    days: &str,
) -> common::Answer {
    let mut body = format!("name=runbook+000&tenant={tenant}&days={days}");
    for (i, s) in scopes.iter().enumerate() {
        body.push_str(&format!("&scopes[{i}]={}", common::urlencode(s)));
    }
    common::call(app, MintAdminToken::PATH, cookie, &body).await
}

fn plaintext(answer: &common::Answer) -> String {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()["plaintext"].as_str().unwrap().to_owned()
}

async fn post(
    app: &Router,
    path: &str,
    secret: Option<&str>,
    body: Option<serde_json::Value>,
) -> common::Answer {
    let mut req = Request::post(path).header("content-type", "application/json");
    if let Some(secret) = secret {
        req = req.header("x-admin-secret", secret);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    common::send(app, req.body(Body::from(body)).unwrap()).await
}

fn code(answer: &common::Answer) -> String {
    answer.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn published_keys(pool: &PgPool, slug: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT k.kid, k.state::text FROM signing_keys k JOIN tenants t ON t.id = k.tenant_id
         WHERE t.slug = $1 ORDER BY k.staged_at",
    )
    .bind(slug)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_runbooks_three_commands_work_verbatim_with_an_admin_token_in_x_admin_secret(
    pool: PgPool,
) {
    let ada = setup(&pool).await;
    let (app, _verifier, _controls) = common::app_parts(pool.clone(), false);
    let (_, cookie) = common::person(&pool, &app, Role::IncidentCommander).await;
    let token = plaintext(
        &mint(
            &app,
            &cookie,
            "acme",
            &["keys:write", "sessions:write", "audit:read"],
            "7",
        )
        .await,
    );
    assert!(token.starts_with("mf_adm_v1."));

    // POST /a/{tenant}/admin/keys/revoke with {"kid"}: that key; a fresh one is active.
    let before = published_keys(&pool, "acme").await;
    let active = before
        .iter()
        .find(|(_, s)| s == "active")
        .unwrap()
        .0
        .clone();
    let one = post(
        &app,
        "/a/acme/admin/keys/revoke",
        Some(&token),
        Some(json!({ "kid": active })),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.json()["revoked"], json!([active]));
    let fresh = one.json()["activated"].as_str().unwrap().to_owned();
    assert_ne!(fresh, active);
    // Without a body: every published key of the tenant.
    let all = post(&app, "/a/acme/admin/keys/revoke", Some(&token), None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.json()["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k == &json!(fresh)));
    let events = common::audit(&pool, "signing_key.revoked").await;
    assert!(!events.is_empty());
    let (source, actor_name): (String, Option<String>) = sqlx::query_as(
        "SELECT source::text, actor_name FROM audit_events WHERE action = 'signing_key.revoked' ORDER BY seq LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(source, "admin_api");
    assert!(
        actor_name.unwrap().contains("admin token"),
        "the token is named"
    );

    // POST /a/{tenant}/admin/revoke/sessions: a user's, then the tenant's.
    let user = post(
        &app,
        "/a/acme/admin/revoke/sessions",
        Some(&token),
        Some(json!({ "user_id": ada })),
    )
    .await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.body);
    assert_eq!(user.json()["scope"], "user");
    let garbled = post(
        &app,
        "/a/acme/admin/revoke/sessions",
        Some(&token),
        Some(json!({ "user_id": "nope" })),
    )
    .await;
    assert_eq!(garbled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(garbled.json()["error"]["field"], "user_id");
    // A field present but empty, of another type or misspelled is refused, never read as
    // absent (an unset shell variable must not revoke every key).
    for body in [
        json!({ "kid": "" }),
        json!({ "kid": 7 }),
        json!({ "kid": null }),
        json!({ "kd": "x" }),
    ] {
        let refused = post(
            &app,
            "/a/acme/admin/keys/revoke",
            Some(&token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            refused.body
        );
    }
    let misspelled = post(
        &app,
        "/a/acme/admin/revoke/sessions",
        Some(&token),
        Some(json!({ "userid": ada })),
    )
    .await;
    assert_eq!(misspelled.json()["error"]["field"], "userid");
    assert_eq!(
        sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT sessions_not_before FROM tenants WHERE slug = 'acme'"
        )
        .fetch_one(&pool)
        .await
        .unwrap(),
        None,
        "nothing revoked tenant-wide"
    );
    let tenant = post(&app, "/a/acme/admin/revoke/sessions", Some(&token), None).await;
    assert_eq!(tenant.status, StatusCode::OK, "{}", tenant.body);
    assert_eq!(tenant.json()["scope"], "tenant");
    let not_before: Option<time::OffsetDateTime> =
        sqlx::query_scalar("SELECT sessions_not_before FROM tenants WHERE slug = 'acme'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(not_before.is_some());

    // GET /a/{tenant}/admin/audit/export?from=...&to=...&format=csv
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let to = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let export = common::send(
        &app,
        Request::get(format!(
            "/a/acme/admin/audit/export?from={}&to={}&format=csv",
            common::urlencode(&from),
            common::urlencode(&to)
        ))
        .header("x-admin-secret", &token)
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert!(export.header("content-type").starts_with("text/csv"));
    assert!(
        export.body.contains("signing_key.revoked"),
        "{}",
        export.body
    );
    // `Authorization: Bearer` is the same token.
    let bearer = common::send(
        &app,
        Request::post("/a/acme/admin/revoke/sessions")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bearer.status, StatusCode::OK, "{}", bearer.body);
    let last_used: Option<time::OffsetDateTime> =
        sqlx::query_scalar("SELECT last_used_at FROM admin_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(last_used.is_some());
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_refusal_has_its_code_and_changes_nothing(pool: PgPool) {
    setup(&pool).await;
    let (app, _verifier, _controls) = common::app_parts(pool.clone(), false);
    let (ic, cookie) = common::person(&pool, &app, Role::IncidentCommander).await;
    let sessions = plaintext(&mint(&app, &cookie, "acme", &["sessions:write"], "7").await);
    let revoke = |secret: Option<String>, slug: &'static str| {
        let app = app.clone();
        async move {
            post(
                &app,
                &format!("/a/{slug}/admin/revoke/sessions"),
                secret.as_deref(),
                None,
            )
            .await
        }
    };
    let epoch = || async {
        sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
            "SELECT max(sessions_not_before) FROM tenants",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };

    let missing = revoke(None, "acme").await;
    assert_eq!(
        (missing.status, code(&missing)),
        (StatusCode::UNAUTHORIZED, "ADMIN_TOKEN_MISSING".into())
    );
    assert!(missing.header("www-authenticate").starts_with("Bearer"));
    let bad = revoke(Some("mf_adm_v1.garbage".into()), "acme").await;
    assert_eq!(code(&bad), "ADMIN_TOKEN_INVALID");
    // A PAT is not an admin token.
    let pat = revoke(
        Some(format!("mf_pat_v1.{}", &sessions["mf_adm_v1.".len()..])),
        "acme",
    )
    .await;
    assert_eq!(code(&pat), "ADMIN_TOKEN_INVALID");
    let scope = post(&app, "/a/acme/admin/keys/revoke", Some(&sessions), None).await;
    assert_eq!(
        (scope.status, code(&scope)),
        (StatusCode::FORBIDDEN, "ADMIN_SCOPE_MISSING".into())
    );
    let other = revoke(Some(sessions.clone()), "globex").await;
    assert_eq!(code(&other), "ADMIN_TOKEN_WRONG_TENANT");
    let unknown = revoke(Some(sessions.clone()), "nowhere").await;
    assert_eq!(
        code(&unknown),
        "ADMIN_TOKEN_WRONG_TENANT",
        "tells nothing of other tenants"
    );
    assert_eq!(epoch().await, None, "nothing changed");
    let refused = common::audit(&pool, "admin_api.refused").await;
    assert!(refused
        .iter()
        .any(|e| e.1.as_deref() == Some("ADMIN_SCOPE_MISSING")));

    // The owner's role lowered: refused at the next call.
    let cli = Actor::command_line_unchecked(pool.clone(), "ops");
    app::panels::staff::ops::change_role(&cli, ic, Role::Operator)
        .await
        .unwrap();
    assert_eq!(
        code(&revoke(Some(sessions.clone()), "acme").await),
        "ADMIN_ROLE_TOO_LOW"
    );
    app::panels::staff::ops::change_role(&cli, ic, Role::IncidentCommander)
        .await
        .unwrap();
    // The owner disabled (here by another path than the console's, which also revokes
    // their tokens, below): refused at once.
    let mut fixture = common::fixture(&pool).await;
    let set_status = |status: &'static str| {
        sqlx::query("UPDATE staff SET status = $2::staff_status WHERE id = $1")
            .bind(ic)
            .bind(status)
    };
    set_status("disabled").execute(&mut fixture).await.unwrap();
    assert_eq!(
        code(&revoke(Some(sessions.clone()), "acme").await),
        "ADMIN_TOKEN_OWNER_DISABLED"
    );
    set_status("active").execute(&mut fixture).await.unwrap();
    // Past its expiry.
    sqlx::query(
        "UPDATE admin_tokens SET created_at = now() - interval '2 days',
                                 expires_at = now() - interval '1 day'",
    )
    .execute(&mut fixture)
    .await
    .unwrap();
    assert_eq!(
        code(&revoke(Some(sessions.clone()), "acme").await),
        "ADMIN_TOKEN_EXPIRED"
    );
    sqlx::query("UPDATE admin_tokens SET expires_at = now() + interval '1 day'")
        .execute(&mut fixture)
        .await
        .unwrap();
    assert_eq!(epoch().await, None, "nothing changed");

    // Revoked in the console: refused at once.
    let (_, cookie) = common::sign_in(
        &app,
        &sqlx::query_scalar::<_, String>("SELECT email FROM staff WHERE id = $1")
            .bind(ic)
            .fetch_one(&pool)
            .await
            .unwrap(),
        common::PERSON_PASSWORD,
    )
    .await;
    let cookie = cookie.unwrap();
    let id = sessions["mf_adm_v1.".len()..]
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let revoked = common::call(&app, RevokeAdminToken::PATH, &cookie, &format!("id={id}")).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(
        code(&revoke(Some(sessions.clone()), "acme").await),
        "ADMIN_TOKEN_REVOKED"
    );
    assert_eq!(epoch().await, None, "nothing changed");

    // Minting: scopes beyond the role, a platform token for a non-admin, no expiry, too long.
    let (op_id, op) = common::person(&pool, &app, Role::Operator).await;
    let beyond = mint(&app, &op, "acme", &["sessions:write"], "7").await;
    assert_eq!(
        beyond.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        beyond.body
    );
    assert!(beyond.body.contains("scopes"));
    let platform = mint(&app, &cookie, "", &["sessions:write"], "7").await;
    assert!(platform.body.contains("tenant"), "{}", platform.body);
    let long = mint(&app, &cookie, "acme", &["read"], "91").await;
    assert!(long.body.contains("days"), "{}", long.body);
    let none = mint(&app, &cookie, "acme", &[], "7").await;
    assert!(none.body.contains("scopes"), "{}", none.body);
    // A password reset revokes the person's admin tokens with their other tokens.
    let again = plaintext(&mint(&app, &cookie, "acme", &["sessions:write"], "7").await);
    app::panels::staff::ops::reset_password(&cli, ic, None)
        .await
        .unwrap();
    assert_eq!(
        code(&revoke(Some(again), "acme").await),
        "ADMIN_TOKEN_REVOKED"
    );

    // A platform token works on every tenant while its owner is an admin, not after.
    let (admin, admin_cookie) = common::person(&pool, &app, Role::Admin).await;
    let platform = plaintext(&mint(&app, &admin_cookie, "", &["sessions:write"], "7").await);
    assert_eq!(
        revoke(Some(platform.clone()), "globex").await.status,
        StatusCode::OK
    );
    common::staff(
        &pool,
        "second-admin@example.com",
        Role::Admin,
        common::PERSON_PASSWORD,
    )
    .await;
    app::panels::staff::ops::change_role(&cli, admin, Role::IncidentCommander)
        .await
        .unwrap();
    assert_eq!(
        code(&revoke(Some(platform), "globex").await),
        "ADMIN_ROLE_TOO_LOW"
    );

    // Disabling someone revokes their admin tokens: enabling them again brings none back.
    let ops_token = plaintext(&mint(&app, &op, "acme", &["read"], "7").await);
    app::panels::staff::ops::set_active(&cli, op_id, false)
        .await
        .unwrap();
    app::panels::staff::ops::set_active(&cli, op_id, true)
        .await
        .unwrap();
    assert_eq!(
        code(&revoke(Some(ops_token), "acme").await),
        "ADMIN_TOKEN_REVOKED"
    );
    // Refused during a freeze, like every operation that adds access.
    app::panels::freeze::ops::start(&cli, "incident 9", "")
        .await
        .unwrap();
    let frozen = mint(&app, &admin_cookie, "acme", &["read"], "7").await;
    assert_eq!(frozen.status, StatusCode::LOCKED, "{}", frozen.body);
}
