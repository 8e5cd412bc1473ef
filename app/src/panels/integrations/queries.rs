//! SQL of the Integrations panel. Reads go through the `pat_listing` view; changes take
//! the `Change`.

use super::{CheckedFilter, Owner, OwnerChoice, RevokeScope, TokenEvent, TokenRow};
use crate::auth::Change;
use crate::domain::audit::Outcome;
use crate::domain::status::TokenStatus;
use sqlx::PgExecutor;
use time::OffsetDateTime;
use uuid::Uuid;

/// A `pat_listing` row as sqlx reads it.
struct ListingRow {
    id: String,
    name: String,
    owner_staff_id: Option<Uuid>,
    owner_client_id: Option<Uuid>,
    owner_label: Option<String>,
    scopes: Vec<String>,
    status: TokenStatus,
    expires_at: OffsetDateTime,
    created_at: OffsetDateTime,
    created_by: Option<String>,
    last_used_at: Option<OffsetDateTime>,
    last_used_ip: Option<String>,
    pepper_version: i32,
    revoked_at: Option<OffsetDateTime>,
    revoked_by: Option<String>,
    revoke_reason: Option<String>,
}

impl ListingRow {
    fn into_row(self) -> Option<TokenRow> {
        let owner = match (self.owner_staff_id, self.owner_client_id) {
            (Some(id), _) => Owner::Staff(id),
            (None, Some(id)) => Owner::Client(id),
            (None, None) => return None,
        };
        Some(TokenRow {
            id: self.id,
            name: self.name,
            owner,
            owner_label: self.owner_label.unwrap_or_default(),
            scopes: self.scopes,
            status: self.status,
            expires_at: self.expires_at,
            created_at: self.created_at,
            created_by: self.created_by,
            last_used_at: self.last_used_at,
            last_used_ip: self.last_used_ip,
            pepper_version: self.pepper_version,
            revoked_at: self.revoked_at,
            revoked_by: self.revoked_by,
            revoke_reason: self.revoke_reason,
        })
    }
}

/// One page of a tenant's tokens, newest first, after the keyset cursor `after`.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    filter: &CheckedFilter,
    after: Option<(OffsetDateTime, String)>,
    limit: i64,
) -> sqlx::Result<Vec<TokenRow>> {
    let (after_at, after_id) = after.unzip();
    let rows = sqlx::query_as!(
        ListingRow,
        r#"SELECT id AS "id!", name AS "name!", owner_staff_id, owner_client_id, owner_label,
                  scopes AS "scopes!", status AS "status!: TokenStatus", expires_at AS "expires_at!",
                  created_at AS "created_at!", created_by, last_used_at, last_used_ip,
                  pepper_version AS "pepper_version!", revoked_at, revoked_by, revoke_reason
           FROM pat_listing
           WHERE tenant_id = $1
             AND ($2::text IS NULL OR status = $2)
             AND ($3::uuid IS NULL OR owner_staff_id = $3)
             AND ($4::uuid IS NULL OR owner_client_id = $4)
             AND ($5::text IS NULL OR $5 = ANY (scopes))
             AND ($6::int IS NULL OR created_at > now() - make_interval(hours => $6))
             AND ($7::int IS NULL OR last_used_at > now() - make_interval(hours => $7))
             AND (NOT $8 OR last_used_at IS NULL)
             AND ($9::int IS NULL OR last_used_at IS NULL
                  OR last_used_at <= now() - make_interval(hours => $9))
             AND ($10::text IS NULL OR starts_with(id, $10))
             AND ($11::timestamptz IS NULL OR (created_at, id) < ($11, $12::text))
           ORDER BY created_at DESC, id DESC
           LIMIT $13"#,
        tenant_id,
        filter.status,
        filter.owner,
        filter.client,
        filter.scope,
        filter.created_hours.map(|h| h as i32),
        filter.used_hours.map(|h| h as i32),
        filter.never_used,
        filter.stale_hours.map(|h| h as i32),
        filter.id_prefix,
        after_at,
        after_id,
        limit,
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().filter_map(ListingRow::into_row).collect())
}

/// One token of the tenant.
pub async fn get(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: &str,
) -> sqlx::Result<Option<TokenRow>> {
    let row = sqlx::query_as!(
        ListingRow,
        r#"SELECT id AS "id!", name AS "name!", owner_staff_id, owner_client_id, owner_label,
                  scopes AS "scopes!", status AS "status!: TokenStatus", expires_at AS "expires_at!",
                  created_at AS "created_at!", created_by, last_used_at, last_used_ip,
                  pepper_version AS "pepper_version!", revoked_at, revoked_by, revoke_reason
           FROM pat_listing WHERE tenant_id = $1 AND id = $2"#,
        tenant_id,
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(ListingRow::into_row))
}

/// A token's audit events, newest first.
pub async fn history(
    db: impl PgExecutor<'_>,
    id: &str,
    limit: i64,
) -> sqlx::Result<Vec<TokenEvent>> {
    sqlx::query_as!(
        TokenEvent,
        r#"SELECT seq, ts,
                  CASE WHEN action LIKE 'token.%' THEN substr(action, 7) ELSE action END AS "kind!",
                  outcome::text AS "outcome!: Outcome", code,
                  coalesce(actor_name, actor) AS "actor!", host(ip) AS ip,
                  coalesce((details ->> 'count')::bigint, 1) AS "count!", reason
           FROM audit_events
           WHERE target = 'pat:' || $1
           ORDER BY seq DESC
           LIMIT $2"#,
        id,
        limit
    )
    .fetch_all(db)
    .await
}

/// Staff members and the tenant's API clients, for the owner pickers.
pub async fn owners(db: impl PgExecutor<'_>, tenant_id: Uuid) -> sqlx::Result<Vec<OwnerChoice>> {
    let rows = sqlx::query!(
        r#"SELECT 'staff' AS "kind!", id, email AS "label!", status = 'active' AS "active!"
           FROM staff
           UNION ALL
           SELECT 'client', id, name, status = 'active'
           FROM api_clients WHERE tenant_id = $1
           ORDER BY 1 DESC, 3"#,
        tenant_id
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let owner = match r.kind.as_str() {
                "staff" => Owner::Staff(r.id?),
                _ => Owner::Client(r.id?),
            };
            Some(OwnerChoice {
                owner,
                label: r.label,
                active: r.active,
            })
        })
        .collect())
}

/// The tenant's longest token lifetime, in days.
pub async fn max_lifetime_days(db: impl PgExecutor<'_>, tenant_id: Uuid) -> sqlx::Result<i32> {
    sqlx::query_scalar!(
        "SELECT max_token_lifetime_days FROM tenants WHERE id = $1",
        tenant_id
    )
    .fetch_one(db)
    .await
}

/// A would-be owner, locked so it cannot be disabled or revoked while the token is minted.
pub struct OwnerState {
    /// An email or a client name.
    pub label: String,
    /// Whether it may hold a new token.
    pub active: bool,
    /// A staff owner's role (`None` for a client).
    pub role: Option<crate::auth::Role>,
}

/// Locks and reads a token owner; `None` when it does not exist (or, for a client, belongs
/// to another tenant).
pub async fn lock_owner(
    change: &mut Change,
    tenant_id: Uuid,
    owner: Owner,
) -> sqlx::Result<Option<OwnerState>> {
    match owner {
        Owner::Staff(id) => {
            let row = sqlx::query!(
                r#"SELECT email, status = 'active' AS "active!", role::text AS "role!"
                   FROM staff WHERE id = $1 FOR SHARE"#,
                id
            )
            .fetch_optional(change.db())
            .await?;
            Ok(row.map(|r| OwnerState {
                label: r.email,
                active: r.active,
                role: crate::auth::Role::parse(&r.role),
            }))
        }
        Owner::Client(id) => {
            let row = sqlx::query!(
                r#"SELECT name, status = 'active' AS "active!" FROM api_clients
                   WHERE id = $1 AND tenant_id = $2 FOR SHARE"#,
                id,
                tenant_id
            )
            .fetch_optional(change.db())
            .await?;
            Ok(row.map(|r| OwnerState {
                label: r.name,
                active: r.active,
                role: None,
            }))
        }
    }
}

/// A sealed pepper as stored.
pub struct SealedPepper {
    /// Version.
    pub version: i32,
    /// AES-GCM nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext.
    pub sealed: Vec<u8>,
}

/// The current pepper, share-locked so that no rotation commits while a token is being
/// hashed with it.
pub async fn lock_current_pepper(change: &mut Change) -> sqlx::Result<Option<SealedPepper>> {
    sqlx::query_as!(
        SealedPepper,
        "SELECT version, nonce, sealed FROM token_peppers WHERE state = 'current' FOR SHARE"
    )
    .fetch_optional(change.db())
    .await
}

/// What minting stores.
pub struct NewToken<'a> {
    /// Token id.
    pub id: &'a str,
    /// Tenant.
    pub tenant_id: Uuid,
    /// Owner.
    pub owner: Owner,
    /// Name.
    pub name: &'a str,
    /// Scopes.
    pub scopes: &'a [String],
    /// HMAC-SHA256(pepper, secret).
    pub secret_hash: &'a [u8],
    /// The pepper's version.
    pub pepper_version: i32,
    /// Lifetime in days.
    pub lifetime_days: i32,
    /// The minter.
    pub created_by: Option<Uuid>,
}

/// Inserts a token; returns its expiry.
pub async fn insert(change: &mut Change, token: &NewToken<'_>) -> sqlx::Result<OffsetDateTime> {
    let (staff, client) = match token.owner {
        Owner::Staff(id) => (Some(id), None),
        Owner::Client(id) => (None, Some(id)),
    };
    sqlx::query_scalar!(
        r#"INSERT INTO personal_access_tokens
               (id, tenant_id, owner_staff_id, owner_client_id, name, scopes, secret_hash,
                pepper_version, expires_at, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(days => $9), $10)
           RETURNING expires_at"#,
        token.id,
        token.tenant_id,
        staff,
        client,
        token.name,
        token.scopes,
        token.secret_hash,
        token.pepper_version,
        token.lifetime_days,
        token.created_by,
    )
    .fetch_one(change.db())
    .await
}

/// A token about to be revoked, locked.
pub struct LockedToken {
    /// Its name.
    pub name: String,
    /// `active` or `revoked` (as stored: expiry not applied).
    pub status: TokenStatus,
    /// When and by whom it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// Locks one token of the tenant.
pub async fn lock_token(
    change: &mut Change,
    tenant_id: Uuid,
    id: &str,
) -> sqlx::Result<Option<LockedToken>> {
    sqlx::query_as!(
        LockedToken,
        r#"SELECT name, status::text AS "status!: TokenStatus", revoked_at, revoked_by
           FROM personal_access_tokens WHERE tenant_id = $1 AND id = $2 FOR UPDATE"#,
        tenant_id,
        id
    )
    .fetch_optional(change.db())
    .await
}

/// Revokes one token (locked by [`lock_token`]).
pub async fn revoke(change: &mut Change, id: &str, by: &str, reason: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE personal_access_tokens
           SET status = 'revoked', revoked_at = now(), revoked_by = $2, revoke_reason = $3
           WHERE id = $1 AND status = 'active'"#,
        id,
        by,
        reason
    )
    .execute(change.db())
    .await?;
    Ok(())
}

fn scope_ids(scope: RevokeScope) -> (Option<Uuid>, Option<Uuid>) {
    match scope {
        RevokeScope::Tenant => (None, None),
        RevokeScope::Client(id) => (Some(id), None),
        RevokeScope::Owner(id) => (None, Some(id)),
    }
}

/// Active (unrevoked, unexpired or not) tokens a mass revoke would touch.
pub async fn count_active(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    scope: RevokeScope,
) -> sqlx::Result<i64> {
    let (client, staff) = scope_ids(scope);
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM personal_access_tokens
           WHERE tenant_id = $1 AND status = 'active'
             AND ($2::uuid IS NULL OR owner_client_id = $2)
             AND ($3::uuid IS NULL OR owner_staff_id = $3)"#,
        tenant_id,
        client,
        staff
    )
    .fetch_one(db)
    .await
}

/// Which active tokens a mass revoke takes: each `Some` narrows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Matching {
    /// Of this tenant.
    pub tenant: Option<Uuid>,
    /// Owned by this API client.
    pub client: Option<Uuid>,
    /// Owned by this staff member.
    pub staff: Option<Uuid>,
    /// Hashed under this pepper version.
    pub pepper_version: Option<i32>,
}

impl Matching {
    /// The tokens a panel mass revoke of `scope` in `tenant` takes.
    pub fn scope(tenant: Uuid, scope: RevokeScope) -> Self {
        let (client, staff) = scope_ids(scope);
        Self {
            tenant: Some(tenant),
            client,
            staff,
            pepper_version: None,
        }
    }
}

/// Revokes every active token `matching`; returns (id, tenant) of those this call revoked.
/// Rows are locked in id order, so two mass revokes at once queue instead of deadlocking,
/// and the second finds nothing left to revoke.
pub async fn revoke_matching(
    change: &mut Change,
    matching: Matching,
    by: &str,
    reason: &str,
) -> sqlx::Result<Vec<(String, Uuid)>> {
    let rows = sqlx::query!(
        r#"WITH target AS (
               SELECT id FROM personal_access_tokens
               WHERE status = 'active'
                 AND ($1::uuid IS NULL OR tenant_id = $1)
                 AND ($2::uuid IS NULL OR owner_client_id = $2)
                 AND ($3::uuid IS NULL OR owner_staff_id = $3)
                 AND ($4::int IS NULL OR pepper_version = $4)
               ORDER BY id
               FOR UPDATE
           )
           UPDATE personal_access_tokens p
           SET status = 'revoked', revoked_at = now(), revoked_by = $5, revoke_reason = $6
           FROM target WHERE p.id = target.id AND p.status = 'active'
           RETURNING p.id, p.tenant_id"#,
        matching.tenant,
        matching.client,
        matching.staff,
        matching.pepper_version,
        by,
        reason
    )
    .fetch_all(change.db())
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.tenant_id)).collect())
}

/// One `token.revoked` event per revoked token, each in its tenant, in one statement.
pub async fn record_revocations(
    change: &mut crate::auth::Change,
    template: &crate::domain::audit::NewEvent,
    revoked: &[(String, Uuid)],
) -> Result<(), crate::error::AppError> {
    let events: Vec<crate::domain::audit::NewEvent> = revoked
        .iter()
        .map(|(id, tenant)| template.clone().target(format!("pat:{id}")).tenant(*tenant))
        .collect();
    change.record_each(&events).await?;
    Ok(())
}

/// The name of an API client of the tenant.
pub async fn client_name(
    db: impl PgExecutor<'_>,
    tenant_id: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT name FROM api_clients WHERE id = $1 AND tenant_id = $2",
        id,
        tenant_id
    )
    .fetch_optional(db)
    .await
}

/// Active tokens hashed under pepper `version`.
pub async fn active_on_pepper(db: impl PgExecutor<'_>, version: i32) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM personal_access_tokens
           WHERE pepper_version = $1 AND status = 'active'"#,
        version
    )
    .fetch_one(db)
    .await
}
