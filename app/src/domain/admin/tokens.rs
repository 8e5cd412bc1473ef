//! Minting, listing and revoking admin API tokens, and authenticating a call with one.

use super::{Scope, MAX_DAYS, PREFIX};
use crate::auth::{Actor, Permission, Role, StaffIdentity};
use crate::domain::tokens::pepper::PepperRing;
use crate::domain::tokens::token;
use crate::error::AppError;
use sqlx::PgPool;
use std::net::IpAddr;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Live tokens one person may hold.
pub const MAX_LIVE_PER_PERSON: i64 = 20;

/// What to mint.
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    /// A name saying what it is for.
    pub name: String,
    /// The scopes, in their wire spelling.
    pub scopes: Vec<String>,
    /// The tenant's slug; empty for the platform (admins only).
    pub tenant: String,
    /// Days until it expires (1 to [`MAX_DAYS`]).
    pub days: String,
}

/// A minted token: its plaintext, shown once.
pub struct Minted {
    /// Its id.
    pub id: String,
    /// The token.
    pub plaintext: Zeroizing<String>,
    /// When it expires.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn parse_scopes(raw: &[String], role: Role) -> Result<Vec<Scope>, AppError> {
    let mut scopes = Vec::new();
    for s in raw.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let scope = Scope::parse(s)
            .ok_or_else(|| AppError::validation("scopes", format!("“{s}” is not a scope.")))?;
        if !scope.allowed_to(role) {
            return Err(AppError::validation(
                "scopes",
                format!(
                    "{} needs the role {} or above: yours is {}.",
                    scope.as_str(),
                    scope.permission().minimum_role().label(),
                    role.label()
                ),
            ));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(AppError::validation("scopes", "Choose at least one scope."));
    }
    Ok(scopes)
}

/// Mints a token for the signed-in staff member themselves (the caller checks step-up;
/// the freeze is checked here), or, from the command line, for the active staff member
/// `owner`. A token cannot mint tokens.
pub async fn mint(
    actor: &Actor,
    ring: &PepperRing,
    req: &MintRequest,
    owner: Option<Uuid>,
) -> Result<Minted, AppError> {
    if actor.admin_token_id().is_some() {
        return Err(AppError::Forbidden);
    }
    let me = match (actor.staff(), owner) {
        (Some(me), None) => me.clone(),
        (Some(me), Some(id)) if id == me.id => me.clone(),
        (None, Some(id)) if actor.is_command_line() => owner_now(actor, id).await?,
        _ => return Err(AppError::Forbidden),
    };
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "name",
            "Name it (1 to 100 characters) after what will use it.",
        ));
    }
    let scopes = parse_scopes(&req.scopes, me.role)?;
    let days: i64 = req
        .days
        .trim()
        .parse()
        .ok()
        .filter(|d| (1..=MAX_DAYS).contains(d))
        .ok_or_else(|| {
            AppError::validation("days", format!("It expires in 1 to {MAX_DAYS} days."))
        })?;
    let tenant = match req.tenant.trim() {
        "" => {
            if !me.can(Permission::ManageStaff) {
                return Err(AppError::validation(
                    "tenant",
                    "Only admins may mint a platform token: choose a tenant.",
                ));
            }
            None
        }
        slug => Some(crate::domain::tenants::queries::find(actor.reader(), slug).await?),
    };
    let mut change = crate::domain::freeze::guard(
        actor,
        actor.change().await?,
        crate::domain::freeze::FrozenOp::MintAdminToken,
    )
    .await?;
    // The owner's row locked: parallel mints count one another.
    sqlx::query!("SELECT id FROM staff WHERE id = $1 FOR UPDATE", me.id)
        .fetch_one(change.db())
        .await?;
    let live = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM admin_tokens
           WHERE owner_id = $1 AND revoked_at IS NULL AND expires_at > now()"#,
        me.id
    )
    .fetch_one(change.db())
    .await?;
    if live >= MAX_LIVE_PER_PERSON {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "You hold {MAX_LIVE_PER_PERSON} live admin tokens: revoke one you no longer use."
            ),
        });
    }
    let minted = token::mint_as(PREFIX);
    let hash = token::hash(ring.current.key(), minted.secret());
    let scope_names: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    let expires_at = sqlx::query_scalar!(
        "INSERT INTO admin_tokens
             (id, owner_id, name, scopes, tenant_id, secret_hash, pepper_version, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(days => $8))
         RETURNING expires_at",
        minted.id,
        me.id,
        name,
        &scope_names,
        tenant.as_ref().map(|t| t.id),
        &hash[..],
        ring.current.version,
        days as i32
    )
    .fetch_one(change.db())
    .await?;
    let event = actor
        .event("admin_token.minted")
        .tenant(tenant.as_ref().map(|t| t.id))
        .target(format!("admin_token:{}", minted.id))
        .details(serde_json::json!({
            "name": name,
            "scopes": scope_names,
            "tenant": tenant.as_ref().map(|t| t.slug.clone()),
            "expires_at": expires_at.unix_timestamp(),
        }));
    change.commit(event).await?;
    Ok(Minted {
        id: minted.id,
        plaintext: minted.plaintext,
        expires_at,
    })
}

/// The active staff member `id`, as a token of theirs would act.
async fn owner_now(actor: &Actor, id: Uuid) -> Result<StaffIdentity, AppError> {
    let row = sqlx::query!(
        r#"SELECT email, display_name, role::text AS "role!", status::text AS "status!"
           FROM staff WHERE id = $1"#,
        id
    )
    .fetch_optional(actor.reader())
    .await?
    .filter(|r| r.status == "active")
    .ok_or_else(|| AppError::validation("owner", "No active staff member has this email."))?;
    Ok(StaffIdentity {
        id,
        email: row.email,
        display_name: row.display_name,
        role: Role::parse(&row.role).unwrap_or(Role::Viewer),
        must_change_password: false,
        must_enrol_factor: false,
        mfa_optional: false,
        freeze: None,
    })
}

/// One token, as its owner's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its tenant's slug (`None`: the platform).
    pub tenant: Option<String>,
    /// When it was minted.
    pub created_at: OffsetDateTime,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Its last use, and from where.
    pub last_used_at: Option<OffsetDateTime>,
    /// The address of its last use.
    pub last_used_ip: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// The staff member's tokens, newest first (the latest 50).
pub async fn list(actor: &Actor, owner: Uuid) -> Result<Vec<Listed>, AppError> {
    Ok(sqlx::query_as!(
        Listed,
        r#"SELECT a.id, a.name, a.scopes, t.slug AS "tenant?", a.created_at, a.expires_at,
                  a.last_used_at, host(a.last_used_ip) AS last_used_ip, a.revoked_at
           FROM admin_tokens a LEFT JOIN tenants t ON t.id = a.tenant_id
           WHERE a.owner_id = $1
           ORDER BY a.created_at DESC LIMIT 50"#,
        owner
    )
    .fetch_all(actor.reader())
    .await?)
}

/// Revokes a token: its owner's own, or anyone's for an admin. Refused at once.
pub async fn revoke(actor: &Actor, id: &str) -> Result<(), AppError> {
    let Some(me) = actor.staff().cloned() else {
        return Err(AppError::Forbidden);
    };
    let mut change = actor.change().await?;
    let row = sqlx::query!(
        "SELECT owner_id, tenant_id, revoked_at FROM admin_tokens WHERE id = $1 FOR UPDATE",
        id.trim()
    )
    .fetch_optional(change.db())
    .await?
    .filter(|r| r.owner_id == me.id || me.can(Permission::ManageStaff))
    .ok_or_else(|| AppError::not_found("That admin token"))?;
    if row.revoked_at.is_some() {
        return Err(AppError::Conflict {
            field: None,
            message: "This token is already revoked.".into(),
        });
    }
    sqlx::query!(
        "UPDATE admin_tokens SET revoked_at = now(), revoked_by = $2 WHERE id = $1",
        id.trim(),
        actor.label()
    )
    .execute(change.db())
    .await?;
    let event = actor
        .event("admin_token.revoked")
        .tenant(row.tenant_id)
        .target(format!("admin_token:{}", id.trim()));
    change.commit(event).await?;
    Ok(())
}

/// Why a call's token was refused: the code and what to say, and whether the token was
/// genuine (its refusal is then audited under its owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 401 or 403.
    pub status: u16,
    /// The stable code.
    pub code: &'static str,
    /// What to say.
    pub message: &'static str,
}

const fn refused(status: u16, code: &'static str, message: &'static str) -> Refused {
    Refused {
        status,
        code,
        message,
    }
}

/// The token is missing.
pub const MISSING: Refused = refused(
    401,
    "ADMIN_TOKEN_MISSING",
    "Send an admin token as Authorization: Bearer <token> (or x-admin-secret).",
);
/// Not a token, or not one we know.
pub const INVALID: Refused = refused(401, "ADMIN_TOKEN_INVALID", "The admin token is not valid.");
/// Expired.
pub const EXPIRED: Refused = refused(
    401,
    "ADMIN_TOKEN_EXPIRED",
    "The admin token has expired: mint a new one.",
);
/// Revoked.
pub const REVOKED: Refused = refused(401, "ADMIN_TOKEN_REVOKED", "The admin token was revoked.");
/// Its owner is disabled.
pub const OWNER_DISABLED: Refused = refused(
    401,
    "ADMIN_TOKEN_OWNER_DISABLED",
    "The admin token's owner is disabled.",
);
/// The scope is not among the token's.
pub const SCOPE_MISSING: Refused = refused(
    403,
    "ADMIN_SCOPE_MISSING",
    "The admin token lacks the scope this route needs.",
);
/// The owner's role does not allow the scope (any more).
pub const ROLE_TOO_LOW: Refused = refused(
    403,
    "ADMIN_ROLE_TOO_LOW",
    "The admin token's owner no longer has the role this route needs.",
);
/// Our side failed (the database): retry, the token is not at fault.
pub const UNAVAILABLE: Refused = refused(
    503,
    "ADMIN_API_UNAVAILABLE",
    "The admin API cannot check tokens right now: try again.",
);
/// Another tenant's token.
pub const WRONG_TENANT: Refused = refused(
    403,
    "ADMIN_TOKEN_WRONG_TENANT",
    "The admin token is for another tenant.",
);

/// Who a call comes from, before its route's scope is checked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's id.
    pub token_id: String,
    /// Its owner, as they are now.
    pub owner: StaffIdentity,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// Its tenant (`None`: the platform).
    pub tenant: Option<Uuid>,
}

/// Authenticates `presented`: the owner's current role and status are read with it, so a
/// disabled owner or a revoked token is refused at the next call.
pub async fn authenticate(
    pool: &PgPool,
    ring: &PepperRing,
    presented: &str,
) -> Result<Caller, (Refused, Option<Caller>)> {
    let presented = token::parse_as(PREFIX, presented.trim()).map_err(|_| (INVALID, None))?;
    let row = sqlx::query!(
        r#"SELECT a.owner_id, a.scopes, a.tenant_id, a.secret_hash, a.pepper_version,
                  a.expires_at <= now() AS "expired!", a.revoked_at IS NOT NULL AS "revoked!",
                  s.email, s.display_name, s.role::text AS "role!",
                  s.status::text AS "status!", now() AS "now!"
           FROM admin_tokens a JOIN staff s ON s.id = a.owner_id
           WHERE a.id = $1"#,
        presented.id
    )
    .fetch_optional(pool)
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "admin token lookup failed");
        (UNAVAILABLE, None)
    })?
    .ok_or((INVALID, None))?;
    let genuine = ring
        .get(row.pepper_version, row.now)
        .is_some_and(|p| token::verify(p.key(), presented.secret(), &row.secret_hash));
    if !genuine {
        return Err((INVALID, None));
    }
    let caller = Caller {
        token_id: presented.id.clone(),
        owner: StaffIdentity {
            id: row.owner_id,
            email: row.email,
            display_name: row.display_name,
            // A role this build does not know is refused, never read as a lesser one.
            role: Role::parse(&row.role).ok_or((INVALID, None))?,
            must_change_password: false,
            must_enrol_factor: false,
            mfa_optional: false,
            freeze: None,
        },
        scopes: row.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        tenant: row.tenant_id,
    };
    let refusal = if row.revoked {
        Some(REVOKED)
    } else if row.expired {
        Some(EXPIRED)
    } else if row.status != "active" {
        Some(OWNER_DISABLED)
    } else {
        None
    };
    if let Some(refusal) = refusal {
        return Err((refusal, Some(caller)));
    }
    Ok(caller)
}

/// Records an authorized call as the token's last use (unaudited bookkeeping: the call's
/// own change is audited).
pub async fn record_use(pool: &PgPool, caller: &Caller, ip: Option<IpAddr>) {
    let used = sqlx::query!(
        "UPDATE admin_tokens SET last_used_at = now(), last_used_ip = $2::text::inet WHERE id = $1",
        caller.token_id,
        ip.map(|ip| ip.to_string())
    )
    .execute(pool)
    .await;
    if let Err(err) = used {
        tracing::warn!(error = %err, "recording an admin token's last use failed");
    }
}

/// Which admin tokens a staff or pepper change revokes.
#[derive(Debug, Clone, Copy)]
pub enum Revoking {
    /// Every live token of this staff member (a password or factor reset, a disable).
    OwnedBy(Uuid),
    /// Every live token hashed under this pepper version (its retirement).
    OnPepper(i32),
}

/// Revokes the live admin tokens `which` names inside `change`, one `admin_token.revoked`
/// event each (from `template`, with the token as target). How many.
pub async fn revoke_in(
    change: &mut crate::auth::Change,
    which: Revoking,
    by: &str,
    template: &crate::domain::audit::NewEvent,
) -> Result<usize, AppError> {
    let (owner, version) = match which {
        Revoking::OwnedBy(id) => (Some(id), None),
        Revoking::OnPepper(v) => (None, Some(v)),
    };
    let revoked = sqlx::query!(
        "UPDATE admin_tokens SET revoked_at = now(), revoked_by = $3
         WHERE revoked_at IS NULL AND expires_at > now()
           AND ($1::uuid IS NULL OR owner_id = $1)
           AND ($2::int IS NULL OR pepper_version = $2)
         RETURNING id, tenant_id",
        owner,
        version,
        by
    )
    .fetch_all(change.db())
    .await?;
    let events: Vec<crate::domain::audit::NewEvent> = revoked
        .iter()
        .map(|r| {
            template
                .clone()
                .target(format!("admin_token:{}", r.id))
                .tenant(r.tenant_id)
        })
        .collect();
    change.record_each(&events).await?;
    Ok(revoked.len())
}

/// Whether `caller` may call a route of `scope` on the tenant `tenant` (`None`: a platform
/// route, for platform tokens alone).
pub fn authorize(caller: &Caller, scope: Scope, tenant: Option<Uuid>) -> Result<(), Refused> {
    if !caller.scopes.contains(&scope) {
        return Err(SCOPE_MISSING);
    }
    if !scope.allowed_to(caller.owner.role) {
        return Err(ROLE_TOO_LOW);
    }
    match (caller.tenant, tenant) {
        // A platform token acts on every tenant only while its owner is still an admin.
        (None, _) if !caller.owner.can(Permission::ManageStaff) => Err(ROLE_TOO_LOW),
        (None, _) => Ok(()),
        (Some(mine), Some(asked)) if mine == asked => Ok(()),
        _ => Err(WRONG_TENANT),
    }
}
