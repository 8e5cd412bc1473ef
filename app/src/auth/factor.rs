//! Checking a second factor, for the second step of sign-in and for step-up: a TOTP code
//! is accepted once (its time step must be later than the last one accepted, compared and
//! set under the row's lock), a recovery code is used up.

use super::Change;
use crate::domain::factors::totp::TotpSecret;
use crate::domain::factors::{recovery, Code, Factor};
use crate::domain::tokens::pepper::MasterKey;
use crate::error::AppError;
use uuid::Uuid;

/// A factor that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// An authenticator app's code.
    Totp,
    /// A recovery code; `left` unused codes remain.
    Recovery {
        /// Unused codes left after this one.
        left: i64,
    },
}

impl Accepted {
    /// The factor, as sessions record it.
    pub fn factor(self) -> Factor {
        match self {
            Self::Totp => Factor::Totp,
            Self::Recovery { .. } => Factor::RecoveryCode,
        }
    }
}

/// Why a code was refused: the audit code, and the message beside the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a code of this person's app now, nor one of their unused recovery codes.
    Wrong,
    /// The app's code for a time step already used: each code works once.
    Replayed,
}

impl Refused {
    /// The audit event's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Wrong => "INVALID_SECOND_FACTOR",
            Self::Replayed => "SECOND_FACTOR_REPLAYED",
        }
    }

    /// The message beside the code field.
    pub fn message(self) -> &'static str {
        match self {
            Self::Wrong => "That code is not right. Type the code your authenticator app shows now (check that the phone's clock is set automatically), or a recovery code you have not used.",
            Self::Replayed => "That code was already used: each code works once. Wait for the app to show the next one.",
        }
    }
}

fn now_unix() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default()
}

/// Checks `code` for `staff` inside `change` (whose row locks make it atomic), and marks it
/// used when it is accepted. Recovery codes only when `allow_recovery`.
pub async fn check(
    change: &mut Change,
    master: &MasterKey,
    staff: Uuid,
    code: &Code,
) -> Result<Result<Accepted, Refused>, AppError> {
    match code {
        Code::Totp(digits) => {
            let Some(row) = sqlx::query!(
                "SELECT nonce, secret_sealed, last_step FROM staff_totp
                 WHERE staff_id = $1 AND confirmed_at IS NOT NULL FOR UPDATE",
                staff
            )
            .fetch_optional(change.db())
            .await?
            else {
                return Ok(Err(Refused::Wrong));
            };
            let secret = TotpSecret::open(master, staff, &row.nonce, &row.secret_sealed)
                .ok_or_else(|| {
                    AppError::internal(&format!(
                        "the TOTP secret of staff:{staff} does not open under ENCRYPTION_KEY"
                    ))
                })?;
            let Some(step) = secret.check(digits, now_unix()) else {
                return Ok(Err(Refused::Wrong));
            };
            let step = i64::try_from(step).unwrap_or(i64::MAX);
            if row.last_step.is_some_and(|last| last >= step) {
                return Ok(Err(Refused::Replayed));
            }
            let accepted = sqlx::query!(
                "UPDATE staff_totp SET last_step = $2, last_used_at = now()
                 WHERE staff_id = $1 AND (last_step IS NULL OR last_step < $2)",
                staff,
                step
            )
            .execute(change.db())
            .await?
            .rows_affected();
            Ok(if accepted == 1 {
                Ok(Accepted::Totp)
            } else {
                Err(Refused::Replayed)
            })
        }
        Code::Recovery(typed) => {
            let hash = recovery::hash(master, typed);
            let used = sqlx::query_scalar!(
                "UPDATE staff_recovery_codes SET used_at = now()
                 WHERE staff_id = $1 AND code_hash = $2 AND used_at IS NULL
                 RETURNING id",
                staff,
                &hash[..]
            )
            .fetch_optional(change.db())
            .await?;
            if used.is_none() {
                return Ok(Err(Refused::Wrong));
            }
            let left = sqlx::query_scalar!(
                r#"SELECT count(*) AS "n!" FROM staff_recovery_codes
                   WHERE staff_id = $1 AND used_at IS NULL"#,
                staff
            )
            .fetch_one(change.db())
            .await?;
            Ok(Ok(Accepted::Recovery { left }))
        }
    }
}

/// Whether `staff` has a second factor to sign in with.
pub async fn has_factor(db: impl sqlx::PgExecutor<'_>, staff: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM staff_totp
                          WHERE staff_id = $1 AND confirmed_at IS NOT NULL) AS "has!""#,
        staff
    )
    .fetch_one(db)
    .await
}
