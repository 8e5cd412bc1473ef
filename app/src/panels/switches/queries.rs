//! SQL of the kill-switch panel. Changes take the `Change`; the panel reads
//! through the controls' state, not here.

use crate::auth::Change;
use crate::domain::gateway::controls::SwitchKey;
use time::OffsetDateTime;
use uuid::Uuid;

/// A switch value as stored.
pub struct Stored {
    /// On or off.
    pub value: bool,
    /// When a timed flip reverts.
    pub expires_at: Option<OffsetDateTime>,
    /// What it reverts to.
    pub revert_to: Option<bool>,
}

/// Locks the global value of a switch (`tenant` `None`) or a tenant's override of it.
pub async fn lock_row(
    change: &mut Change,
    key: SwitchKey,
    tenant: Option<Uuid>,
) -> sqlx::Result<Option<Stored>> {
    sqlx::query_as!(
        Stored,
        "SELECT value, expires_at, revert_to FROM kill_switches
         WHERE key = $1 AND tenant_id IS NOT DISTINCT FROM $2 FOR UPDATE",
        key.as_str(),
        tenant
    )
    .fetch_optional(change.db())
    .await
}

/// What a flip stores.
pub struct NewValue<'a> {
    /// The switch.
    pub key: SwitchKey,
    /// The tenant of an override; `None` for the global value.
    pub tenant: Option<Uuid>,
    /// On or off.
    pub value: bool,
    /// Why.
    pub reason: &'a str,
    /// Who flipped it.
    pub set_by: &'a str,
    /// When it reverts; `None` for never.
    pub expires_at: Option<OffsetDateTime>,
    /// What it reverts to.
    pub revert_to: Option<bool>,
}

/// Sets a switch's global value or a tenant's override of it.
pub async fn upsert(change: &mut Change, new: &NewValue<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO kill_switches (key, tenant_id, value, reason, set_by, set_at, expires_at, revert_to)
         VALUES ($1, $2, $3, $4, $5, now(), $6, $7)
         ON CONFLICT (key, tenant_id) DO UPDATE
         SET value = EXCLUDED.value, reason = EXCLUDED.reason, set_by = EXCLUDED.set_by,
             set_at = EXCLUDED.set_at, expires_at = EXCLUDED.expires_at,
             revert_to = EXCLUDED.revert_to",
        new.key.as_str(),
        new.tenant,
        new.value,
        new.reason,
        new.set_by,
        new.expires_at,
        new.revert_to
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Deletes a tenant's override; returns the value it had, `None` when there was none.
pub async fn delete_override(
    change: &mut Change,
    key: SwitchKey,
    tenant: Uuid,
) -> sqlx::Result<Option<bool>> {
    sqlx::query_scalar!(
        "DELETE FROM kill_switches WHERE key = $1 AND tenant_id = $2 RETURNING value",
        key.as_str(),
        tenant
    )
    .fetch_optional(change.db())
    .await
}

/// A timed flip whose expiry passed, locked.
pub struct Due {
    /// The switch key as stored.
    pub key: String,
    /// The tenant of an override.
    pub tenant_id: Option<Uuid>,
    /// That tenant's slug.
    pub slug: Option<String>,
    /// The value the flip set.
    pub value: bool,
    /// What it reverts to (`None` on an override: the override goes).
    pub revert_to: Option<bool>,
    /// The flip's reason.
    pub reason: String,
    /// Who flipped.
    pub set_by: String,
    /// When.
    pub set_at: OffsetDateTime,
}

/// Locks the timed flips whose expiry passed, skipping rows another instance holds.
pub async fn lock_due(change: &mut Change) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as!(
        Due,
        r#"SELECT s.key, s.tenant_id, t.slug AS "slug?", s.value, s.revert_to, s.reason,
                  s.set_by, s.set_at
           FROM kill_switches s LEFT JOIN tenants t ON t.id = s.tenant_id
           WHERE s.expires_at <= now()
           FOR UPDATE OF s SKIP LOCKED"#
    )
    .fetch_all(change.db())
    .await
}

/// Deletes an override whose timer ran out with nothing to revert to.
pub async fn delete_expired_override(
    change: &mut Change,
    key: &str,
    tenant: Uuid,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM kill_switches WHERE key = $1 AND tenant_id = $2",
        key,
        tenant
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Reverts a timed flip to `to`, by the system.
pub async fn revert(
    change: &mut Change,
    key: &str,
    tenant: Option<Uuid>,
    to: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE kill_switches
                     SET value = $3, expires_at = NULL, revert_to = NULL, set_by = 'system',
                         set_at = now(), reason = 'timed revert: ' || left(reason, 480)
                     WHERE key = $1 AND tenant_id IS NOT DISTINCT FROM $2",
        key,
        tenant,
        to
    )
    .execute(change.db())
    .await?;
    Ok(())
}
