//! The controls' background work on every instance: the polling fallback for missed
//! notifications, and pruning of the rate limiter. Notifications themselves arrive through
//! the gateway listener ([`crate::domain::gateway::sync::listen`]); timed reverts are the
//! server's jobs (`server::jobs`).

use super::state::Controls;
use std::sync::Arc;
use std::time::Duration;

/// Switches, limits and blocks are read again at least this often, notification or not.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often idle rate-limit subjects are forgotten.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Reads everything again every [`POLL_EVERY`] until the pool is closed.
pub async fn poll(controls: Arc<Controls>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u64 = 0;
    while !controls.is_closed() {
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
