//! Checking a second factor, for the second step of sign-in and for step-up: a TOTP code
//! is accepted once (its time step must be later than the last one accepted, compared and
//! set under the row's lock), a recovery code is used up, a passkey's assertion answers
//! a ceremony that is used up as it is checked.

use super::passkey::{self, Purpose};
use super::Change;
use crate::domain::factors::passkey::{Refusal, RelyingParty};
use crate::domain::factors::totp::TotpSecret;
use crate::domain::factors::{recovery, Code, Factor};
use crate::domain::tokens::pepper::MasterKey;
use crate::error::AppError;
use uuid::Uuid;
use webauthn_rs::prelude::PublicKeyCredential;

/// What a person offers as their second factor.
#[derive(Debug)]
pub enum Proof {
    /// A code typed in.
    Code(Code),
    /// A passkey's answer to the ceremony `ceremony`.
    Passkey {
        /// The ceremony answered.
        ceremony: Uuid,
        /// The browser's `PublicKeyCredential`.
        credential: Box<PublicKeyCredential>,
    },
}

impl Proof {
    /// Reads a passkey's answer sent by the browser.
    pub fn passkey(ceremony: &str, credential: &str) -> Result<Self, AppError> {
        Ok(Self::Passkey {
            ceremony: passkey::ceremony_id(ceremony)?,
            credential: Box::new(passkey::answer(credential)?),
        })
    }
}

/// A factor that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// An authenticator app's code.
    Totp,
    /// A recovery code; `left` unused codes remain.
    Recovery {
        /// Unused codes left after this one.
        left: i64,
    },
    /// A passkey, by its name.
    Passkey {
        /// The name its owner gave it.
        name: String,
    },
}

impl Accepted {
    /// The factor, as sessions record it.
    pub fn factor(&self) -> Factor {
        match self {
            Self::Totp => Factor::Totp,
            Self::Recovery { .. } => Factor::RecoveryCode,
            Self::Passkey { .. } => Factor::Passkey,
        }
    }

    /// What the audit event says about it.
    pub fn details(&self) -> serde_json::Value {
        match self {
            Self::Passkey { name } => {
                serde_json::json!({ "factor": self.factor().as_str(), "passkey": name })
            }
            _ => serde_json::json!({ "factor": self.factor().as_str() }),
        }
    }
}

/// Why a factor was refused: the audit code, and the message beside the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not a code of this person's app now, nor one of their unused recovery codes.
    Wrong,
    /// The app's code for a time step already used: each code works once.
    Replayed,
    /// A passkey's answer, refused.
    Passkey(Refusal),
}

impl Refused {
    /// The audit event's code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Wrong => "INVALID_SECOND_FACTOR",
            Self::Replayed => "SECOND_FACTOR_REPLAYED",
            Self::Passkey(refusal) => refusal.code(),
        }
    }

    /// The message beside the field.
    pub fn message(self) -> &'static str {
        match self {
            Self::Wrong => "That code is not right. Type the code your authenticator app shows now (check that the phone's clock is set automatically), or a recovery code you have not used.",
            Self::Replayed => "That code was already used: each code works once. Wait for the app to show the next one.",
            Self::Passkey(refusal) => refusal.message(),
        }
    }

    /// The field the message goes beside.
    pub fn field(self) -> &'static str {
        match self {
            Self::Passkey(_) => "passkey",
            _ => "code",
        }
    }

    /// Whether it counts toward the account's lock (a lapsed passkey request does not).
    pub fn counts_as_failure(self) -> bool {
        match self {
            Self::Passkey(refusal) => refusal.counts_as_failure(),
            _ => true,
        }
    }

    /// The validation error the person sees.
    pub fn error(self) -> AppError {
        AppError::validation(self.field(), self.message())
    }
}

fn now_unix() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default()
}

/// Checks `proof` for `staff` inside `change` (whose row locks make it atomic), and marks
/// it used when it is accepted. A passkey answers a ceremony of `purpose` started in
/// `session` (none for a sign-in).
pub async fn check(
    change: &mut Change,
    master: &MasterKey,
    rp: &RelyingParty,
    staff: Uuid,
    proof: &Proof,
    purpose: Purpose,
    session: Option<Uuid>,
) -> Result<Result<Accepted, Refused>, AppError> {
    let code = match proof {
        Proof::Code(code) => code,
        Proof::Passkey {
            ceremony,
            credential,
        } => {
            let webauthn = rp.webauthn()?;
            return Ok(passkey::check_assertion(
                change, webauthn, staff, purpose, session, *ceremony, credential,
            )
            .await?
            .map(|name| Accepted::Passkey { name })
            .map_err(Refused::Passkey));
        }
    };
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
            // Under the current key, and under the previous one during a rotation (codes
            // are hashes: they cannot be re-sealed, only replaced).
            let hashes = recovery::hashes(master, typed);
            let used = sqlx::query_scalar!(
                "UPDATE staff_recovery_codes SET used_at = now()
                 WHERE staff_id = $1 AND code_hash = ANY($2) AND used_at IS NULL
                 RETURNING id",
                staff,
                &hashes
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

/// Whether `staff` has a second factor to sign in with (an authenticator app or a passkey).
pub async fn has_factor(db: impl sqlx::PgExecutor<'_>, staff: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT staff_has_factor($1) AS "has!""#, staff)
        .fetch_one(db)
        .await
}
