//! Every timed job of an instance, in one place: the changes no person clicks (a timed switch
//! reverting, a rotated client key or pepper retiring after its grace period, audit
//! partitions made and dropped) and the upkeep of tables that only grow (expired sessions,
//! old sign-in failures). Each change is made by a named system actor and audited like any
//! other. Safe on every instance at once: each due row is locked and handled by one of them.
//!
//! The gateway's own background work (the change listener, the polls, the ledger's flush)
//! is the gateway's: `app::domain::gateway::sync::spawn`.

use app::auth::Actor;
use app::domain::gateway::controls::state::Controls;
use app::domain::gateway::verify::Verifier;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// How often due reverts and key retirements are looked for.
pub const TIMERS_EVERY: Duration = Duration::from_secs(1);
/// How often a previous pepper past its grace period is looked for.
pub const PEPPER_EVERY: Duration = Duration::from_secs(5);
/// How often audit partitions are made ahead and dropped past their retention.
pub const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// How often old per-address sign-in failures are deleted.
pub const SIGN_IN_FAILURES_EVERY: Duration = Duration::from_secs(600);

/// Starts every job below.
pub fn spawn(pool: PgPool, verifier: Arc<Verifier>, controls: Arc<Controls>) {
    tokio::spawn(timers(pool.clone(), controls));
    tokio::spawn(pepper_retirement(pool.clone(), verifier));
    tokio::spawn(audit_retention(pool.clone()));
    tokio::spawn(expired_sessions(pool.clone()));
    tokio::spawn(sign_in_failures(pool));
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// Reverts switches whose expiry passed, lifts a freeze whose expiry passed, retires
/// client keys whose grace period ended, and removes signing keys past their
/// `verify_until`, every [`TIMERS_EVERY`], until the pool is closed.
pub async fn timers(pool: PgPool, controls: Arc<Controls>) {
    let mut tick = ticker(TIMERS_EVERY);
    let switch_timer = Actor::system(pool.clone(), "switch timer");
    let key_timer = Actor::system(pool.clone(), "client key timer");
    let freeze_timer = Actor::system(pool.clone(), "freeze timer");
    let signing_key_timer = Actor::system(pool.clone(), "signing key timer");
    while !pool.is_closed() {
        tick.tick().await;
        match app::panels::switches::ops::revert_expired(&switch_timer).await {
            Ok(0) => {}
            Ok(reverted) => {
                tracing::info!(reverted, "timed kill switches reverted");
                if let Err(err) = controls.reload_switches().await {
                    tracing::warn!(error = %err, "reloading kill switches failed");
                }
            }
            Err(err) => tracing::warn!(error = %err, "reverting timed kill switches failed"),
        }
        match app::panels::freeze::ops::lift_expired(&freeze_timer).await {
            Ok(0) => {}
            Ok(lifted) => {
                tracing::info!(
                    lifted,
                    "a freeze of high-risk operations lifted at its expiry"
                );
                if let Err(err) = controls.reload_switches().await {
                    tracing::warn!(error = %err, "reloading kill switches failed");
                }
            }
            Err(err) => tracing::warn!(error = %err, "lifting an expired freeze failed"),
        }
        match app::panels::agent_ops::ops::retire_due_keys(&key_timer).await {
            Ok(0) => {}
            Ok(retired) => tracing::info!(retired, "client keys retired after their grace period"),
            Err(err) => tracing::warn!(error = %err, "retiring client keys failed"),
        }
        match app::panels::keys::ops::remove_expired(&signing_key_timer).await {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => tracing::info!(
                ?removed,
                "retired signing keys removed at their verify_until"
            ),
            Err(err) => tracing::warn!(error = %err, "removing retired signing keys failed"),
        }
    }
}

/// Retires a previous pepper whose grace period ended, every [`PEPPER_EVERY`], until the
/// pool is closed. Its own task: revoking the tokens left on the old version must not hold
/// up the other timers.
pub async fn pepper_retirement(pool: PgPool, verifier: Arc<Verifier>) {
    let mut tick = ticker(PEPPER_EVERY);
    let pepper_timer = Actor::system(pool.clone(), "pepper grace timer");
    while !pool.is_closed() {
        tick.tick().await;
        match app::panels::pepper::ops::retire_expired(&pepper_timer).await {
            Ok(Some((version, revoked))) => {
                tracing::info!(
                    version,
                    revoked,
                    "pepper grace period ended: version retired, unused tokens on it revoked"
                );
                if let Err(err) = verifier.reload_ring().await {
                    tracing::error!(error = %err, "reloading token peppers failed");
                }
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "retiring an expired pepper failed"),
        }
    }
}

/// Makes audit partitions ahead and drops those past their retention, at start and every
/// [`RETENTION_EVERY`].
pub async fn audit_retention(pool: PgPool) {
    let mut tick = ticker(RETENTION_EVERY);
    let retention = Actor::system(pool.clone(), "audit retention");
    while !pool.is_closed() {
        tick.tick().await;
        match app::domain::audit::retention::upkeep(&retention).await {
            Ok(dropped) => {
                for d in dropped {
                    tracing::info!(partition = %d.partition, removed = d.removed, "audit retention dropped a partition");
                }
            }
            Err(err) => tracing::error!(error = %err, "audit partition upkeep failed"),
        }
    }
}

/// Deletes expired staff sessions every minute.
pub async fn expired_sessions(pool: PgPool) {
    use tower_sessions::session_store::ExpiredDeletion as _;
    let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
    if let Err(err) = store
        .continuously_delete_expired(Duration::from_secs(60))
        .await
    {
        tracing::error!(error = %err, "expired-session deletion stopped");
    }
}

/// Deletes per-address sign-in failures older than a day (far longer than any throttle
/// window), and the single-use records of expired delegated tokens, every
/// [`SIGN_IN_FAILURES_EVERY`].
pub async fn sign_in_failures(pool: PgPool) {
    let mut tick = ticker(SIGN_IN_FAILURES_EVERY);
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(err) = app::auth::queries::prune_ip_failures(&pool, 86_400.0).await {
            tracing::warn!(error = %err, "pruning sign-in failures failed");
        }
        if let Err(err) = app::domain::gateway::delegated::purge_used(&pool).await {
            tracing::warn!(error = %err, "purging the uses of expired delegated tokens failed");
        }
        if let Err(err) =
            sqlx::query("DELETE FROM end_user_sign_in_failures WHERE at < now() - interval '1 day'")
                .execute(&pool)
                .await
        {
            tracing::warn!(error = %err, "pruning end users' sign-in failures failed");
        }
        end_user_sessions(&pool).await;
    }
}

/// The end users' background marking: successors' sealed copies erased once their grace
/// window is over, and the sessions a revocation epoch covers marked ended (a batch at a
/// time, until none is left).
async fn end_user_sessions(pool: &PgPool) {
    if let Err(err) = app::domain::endusers::sessions::forget_successors(pool).await {
        tracing::warn!(error = %err, "erasing refresh successors' copies failed");
    }
    loop {
        match app::domain::endusers::ops::mark_revoked_sessions(pool, 10_000).await {
            Ok(10_000) => continue,
            Ok(_) => break,
            Err(err) => {
                tracing::warn!(error = %err, "marking revoked end-user sessions failed");
                break;
            }
        }
    }
}

/// How often the mail sender looks for due mail without being woken.
pub const MAIL_EVERY: Duration = Duration::from_secs(5);

/// Starts this instance's mail sender (see [`mail_sender`]).
pub fn spawn_mail_sender(
    pool: PgPool,
    verifier: Arc<Verifier>,
    controls: Arc<Controls>,
    policy: Arc<app::domain::endusers::Policy>,
    public_origin: String,
) {
    tokio::spawn(mail_sender(pool, verifier, controls, policy, public_origin));
}

/// Sends end users' queued mail: woken by `NOTIFY sc_mail` when mail is queued and by a
/// change of the switches (`emailSendingEnabled` back on releases what was held), and
/// every [`MAIL_EVERY`] for retries and missed notifications. Every instance runs one;
/// each mail is sent by one of them.
pub async fn mail_sender(
    pool: PgPool,
    verifier: Arc<Verifier>,
    controls: Arc<Controls>,
    policy: Arc<app::domain::endusers::Policy>,
    public_origin: String,
) {
    use app::domain::endusers::mail;
    if policy.mailer.describe() == "none" {
        return;
    }
    let mut switches = controls.subscribe();
    let mut listener = None;
    while !pool.is_closed() {
        if listener.is_none() {
            match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen("sc_mail").await {
                    Ok(()) => listener = Some(l),
                    Err(err) => tracing::warn!(error = %err, "listening for queued mail failed"),
                },
                Err(err) => tracing::warn!(error = %err, "listening for queued mail failed"),
            }
        }
        let sender = mail::Sender {
            pool: &pool,
            verifier: &verifier,
            controls: &controls,
            mailer: &policy.mailer,
            public_origin: &public_origin,
        };
        loop {
            match mail::send_due(&sender, 50).await {
                Ok(pass) => {
                    if pass.sent + pass.failed + pass.dropped > 0 {
                        tracing::info!(
                            sent = pass.sent,
                            failed = pass.failed,
                            dropped = pass.dropped,
                            held = pass.held,
                            "end users' mail"
                        );
                    }
                    // A full batch handled: there may be more at once.
                    if pass.sent + pass.failed + pass.dropped < 50 {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "sending end users' mail failed");
                    break;
                }
            }
        }
        let woken = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = woken => if got.is_err() { listener = None },
            _ = switches.changed() => {}
            () = tokio::time::sleep(MAIL_EVERY) => {}
        }
    }
}
