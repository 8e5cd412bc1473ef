//! Passkey ceremonies and credentials in PostgreSQL: a ceremony's state is stored when it
//! starts and deleted as its answer is checked (`DELETE … RETURNING`, so a challenge is
//! checked once, whichever instance the answer reaches), and a person's passkeys are read
//! and updated here.

use super::Change;
use crate::domain::factors::passkey::{without_nulls, Refusal, CEREMONY_SECS};
use crate::domain::factors::PasskeyChallenge;
use crate::error::AppError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PublicKeyCredential, Webauthn};

crate::domain::status::status! {
    /// What a ceremony is for.
    Purpose {
        /// Adding a passkey to the account of the session that started it.
        Register = "register",
        /// The second step of signing in (no session yet: the pending sign-in names the
        /// person).
        SignIn = "sign_in",
        /// Stepping up the session that started it.
        StepUp = "step_up",
    }
}

/// A stored passkey: its row and webauthn-rs's record of it.
pub struct Stored {
    /// The `staff_passkeys` row.
    pub id: Uuid,
    /// The name its owner gave it.
    pub name: String,
    /// The public key, counter and flags.
    pub passkey: Passkey,
}

fn internal(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::internal(&format!("{what}: {e}"))
}

/// Every passkey of `staff`, oldest first.
pub async fn of(db: impl sqlx::PgExecutor<'_>, staff: Uuid) -> Result<Vec<Stored>, AppError> {
    let rows = sqlx::query!(
        "SELECT id, name, credential FROM staff_passkeys WHERE staff_id = $1
         ORDER BY created_at, id",
        staff
    )
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Stored {
                id: r.id,
                name: r.name,
                passkey: serde_json::from_value(r.credential)
                    .map_err(|e| internal("a stored passkey does not read", e))?,
            })
        })
        .collect()
}

/// Stores the state of a ceremony for `staff` and returns the browser's half of it:
/// the options (`options`, serialised without nulls) and the ceremony's handle. Lapsed
/// ones of anyone are cleared on the way.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    change: &mut Change,
    staff: Uuid,
    purpose: Purpose,
    session: Option<Uuid>,
    replaces: Option<Uuid>,
    name: Option<&str>,
    options: &impl Serialize,
    state: &impl Serialize,
) -> Result<PasskeyChallenge, AppError> {
    let state = serde_json::to_value(state).map_err(|e| internal("a WebAuthn state", e))?;
    let options = serde_json::to_value(options).map_err(|e| internal("WebAuthn options", e))?;
    // A session's new ceremony replaces its unanswered one of the same purpose; a sign-in
    // (no session yet) replaces only this browser's (`replaces`), not another browser's.
    sqlx::query!(
        "DELETE FROM staff_webauthn_ceremonies
         WHERE expires_at < now() - interval '1 hour'
            OR (id = $4 AND staff_id = $1)
            OR ($3::uuid IS NOT NULL AND staff_id = $1 AND purpose = $2 AND session_id = $3)",
        staff,
        purpose.as_str(),
        session,
        replaces
    )
    .execute(change.db())
    .await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO staff_webauthn_ceremonies (staff_id, purpose, session_id, name, state, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
         RETURNING id",
        staff,
        purpose.as_str(),
        session,
        name,
        state,
        CEREMONY_SECS as f64
    )
    .fetch_one(change.db())
    .await?;
    Ok(PasskeyChallenge {
        ceremony: id.to_string(),
        options: without_nulls(options).to_string(),
    })
}

/// A ceremony taken for checking: its state, and the passkey name of a registration.
pub struct Taken<S> {
    /// webauthn-rs's state of the ceremony.
    pub state: S,
    /// The name given at the start of a registration.
    pub name: Option<String>,
}

/// Takes (deletes) the ceremony `id` of `staff` for `purpose` and `session`: its state, or
/// why it cannot be answered (used already, or by another session, or never issued: all
/// [`Refusal::ChallengeUsed`]; lapsed: [`Refusal::ChallengeExpired`]).
pub async fn take<S: DeserializeOwned>(
    change: &mut Change,
    id: Uuid,
    staff: Uuid,
    purpose: Purpose,
    session: Option<Uuid>,
) -> Result<Result<Taken<S>, Refusal>, AppError> {
    let Some(row) = sqlx::query!(
        r#"DELETE FROM staff_webauthn_ceremonies
           WHERE id = $1 AND staff_id = $2 AND purpose = $3
             AND session_id IS NOT DISTINCT FROM $4
           RETURNING state, name, expires_at > now() AS "live!""#,
        id,
        staff,
        purpose.as_str(),
        session
    )
    .fetch_optional(change.db())
    .await?
    else {
        return Ok(Err(Refusal::ChallengeUsed));
    };
    if !row.live {
        return Ok(Err(Refusal::ChallengeExpired));
    }
    let state =
        serde_json::from_value(row.state).map_err(|e| internal("a stored WebAuthn state", e))?;
    Ok(Ok(Taken {
        state,
        name: row.name,
    }))
}

/// Reads a ceremony handle the browser sent back.
pub fn ceremony_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim()).map_err(|_| {
        AppError::validation(
            "passkey",
            "This passkey request is not one this console made: try again.",
        )
    })
}

/// Reads the browser's answer (`PublicKeyCredential.toJSON()`) as `T`.
pub fn answer<T: DeserializeOwned>(raw: &str) -> Result<T, AppError> {
    if raw.len() > 64 * 1024 {
        return Err(AppError::validation(
            "passkey",
            "The browser's passkey answer is too large.",
        ));
    }
    serde_json::from_str(raw).map_err(|_| {
        AppError::validation(
            "passkey",
            "The browser's passkey answer did not read: try again.",
        )
    })
}

/// Starts an assertion (sign-in or step-up) for `staff`'s passkeys: `None` when they have
/// none.
pub async fn start_assertion(
    change: &mut Change,
    webauthn: &Webauthn,
    staff: Uuid,
    purpose: Purpose,
    session: Option<Uuid>,
    replaces: Option<Uuid>,
) -> Result<Option<PasskeyChallenge>, AppError> {
    let keys = of(change.db(), staff).await?;
    if keys.is_empty() {
        return Ok(None);
    }
    let passkeys: Vec<Passkey> = keys.into_iter().map(|k| k.passkey).collect();
    let (options, state) = webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| internal("starting a passkey assertion", e))?;
    start(
        change, staff, purpose, session, replaces, None, &options, &state,
    )
    .await
    .map(Some)
}

/// Checks an assertion of `staff` for the ceremony `id` (`purpose`, `session`) inside
/// `change`: the ceremony is used up whatever the outcome; an accepted assertion updates
/// the passkey's counter and last use. Answers the passkey's name.
pub async fn check_assertion(
    change: &mut Change,
    webauthn: &Webauthn,
    staff: Uuid,
    purpose: Purpose,
    session: Option<Uuid>,
    id: Uuid,
    credential: &PublicKeyCredential,
) -> Result<Result<String, Refusal>, AppError> {
    let taken = match take::<PasskeyAuthentication>(change, id, staff, purpose, session).await? {
        Ok(taken) => taken,
        Err(refused) => return Ok(Err(refused)),
    };
    let Some(row) = sqlx::query!(
        "SELECT id, name, credential FROM staff_passkeys
         WHERE staff_id = $1 AND credential_id = $2 FOR UPDATE",
        staff,
        credential.raw_id.as_slice()
    )
    .fetch_optional(change.db())
    .await?
    else {
        return Ok(Err(Refusal::UnknownCredential));
    };
    let result = match webauthn.finish_passkey_authentication(credential, &taken.state) {
        Ok(result) => result,
        Err(e) => return Ok(Err(Refusal::of(&e))),
    };
    // The counter is compared with the row as it is now, locked (the ceremony's copy may
    // be older: another sign-in or step-up may have moved it on since): one that does not
    // go up, where the authenticator keeps one, may be a cloned credential.
    let stored_counter = row
        .credential
        .pointer("/cred/counter")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let counter = u64::from(result.counter());
    if (counter > 0 || stored_counter > 0) && counter <= stored_counter {
        return Ok(Err(Refusal::Invalid));
    }
    let mut passkey: Passkey = serde_json::from_value(row.credential)
        .map_err(|e| internal("a stored passkey does not read", e))?;
    passkey.update_credential(&result);
    let stored = serde_json::to_value(&passkey).map_err(|e| internal("a passkey", e))?;
    sqlx::query!(
        "UPDATE staff_passkeys SET credential = $2, last_used_at = now() WHERE id = $1",
        row.id,
        stored
    )
    .execute(change.db())
    .await?;
    Ok(Ok(row.name))
}
