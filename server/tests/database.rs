//! Integration tests of schema handling and seeding, each on a fresh PostgreSQL database.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use crate::common;

use app::auth::Actor;
use app::domain::audit::NewEvent;
use server::db;
use sqlx::{Connection as _, PgPool};

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_demo_tenant_is_created_once_on_an_empty_database_and_audited(pool: PgPool) {
    let seed = Actor::system(pool.clone(), "demo seed");
    let first = app::domain::tenants::queries::create_demo_if_empty(&seed)
        .await
        .expect("query");
    assert_eq!(first.map(|t| t.slug), Some("demo".to_owned()));
    let second = app::domain::tenants::queries::create_demo_if_empty(&seed)
        .await
        .expect("query");
    assert_eq!(second, None);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(count, 1);
    let events: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT actor, action, target FROM audit_events WHERE action = 'tenant.created'",
    )
    .fetch_all(&pool)
    .await
    .expect("events");
    assert_eq!(
        events,
        [(
            "system".into(),
            "tenant.created".into(),
            Some("tenant:demo".into())
        )]
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn no_demo_tenant_when_tenants_exist(pool: PgPool) {
    common::tenant(&pool, "acme", "Acme").await;
    let created =
        app::domain::tenants::queries::create_demo_if_empty(&Actor::system(pool, "demo seed"))
            .await
            .expect("query");
    assert_eq!(created, None);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_schema_refuses_malformed_tenants(pool: PgPool) {
    let mut fixture = common::fixture(&pool).await;
    for (slug, name) in [("Upper", "x"), ("-x", "x"), ("ok", "")] {
        let err = sqlx::query("INSERT INTO tenants (slug, name) VALUES ($1, $2)")
            .bind(slug)
            .bind(name)
            .execute(&mut fixture)
            .await
            .expect_err("refused");
        // Refused by a check, not by anything else (a typo here would be a syntax error).
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("23514"), "{slug:?}/{name:?}: {err}");
    }
    // The same statement with good values passes, so the refusals above are the values'.
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ($1, $2)")
        .bind("ok")
        .bind("Ok")
        .execute(&mut fixture)
        .await
        .expect("a well-formed tenant");
}

#[sqlx::test(migrations = false)]
async fn production_start_refuses_a_schema_behind_the_binary(pool: PgPool) {
    let err = db::require_current_schema(&pool)
        .await
        .expect_err("no migrations applied");
    assert!(err.to_string().contains("staff-console migrate"), "{err}");

    db::migrate(&pool).await.expect("migrate");
    db::require_current_schema(&pool)
        .await
        .expect("current after migrating");
}

#[sqlx::test(migrations = false)]
async fn migrating_twice_is_harmless(pool: PgPool) {
    db::migrate(&pool).await.expect("first");
    db::migrate(&pool).await.expect("second");
}

/// What the database says when a transaction changed audited state without its event.
fn unaudited(err: &sqlx::Error) -> bool {
    err.to_string().contains("unaudited change")
}

async fn switch_reason(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT reason FROM kill_switches WHERE key = 'agentApiEnabled' AND tenant_id IS NULL",
    )
    .fetch_one(pool)
    .await
    .expect("global switch")
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_database_refuses_a_change_to_audited_state_without_its_event(pool: PgPool) {
    let before = switch_reason(&pool).await;
    let flip = "UPDATE kill_switches SET reason = 'nobody will know' \
                WHERE key = 'agentApiEnabled' AND tenant_id IS NULL";
    // On its own (what a write through a read handle would be): refused, nothing changed.
    let err = sqlx::query(flip).execute(&pool).await.expect_err("refused");
    assert!(unaudited(&err), "{err}");
    assert!(err.to_string().contains("kill_switches"), "{err}");
    assert_eq!(switch_reason(&pool).await, before);

    // In a transaction of its own, with rows of several audited tables: refused at commit.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(flip)
        .execute(&mut *tx)
        .await
        .expect("the statement itself runs");
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ('sneaky', 'Sneaky')")
        .execute(&mut *tx)
        .await
        .expect("insert");
    let err = tx.commit().await.expect_err("refused at commit");
    assert!(unaudited(&err), "{err}");
    assert_eq!(switch_reason(&pool).await, before);

    // An event in a savepoint that is rolled back does not count.
    let mut conn = pool.acquire().await.expect("conn");
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query(flip).execute(&mut *tx).await.expect("flip");
    let mut inner = tx.begin().await.expect("savepoint");
    sqlx::query(
        "INSERT INTO audit_events (source, actor, action, outcome, retention_months)
         VALUES ('system', 'test', 'switch.flipped', 'success', 84)",
    )
    .execute(&mut *inner)
    .await
    .expect("event");
    inner.rollback().await.expect("rollback to savepoint");
    let err = tx.commit().await.expect_err("refused at commit");
    assert!(unaudited(&err), "{err}");
    assert_eq!(switch_reason(&pool).await, before);
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_change_with_its_event_commits_and_bookkeeping_needs_none(pool: PgPool) {
    let actor = Actor::command_line_unchecked(pool.clone(), "test");
    let mut change = actor.change().await.expect("change");
    sqlx::query(
        "UPDATE kill_switches SET reason = 'audited' WHERE key = 'agentApiEnabled' AND tenant_id IS NULL",
    )
    .execute(change.db())
    .await
    .expect("flip");
    change
        .commit(actor.event("switch.flipped").reason("audited"))
        .await
        .expect("commits with its event");
    assert_eq!(switch_reason(&pool).await, "audited");

    // (The gateway's last-used times are bookkeeping the ledger writes with no event: its
    // tests in integrations.rs flush them.)

    // A batch with no event commits what is not audited, and nothing that is.
    let system = Actor::system(pool.clone(), "test");
    let empty: &[NewEvent] = &[];
    let mut change = system.change().await.expect("change");
    sqlx::query("UPDATE kill_switches SET reason = 'batch' WHERE key = 'agentApiEnabled' AND tenant_id IS NULL")
        .execute(change.db())
        .await
        .expect("flip");
    change.commit_all(empty).await.expect_err("refused");
    assert_eq!(switch_reason(&pool).await, "audited");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_marks_are_the_transactions_own(pool: PgPool) {
    // Set for the whole session, the mark and the flag are not this transaction's: they
    // let nothing through.
    let mut conn = pool.acquire().await.expect("conn");
    sqlx::raw_sql("SET staff_console.audit_obliged = 'on'; SET staff_console.audit_written = 'on'")
        .execute(&mut *conn)
        .await
        .expect("session settings");
    let err = sqlx::query("INSERT INTO tenants (slug, name) VALUES ('sneaky', 'Sneaky')")
        .execute(&mut *conn)
        .await
        .expect_err("refused");
    assert!(unaudited(&err), "{err}");
    // An insert into the audit log that writes no event is not an event.
    let mut tx = conn.begin().await.expect("begin");
    sqlx::query("INSERT INTO tenants (slug, name) VALUES ('sneaky', 'Sneaky')")
        .execute(&mut *tx)
        .await
        .expect("insert");
    sqlx::query("INSERT INTO audit_events SELECT * FROM audit_events WHERE false")
        .execute(&mut *tx)
        .await
        .expect("an empty insert");
    let err = tx.commit().await.expect_err("refused at commit");
    assert!(unaudited(&err), "{err}");
}

struct OneVar(String);

impl server::config::Env for OneVar {
    fn get(&self, name: &str) -> Option<String> {
        (name == "DATABASE_URL").then(|| self.0.clone())
    }
}

#[tokio::test]
async fn the_server_refuses_a_connection_that_turns_the_audit_rule_off() {
    let url = std::env::var("DATABASE_URL").expect("the tests' DATABASE_URL");
    let sep = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{sep}options=-c%20staff_console.unaudited%3Dnobody-will-know");
    let config = server::config::DatabaseConfig::from_env(&OneVar(url)).expect("config");
    let err = db::connect(&config, std::time::Duration::from_millis(100))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("staff_console.unaudited"), "{err}");
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn each_unique_constraint_given_a_meaning_exists_in_the_schema(pool: PgPool) {
    // A renamed constraint would silently turn its clash back into an internal error.
    for (name, _, _) in app::error::UNIQUE_MEANINGS {
        let unique: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = $1 AND contype = 'u')
                 OR EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                            WHERE c.relname = $1 AND i.indisunique)",
        )
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            unique,
            "{name} is no unique constraint or index of the schema"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_unique_violation_is_answered_as_what_it_means(pool: PgPool) {
    // Two creations of one email racing past the look-up: the loser's insert fails on the
    // constraint, and that failure reads as a conflict beside the field (409), not an
    // internal error.
    let mut conn = common::fixture(&pool).await;
    sqlx::query(
        "INSERT INTO staff (email, display_name, role, password_hash)
         VALUES ('twice@example.com', 'A', 'viewer', 'x')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = sqlx::query(
        "INSERT INTO staff (email, display_name, role, password_hash)
         VALUES ('twice@example.com', 'B', 'viewer', 'x')",
    )
    .execute(&mut conn)
    .await
    .unwrap_err();
    let err = app::error::AppError::from(err);
    assert_eq!(
        err,
        app::error::AppError::Conflict {
            field: Some("email".into()),
            message: "A staff member with this email already exists.".into(),
        }
    );
    assert_eq!(err.status_code(), 409);
    assert_eq!(
        err.field_message("email"),
        Some("A staff member with this email already exists.")
    );
    // Any other database failure stays internal: no constraint name reaches the browser.
    let other = sqlx::query("INSERT INTO staff (email) VALUES (NULL)")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(matches!(
        app::error::AppError::from(other),
        app::error::AppError::Internal { .. }
    ));
}

/// Tables the application may write without an audit event, and why.
const UNAUDITED_BY_DESIGN: &[(&str, &str)] = &[
    ("audit_events", "the audit log itself"),
    (
        "audit_verifications",
        "the chain walk's record of itself (an audited command)",
    ),
    (
        "sign_in_failures",
        "counters of failed sign-ins; each failure is audited as an attempt",
    ),
    (
        "delegated_token_uses",
        "the ids of delegated tokens used on a route that changes state (a replay guard); each use is audited by the gateway",
    ),
    (
        "end_user_sessions",
        "end users' sessions: each sign-in, revocation and reuse is audited; a rotation's last-used time is not",
    ),
    (
        "refresh_tokens",
        "rotation state of end users' refresh tokens (2,000 a second are normal traffic); sign-ins, revocations and reuse detection are audited",
    ),
    (
        "end_user_sign_in_failures",
        "counters of failed end-user sign-ins; each failure is audited as an attempt",
    ),
    (
        "instances",
        "each running instance's heartbeat (presence, not state); requests to the instances and their answers are audited",
    ),
    (
        "staff_webauthn_ceremonies",
        "a passkey ceremony's state between its two requests; its answer is audited",
    ),
    (
        "session",
        "tower-sessions' store: a sign-in is audited, its session row is not state",
    ),
];

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn every_table_the_application_may_write_is_audited_or_unaudited_by_design(pool: PgPool) {
    // A table added later with write rights for the application must choose: audited
    // (the obligation triggers) or named above with its reason.
    let writable: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT table_name::text FROM information_schema.role_table_grants
         WHERE grantee = 'staff_console_app'
           AND privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
         ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(writable.len() >= 10, "{writable:?}");
    for table in &writable {
        if UNAUDITED_BY_DESIGN.iter().any(|(t, _)| t == table) {
            continue;
        }
        let triggers: Vec<String> = sqlx::query_scalar(
            "SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             WHERE c.relname = $1 AND t.tgname LIKE '%\\_audit\\_%' ORDER BY 1",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap();
        let expected: Vec<String> = ["delete", "insert", "truncate", "update"]
            .iter()
            .map(|kind| format!("{table}_audit_{kind}"))
            .collect();
        assert_eq!(
            triggers, expected,
            "{table}: the application may write it, but it is not audited"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn truncating_audited_tables_without_an_event_is_refused(pool: PgPool) {
    for statement in [
        "TRUNCATE ip_blocks",
        // Several at once: the trigger fires on each, the first marks the transaction.
        "TRUNCATE ip_blocks, rate_limit_overrides",
    ] {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
        let err = tx.commit().await.expect_err(statement);
        assert!(
            err.to_string().contains("unaudited change: ip_blocks"),
            "{statement}: {err}"
        );
    }
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_marking_functions_cannot_be_redirected_by_an_overload(pool: PgPool) {
    // The owner's trigger functions call audit_mark; a role that could create functions
    // in `public` might add an overload that matches their argument better, to run its own
    // code as the owner. Ours is called by schema and type, so the overload never runs.
    sqlx::raw_sql(
        "CREATE FUNCTION public.audit_mark(changed name) RETURNS void LANGUAGE plpgsql
         AS $$ BEGIN RAISE EXCEPTION 'the overload ran'; END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    let cli = Actor::command_line_unchecked(pool.clone(), "test");
    app::panels::staff::ops::create(
        &cli,
        "overload@example.com",
        "Overload Check",
        app::auth::Role::Viewer,
        Some("a password long enough to pass"),
    )
    .await
    .expect("an audited change still goes through");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("TRUNCATE ip_blocks")
        .execute(&mut *tx)
        .await
        .expect("the TRUNCATE trigger calls ours, not the overload");
    let err = tx.commit().await.expect_err("and still owes its event");
    assert!(
        err.to_string().contains("unaudited change: ip_blocks"),
        "{err}"
    );
}

/// A connection as production serves: a login role in the application's group (not the
/// schema owner). Returns the connection and the role, to drop afterwards.
async fn as_the_application(pool: &PgPool) -> (sqlx::PgConnection, String) {
    use sqlx::ConnectOptions as _;
    let role = format!("sc_app_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!(
        "CREATE ROLE {role} LOGIN IN ROLE staff_console_app"
    ))
    .execute(pool)
    .await
    .unwrap();
    let conn = pool
        .connect_options()
        .as_ref()
        .clone()
        .username(&role)
        .connect()
        .await
        .unwrap();
    (conn, role)
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_application_role_cannot_switch_the_rule_off_or_fake_its_event(pool: PgPool) {
    let (mut conn, role) = as_the_application(&pool).await;
    let attempts = [
        // The escape hatch of data migrations and test fixtures: the owner's alone.
        "SET LOCAL staff_console.unaudited = 'sneaky'",
        // The old marks, set by hand: the rule reads rows the role cannot write.
        "SELECT set_config('staff_console.audit_written', txid_current()::text, true)",
        "SELECT set_config('staff_console.audit_obliged', txid_current()::text, true)",
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
        sqlx::query(attempt).execute(&mut *tx).await.unwrap();
        sqlx::query(
            "INSERT INTO ip_blocks (network, reason, created_by) VALUES ($1::cidr, 'x', 'x')",
        )
        .bind(format!("192.0.2.{i}/32"))
        .execute(&mut *tx)
        .await
        .unwrap();
        let err = tx.commit().await.expect_err(attempt);
        assert!(
            err.to_string().contains("unaudited change: ip_blocks"),
            "{attempt}: {err}"
        );
    }
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM ip_blocks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(none, 0);
    drop(conn);
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn renaming_a_token_owes_an_event_like_any_other_change(pool: PgPool) {
    use app::panels::integrations::api::MintToken;
    use leptos::server_fn::ServerFn as _;
    // A revoked token, as the console leaves one.
    common::tenant(&pool, "acme", "Acme Agents").await;
    let system = Actor::system(pool.clone(), "test");
    app::domain::tokens::pepper::create_first_if_none(
        &system,
        &app::domain::tokens::pepper::MasterKey::new(common::MASTER_KEY),
    )
    .await
    .unwrap();
    let app = common::app(pool.clone());
    let (operator_id, operator) = common::person(&pool, &app, app::auth::Role::Operator).await;
    let body = common::mint_body(
        "acme",
        "rename check",
        &format!("staff:{operator_id}"),
        &["agent:read"],
        "30",
    );
    let minted = common::call(&app, MintToken::PATH, &operator, &body).await;
    let id = minted.json()["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE personal_access_tokens SET status = 'revoked', revoked_at = now(), revoked_by = 'test', revoke_reason = 'test' WHERE id = $1")
        .bind(&id)
        .execute(&mut common::fixture(&pool).await)
        .await
        .unwrap();

    // As the application: revive it under another id, then give the id back. Each
    // statement alone is a transaction that changed a token and wrote no event.
    let (mut conn, role) = as_the_application(&pool).await;
    let revived = sqlx::query(
        "UPDATE personal_access_tokens SET id = id || 'z', status = 'active', revoked_at = NULL,
                revoked_by = NULL, revoke_reason = NULL WHERE id = $1",
    )
    .bind(&id)
    .execute(&mut conn)
    .await
    .expect_err("refused");
    assert!(
        revived
            .to_string()
            .contains("unaudited change: personal_access_tokens"),
        "{revived}"
    );
    let status: String =
        sqlx::query_scalar("SELECT status::text FROM personal_access_tokens WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "revoked");
    // The ledger's bookkeeping alone still owes nothing.
    sqlx::query("UPDATE personal_access_tokens SET last_used_at = now() WHERE id = $1")
        .bind(&id)
        .execute(&mut conn)
        .await
        .expect("bookkeeping");
    drop(conn);
    sqlx::query(&format!("DROP ROLE {role}"))
        .execute(&pool)
        .await
        .unwrap();
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn the_application_role_cannot_call_the_owners_audit_functions(pool: PgPool) {
    // Executable, a trigger function could be attached to a table the role owns (a
    // temporary one) and set marks without an event.
    for function in [
        "audit_mark(text)",
        "audit_oblige()",
        "audit_oblige_tokens()",
        "audit_oblige_truncate()",
        "audit_written()",
        "audit_obligation_met()",
    ] {
        let executable: bool =
            sqlx::query_scalar("SELECT has_function_privilege('staff_console_app', $1, 'EXECUTE')")
                .bind(function)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(!executable, "staff_console_app may execute {function}");
    }
}
