//! SQL of the signing keys. Mutations take the [`Change`] they are part of.

use super::{KeyUse, SigningKey};
use crate::auth::Change;
use crate::domain::status::{SigningAlgorithm, SigningKeyState};
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// Most keys the panel lists (every published key, and the newest ended ones).
pub const LIST_LIMIT: i64 = 50;

/// A tenant whose keys a change works on, locked for that change.
#[derive(Debug, Clone)]
pub struct LockedTenant {
    /// Its id.
    pub id: Uuid,
    /// Its slug.
    pub slug: String,
    /// The algorithm of its new keys.
    pub algorithm: SigningAlgorithm,
}

/// Locks the tenant `slug` for a key change, so two changes to its keys run one after the
/// other (the one-active-key rule holds between them). `NO KEY UPDATE`: an audit event of
/// the tenant written meanwhile (the gateway's ledger, holding the chain's lock) takes a
/// key-share lock on the row for its foreign key, which a `FOR UPDATE` here would block
/// while this change waits for the chain: a deadlock.
pub async fn lock_tenant(change: &mut Change, slug: &str) -> sqlx::Result<Option<LockedTenant>> {
    sqlx::query_as!(
        LockedTenant,
        r#"SELECT id, slug, signing_algorithm AS "algorithm: SigningAlgorithm"
           FROM tenants WHERE slug = $1 FOR NO KEY UPDATE"#,
        slug
    )
    .fetch_optional(change.db())
    .await
}

/// A tenant's keys: the published ones first (active, staged, retired), then the newest
/// ended ones, at most [`LIST_LIMIT`].
pub async fn list(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<Vec<SigningKey>> {
    sqlx::query_as!(
        SigningKey,
        r#"SELECT kid, algorithm AS "algorithm: SigningAlgorithm",
                  state::text AS "state!: SigningKeyState", staged_at, created_by,
                  activated_at, retired_at, verify_until,
                  coalesce(revoked_at, removed_at) AS ended_at, revoke_reason
           FROM signing_keys WHERE tenant_id = $1
           ORDER BY CASE state WHEN 'active' THEN 0 WHEN 'staged' THEN 1 WHEN 'retired' THEN 2 ELSE 3 END,
                    coalesce(revoked_at, removed_at, staged_at) DESC, kid
           LIMIT $2"#,
        tenant,
        LIST_LIMIT
    )
    .fetch_all(db)
    .await
}

/// The keys of `tenant` in `states`, locked for the change.
pub async fn lock_keys(
    change: &mut Change,
    tenant: Uuid,
    states: &[SigningKeyState],
) -> sqlx::Result<Vec<SigningKey>> {
    let states: Vec<String> = states.iter().map(|s| s.as_str().to_owned()).collect();
    sqlx::query_as!(
        SigningKey,
        r#"SELECT kid, algorithm AS "algorithm: SigningAlgorithm",
                  state::text AS "state!: SigningKeyState", staged_at, created_by,
                  activated_at, retired_at, verify_until,
                  coalesce(revoked_at, removed_at) AS ended_at, revoke_reason
           FROM signing_keys WHERE tenant_id = $1 AND state::text = ANY($2)
           ORDER BY staged_at, kid
           FOR UPDATE"#,
        tenant,
        &states
    )
    .fetch_all(change.db())
    .await
}

/// A new key's row.
pub struct NewKey<'a> {
    /// Its thumbprint.
    pub kid: &'a str,
    /// Its tenant.
    pub tenant: Uuid,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// The public JWK.
    pub jwk: serde_json::Value,
    /// The seal's nonce.
    pub nonce: &'a [u8],
    /// The sealed private key.
    pub sealed: &'a [u8],
    /// `staged` or `active`.
    pub state: SigningKeyState,
    /// Who made it.
    pub created_by: &'a str,
}

/// Inserts a key, staged or active (active: activated now).
pub async fn insert(change: &mut Change, key: NewKey<'_>) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO signing_keys
               (kid, tenant_id, algorithm, public_jwk, nonce, sealed, state, activated_at, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7::text::signing_key_state,
                   CASE WHEN $7 = 'active' THEN now() END, $8)"#,
        key.kid,
        key.tenant,
        key.algorithm.as_str(),
        key.jwk,
        key.nonce,
        key.sealed,
        key.state.as_str(),
        key.created_by
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Makes a staged key the active one.
pub async fn activate(change: &mut Change, kid: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE signing_keys SET state = 'active', activated_at = now()
         WHERE kid = $1 AND state = 'staged'",
        kid
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// Retires the active key `kid`; it verifies until `verify_until`. Returns that time as
/// the database set it.
pub async fn retire(
    change: &mut Change,
    kid: &str,
    grace: time::Duration,
) -> sqlx::Result<OffsetDateTime> {
    let seconds = grace.whole_seconds() as f64;
    sqlx::query_scalar!(
        r#"UPDATE signing_keys SET state = 'retired', retired_at = now(),
                  verify_until = now() + make_interval(secs => $2)
           WHERE kid = $1 AND state = 'active'
           RETURNING verify_until AS "verify_until!""#,
        kid,
        seconds
    )
    .fetch_one(change.db())
    .await
}

/// Revokes the published keys `kids`: unpublished at once, their private parts erased.
pub async fn revoke(change: &mut Change, kids: &[String], reason: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE signing_keys SET state = 'revoked', revoked_at = now(), revoke_reason = $2,
                nonce = NULL, sealed = NULL
         WHERE kid = ANY($1) AND state IN ('staged', 'active', 'retired')",
        kids,
        reason
    )
    .execute(change.db())
    .await?
    .rows_affected())
}

/// Whether some retired key's `verify_until` has passed (a cheap check before the job
/// takes locks).
pub async fn removal_due(db: impl PgExecutor<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM signing_keys
                          WHERE state = 'retired' AND verify_until <= now()) AS "due!""#
    )
    .fetch_one(db)
    .await
}

/// Removes the retired keys whose `verify_until` has passed, skipping any another
/// instance is removing: (kid, tenant, verify_until) of each.
pub async fn remove_due(change: &mut Change) -> sqlx::Result<Vec<(String, Uuid, OffsetDateTime)>> {
    let rows = sqlx::query!(
        r#"UPDATE signing_keys SET state = 'removed', removed_at = now(), nonce = NULL, sealed = NULL
           WHERE kid IN (SELECT kid FROM signing_keys
                         WHERE state = 'retired' AND verify_until <= now()
                         FOR UPDATE SKIP LOCKED)
           RETURNING kid, tenant_id, verify_until AS "verify_until!""#
    )
    .fetch_all(change.db())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.kid, r.tenant_id, r.verify_until))
        .collect())
}

/// Tenants that have no active key (created before keys existed, or by hand).
pub async fn tenants_without_active_key(
    db: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    let rows = sqlx::query!(
        "SELECT id, slug FROM tenants t
         WHERE NOT EXISTS (SELECT 1 FROM signing_keys k WHERE k.tenant_id = t.id AND k.state = 'active')
         ORDER BY slug"
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.slug)).collect())
}

/// A sealed key, as stored.
pub struct SealedKey {
    /// Its kid.
    pub kid: String,
    /// Its tenant.
    pub tenant_id: Uuid,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// The seal's nonce.
    pub nonce: Vec<u8>,
    /// The sealed private key.
    pub sealed: Vec<u8>,
}

/// Every key that still has a private part (staged, active, retired).
pub async fn sealed_keys(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<SealedKey>> {
    sqlx::query_as!(
        SealedKey,
        r#"SELECT kid, tenant_id, algorithm AS "algorithm: SigningAlgorithm",
                  nonce AS "nonce!", sealed AS "sealed!"
           FROM signing_keys WHERE sealed IS NOT NULL ORDER BY kid"#
    )
    .fetch_all(db)
    .await
}

/// Each key's use by the tenant's delegated tokens in the last 24 hours: tokens signed
/// (`delegated.issued`) and calls accepted (`delegated.used`), from the gateway's events
/// (each counts its calls in `details.count`).
pub async fn usage(db: impl PgExecutor<'_>, tenant: Uuid) -> sqlx::Result<Vec<KeyUse>> {
    sqlx::query_as!(
        KeyUse,
        r#"SELECT details->>'kid' AS "kid!",
                  coalesce(sum((details->>'count')::bigint)
                           FILTER (WHERE action = 'delegated.issued'), 0)::bigint AS "signed!",
                  coalesce(sum((details->>'count')::bigint)
                           FILTER (WHERE action = 'delegated.used'), 0)::bigint AS "verified!"
           FROM audit_events
           WHERE tenant_id = $1 AND ts > now() - interval '24 hours'
             AND action IN ('delegated.issued', 'delegated.used')
             AND details ? 'kid'
           GROUP BY 1"#,
        tenant
    )
    .fetch_all(db)
    .await
}

/// Delegated tokens signed by `kids` within the last `secs` seconds (those that may still
/// be live), from the gateway's `delegated.issued` events.
pub async fn issued_since(
    db: impl PgExecutor<'_>,
    tenant: Uuid,
    kids: &[String],
    secs: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT coalesce(sum((details->>'count')::bigint), 0)::bigint AS "n!"
           FROM audit_events
           WHERE tenant_id = $1 AND action = 'delegated.issued'
             AND ts > now() - make_interval(secs => $3) AND details->>'kid' = ANY($2)"#,
        tenant,
        kids,
        secs as f64
    )
    .fetch_one(db)
    .await
}

/// The instances whose heartbeat is at most [`super::INSTANCE_LIVE_SECS`] old.
pub async fn live_instances(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<super::InstanceRow>> {
    sqlx::query_as!(
        super::InstanceRow,
        r#"SELECT id::text AS "id!", host, version, started_at, last_seen, key_epoch, listening
           FROM instances WHERE last_seen > now() - make_interval(secs => $1)
           ORDER BY started_at, id"#,
        super::INSTANCE_LIVE_SECS as f64
    )
    .fetch_all(db)
    .await
}

/// The database's key epoch.
pub async fn key_epoch(db: impl PgExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!("SELECT epoch FROM signing_key_epoch")
        .fetch_one(db)
        .await
}

/// The id of a request of `kind` for `tenant` made in the last `secs` seconds, if any (a
/// second click joins it rather than asking every instance again).
pub async fn recent_request(
    change: &mut Change,
    tenant: Uuid,
    kind: super::InstanceRequestKind,
    secs: i64,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM instance_requests
         WHERE tenant_id = $1 AND kind::text = $2 AND requested_at > now() - make_interval(secs => $3)
         ORDER BY requested_at DESC LIMIT 1",
        tenant,
        kind.as_str(),
        secs as f64
    )
    .fetch_optional(change.db())
    .await
}

/// Records a request to the instances `expected`; every instance hears of it on commit.
pub async fn insert_request(
    change: &mut Change,
    id: Uuid,
    tenant: Uuid,
    kind: super::InstanceRequestKind,
    by: &str,
    epoch: i64,
    expected: &[Uuid],
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO instance_requests (id, kind, tenant_id, requested_by, epoch, instances)
         VALUES ($1, $2::text::instance_request_kind, $3, $4, $5, $6)",
        id,
        kind.as_str(),
        tenant,
        by,
        epoch,
        expected
    )
    .execute(change.db())
    .await?;
    Ok(())
}

/// A request of the tenant and its answers (`None`: no such request of this tenant).
pub async fn request(
    db: &crate::auth::Reader,
    tenant: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<super::InstanceRequest>> {
    let Some(row) = sqlx::query!(
        r#"SELECT id, kind::text AS "kind!", requested_by, requested_at, epoch, instances, now() AS "now!"
           FROM instance_requests WHERE id = $1 AND tenant_id = $2"#,
        id,
        tenant
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    // The instances expected, as they were last seen (one that stopped since has no row:
    // it is shown by id).
    let seen = sqlx::query_as!(
        super::InstanceRow,
        r#"SELECT id::text AS "id!", host, version, started_at, last_seen, key_epoch, listening
           FROM instances WHERE id = ANY($1)"#,
        &row.instances
    )
    .fetch_all(db)
    .await?;
    let expected = row
        .instances
        .iter()
        .map(|id| {
            let id = id.to_string();
            seen.iter()
                .find(|i| i.id == id)
                .cloned()
                .unwrap_or(super::InstanceRow {
                    id,
                    host: "(stopped)".into(),
                    version: String::new(),
                    started_at: row.requested_at,
                    last_seen: row.requested_at,
                    key_epoch: 0,
                    listening: false,
                })
        })
        .collect();
    let acks = sqlx::query!(
        r#"SELECT instance_id, host, epoch, acked_at, passed, results
           FROM instance_acks WHERE request_id = $1 ORDER BY acked_at, instance_id"#,
        id
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|a| super::InstanceAck {
        instance_id: a.instance_id.to_string(),
        host: a.host,
        epoch: a.epoch,
        acked_at: a.acked_at,
        passed: a.passed,
        probes: serde_json::from_value(a.results).unwrap_or_default(),
    })
    .collect();
    Ok(Some(super::InstanceRequest {
        id: row.id.to_string(),
        kind: super::InstanceRequestKind::parse(&row.kind)
            .unwrap_or(super::InstanceRequestKind::Refresh),
        requested_by: row.requested_by,
        requested_at: row.requested_at,
        epoch: row.epoch,
        expected,
        acks,
        now: row.now,
    }))
}

/// The tenant's latest request, if any.
pub async fn latest_request(db: &crate::auth::Reader, tenant: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar!(
        "SELECT id FROM instance_requests WHERE tenant_id = $1 ORDER BY requested_at DESC LIMIT 1",
        tenant
    )
    .fetch_optional(db)
    .await
}

/// How many requests to the instances were made in the last `secs` seconds, every tenant's.
pub async fn requests_since(change: &mut Change, secs: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM instance_requests
           WHERE requested_at > now() - make_interval(secs => $1)"#,
        secs as f64
    )
    .fetch_one(change.db())
    .await
}

/// The database's clock.
pub async fn database_now(db: impl PgExecutor<'_>) -> sqlx::Result<OffsetDateTime> {
    sqlx::query_scalar!(r#"SELECT now() AS "now!""#)
        .fetch_one(db)
        .await
}
