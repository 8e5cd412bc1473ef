//! The platform-wide freeze (runbook 001: "freeze high-risk admin operations"): while one
//! is on, every operation that adds access or removes a protection is refused, for everyone
//! and from every door (console, command line), with `423 FROZEN` naming the freeze.
//! Protective actions (revoking, suspending, blocking, switches off, ending sessions) never
//! are. Started and lifted on the Freeze panel (`panels::freeze`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A freeze that is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// Its id (audit events name it).
    pub id: Uuid,
    /// Why it is on.
    pub reason: String,
    /// Who turned it on (an email, or `cli:<user>`).
    pub started_by: String,
    /// When.
    pub started_at: OffsetDateTime,
    /// When it lifts by itself, if it does.
    pub expires_at: Option<OffsetDateTime>,
}

/// What the freeze is, in one sentence: since when, by whom, why, until when (UTC).
pub fn describe(freeze: &Freeze) -> String {
    use crate::components::time::utc_minutes;
    let until = match freeze.expires_at {
        Some(at) => format!(" It lifts by itself at {} UTC.", utc_minutes(at)),
        None => " It stays on until someone lifts it.".to_owned(),
    };
    format!(
        "High-risk operations are frozen since {} UTC, by {}: “{}”.{until}",
        utc_minutes(freeze.started_at),
        freeze.started_by,
        freeze.reason
    )
}

/// The operations a freeze refuses: each adds access or removes a protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrozenOp {
    /// Adding a staff member.
    CreateStaff,
    /// Raising someone's role (lowering it is protective).
    ChangeStaffRole,
    /// Enabling a disabled staff member again.
    EnableStaff,
    /// Handing someone a new one-time password.
    ResetStaffPassword,
    /// Removing someone's second factors.
    ResetStaffFactors,
    /// A staged pepper rotation (the compromise rotation, which revokes, stays allowed).
    StagePepperRotation,
    /// Minting a service token for the switches API.
    CreateServiceToken,
    /// Removing an IP block.
    UnblockAddress,
    /// Reactivating a suspended API client.
    ReactivateClient,
    /// Keeping a tenant's audit events for less time.
    LowerRetention,
    /// Flipping a kill switch, or removing an override, so that a protection goes (or
    /// ends sooner).
    RemoveSwitchProtection,
    /// Minting a personal access token.
    MintToken,
    /// Adding an API client (a new key).
    CreateClient,
    /// Putting a client on the allowlist (past `strictAllowlist`).
    AllowlistClient,
    /// Rotating a client's key with a grace period (the old one still working; retiring it
    /// at once, the answer to a leak, stays allowed).
    RotateClientKey,
    /// Making an IP block end sooner (a shorter expiry on a block in force).
    ShortenBlock,
    /// Raising a rate-limit override in force, or making it end sooner.
    LoosenRateLimit,
    /// Creating a tenant (a new signing key, new tokens to mint).
    CreateTenant,
    /// Raising a tenant's longest token lifetime, or allowing it a new audience.
    WidenTenantSettings,
    /// Activating a staged signing key (normally or in an emergency). Revoking keys, and
    /// the fresh key that replaces revoked ones, stay allowed.
    ActivateSigningKey,
    /// Unlocking or restoring an end user's account.
    RestoreEndUser,
    /// Minting an admin API token.
    MintAdminToken,
}

impl FrozenOp {
    /// Every frozen operation.
    pub const ALL: [FrozenOp; 22] = [
        Self::CreateStaff,
        Self::ChangeStaffRole,
        Self::EnableStaff,
        Self::ResetStaffPassword,
        Self::ResetStaffFactors,
        Self::StagePepperRotation,
        Self::CreateServiceToken,
        Self::UnblockAddress,
        Self::ReactivateClient,
        Self::LowerRetention,
        Self::RemoveSwitchProtection,
        Self::MintToken,
        Self::CreateClient,
        Self::AllowlistClient,
        Self::RotateClientKey,
        Self::ShortenBlock,
        Self::LoosenRateLimit,
        Self::CreateTenant,
        Self::WidenTenantSettings,
        Self::ActivateSigningKey,
        Self::RestoreEndUser,
        Self::MintAdminToken,
    ];

    /// The wire and audit spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateStaff => "create_staff",
            Self::ChangeStaffRole => "change_staff_role",
            Self::EnableStaff => "enable_staff",
            Self::ResetStaffPassword => "reset_staff_password",
            Self::ResetStaffFactors => "reset_staff_factors",
            Self::StagePepperRotation => "stage_pepper_rotation",
            Self::CreateServiceToken => "create_service_token",
            Self::UnblockAddress => "unblock_address",
            Self::ReactivateClient => "reactivate_client",
            Self::LowerRetention => "lower_retention",
            Self::RemoveSwitchProtection => "remove_switch_protection",
            Self::MintToken => "mint_token",
            Self::CreateClient => "create_client",
            Self::AllowlistClient => "allowlist_client",
            Self::RotateClientKey => "rotate_client_key",
            Self::ShortenBlock => "shorten_block",
            Self::LoosenRateLimit => "loosen_rate_limit",
            Self::CreateTenant => "create_tenant",
            Self::WidenTenantSettings => "widen_tenant_settings",
            Self::ActivateSigningKey => "activate_signing_key",
            Self::RestoreEndUser => "restore_end_user",
            Self::MintAdminToken => "mint_admin_token",
        }
    }

    /// How the Freeze panel lists it.
    pub fn label(self) -> &'static str {
        match self {
            Self::CreateStaff => "Adding staff",
            Self::ChangeStaffRole => "Raising a staff role",
            Self::EnableStaff => "Enabling a disabled staff member",
            Self::ResetStaffPassword => "Resetting a staff password",
            Self::ResetStaffFactors => "Resetting someone's second factors",
            Self::StagePepperRotation => "A staged pepper rotation",
            Self::CreateServiceToken => "Minting a service token",
            Self::UnblockAddress => "Unblocking an address",
            Self::ReactivateClient => "Reactivating an API client",
            Self::LowerRetention => "Shortening audit retention",
            Self::RemoveSwitchProtection => {
                "A kill switch flip or override removal that removes a protection, or ends one sooner"
            }
            Self::MintToken => "Minting a personal access token",
            Self::CreateClient => "Adding an API client",
            Self::AllowlistClient => "Putting an API client on the allowlist",
            Self::RotateClientKey => "Rotating an API client's key with a grace period",
            Self::ShortenBlock => "Making an IP block end sooner",
            Self::LoosenRateLimit => "Raising a rate-limit override, or making it end sooner",
            Self::CreateTenant => "Creating a tenant",
            Self::WidenTenantSettings => "Raising a tenant's token lifetime, or allowing an audience",
            Self::ActivateSigningKey => "Activating a staged signing key",
            Self::RestoreEndUser => "Unlocking or restoring an end user's account",
            Self::MintAdminToken => "Minting an admin API token",
        }
    }
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use super::{Freeze, FrozenOp};
    use crate::auth::{Actor, Change};
    use crate::error::AppError;

    /// The transaction-level advisory lock between a frozen operation (shared) and turning
    /// a freeze on (exclusive): a freeze starts only once the frozen operations already
    /// under way have committed, and those that follow see it.
    pub(crate) const LOCK: &str = "staff_console.freeze";

    /// The freeze on now (lifted rows and passed expiries do not count), seen by `db` (a
    /// reader, or a change's connection).
    pub async fn active<'e, E>(db: E) -> sqlx::Result<Option<Freeze>>
    where
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        sqlx::query_as!(
            Freeze,
            r#"SELECT id, reason, started_by, started_at, expires_at FROM freezes
               WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > now())"#
        )
        .fetch_optional(db)
        .await
    }

    /// The error a frozen operation answers.
    pub fn refusal(freeze: &Freeze) -> AppError {
        AppError::Frozen {
            reason: freeze.reason.clone(),
            by: freeze.started_by.clone(),
            since: crate::components::time::utc_minutes(freeze.started_at),
        }
    }

    /// Lets `op` go ahead in `change` unless a freeze is on; then the refusal is recorded
    /// (a `deny` event, in the incident's timeline) and answered as `423 FROZEN`. Call it
    /// before the change writes anything: a refusal commits only its event.
    pub async fn guard(
        actor: &Actor,
        mut change: Change,
        op: FrozenOp,
    ) -> Result<Change, AppError> {
        sqlx::query!("SELECT pg_advisory_xact_lock_shared(hashtext($1))", LOCK)
            .execute(change.db())
            .await?;
        let Some(freeze) = active(change.db()).await? else {
            return Ok(change);
        };
        change
            .commit(
                actor
                    .event("freeze.refused")
                    .target(format!("freeze:{}", freeze.id))
                    .denied("FROZEN")
                    .details(serde_json::json!({ "operation": op.as_str() })),
            )
            .await?;
        Err(refusal(&freeze))
    }
}

#[cfg(test)]
mod tests {
    use super::FrozenOp;

    #[test]
    fn every_frozen_operation_has_its_own_name() {
        let names: std::collections::HashSet<_> =
            FrozenOp::ALL.iter().map(|op| op.as_str()).collect();
        assert_eq!(names.len(), FrozenOp::ALL.len());
    }
}
