//! Keeping every instance's verifier current: `LISTEN/NOTIFY` for changes made anywhere,
//! a revalidation poll for notifications that were missed, and the ledger's flush.
//!
//! A change to a token row notifies `sc_gateway` with `pat:<id>` (a trigger does it, in the
//! changing transaction, so it is delivered exactly when the change commits); a change of a
//! token owner's status (or a staff owner's role) notifies `owner:<id>`; a pepper change
//! notifies `pepper`. When the listening connection drops, notifications sent meanwhile are
//! lost: the whole cache is dropped on reconnect. Kill switches (`switches`) and rate limits
//! and blocks (`limits`) arrive on the same channel and reload [`Controls`]; signing key
//! changes (`keys`) reload the key set. Independently, every
//! [`REVALIDATE_EVERY`] the cached revisions are compared with the database, so a token whose
//! notification went astray is refused within that time all the same.

use super::requests::InstanceRequestKind;
use super::verify::{OwnerStatus, Revalidated, Verifier};
use crate::auth::Role;
use crate::domain::gateway::controls::state::Controls;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;

/// The notification channel.
pub const CHANNEL: &str = "sc_gateway";
/// How often cached tokens are compared with the database.
pub const REVALIDATE_EVERY: Duration = Duration::from_millis(500);
/// Cached tokens unused for this long are dropped rather than revalidated.
pub const IDLE_SECS: i64 = 600;
/// How often the ledger is written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Applies one notification payload.
pub fn apply(verifier: &Verifier, payload: &str) -> Apply {
    if let Some(id) = payload.strip_prefix("pat:") {
        verifier.invalidate(id);
        Apply::Token
    } else if let Some(owner) = payload
        .strip_prefix("owner:")
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
    {
        verifier.invalidate_owner(owner);
        Apply::Owner
    } else if payload == "pepper" {
        Apply::Pepper
    } else if payload == "switches" {
        Apply::Switches
    } else if payload == "limits" {
        Apply::Limits
    } else if payload == "keys" {
        Apply::Keys
    } else if let Some(request) = request(payload) {
        Apply::Request(request.0, request.1)
    } else if verifier.epochs().apply(payload) {
        Apply::Epoch
    } else {
        verifier.invalidate_all();
        Apply::All
    }
}

/// An operator's request to every instance: `refresh:<id>` or `verify:<id>`.
fn request(payload: &str) -> Option<(InstanceRequestKind, uuid::Uuid)> {
    let (kind, id) = payload.split_once(':')?;
    Some((
        InstanceRequestKind::parse(kind)?,
        uuid::Uuid::parse_str(id).ok()?,
    ))
}

/// What a notification asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// One token was dropped from the cache.
    Token,
    /// An owner's tokens were dropped from the cache.
    Owner,
    /// The pepper ring must be reloaded.
    Pepper,
    /// The kill switches must be reloaded.
    Switches,
    /// The rate-limit overrides and IP blocks must be reloaded.
    Limits,
    /// The key set must be reloaded.
    Keys,
    /// An operator asked every instance to refresh its key set or verify it.
    Request(InstanceRequestKind, uuid::Uuid),
    /// An end user's or a tenant's revocation epoch moved (applied).
    Epoch,
    /// Everything was dropped.
    All,
}

/// Listens for changes until the pool is closed (shutdown); reconnects after failures.
pub async fn listen(verifier: Arc<Verifier>, controls: Arc<Controls>) {
    // However this ends (shutdown, a panic, the task aborted), it no longer listens.
    let _not_listening_after = NotListeningOnDrop(verifier.clone());
    // Until shutdown closes the pool.
    while !verifier.pool().is_closed() {
        let mut listener = match PgListener::connect_with(verifier.pool()).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "gateway listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(err) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %err, "gateway listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything cached before LISTEN took effect may have missed a notification.
        verifier.invalidate_all();
        reload_ring(&verifier).await;
        reload_keys(&verifier).await;
        reload_controls(&controls).await;
        poll_epochs(&verifier).await;
        verifier.set_listening(true);
        // Listed as listening at once: requests reach it from now on.
        beat(&verifier).await;
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match apply(&verifier, notification.payload()) {
                    Apply::Pepper => reload_ring(&verifier).await,
                    Apply::Switches => {
                        if let Err(err) = controls.reload_switches().await {
                            tracing::error!(error = %err, "reloading kill switches failed");
                        }
                    }
                    Apply::Limits => {
                        if let Err(err) = controls.reload_limits().await {
                            tracing::error!(error = %err, "reloading rate limits failed");
                        }
                    }
                    Apply::Keys => reload_keys(&verifier).await,
                    // Answered beside the listener, which goes on listening.
                    Apply::Request(kind, id) => {
                        let heard = std::time::Instant::now();
                        tokio::spawn(super::instances::answer(verifier.clone(), kind, id, heard));
                    }
                    Apply::Token | Apply::Owner | Apply::Epoch | Apply::All => {}
                },
                Ok(None) => {
                    // The listener has already reconnected and listens again (sqlx's eager
                    // reconnect): whatever was sent in the gap is covered by dropping it all.
                    tracing::warn!("gateway listener lost its connection: cache dropped");
                    verifier.set_listening(false);
                    verifier.invalidate_all();
                    reload_ring(&verifier).await;
                    reload_keys(&verifier).await;
                    reload_controls(&controls).await;
                    verifier.set_listening(true);
                }
                Err(_) if verifier.pool().is_closed() => {
                    verifier.set_listening(false);
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "gateway listener failed: reconnecting");
                    verifier.set_listening(false);
                    verifier.invalidate_all();
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Clears the verifier's listening flag when the listener's task ends.
struct NotListeningOnDrop(Arc<Verifier>);

impl Drop for NotListeningOnDrop {
    fn drop(&mut self) {
        self.0.set_listening(false);
    }
}

async fn reload_controls(controls: &Controls) {
    if let Err(err) = controls.reload().await {
        tracing::error!(error = %err, "reloading switches and limits failed");
    }
}

async fn reload_keys(verifier: &Verifier) {
    if let Err(err) = verifier.keys().reload().await {
        tracing::error!(error = %err, "reloading the key set failed");
    }
}

async fn poll_epochs(verifier: &Verifier) {
    if let Err(err) = verifier.epochs().poll(verifier.pool()).await {
        tracing::warn!(error = %err, "reading end users' revocation epochs failed");
    }
}

async fn beat(verifier: &Verifier) {
    if let Err(err) = super::instances::heartbeat(verifier).await {
        tracing::warn!(error = %err, "writing this instance's heartbeat failed");
    }
}

/// Reloads the key set when the database's key epoch moved past the one held (a missed
/// notification).
async fn keys_current(verifier: &Verifier) {
    match verifier.keys().database_epoch().await {
        Ok(epoch) if epoch != verifier.keys().epoch() => {
            tracing::warn!(
                epoch,
                "the key epoch moved without a notification: reloading keys"
            );
            reload_keys(verifier).await;
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "reading the key epoch failed"),
    }
}

async fn reload_ring(verifier: &Verifier) {
    if let Err(err) = verifier.reload_ring().await {
        tracing::error!(error = %err, "reloading token peppers failed");
    }
}

/// Compares the cached tokens' revisions with the database once; drops the stale ones.
/// Returns how many were dropped.
pub async fn revalidate(verifier: &Verifier) -> sqlx::Result<usize> {
    let cached = verifier.cached_revisions(IDLE_SECS);
    if cached.is_empty() {
        return Ok(0);
    }
    let ids: Vec<String> = cached.iter().map(|(id, _)| id.to_string()).collect();
    let rows = sqlx::query!(
        r#"SELECT p.id, p.revision,
                  coalesce(s.status::text, c.status::text, 'disabled') AS "owner_status!",
                  coalesce(c.allowlisted, false) AS "owner_allowlisted!",
                  s.role::text AS owner_role
           FROM personal_access_tokens p
           LEFT JOIN staff s ON s.id = p.owner_staff_id
           LEFT JOIN api_clients c ON c.id = p.owner_client_id
           WHERE p.id = ANY($1)"#,
        &ids
    )
    .fetch_all(verifier.pool())
    .await?;
    let current: std::collections::HashMap<String, Revalidated> = rows
        .into_iter()
        .map(|r| {
            let state = Revalidated {
                revision: r.revision,
                owner_status: OwnerStatus::parse(&r.owner_status),
                owner_allowlisted: r.owner_allowlisted,
                owner_role: r.owner_role.as_deref().and_then(Role::parse),
            };
            (r.id, state)
        })
        .collect();
    let mut dropped = 0;
    for (id, cached) in cached {
        if current.get(&*id) != Some(&cached) {
            verifier.invalidate(&id);
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "revalidation found stale cached tokens (a notification was missed)"
        );
    }
    Ok(dropped)
}

/// Runs the revalidation poll until the pool is closed. Also reloads the pepper ring, and
/// the key set when its epoch moved, so a missed notification of either is caught too.
pub async fn poll(verifier: Arc<Verifier>) {
    let mut tick = tokio::time::interval(REVALIDATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u64 = 0;
    while !verifier.pool().is_closed() {
        tick.tick().await;
        rounds += 1;
        if let Err(err) = revalidate(&verifier).await {
            tracing::warn!(error = %err, "token revalidation failed");
        }
        // A revocation epoch whose notification went astray is held within a second.
        if rounds.is_multiple_of(2) {
            poll_epochs(&verifier).await;
        }
        if rounds.is_multiple_of(10) {
            reload_ring(&verifier).await;
            keys_current(&verifier).await;
            // Listening or not: an instance whose listener is down is the one to see.
            beat(&verifier).await;
        }
    }
}

/// Writes the ledger every [`FLUSH_EVERY`] until the pool is closed.
pub async fn flush(verifier: Arc<Verifier>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !verifier.pool().is_closed() {
        tick.tick().await;
        if let Err(err) = verifier.ledger().flush().await {
            tracing::error!(error = %err, "writing gateway audit events failed; will retry");
        }
    }
}

/// Starts the gateway's background work: the change listener, the token poll, the ledger's
/// flush and the controls' poll ([`crate::domain::gateway::controls::poll`]). The timed changes (reverts,
/// retirements) are the server's jobs (`server::jobs`).
pub fn spawn(verifier: Arc<Verifier>, controls: Arc<Controls>) {
    tokio::spawn(listen(verifier.clone(), controls.clone()));
    tokio::spawn(crate::domain::gateway::controls::poll::poll(controls));
    tokio::spawn(poll(verifier.clone()));
    tokio::spawn(flush(verifier));
}
