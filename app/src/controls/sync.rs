//! The controls' background work on every instance: the polling fallback for missed
//! notifications, timed reverts of switches and retirements of client keys, and pruning of
//! the rate limiter. Notifications themselves arrive through the gateway listener
//! ([`crate::integrations::sync::listen`]).

use super::state::Controls;
use std::sync::Arc;
use std::time::Duration;

/// Switches, limits and blocks are read again at least this often, notification or not.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often due reverts and key retirements are looked for.
pub const TIMERS_EVERY: Duration = Duration::from_secs(1);
/// How often idle rate-limit subjects are forgotten.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Reads everything again every [`POLL_EVERY`] until the pool is closed.
pub async fn poll(controls: Arc<Controls>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u64 = 0;
    while !controls.pool().is_closed() {
        tick.tick().await;
        rounds += 1;
        match controls.reload_switches().await {
            Ok(true) => tracing::info!("kill switches changed (seen by the poll)"),
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "polling kill switches failed"),
        }
        if let Err(err) = controls.reload_limits().await {
            tracing::warn!(error = %err, "polling rate limits failed");
        }
        if rounds.is_multiple_of(PRUNE_EVERY.as_secs() / POLL_EVERY.as_secs()) {
            controls.limiter().prune();
            controls.anonymous().prune();
        }
    }
}

/// Reverts switches whose expiry passed and retires client keys whose grace period ended,
/// every [`TIMERS_EVERY`], until the pool is closed. Safe on every instance at once: each
/// due row is locked and handled by one of them.
pub async fn timers(controls: Arc<Controls>) {
    let mut tick = tokio::time::interval(TIMERS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let switch_timer = crate::auth::Actor::system(controls.pool().clone(), "switch timer");
    let key_timer = crate::auth::Actor::system(controls.pool().clone(), "client key timer");
    while !controls.pool().is_closed() {
        tick.tick().await;
        match crate::panels::switches::ops::revert_expired(&switch_timer).await {
            Ok(0) => {}
            Ok(reverted) => {
                tracing::info!(reverted, "timed kill switches reverted");
                if let Err(err) = controls.reload_switches().await {
                    tracing::warn!(error = %err, "reloading kill switches failed");
                }
            }
            Err(err) => tracing::warn!(error = %err, "reverting timed kill switches failed"),
        }
        match crate::panels::agent_ops::ops::retire_due_keys(&key_timer).await {
            Ok(0) => {}
            Ok(retired) => tracing::info!(retired, "client keys retired after their grace period"),
            Err(err) => tracing::warn!(error = %err, "retiring client keys failed"),
        }
    }
}

/// Starts the poll and the timers.
pub fn spawn(controls: Arc<Controls>) {
    tokio::spawn(poll(controls.clone()));
    tokio::spawn(timers(controls));
}
