//! Changing one's own password and second factors: one audited change per function,
//! shared by the server functions and the tests.

use super::{queries, PasswordChange, RecoveryCodes, TotpEnrolment};
use crate::auth::passkey::Purpose;
use crate::auth::{password, Actor};
use crate::domain::factors::passkey::{self, Refusal, RelyingParty};
use crate::domain::factors::totp::{qr_svg, TotpSecret};
use crate::domain::factors::{recovery, Code, Factor, PasskeyChallenge};
use crate::domain::tokens::pepper::MasterKey;
use crate::error::AppError;

/// What a finished change leaves: the epoch the person's sessions now need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The new session epoch: every other session (older epoch) has ended.
    pub epoch: i32,
}

/// Replaces the signed-in person's password with one they chose.
///
/// The current password is required, so a session left open is not enough to take the
/// account over: a wrong one counts towards the account's lockout and the address's
/// throttle like a failed sign-in, and is recorded; while the account is locked nothing is
/// checked (the caller ends the session on [`AppError::Locked`]). The new one is checked
/// against the policy (length, common passwords, the email) only after the current one,
/// so an unverified session cannot make the server score passwords. On success the
/// must-change flag is cleared and every session of the person ends (the caller moves its
/// own to the new epoch).
pub async fn change_own_password(
    actor: &Actor,
    input: &PasswordChange,
    epoch: i32,
    lockout: crate::auth::api::SignInPolicy,
) -> Result<Changed, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    let (current, new) = (input.current.expose(), input.new.expose());
    if current.is_empty() {
        return Err(AppError::validation(
            "current",
            "Enter your current password.",
        ));
    }
    if current.chars().count() > password::MAX_LEN {
        return Err(AppError::validation(
            "current",
            "That is not your current password.",
        ));
    }
    password::check_length(new, "new")?;
    if input.confirm.expose() != new {
        return Err(AppError::validation(
            "confirm",
            "The two new passwords differ: type the same one twice.",
        ));
    }
    if new == current {
        return Err(AppError::validation(
            "new",
            "Choose a password different from the current one.",
        ));
    }

    let account = queries::current(actor.reader(), staff.id, epoch)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if let Some(until) = account
        .locked_until
        .filter(|until| *until > time::OffsetDateTime::now_utc())
    {
        return Err(AppError::Locked {
            until: crate::components::time::utc_minutes(until),
        });
    }
    if !password::verify(current, Some(&account.password_hash)).await? {
        let mut change = actor.change().await?;
        if let Some(ip) = actor.meta().ip {
            let subject = crate::auth::api::throttle_subject(ip);
            crate::auth::queries::record_ip_failure(&mut change, &subject).await?;
        }
        let locked = crate::auth::queries::record_failure(
            &mut change,
            staff.id,
            lockout.max_failures,
            lockout.window_secs,
            lockout.lock_secs,
        )
        .await?;
        change
            .commit(
                actor
                    .event("staff.password_change")
                    .target(format!("staff:{}", staff.id))
                    .denied("INVALID_CREDENTIALS")
                    .details(serde_json::json!({
                        "locked_until": locked.map(|t| t.unix_timestamp()),
                    })),
            )
            .await?;
        return Err(match locked {
            Some(until) => AppError::Locked {
                until: crate::components::time::utc_minutes(until),
            },
            None => AppError::validation("current", "That is not your current password."),
        });
    }
    password::validate_new(new, &staff.email, "new")?;

    // Hash before opening the change: no row stays locked while the hash waits its turn.
    let new_hash = password::hash(new).await?;
    let mut change = actor.change().await?;
    let locked = queries::lock(&mut change, staff.id, epoch)
        .await?
        .ok_or(AppError::Unauthenticated)?;
    if locked != account.password_hash {
        return Err(AppError::Conflict {
            field: None,
            message: "Your password was changed meanwhile: sign in again.".into(),
        });
    }
    let epoch = queries::set_own_password(&mut change, staff.id, &new_hash).await?;
    if let Some(row) = actor.session_row() {
        queries::move_session(&mut change, row, epoch).await?;
    }
    crate::auth::queries::end_session_rows(
        &mut change,
        staff.id,
        actor.session_row(),
        &actor.label(),
        "password changed",
    )
    .await?;
    change
        .commit(
            actor
                .event("staff.password_changed")
                .target(format!("staff:{}", staff.id))
                .details(serde_json::json!({
                    "required": staff.must_change_password,
                    "other_sessions_ended": true,
                })),
        )
        .await?;
    Ok(Changed { epoch })
}

/// Starts enrolling an authenticator app: a fresh secret, sealed and stored until its
/// first code confirms it, and what the app needs (QR code, secret in text). Starting
/// again replaces a secret not yet confirmed; a confirmed one is never replaced here.
pub async fn start_totp(actor: &Actor, master: &MasterKey) -> Result<TotpEnrolment, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    // A handed-over password first: whoever else saw it (intercepted it, or is signed in
    // with it) loses their session when the owner replaces it, before any factor exists.
    if staff.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let secret = TotpSecret::generate();
    let (nonce, sealed) = secret.seal(master, staff.id);
    let mut change = actor.change().await?;
    // A factor added beside another changes how the account opens: a recent factor first
    // (ASVS V7.5.1). The first one is the enrolment itself. (An app confirmed already is
    // refused below, stepped up or not.)
    let factors = queries::factors(change.db(), staff.id).await?;
    if factors.totp_added_at.is_none() && !factors.passkeys.is_empty() {
        actor.require_step_up()?;
    }
    if !queries::stage_totp(&mut change, staff.id, &nonce, &sealed, actor.session_row()).await? {
        return Err(AppError::Conflict {
            field: None,
            message: "You already have an authenticator app. To move to a new phone, ask an admin to reset your second factors, or use a recovery code after the reset.".into(),
        });
    }
    change
        .commit(
            actor
                .event("staff.totp_enrolment_started")
                .target(format!("staff:{}", staff.id)),
        )
        .await?;
    let url = secret.otpauth_url(&staff.email);
    let qr_svg =
        qr_svg(&url).ok_or_else(|| AppError::internal(&"the TOTP URL does not fit a QR code"))?;
    Ok(TotpEnrolment {
        qr_svg,
        secret: secret.base32(),
    })
}

/// Confirms the authenticator app with its first code, and makes the person's recovery
/// codes (returned to be shown once). The code counts as this session's step-up.
pub async fn confirm_totp(
    actor: &Actor,
    master: &MasterKey,
    code: &str,
) -> Result<RecoveryCodes, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    if staff.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let code = Code::parse_totp(code).map_err(|message| AppError::validation("code", message))?;
    let mut change = actor.change().await?;
    // Only the session that started the set-up confirms it: another session with the same
    // password (someone else's) cannot finish, or quietly replace, the owner's.
    let Some((nonce, sealed, _)) = queries::staged_totp(&mut change, staff.id)
        .await?
        .filter(|(_, _, staged_in)| *staged_in == actor.session_row())
    else {
        return Err(AppError::Conflict {
            field: None,
            message: "No authenticator app is waiting to be confirmed in this session: start the set-up again here.".into(),
        });
    };
    let secret = TotpSecret::open(master, staff.id, &nonce, &sealed)
        .ok_or_else(|| AppError::internal(&"a staged TOTP secret does not open"))?;
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or_default();
    let Some(step) = secret.check(&code, now) else {
        return Err(AppError::validation(
            "code",
            "That code does not match. Scan the QR code again (or type the secret), check that the phone's clock is set automatically, and enter the code the app shows now.",
        ));
    };
    queries::lock_person(&mut change, staff.id).await?;
    let first = !crate::auth::factor::has_factor(change.db(), staff.id).await?;
    if !first {
        // Beside a passkey (perhaps one enrolled a moment ago in another session): only a
        // session stepped up with one adds the app, checked now, under the person's lock.
        crate::auth::require_session_stepped_up(actor, &mut change).await?;
    }
    queries::confirm_totp(
        &mut change,
        staff.id,
        i64::try_from(step).unwrap_or(i64::MAX),
    )
    .await?;
    let codes =
        first_factor_added(&mut change, actor, master, staff.id, first, Factor::Totp).await?;
    change
        .commit(
            actor
                .event("staff.factor_added")
                .target(format!("staff:{}", staff.id))
                .details(serde_json::json!({ "factor": "totp", "recovery_codes": codes.len() })),
        )
        .await?;
    Ok(RecoveryCodes(codes))
}

/// What the first second factor of a person brings: their recovery codes (returned to be
/// shown once), and the enrolling session counted as opened with it. A factor added beside
/// another keeps the codes the person has (none are returned).
async fn first_factor_added(
    change: &mut crate::auth::Change,
    actor: &Actor,
    master: &MasterKey,
    staff: uuid::Uuid,
    first: bool,
    factor: Factor,
) -> Result<Vec<String>, AppError> {
    if !first {
        return Ok(Vec::new());
    }
    let codes = replace_recovery_codes(change, master, staff).await?;
    if let Some(row) = actor.session_row() {
        crate::auth::queries::enrolled_in(change, row, factor).await?;
    }
    Ok(codes)
}

/// A new set of recovery codes for `staff`, stored hashed in place of the old set: the
/// codes themselves, to be shown once.
async fn replace_recovery_codes(
    change: &mut crate::auth::Change,
    master: &MasterKey,
    staff: uuid::Uuid,
) -> Result<Vec<String>, AppError> {
    let codes = recovery::generate();
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| recovery::hash(master, c).to_vec())
        .collect();
    queries::replace_recovery_codes(change, staff, &hashes, &master.fingerprint()).await?;
    Ok(codes)
}

/// Replaces the person's recovery codes with a new set (returned to be shown once); the
/// old ones stop working. Needs an authenticator app (the codes are its fallback).
pub async fn new_recovery_codes(
    actor: &Actor,
    master: &MasterKey,
) -> Result<RecoveryCodes, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    let mut change = actor.change().await?;
    if !crate::auth::factor::has_factor(change.db(), staff.id).await? {
        return Err(AppError::Conflict {
            field: None,
            message:
                "Add a passkey or an authenticator app first: recovery codes are their fallback."
                    .into(),
        });
    }
    let codes = replace_recovery_codes(&mut change, master, staff.id).await?;
    change
        .commit(
            actor
                .event("staff.recovery_codes_replaced")
                .target(format!("staff:{}", staff.id))
                .details(serde_json::json!({ "recovery_codes": codes.len() })),
        )
        .await?;
    Ok(RecoveryCodes(codes))
}

/// Removes the person's authenticator app, unless it is their last second factor: a person
/// without one would be one stolen password away (their passkeys stay).
pub async fn remove_totp(actor: &Actor) -> Result<(), AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    let mut change = actor.change().await?;
    // Removals of one person's factors take turns: two at once must not both see the
    // other factor still there.
    queries::lock_person(&mut change, staff.id).await?;
    let factors = queries::factors(change.db(), staff.id).await?;
    if factors.totp_added_at.is_none() {
        return Err(AppError::validation(
            "totp",
            "You have no authenticator app to remove.",
        ));
    }
    if factors.passkeys.is_empty() {
        return Err(AppError::validation("totp", LAST_FACTOR));
    }
    queries::delete_totp(&mut change, staff.id).await?;
    change
        .commit(
            actor
                .event("staff.factor_removed")
                .target(format!("staff:{}", staff.id))
                .details(serde_json::json!({ "factor": Factor::Totp.as_str() })),
        )
        .await?;
    Ok(())
}

/// Why the last second factor stays.
const LAST_FACTOR: &str = "This is your only second factor, so it cannot be removed: the console would then open with your password alone. Add another first (a passkey or an authenticator app), or ask an admin to reset your second factors if it is lost.";

/// Starts adding a passkey named `name` (checked here, so a bad name is answered before
/// the browser asks for the authenticator): the options for `navigator.credentials.create`,
/// excluding the person's passkeys so one authenticator is not registered twice. Beside an
/// existing factor it needs a recent one.
pub async fn start_passkey(
    actor: &Actor,
    rp: &RelyingParty,
    name: &str,
) -> Result<PasskeyChallenge, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    if staff.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let name = passkey::check_name(name)?;
    let webauthn = rp.webauthn()?;
    let mut change = actor.change().await?;
    if crate::auth::factor::has_factor(change.db(), staff.id).await? {
        actor.require_step_up()?;
    }
    let existing = crate::auth::passkey::of(change.db(), staff.id).await?;
    room_for_another(existing.len())?;
    if existing.iter().any(|k| k.name == name) {
        return Err(AppError::validation("name", SAME_NAME));
    }
    let exclude = existing
        .iter()
        .map(|k| k.passkey.cred_id().clone())
        .collect();
    let (options, state) = webauthn
        .start_passkey_registration(staff.id, &staff.email, &staff.display_name, Some(exclude))
        .map_err(|e| AppError::internal(&format!("starting a passkey registration: {e}")))?;
    let challenge = crate::auth::passkey::start(
        &mut change,
        staff.id,
        Purpose::Register,
        actor.session_row(),
        None,
        Some(&name),
        &options,
        &state,
    )
    .await?;
    // Nothing audited changed: the passkey is added (and audited) when the browser answers.
    change.commit_all(&[]).await?;
    Ok(challenge)
}

/// Adds the passkey the browser made for the ceremony `ceremony` (started in this session).
/// The first second factor of the person also brings their recovery codes (returned, to be
/// shown once; empty otherwise) and counts as this session's step-up.
pub async fn finish_passkey(
    actor: &Actor,
    rp: &RelyingParty,
    master: &MasterKey,
    ceremony: &str,
    credential: &str,
) -> Result<RecoveryCodes, AppError> {
    use webauthn_rs::prelude::{PasskeyRegistration, RegisterPublicKeyCredential};
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    if staff.must_change_password {
        return Err(AppError::PasswordChangeRequired);
    }
    let webauthn = rp.webauthn()?;
    let id = crate::auth::passkey::ceremony_id(ceremony)?;
    let answer: RegisterPublicKeyCredential = crate::auth::passkey::answer(credential)?;
    let mut change = actor.change().await?;
    let target = format!("staff:{}", staff.id);
    let refused = |code: &str, name: &str| {
        actor
            .event("staff.factor_added")
            .target(target.clone())
            .denied(code)
            .details(serde_json::json!({ "factor": "passkey", "passkey": name }))
    };
    let taken = match crate::auth::passkey::take::<PasskeyRegistration>(
        &mut change,
        id,
        staff.id,
        Purpose::Register,
        actor.session_row(),
    )
    .await?
    {
        Ok(taken) => taken,
        Err(refusal) => {
            change.commit(refused(refusal.code(), "")).await?;
            return Err(AppError::validation("passkey", refusal.message()));
        }
    };
    let name = taken.name.unwrap_or_default();
    let made = match webauthn.finish_passkey_registration(&answer, &taken.state) {
        Ok(made) => made,
        Err(e) => {
            // One of the person's own passkeys again (webauthn-rs refuses a credential it
            // was told to exclude as an altered algorithm): said as such.
            let own = crate::auth::passkey::of(change.db(), staff.id)
                .await?
                .iter()
                .any(|k| k.passkey.cred_id().as_slice() == answer.raw_id.as_slice());
            let (code, error) = if own {
                ("PASSKEY_ALREADY_REGISTERED", already_registered())
            } else {
                let refusal = Refusal::of(&e);
                (
                    refusal.code(),
                    AppError::validation("passkey", refusal.message()),
                )
            };
            change.commit(refused(code, &name)).await?;
            return Err(error);
        }
    };
    if !(16..=1023).contains(&made.cred_id().len()) {
        change.commit(refused("INVALID_PASSKEY", &name)).await?;
        return Err(AppError::validation(
            "passkey",
            "This authenticator's credential id is not one the console can store: use another device.",
        ));
    }
    queries::lock_person(&mut change, staff.id).await?;
    let first = !crate::auth::factor::has_factor(change.db(), staff.id).await?;
    if !first {
        // Beside a factor (perhaps one enrolled a moment ago in another session): only a
        // session stepped up with one adds another, checked now, under the person's lock.
        // Unanswered, the ceremony stays for the retry after the step-up.
        crate::auth::require_session_stepped_up(actor, &mut change).await?;
        room_for_another(crate::auth::passkey::of(change.db(), staff.id).await?.len())?;
    }
    let stored =
        serde_json::to_value(&made).map_err(|e| AppError::internal(&format!("a passkey: {e}")))?;
    if !queries::insert_passkey(&mut change, staff.id, &name, made.cred_id(), &stored).await? {
        let registered = queries::passkey_registered(change.db(), made.cred_id()).await?;
        let (code, error) = if registered {
            ("PASSKEY_ALREADY_REGISTERED", already_registered())
        } else {
            (
                "PASSKEY_NAME_TAKEN",
                AppError::validation("name", SAME_NAME),
            )
        };
        change.commit(refused(code, &name)).await?;
        return Err(error);
    }
    let codes =
        first_factor_added(&mut change, actor, master, staff.id, first, Factor::Passkey).await?;
    change
        .commit(
            actor
                .event("staff.factor_added")
                .target(target.clone())
                .details(serde_json::json!({
                    "factor": "passkey",
                    "passkey": name,
                    "recovery_codes": codes.len(),
                })),
        )
        .await?;
    Ok(RecoveryCodes(codes))
}

/// Refuses another passkey to a person who has `count`, the most one may have.
fn room_for_another(count: usize) -> Result<(), AppError> {
    if count as i64 >= passkey::MAX_PER_PERSON {
        return Err(AppError::validation(
            "name",
            format!("You have {count} passkeys, the most one person may have: remove one you no longer use first."),
        ));
    }
    Ok(())
}

/// Why a name is refused that another of the person's passkeys has.
const SAME_NAME: &str =
    "You already have a passkey of that name: choose another, so the list tells them apart.";

/// A passkey registered already (to this person or anyone).
fn already_registered() -> AppError {
    AppError::Conflict {
        field: Some("passkey".into()),
        message: "That passkey is already registered on this console. Use it, or make a new one on another device.".into(),
    }
}

/// Removes one of the person's passkeys, unless it is their last second factor.
pub async fn remove_passkey(actor: &Actor, id: uuid::Uuid) -> Result<(), AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    let mut change = actor.change().await?;
    queries::lock_person(&mut change, staff.id).await?;
    let factors = queries::factors(change.db(), staff.id).await?;
    let Some(key) = factors.passkeys.iter().find(|k| k.id == id) else {
        return Err(AppError::not_found("That passkey"));
    };
    if factors.passkeys.len() == 1 && factors.totp_added_at.is_none() {
        return Err(AppError::validation("passkey", LAST_FACTOR));
    }
    let name = key.name.clone();
    queries::delete_passkey(&mut change, staff.id, id).await?;
    change
        .commit(
            actor
                .event("staff.factor_removed")
                .target(format!("staff:{}", staff.id))
                .details(
                    serde_json::json!({ "factor": Factor::Passkey.as_str(), "passkey": name }),
                ),
        )
        .await?;
    Ok(())
}

/// Ends one of the person's own sessions (a browser left signed in elsewhere). Not the one
/// asking: that is signing out.
pub async fn end_own_session(actor: &Actor, id: uuid::Uuid) -> Result<(), AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    if actor.session_row() == Some(id) {
        return Err(AppError::Conflict {
            field: None,
            message: "That is this session: sign out instead.".into(),
        });
    }
    let mut change = actor.change().await?;
    let owner = crate::auth::queries::lock_session_owner(&mut change, id).await?;
    if owner.is_none_or(|(owner, _)| owner != staff.id) {
        return Err(AppError::not_found("That session"));
    }
    crate::auth::queries::end_session_row(&mut change, id, &actor.label(), "ended by its owner")
        .await?;
    change
        .commit(
            actor
                .event("staff.session_ended")
                .target(format!("staff:{}", staff.id))
                .reason("ended by its owner")
                .details(serde_json::json!({ "session": id, "by_owner": true })),
        )
        .await?;
    Ok(())
}

/// Ends every session of the person but the one asking. Returns how many ended.
pub async fn end_other_sessions(actor: &Actor) -> Result<usize, AppError> {
    let staff = actor.staff().ok_or(AppError::Forbidden)?.clone();
    let mut change = actor.change().await?;
    let ended = crate::auth::queries::end_session_rows(
        &mut change,
        staff.id,
        actor.session_row(),
        &actor.label(),
        "ended by its owner",
    )
    .await?;
    change
        .commit(
            actor
                .event("staff.sessions_ended")
                .target(format!("staff:{}", staff.id))
                .reason("ended by their owner")
                .details(serde_json::json!({ "sessions": ended, "by_owner": true, "kept": actor.session_row() })),
        )
        .await?;
    Ok(ended.len())
}
