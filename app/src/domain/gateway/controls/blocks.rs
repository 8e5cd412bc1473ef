//! IP blocks written by more than one change: the Limits panel's, and the lock of an end
//! user's account (runbook 004: "add the source IP to the block list"), in its own transaction.

use crate::auth::Change;
use time::OffsetDateTime;

/// Blocks `network`, or replaces its block's reason and expiry; returns whether it replaced
/// a block.
pub async fn upsert(
    change: &mut Change,
    network: &str,
    reason: &str,
    expires_at: Option<OffsetDateTime>,
    by: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"INSERT INTO ip_blocks (network, reason, expires_at, created_by)
           VALUES ($1::text::cidr, $2, $3, $4)
           ON CONFLICT (network) DO UPDATE
           SET reason = EXCLUDED.reason, expires_at = EXCLUDED.expires_at,
               created_by = EXCLUDED.created_by, created_at = now()
           RETURNING (xmax <> 0) AS "replaced!""#,
        network,
        reason,
        expires_at,
        by
    )
    .fetch_one(change.db())
    .await
}
