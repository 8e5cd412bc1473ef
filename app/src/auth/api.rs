//! Server functions for signing in and out, and for knowing who is signed in.

use super::StaffIdentity;
use crate::error::AppError;
use leptos::prelude::*;

/// Lockout and throttle numbers. Tests put shorter ones in context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignInPolicy {
    /// Failures within `window_secs` that lock an account.
    pub max_failures: i32,
    /// The window failures are counted in.
    pub window_secs: f64,
    /// How long a lock lasts.
    pub lock_secs: f64,
    /// Failures from one address within `window_secs` after which it is refused outright.
    pub max_failures_per_ip: i64,
    /// Whether every person must have a second factor (`MFA_REQUIRED`; `false` only in
    /// development).
    pub mfa_required: bool,
    /// How long a second factor counts as recent for dangerous actions (`STEP_UP_SECONDS`).
    pub step_up_secs: i64,
}

impl Default for SignInPolicy {
    /// 5 failures in 15 minutes lock an account for 15 minutes; 50 failures from one
    /// address in 15 minutes stop that address for the rest of the window. A second factor
    /// is required, and counts as recent for 10 minutes.
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_secs: 15.0 * 60.0,
            lock_secs: 15.0 * 60.0,
            max_failures_per_ip: 50,
            mfa_required: true,
            step_up_secs: 600,
        }
    }
}

/// Who is signed in, or `None`, with the freeze on now if there is one (for the top bar).
/// Needs no permission: it only tells callers about themselves.
#[server]
pub async fn whoami() -> Result<Option<StaffIdentity>, AppError> {
    let pool = crate::db::pool()?;
    let Some(mut staff) = super::current_staff().await? else {
        return Ok(None);
    };
    // Only for a fully signed-in session: one confined to replacing a handed-over password
    // or enrolling a factor sees nothing of the console (`require(ViewConsole)` would
    // refuse it), the freeze's reason and its commander included.
    if !staff.must_change_password && !staff.must_enrol_factor {
        staff.freeze = crate::domain::freeze::active(&pool)
            .await?
            .map(|freeze| crate::domain::freeze::describe(&freeze));
    }
    Ok(Some(staff))
}

/// Signs in with email and password, then goes to `next` (a console path) or home.
///
/// The one server function without `require(..)`: it is how a session starts. Every
/// attempt is audited (the email of an unknown account is not kept: people type passwords
/// into the wrong field). Unknown emails cost the same Argon2 work as wrong passwords and
/// get the same message.
#[server]
pub async fn sign_in(
    email: String,
    // Its `Debug` is redacted: the macro derives `Debug` for the arguments.
    password: crate::secret::SecretString,
    next: Option<String>,
) -> Result<(), AppError> {
    use super::{password, queries, request_meta, session};
    use crate::auth::Actor;
    use crate::domain::audit::{NewEvent, Source};
    use crate::domain::factors::Factor;
    use time::OffsetDateTime;

    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AppError::validation("email", "Enter your email address."));
    }
    let password = password.expose();
    if password.is_empty() {
        return Err(AppError::validation("password", "Enter your password."));
    }
    if password.chars().count() > password::MAX_LEN {
        return Err(AppError::InvalidCredentials);
    }
    let policy = use_context::<SignInPolicy>().unwrap_or_default();
    let pool = crate::db::pool()?;
    let meta = request_meta();
    let attempt = Actor::sign_in_attempt(pool.clone(), meta.clone());
    // Failures are counted per caller (an IPv6 caller per /64); the audit events keep the
    // full address.
    let ip = meta.ip.map(throttle_subject);
    let Some(session) = session::from_context().await else {
        return Err(AppError::internal(&"session layer missing"));
    };

    let event = |actor: String, outcome_code: Option<&str>| {
        let e = meta.apply(NewEvent::new(Source::Console, actor, "staff.sign_in"));
        match outcome_code {
            Some(code) => e.denied(code),
            None => e,
        }
    };

    if let Some(ip) = &ip {
        if queries::ip_failures(&pool, ip, policy.window_secs).await? >= policy.max_failures_per_ip
        {
            // One event per address per window: refused traffic must not be able to grow
            // the append-only log without bound.
            if first_refusal_in_window(ip, policy.window_secs) {
                let refused = event("anonymous".into(), Some("IP_THROTTLED"));
                attempt.change().await?.commit(refused).await?;
            }
            return Err(AppError::TooManyAttempts {
                retry_after_secs: policy.window_secs as u64,
            });
        }
    }

    let account = queries::for_sign_in(&pool, &email).await?;
    let password_ok =
        password::verify(password, account.as_ref().map(|a| a.password_hash.as_str())).await?;
    let now = OffsetDateTime::now_utc();
    let mut change = attempt.change().await?;

    let Some(account) = account else {
        if let Some(ip) = &ip {
            queries::record_ip_failure(&mut change, ip).await?;
        }
        change
            .commit(event("anonymous".into(), Some("INVALID_CREDENTIALS")))
            .await?;
        return Err(AppError::InvalidCredentials);
    };
    let actor = format!("staff:{}", account.id);
    let target = actor.clone();

    // Decide from the row as it is now, locked until commit: attempts that queued behind
    // the hashing limit see the lock earlier failures set, and cannot clear it.
    let Some(fresh) = queries::lock_for_sign_in(&mut change, account.id).await? else {
        if let Some(ip) = &ip {
            queries::record_ip_failure(&mut change, ip).await?;
        }
        // Only the address's failure count, which is not audited state.
        change.commit_all(&[]).await?;
        return Err(AppError::InvalidCredentials);
    };

    // Locked: say so and until when, whatever the password, so the answer tells an attacker
    // nothing about their guess. Attempts during the lock do not extend it, but they count
    // against the address like any failure: each one still costs an Argon2 hash and an
    // audit event, so a locked or disabled account must not be a free target for a flood.
    if let Some(until) = fresh.locked_until.filter(|until| *until > now) {
        if let Some(ip) = &ip {
            queries::record_ip_failure(&mut change, ip).await?;
        }
        change
            .commit(event(actor, Some("ACCOUNT_LOCKED")).actor_name(account.email.clone()))
            .await?;
        return Err(AppError::Locked {
            until: crate::components::time::utc_minutes(until),
        });
    }
    // Disabled: the generic refusal, whatever the password (counted like the lock above).
    if fresh.status != crate::domain::status::StaffStatus::Active {
        if let Some(ip) = &ip {
            queries::record_ip_failure(&mut change, ip).await?;
        }
        change
            .commit(event(actor, Some("ACCOUNT_DISABLED")).actor_name(account.email.clone()))
            .await?;
        return Err(AppError::InvalidCredentials);
    }

    // The password was checked against the hash read before the wait for the hasher: if a
    // reset or change committed meanwhile, it is not the account's password any more (an
    // attempt queued with the old password must not open a session in the new epoch).
    if !password_ok || fresh.password_hash != account.password_hash {
        if let Some(ip) = &ip {
            queries::record_ip_failure(&mut change, ip).await?;
        }
        let locked = queries::record_failure(
            &mut change,
            account.id,
            policy.max_failures,
            policy.window_secs,
            policy.lock_secs,
        )
        .await?;
        let mut events = vec![
            // The old password, right, after a reset or change replaced it: worth telling
            // apart in the log (someone still has it).
            event(
                actor.clone(),
                Some(if password_ok {
                    "PASSWORD_REPLACED"
                } else {
                    "INVALID_CREDENTIALS"
                }),
            )
            .actor_name(account.email.clone()),
        ];
        if let Some(until) = locked {
            let lock = meta
                .apply(NewEvent::new(Source::Console, actor, "staff.locked"))
                .actor_name(account.email.clone())
                .target(target)
                .denied("TOO_MANY_FAILURES")
                .details(serde_json::json!({ "locked_until": until.unix_timestamp() }));
            events.push(lock);
        }
        change.commit_all(&events).await?;
        return Err(AppError::InvalidCredentials);
    }

    // A second factor enrolled: the password alone signs nobody in. The failure count
    // stays until the factor is right too, so guesses at the code count toward the lock.
    if super::factor::has_factor(change.db(), account.id).await? {
        let accepted = meta
            .apply(NewEvent::new(
                Source::Console,
                actor,
                "staff.password_accepted",
            ))
            .actor_name(account.email.clone())
            .target(target);
        change.commit(accepted).await?;
        session::start_pending(&session, account.id, fresh.session_epoch).await?;
        leptos_axum::redirect(&second_factor_path(next.as_deref()));
        return Ok(());
    }

    // No second factor yet: signed in, and where one is required, confined to enrolling
    // it (`require` answers `EnrolmentRequired` to everything else).
    queries::record_success(&mut change, account.id).await?;
    let row = queries::insert_session(
        &mut change,
        account.id,
        fresh.session_epoch,
        Factor::None,
        &meta,
    )
    .await?;
    change
        .commit(
            event(actor, None)
                .actor_name(account.email.clone())
                .details(serde_json::json!({ "factor": Factor::None.as_str() })),
        )
        .await?;
    session::start(&session, account.id, fresh.session_epoch, row).await?;

    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

/// The second step's page, carrying `next` on.
pub fn second_factor_path(next: Option<&str>) -> String {
    let next = safe_next(next);
    if next == "/" {
        SECOND_FACTOR_PATH.to_owned()
    } else {
        format!(
            "{SECOND_FACTOR_PATH}?next={}",
            crate::components::layout::encode_path(&next)
        )
    }
}

/// Where sign-in asks for the second factor.
pub const SECOND_FACTOR_PATH: &str = "/sign-in/verify";

/// The second step of signing in: the code from the authenticator app (or a recovery
/// code), after the password was right in this browser within the last five minutes.
///
/// Like [`sign_in`] it has no `require(..)`: it is how a session starts. A wrong or
/// replayed code counts toward the account's lock like a wrong password, and is audited; a
/// code of the wrong shape is answered at the field and counts for nothing.
#[server]
pub async fn verify_second_factor(
    code: crate::secret::SecretString,
    next: Option<String>,
) -> Result<(), AppError> {
    use crate::domain::factors::Code;
    let proof = Code::parse(code.expose())
        .map(super::factor::Proof::Code)
        .map_err(|message| AppError::validation("code", message));
    second_step(proof, next).await
}

/// The second step of signing in with a passkey: the options for the browser's
/// `navigator.credentials.get`, listing the person's passkeys, or `None` when they have
/// none (or passkeys are off here). Needs the password step, like [`verify_passkey`].
#[server]
pub async fn start_passkey_sign_in(
) -> Result<Option<crate::domain::factors::PasskeyChallenge>, AppError> {
    use super::{passkey, request_meta, session, Actor};
    use crate::domain::factors::passkey::RelyingParty;
    let rp = RelyingParty::from_context();
    let Ok(webauthn) = rp.webauthn() else {
        return Ok(None);
    };
    let Some(session) = session::from_context().await else {
        return Err(AppError::internal(&"session layer missing"));
    };
    let Some(pending) = session::pending(&session).await? else {
        return Err(AppError::SignInExpired);
    };
    if pending.expired(time::OffsetDateTime::now_utc()) {
        return Err(AppError::SignInExpired);
    }
    let pool = crate::db::pool()?;
    let previous = session::sign_in_ceremony(&session).await?;
    let mut change = Actor::sign_in_attempt(pool, request_meta())
        .change()
        .await?;
    let challenge = passkey::start_assertion(
        &mut change,
        webauthn,
        pending.staff_id,
        passkey::Purpose::SignIn,
        None,
        previous,
    )
    .await?;
    // Nothing audited: the answer is.
    change.commit_all(&[]).await?;
    if let Some(challenge) = &challenge {
        session::set_sign_in_ceremony(&session, passkey::ceremony_id(&challenge.ceremony)?).await?;
    }
    Ok(challenge)
}

/// The second step of signing in, answered by a passkey: `credential` is the browser's
/// `PublicKeyCredential` (its `toJSON()`) for `ceremony`. Refusals count toward the lock
/// like a wrong code (but for a request that merely lapsed), and are audited.
#[server]
pub async fn verify_passkey(
    ceremony: String,
    credential: String,
    next: Option<String>,
) -> Result<(), AppError> {
    let proof = super::factor::Proof::passkey(&ceremony, &credential);
    second_step(proof, next).await
}

/// The second step of signing in, whatever the factor: after the password was right in
/// this browser within the last five minutes, `proof` (read already: a proof that did not
/// read is answered once the pending sign-in is known to be live).
#[cfg(feature = "ssr")]
async fn second_step(
    proof: Result<super::factor::Proof, AppError>,
    next: Option<String>,
) -> Result<(), AppError> {
    use super::factor::{self, Accepted};
    use super::{queries, request_meta, session};
    use crate::auth::Actor;
    use crate::domain::audit::{NewEvent, Source};
    use crate::domain::factors::passkey::RelyingParty;
    use time::OffsetDateTime;

    let policy = use_context::<SignInPolicy>().unwrap_or_default();
    let pool = crate::db::pool()?;
    let verifier = use_context::<std::sync::Arc<crate::domain::gateway::verify::Verifier>>()
        .ok_or_else(|| AppError::internal(&"token verifier missing from Leptos context"))?;
    let rp = RelyingParty::from_context();
    let meta = request_meta();
    let attempt = Actor::sign_in_attempt(pool.clone(), meta.clone());
    let ip = meta.ip.map(throttle_subject);
    let Some(session) = session::from_context().await else {
        return Err(AppError::internal(&"session layer missing"));
    };
    let Some(pending) = session::pending(&session).await? else {
        return Err(AppError::SignInExpired);
    };
    if pending.expired(OffsetDateTime::now_utc()) {
        session::clear_pending(&session).await?;
        return Err(AppError::SignInExpired);
    }
    let proof = proof?;
    // A passkey answers the ceremony this browser started, not one another browser with
    // the same password did: any other is refused like a challenge answered already.
    let foreign_ceremony = match &proof {
        super::factor::Proof::Passkey { ceremony, .. } => {
            session::sign_in_ceremony(&session).await? != Some(*ceremony)
        }
        super::factor::Proof::Code(_) => false,
    };

    if let Some(ip) = &ip {
        if queries::ip_failures(&pool, ip, policy.window_secs).await? >= policy.max_failures_per_ip
        {
            return Err(AppError::TooManyAttempts {
                retry_after_secs: policy.window_secs as u64,
            });
        }
    }

    let actor = format!("staff:{}", pending.staff_id);
    let mut change = attempt.change().await?;
    let Some(fresh) = queries::lock_for_sign_in(&mut change, pending.staff_id).await? else {
        change.commit_all(&[]).await?;
        session::clear_pending(&session).await?;
        return Err(AppError::SignInExpired);
    };
    let event = |action: &str| {
        meta.apply(NewEvent::new(Source::Console, actor.clone(), action))
            .actor_name(fresh.email.clone())
    };
    let now = OffsetDateTime::now_utc();
    if let Some(until) = fresh.locked_until.filter(|until| *until > now) {
        change
            .commit(event("staff.sign_in").denied("ACCOUNT_LOCKED"))
            .await?;
        session::clear_pending(&session).await?;
        return Err(AppError::Locked {
            until: crate::components::time::utc_minutes(until),
        });
    }
    // Disabled, or reset, since the password was checked: start again.
    if fresh.status != crate::domain::status::StaffStatus::Active
        || fresh.session_epoch != pending.epoch
    {
        change.commit_all(&[]).await?;
        session::clear_pending(&session).await?;
        return Err(AppError::SignInExpired);
    }

    let outcome = if foreign_ceremony {
        Err(factor::Refused::Passkey(
            crate::domain::factors::passkey::Refusal::ChallengeUsed,
        ))
    } else {
        factor::check(
            &mut change,
            verifier.master_key(),
            &rp,
            pending.staff_id,
            &proof,
            super::passkey::Purpose::SignIn,
            None,
        )
        .await?
    };
    match outcome {
        Ok(accepted) => {
            queries::record_success(&mut change, pending.staff_id).await?;
            let row = queries::insert_session(
                &mut change,
                pending.staff_id,
                fresh.session_epoch,
                accepted.factor(),
                &meta,
            )
            .await?;
            let mut events = vec![event("staff.sign_in").details(accepted.details())];
            if let Accepted::Recovery { left } = accepted {
                events.push(
                    event("staff.recovery_code_used")
                        .target(actor.clone())
                        .details(serde_json::json!({ "left": left })),
                );
            }
            change.commit_all(&events).await?;
            session::start(&session, pending.staff_id, fresh.session_epoch, row).await?;
            let next = safe_next(next.as_deref());
            match accepted {
                Accepted::Recovery { left } => leptos_axum::redirect(&format!(
                    "{}?recovery_codes_left={left}&next={}",
                    crate::components::layout::SECURITY_PATH,
                    crate::components::layout::encode_path(&next)
                )),
                Accepted::Totp | Accepted::Passkey { .. } => leptos_axum::redirect(&next),
            }
            Ok(())
        }
        Err(refused) => {
            let mut locked = None;
            if refused.counts_as_failure() {
                if let Some(ip) = &ip {
                    queries::record_ip_failure(&mut change, ip).await?;
                }
                locked = queries::record_failure(
                    &mut change,
                    pending.staff_id,
                    policy.max_failures,
                    policy.window_secs,
                    policy.lock_secs,
                )
                .await?;
            }
            let mut events = vec![event("staff.sign_in").denied(refused.code())];
            if let Some(until) = locked {
                events.push(
                    event("staff.locked")
                        .target(actor.clone())
                        .denied("TOO_MANY_FAILURES")
                        .details(serde_json::json!({ "locked_until": until.unix_timestamp() })),
                );
            }
            change.commit_all(&events).await?;
            if let Some(until) = locked {
                session::clear_pending(&session).await?;
                return Err(AppError::Locked {
                    until: crate::components::time::utc_minutes(until),
                });
            }
            Err(refused.error())
        }
    }
}

/// Steps the session up: a code from the authenticator app, so the dangerous actions of the
/// next `STEP_UP_SECONDS` go through. Recovery codes do not count. A wrong code counts
/// toward the account's lock; the failure that locks it also ends this session.
#[server]
pub async fn step_up(code: crate::secret::SecretString) -> Result<(), AppError> {
    use crate::domain::factors::Code;
    let proof = Code::parse_totp(code.expose())
        .map(|code| super::factor::Proof::Code(Code::Totp(code)))
        .map_err(|message| AppError::validation("code", message));
    finish_step_up(proof).await
}

/// Starts a step-up with a passkey: the options for `navigator.credentials.get`, or `None`
/// when the person has no passkey (or passkeys are off here).
#[server]
pub async fn start_passkey_step_up(
) -> Result<Option<crate::domain::factors::PasskeyChallenge>, AppError> {
    use super::{passkey, require, Permission};
    use crate::domain::factors::passkey::RelyingParty;
    // Read from context before the first await: after one, a server render's resource
    // may no longer see it.
    let rp = RelyingParty::from_context();
    let actor = require(Permission::OwnAccount).await?;
    let (Some(staff), Some(row)) = (actor.staff().cloned(), actor.session_row()) else {
        return Err(AppError::Unauthenticated);
    };
    let Ok(webauthn) = rp.webauthn() else {
        return Ok(None);
    };
    let mut change = actor.change().await?;
    let challenge = passkey::start_assertion(
        &mut change,
        webauthn,
        staff.id,
        passkey::Purpose::StepUp,
        Some(row),
        None,
    )
    .await?;
    change.commit_all(&[]).await?;
    Ok(challenge)
}

/// Steps the session up with a passkey's answer (`credential`, its `toJSON()`) to
/// `ceremony`, started in this session. Refusals count like wrong codes.
#[server]
pub async fn step_up_with_passkey(ceremony: String, credential: String) -> Result<(), AppError> {
    finish_step_up(super::factor::Proof::passkey(&ceremony, &credential)).await
}

/// Steps the session up with `proof` (read already; a proof that did not read is answered
/// once the session is known).
#[cfg(feature = "ssr")]
async fn finish_step_up(proof: Result<super::factor::Proof, AppError>) -> Result<(), AppError> {
    use super::{queries, require, session, Permission};
    use crate::domain::factors::passkey::RelyingParty;

    let policy = use_context::<SignInPolicy>().unwrap_or_default();
    // Before the first await (see `start_passkey_step_up`).
    let rp = RelyingParty::from_context();
    let actor = require(Permission::OwnAccount).await?;
    let (Some(staff), Some(row)) = (actor.staff().cloned(), actor.session_row()) else {
        return Err(AppError::Unauthenticated);
    };
    let proof = proof?;
    let verifier = actor.verifier()?;
    let mut change = actor.change().await?;
    let target = format!("staff:{}", staff.id);
    // A locked account takes no factor here either, as at sign-in: a session must not be
    // a way around the lock. (The session stays: someone else's guesses may have locked
    // the account, and they must not sign its owner out.)
    if let Some(until) = queries::locked_until(change.db(), staff.id).await? {
        change
            .commit(
                actor
                    .event("staff.stepped_up")
                    .target(target)
                    .denied("ACCOUNT_LOCKED"),
            )
            .await?;
        return Err(AppError::Locked {
            until: crate::components::time::utc_minutes(until),
        });
    }
    match super::factor::check(
        &mut change,
        verifier.master_key(),
        &rp,
        staff.id,
        &proof,
        super::passkey::Purpose::StepUp,
        Some(row),
    )
    .await?
    {
        Ok(accepted) if accepted.factor().steps_up() => {
            queries::stamp_step_up(&mut change, row).await?;
            let event = actor
                .event("staff.stepped_up")
                .target(target)
                .details(accepted.details());
            change.commit(event).await?;
            Ok(())
        }
        Ok(_) => Err(AppError::internal(&"a recovery code reached step-up")),
        Err(refused) => {
            let mut locked = None;
            if refused.counts_as_failure() {
                locked = queries::record_failure(
                    &mut change,
                    staff.id,
                    policy.max_failures,
                    policy.window_secs,
                    policy.lock_secs,
                )
                .await?;
            }
            let mut events = vec![actor
                .event("staff.stepped_up")
                .target(target.clone())
                .denied(refused.code())];
            if let Some(until) = locked {
                queries::end_session_row(
                    &mut change,
                    row,
                    "system",
                    "account locked: too many wrong codes",
                )
                .await?;
                events.push(
                    actor
                        .event("staff.locked")
                        .target(target)
                        .denied("TOO_MANY_FAILURES")
                        .details(serde_json::json!({ "locked_until": until.unix_timestamp() })),
                );
            }
            change.commit_all(&events).await?;
            if let Some(until) = locked {
                if let Some(session) = session::from_context().await {
                    session::end(&session).await?;
                }
                return Err(AppError::Locked {
                    until: crate::components::time::utc_minutes(until),
                });
            }
            Err(refused.error())
        }
    }
}

/// What sign-in failures of `ip` are counted under, as PostgreSQL `inet` text: an IPv4
/// address itself, an IPv6 address by its /64 network (`2001:db8:1:2::/64`), as the
/// gateway's rate limiter counts callers. Otherwise one IPv6 host, which usually holds a
/// whole /64, could rotate addresses and never reach the limit.
#[cfg(feature = "ssr")]
pub fn throttle_subject(ip: std::net::IpAddr) -> String {
    match crate::domain::gateway::controls::ratelimit::per_host(ip) {
        std::net::IpAddr::V6(network) => format!("{network}/64"),
        v4 => v4.to_string(),
    }
}

/// Whether this instance has not yet recorded a throttle refusal for `ip` (a
/// [`throttle_subject`]) in the current window; remembers that it now has.
#[cfg(feature = "ssr")]
fn first_refusal_in_window(ip: &str, window_secs: f64) -> bool {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::{Duration, Instant};
    static NOTED: LazyLock<Mutex<HashMap<String, Instant>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    let window = Duration::from_secs_f64(window_secs.max(0.0));
    let now = Instant::now();
    let Ok(mut noted) = NOTED.lock() else {
        return true;
    };
    if noted.len() > 10_000 {
        noted.retain(|_, at| now.duration_since(*at) < window);
    }
    match noted.get(ip) {
        Some(at) if now.duration_since(*at) < window => false,
        _ => {
            noted.insert(ip.to_owned(), now);
            true
        }
    }
}

/// Only console paths are followed after sign-in: no other site, no protocol-relative URL.
/// Browsers drop tabs and newlines from URLs and read `\\` as `/`, so any control
/// character, whitespace or backslash makes the path unsafe (`/\t/evil` is `//evil`).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/sign-in")
                && path.len() <= 2048
                && !path
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '\\') =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Signs out: the session is deleted from the store, the event recorded.
#[server]
pub async fn sign_out() -> Result<(), AppError> {
    let actor = super::require(super::Permission::OwnAccount).await?;
    let mut change = actor.change().await?;
    if let Some(row) = actor.session_row() {
        super::queries::end_session_row(&mut change, row, &actor.label(), "signed out").await?;
    }
    let target = actor.staff().map(|s| format!("staff:{}", s.id));
    let mut event = actor.event("staff.sign_out");
    event.target = target;
    change.commit(event).await?;
    if let Some(session) = super::session::from_context().await {
        super::session::end(&session).await?;
    }
    leptos_axum::redirect("/sign-in");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[cfg(feature = "ssr")]
    #[test]
    fn ipv6_sign_in_failures_count_per_64() {
        use super::throttle_subject;
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert_eq!(throttle_subject(ip("198.51.100.7")), "198.51.100.7");
        assert_eq!(
            throttle_subject(ip("2001:db8:1:2:aaaa::1")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            throttle_subject(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(throttle_subject(ip("2001:db8:1:3::1")), "2001:db8:1:3::/64");
    }

    #[test]
    fn only_console_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/t/demo")), "/t/demo");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "javascript:x",
            "/sign-in",
            "/\t/evil.example",
            "/\n",
            "/ /evil",
            "/t/a\\b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
