//! SQL of the pepper panel. Reads take any executor; changes take the `Change`.

use super::{CompromisePreview, PepperVersion, TenantTokens};
use crate::auth::Change;
use crate::domain::status::PepperState;
use sqlx::PgExecutor;
use time::OffsetDateTime;

/// Every version, newest first, with the active tokens on each.
pub async fn versions(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<PepperVersion>> {
    sqlx::query_as!(
        PepperVersion,
        r#"SELECT v.version, v.state AS "state: PepperState", v.created_at, v.created_by, v.grace_until, v.retired_at,
                  (SELECT count(*) FROM personal_access_tokens p
                   WHERE p.pepper_version = v.version AND p.status = 'active') AS "active_tokens!"
           FROM token_peppers v ORDER BY v.version DESC"#
    )
    .fetch_all(db)
    .await
}

/// Active tokens per tenant.
pub async fn preview(db: impl PgExecutor<'_>) -> sqlx::Result<CompromisePreview> {
    let tenants = sqlx::query_as!(
        TenantTokens,
        r#"SELECT t.slug, t.name, count(*) AS "active_tokens!"
           FROM personal_access_tokens p JOIN tenants t ON t.id = p.tenant_id
           WHERE p.status = 'active'
           GROUP BY t.slug, t.name ORDER BY 3 DESC, 1"#
    )
    .fetch_all(db)
    .await?;
    let total = tenants.iter().map(|t| t.active_tokens).sum();
    Ok(CompromisePreview { tenants, total })
}

/// Whether a previous version's grace period has ended.
pub async fn retirement_due(db: impl PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM token_peppers
                          WHERE state = 'previous' AND grace_until <= now()) AS "due!""#
    )
    .fetch_one(db)
    .await
}

/// A version still verifying tokens: the current one or a previous one.
pub struct Live {
    /// Version.
    pub version: i32,
    /// `current` or `previous`.
    pub state: PepperState,
    /// For `previous`: when its grace period ends.
    pub grace_until: Option<OffsetDateTime>,
}

/// Locks the current and previous versions, and returns them with the highest version.
pub async fn lock_live(change: &mut Change) -> sqlx::Result<(Vec<Live>, i32)> {
    // Locking the whole small table serialises rotations (and their retirements).
    sqlx::query!("LOCK TABLE token_peppers IN SHARE ROW EXCLUSIVE MODE")
        .execute(change.db())
        .await?;
    let live = sqlx::query_as!(
        Live,
        r#"SELECT version, state AS "state: PepperState", grace_until FROM token_peppers
         WHERE state IN ('current', 'previous') ORDER BY version"#
    )
    .fetch_all(change.db())
    .await?;
    let max: i32 =
        sqlx::query_scalar!(r#"SELECT coalesce(max(version), 0) AS "max!" FROM token_peppers"#)
            .fetch_one(change.db())
            .await?;
    Ok((live, max))
}

/// Stores `version`, sealed, as the current one.
pub async fn insert_current(
    change: &mut Change,
    version: i32,
    nonce: &[u8],
    sealed: &[u8],
    created_by: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO token_peppers (version, nonce, sealed, state, created_by)
         VALUES ($1, $2, $3, 'current', $4)",
        version,
        nonce,
        sealed,
        created_by
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Makes the current `version` the previous one, verifying until `grace_until`.
pub async fn set_previous(
    change: &mut Change,
    version: i32,
    grace_until: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE token_peppers SET state = 'previous', grace_until = $2 WHERE version = $1",
        version,
        grace_until
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Retires `version`: it verifies no token from now on.
pub async fn retire(change: &mut Change, version: i32) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE token_peppers SET state = 'retired', retired_at = now(), grace_until = NULL
         WHERE version = $1",
        version
    )
    .execute(change.db())
    .await?;
    Ok(())
}
