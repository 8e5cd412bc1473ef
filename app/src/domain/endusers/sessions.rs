//! Sign-in and the refresh grant.
//!
//! A sign-in checks the caller's throttle, the captcha (unless `TURNSTILE_DISABLED` is on
//! for the tenant), then the password (Argon2id, unknown accounts taking as long as known
//! ones), and opens a session with its first refresh token; both it and every failure are
//! audited. A refresh rotates: the token is marked used and a successor issued, in one
//! transaction that locks the token's row (parallel uses of one token take turns). Rotations
//! are not audited one by one (they are the normal traffic); a reuse is.

use super::access;
use super::{Policy, REFRESH_GRACE_SECS, REFRESH_PREFIX};
use crate::auth::Actor;
use crate::domain::audit::{NewEvent, Source};
use crate::domain::gateway::controls::state::Controls;
use crate::domain::gateway::controls::SwitchKey;
use crate::domain::gateway::verify::Verifier;
use crate::domain::tokens::token;
use crate::error::AppError;
use sqlx::PgPool;
use std::net::IpAddr;
use uuid::Uuid;
use zeroize::Zeroizing;

/// What a sign-in or a refresh works with: one instance's pool, key set, epochs, switches
/// and policy.
#[derive(Clone, Copy)]
pub struct Identity<'a> {
    /// The database.
    pub pool: &'a PgPool,
    /// Keys, peppers, epochs, the master key.
    pub verifier: &'a Verifier,
    /// The switches (`TURNSTILE_DISABLED`).
    pub controls: &'a Controls,
    /// Lifetimes and the captcha.
    pub policy: &'a Policy,
    /// `PUBLIC_URL`.
    pub public_origin: &'a str,
}

impl Identity<'_> {
    /// The tenant `slug`'s keys as this instance holds them (`None`: no such tenant).
    pub(crate) async fn tenant(
        &self,
        slug: &str,
    ) -> Result<Option<std::sync::Arc<crate::domain::gateway::keyset::TenantKeys>>, AppError> {
        let snapshot = self
            .verifier
            .keys()
            .loaded()
            .await
            .map_err(|e| AppError::internal(&e))?;
        Ok(snapshot.tenants.get(slug).cloned())
    }

    /// The peppers tokens and links are hashed under.
    pub(crate) async fn ring(
        &self,
    ) -> Result<std::sync::Arc<crate::domain::tokens::pepper::PepperRing>, AppError> {
        self.verifier
            .pepper_ring()
            .await
            .map_err(|e| AppError::internal(&e))
    }
}

/// Who is calling.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The address (through trusted proxies).
    pub ip: Option<IpAddr>,
    /// The User-Agent, cut to 256 characters.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
}

impl Caller {
    pub(crate) fn apply(&self, mut event: NewEvent) -> NewEvent {
        event.ip = self.ip.map(|ip| ip.to_string());
        event.user_agent = self.user_agent.clone();
        event.request_id = self.request_id.clone();
        event
    }
}

/// What a sign-in or a refresh answers.
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The refresh token (shown once).
    pub refresh_token: Zeroizing<String>,
    /// The session.
    pub session_id: Uuid,
    /// The user.
    pub user_id: Uuid,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("session_id", &self.session_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// No such tenant.
    TenantNotFound,
    /// A field is missing or malformed.
    BadInput {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Too many failures from this caller.
    Throttled,
    /// The captcha provider refused the token.
    CaptchaRejected,
    /// The captcha provider failed or timed out.
    CaptchaUnavailable,
    /// Unknown email or wrong password (the same answer).
    InvalidCredentials,
    /// Too many failures in a row: locked for a while.
    TemporarilyLocked,
    /// An operator locked the account.
    AccountLocked,
    /// The account must set a new password (recovery) first.
    PasswordResetRequired,
    /// The tenant has no key to sign with.
    NoSigningKey,
    /// `magicLinkEnabled` is off for the tenant.
    MagicLinkDisabled,
    /// A link's token is unknown, used, cancelled or garbled.
    LinkInvalid,
    /// A link's 15 minutes are over.
    LinkExpired,
    /// `emailSendingEnabled` is off for the tenant: links that went through the mail
    /// provider are not taken (runbook 000 §3, an SMTP breach).
    LinksSuspended,
    /// Our side failed.
    Internal,
}

impl SignInError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::TenantNotFound => 404,
            Self::BadInput { .. } => 400,
            Self::Throttled => 429,
            Self::CaptchaRejected => 403,
            Self::CaptchaUnavailable | Self::NoSigningKey => 503,
            Self::InvalidCredentials => 401,
            Self::TemporarilyLocked | Self::AccountLocked => 423,
            Self::PasswordResetRequired | Self::MagicLinkDisabled | Self::LinksSuspended => 403,
            Self::LinkInvalid | Self::LinkExpired => 400,
            Self::Internal => 500,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TenantNotFound => "TENANT_NOT_FOUND",
            Self::BadInput { .. } => "INVALID_REQUEST",
            Self::Throttled => "TOO_MANY_ATTEMPTS",
            Self::CaptchaRejected => "CAPTCHA_INVALID",
            Self::CaptchaUnavailable => "CAPTCHA_VERIFICATION_FAILED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::TemporarilyLocked => "ACCOUNT_TEMPORARILY_LOCKED",
            Self::AccountLocked => "ACCOUNT_LOCKED",
            Self::PasswordResetRequired => "PASSWORD_RESET_REQUIRED",
            Self::NoSigningKey => "NO_ACTIVE_SIGNING_KEY",
            Self::MagicLinkDisabled => "MAGIC_LINK_DISABLED",
            Self::LinkInvalid => "LINK_INVALID",
            Self::LinkExpired => "LINK_EXPIRED",
            Self::LinksSuspended => "EMAIL_LINKS_SUSPENDED",
            Self::Internal => "INTERNAL",
        }
    }

    /// What to tell the caller.
    pub fn message(&self) -> String {
        match self {
            Self::TenantNotFound => "No such tenant.".into(),
            Self::BadInput { message, .. } => message.clone(),
            Self::Throttled => {
                "Too many failed sign-ins from your network. Try again in a few minutes.".into()
            }
            Self::CaptchaRejected => "The captcha was not solved or has expired. Try again.".into(),
            Self::CaptchaUnavailable => {
                "The captcha could not be verified right now. Try again in a moment.".into()
            }
            Self::InvalidCredentials => "Wrong email or password.".into(),
            Self::TemporarilyLocked => {
                "Too many failed sign-ins: this account is locked for 15 minutes.".into()
            }
            Self::AccountLocked => {
                "This account is locked. Use the recovery email to set a new password.".into()
            }
            Self::PasswordResetRequired => {
                "This account must set a new password first: use the recovery email.".into()
            }
            Self::NoSigningKey => "Sign-in is unavailable right now.".into(),
            Self::MagicLinkDisabled => {
                "Sign-in links are turned off for now: sign in with your password.".into()
            }
            Self::LinkInvalid => {
                "This link is not valid or was already used: ask for a new one.".into()
            }
            Self::LinkExpired => "This link has expired: ask for a new one.".into(),
            Self::LinksSuspended => {
                "Links from mail are not accepted right now. Try again later.".into()
            }
            Self::Internal => "Something failed on our side.".into(),
        }
    }

    /// The field it is about, for bad input.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::BadInput { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for SignInError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "end-user sign-in failed on the database");
        Self::Internal
    }
}

impl From<AppError> for SignInError {
    fn from(err: AppError) -> Self {
        tracing::error!(error = %err, "end-user sign-in failed");
        Self::Internal
    }
}

/// Checks an email's shape: lowercased and trimmed.
pub fn normalize_email(raw: &str) -> Result<String, SignInError> {
    let email = raw.trim().to_lowercase();
    let bad = |message: &str| SignInError::BadInput {
        field: "email",
        message: message.to_owned(),
    };
    if email.is_empty() {
        return Err(bad("Enter your email address."));
    }
    let shaped = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !shaped {
        return Err(bad("Enter an email address such as name@example.com."));
    }
    Ok(email)
}

/// Checks a password's length (12 to 128 characters).
pub fn check_password(password: &str) -> Result<(), SignInError> {
    let n = password.chars().count();
    if !(crate::auth::password::MIN_LEN..=crate::auth::password::MAX_LEN).contains(&n) {
        return Err(SignInError::BadInput {
            field: "password",
            message: format!(
                "A password has {} to {} characters.",
                crate::auth::password::MIN_LEN,
                crate::auth::password::MAX_LEN
            ),
        });
    }
    Ok(())
}

pub(crate) fn end_user(id: Uuid) -> String {
    format!("end_user:{id}")
}

/// The key the account column of sign-in failures is hashed under.
fn account_key(master: &crate::domain::tokens::pepper::MasterKey) -> Zeroizing<[u8; 32]> {
    let derived = master.derive("staff-console end-user sign-in account v1");
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&derived[..32]);
    key
}

/// The account an attempt is counted against: a keyed hash of the tenant and the email
/// typed (known or not).
pub(crate) fn account(
    master: &crate::domain::tokens::pepper::MasterKey,
    tenant: Uuid,
    email: &str,
) -> Vec<u8> {
    use hmac::Mac as _;
    let mut mac = crate::domain::tokens::token::keyed(&account_key(master));
    mac.update(tenant.as_bytes());
    mac.update(email.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Signs `email` in to the tenant `slug`.
///
/// The attempt is recorded before the password is checked, and the caller's and the
/// account's counts read after, so parallel guesses all count: at most
/// [`super::MAX_FAILED_SIGN_INS`] are tried per account in [`super::LOCKOUT_SECS`],
/// whoever sends them. Unknown emails count and lock exactly as known ones.
pub async fn sign_in(
    id: Identity<'_>,
    slug: &str,
    email: &str,
    password: &str,
    captcha_token: &str,
    caller: &Caller,
) -> Result<Tokens, SignInError> {
    let tenant = id.tenant(slug).await?.ok_or(SignInError::TenantNotFound)?;
    let email = normalize_email(email)?;
    check_password(password)?;
    let subject = caller
        .ip
        .map(crate::auth::api::throttle_subject)
        .unwrap_or_else(|| "unknown".to_owned());
    let captcha = check_captcha(id, tenant.id, captcha_token, caller).await?;
    let account = account(id.verifier.master_key(), tenant.id, &email);
    // The attempt first: committed before anything is checked, so a parallel attempt sees it.
    let attempt = sqlx::query_scalar!(
        "INSERT INTO end_user_sign_in_failures (tenant_id, subject, account) VALUES ($1, $2, $3)
         RETURNING id",
        tenant.id,
        subject,
        account
    )
    .fetch_one(id.pool)
    .await?;
    let counts = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM end_user_sign_in_failures
              WHERE tenant_id = $1 AND subject = $2
                AND at > now() - make_interval(secs => $4)) AS "by_caller!",
             (SELECT count(*) FROM end_user_sign_in_failures
              WHERE account = $3 AND at > now() - make_interval(secs => $5)) AS "by_account!""#,
        tenant.id,
        subject,
        account,
        super::THROTTLE_WINDOW_SECS as f64,
        super::LOCKOUT_SECS as f64
    )
    .fetch_one(id.pool)
    .await?;
    if counts.by_caller > super::THROTTLE_MAX {
        return Err(SignInError::Throttled);
    }
    if counts.by_account > i64::from(super::MAX_FAILED_SIGN_INS) {
        return Err(SignInError::TemporarilyLocked);
    }
    let user = sqlx::query!(
        r#"SELECT id, password_hash, state::text AS "state!"
           FROM end_users WHERE tenant_id = $1 AND email = $2"#,
        tenant.id,
        email
    )
    .fetch_optional(id.pool)
    .await?
    .filter(|u| u.state != "deleted");
    let matches = crate::auth::password::verify_end_user(
        password,
        user.as_ref().and_then(|u| u.password_hash.as_deref()),
    )
    .await?;
    let known = user.as_ref().map(|u| u.id);
    // This attempt was the last one allowed: say so with the refusal.
    let wrong = if counts.by_account >= i64::from(super::MAX_FAILED_SIGN_INS) {
        SignInError::TemporarilyLocked
    } else {
        SignInError::InvalidCredentials
    };
    let Some(user) = user.filter(|_| matches) else {
        audit_refusal(id, tenant.id, known, caller, &wrong, captcha).await?;
        return Err(wrong);
    };
    // The right password of an account that may not sign in: refused, audited, counted.
    let refused = match user.state.as_str() {
        "locked" => Some(SignInError::AccountLocked),
        "needs_password_reset" => Some(SignInError::PasswordResetRequired),
        _ => None,
    };
    if let Some(refused) = refused {
        audit_refusal(id, tenant.id, Some(user.id), caller, &refused, captcha).await?;
        return Err(refused);
    }
    let Some((kid, key)) = tenant.signer.clone() else {
        return Err(SignInError::NoSigningKey);
    };
    let system = Actor::system(id.pool.clone(), "identity");
    let mut change = system.change().await?;
    // A success ends the account's run of failures (this attempt's row with them).
    sqlx::query!(
        "DELETE FROM end_user_sign_in_failures WHERE account = $1 OR id = $2",
        account,
        attempt
    )
    .execute(change.db())
    .await?;
    let opened = open_session(
        id,
        &mut change,
        (&kid, &key),
        slug,
        tenant.id,
        user.id,
        caller,
    )
    .await?;
    let event = caller
        .apply(NewEvent::new(
            Source::Identity,
            end_user(user.id),
            "end_user.signed_in",
        ))
        .tenant(tenant.id)
        .target(format!("session:{}", opened.session_id))
        .details(serde_json::json!({
            "method": "password",
            "captcha": captcha,
            "session": opened.session_id,
        }));
    change.commit(event).await?;
    Ok(opened)
}

/// The captcha's verdict for a sign-in or a mail request to the tenant: `disabled`
/// (`TURNSTILE_DISABLED` on), `verified` or `not_configured`, for the event; a refusal is
/// audited.
pub(crate) async fn check_captcha(
    id: Identity<'_>,
    tenant: Uuid,
    captcha_token: &str,
    caller: &Caller,
) -> Result<&'static str, SignInError> {
    if id.controls.switch(SwitchKey::TurnstileDisabled, tenant) {
        return Ok("disabled");
    }
    match id.policy.captcha.verify(captcha_token, caller.ip).await {
        super::captcha::Verdict::Passed => Ok("verified"),
        super::captcha::Verdict::NotConfigured => Ok("not_configured"),
        super::captcha::Verdict::Rejected => {
            audit_refusal(
                id,
                tenant,
                None,
                caller,
                &SignInError::CaptchaRejected,
                "rejected",
            )
            .await?;
            Err(SignInError::CaptchaRejected)
        }
        // Not the caller's failure; recorded at most once a minute per tenant.
        super::captcha::Verdict::Unavailable => {
            if id.policy.captcha.should_record_outage(tenant) {
                audit_refusal(
                    id,
                    tenant,
                    None,
                    caller,
                    &SignInError::CaptchaUnavailable,
                    "unavailable",
                )
                .await?;
            }
            Err(SignInError::CaptchaUnavailable)
        }
    }
}

/// Opens a session of `user` in `change` with its first refresh token: the tokens to
/// answer once `change` commits (with the caller's event).
pub(crate) async fn open_session(
    id: Identity<'_>,
    change: &mut crate::auth::Change,
    (kid, key): (&str, &crate::domain::keys::PrivateKey),
    slug: &str,
    tenant: Uuid,
    user: Uuid,
    caller: &Caller,
) -> Result<Tokens, SignInError> {
    let ring = id.ring().await?;
    // Serialised with a revocation of the user (which locks the row first), so a session
    // made meanwhile is either before the epoch or visible to it.
    sqlx::query!("SELECT id FROM end_users WHERE id = $1 FOR SHARE", user)
        .fetch_one(change.db())
        .await?;
    let session = sqlx::query!(
        "INSERT INTO end_user_sessions (tenant_id, user_id, ip, user_agent)
         VALUES ($1, $2, $3::text::inet, $4) RETURNING id, created_at",
        tenant,
        user,
        caller.ip.map(|ip| ip.to_string()),
        caller.user_agent.as_deref()
    )
    .fetch_one(change.db())
    .await?;
    let refresh =
        insert_refresh(change.db(), session.id, &ring, id.policy.refresh_ttl_days).await?;
    // Issued at the database's time of the session: an epoch that covers the session
    // covers the token.
    let (access_token, _) = access::issue(
        (kid, key),
        id.public_origin,
        slug,
        user,
        session.id,
        id.policy.access_ttl_secs,
        session.created_at,
    );
    Ok(Tokens {
        access_token,
        expires_in: id.policy.access_ttl_secs,
        refresh_token: refresh.plaintext,
        session_id: session.id,
        user_id: user,
    })
}

/// Until when failed sign-ins lock the account `email` of `tenant` (`None`: they do not).
pub async fn lockout_until(
    pool: &PgPool,
    master: &crate::domain::tokens::pepper::MasterKey,
    tenant: Uuid,
    email: &str,
) -> sqlx::Result<Option<time::OffsetDateTime>> {
    // The failure that must age out of the window for the count to drop below the limit.
    sqlx::query_scalar!(
        r#"SELECT at + make_interval(secs => $3) AS "until!" FROM end_user_sign_in_failures
           WHERE account = $1 AND at > now() - make_interval(secs => $3)
           ORDER BY at DESC OFFSET $2 - 1 LIMIT 1"#,
        account(master, tenant, email),
        super::MAX_FAILED_SIGN_INS,
        super::LOCKOUT_SECS as f64
    )
    .fetch_optional(pool)
    .await
}

/// The audit event of a refused sign-in (the attempt's row is already counted).
pub(crate) async fn audit_refusal(
    id: Identity<'_>,
    tenant: Uuid,
    user: Option<Uuid>,
    caller: &Caller,
    why: &SignInError,
    captcha: &str,
) -> Result<(), SignInError> {
    let actor = user.map(end_user).unwrap_or_else(|| "anonymous".to_owned());
    let mut event = caller
        .apply(NewEvent::new(
            Source::Identity,
            actor,
            "end_user.sign_in_failed",
        ))
        .denied(why.code())
        .tenant(tenant)
        .details(serde_json::json!({ "captcha": captcha }));
    if let Some(user) = user {
        event = event.target(end_user(user));
    }
    Actor::system(id.pool.clone(), "identity")
        .change()
        .await?
        .commit(event)
        .await?;
    Ok(())
}

/// A refresh token inserted for `session`: its plaintext (shown once) and id.
pub struct NewRefresh {
    /// The token.
    pub plaintext: Zeroizing<String>,
    /// Its id.
    pub id: String,
}

async fn insert_refresh(
    db: &mut sqlx::PgConnection,
    session: Uuid,
    ring: &crate::domain::tokens::pepper::PepperRing,
    ttl_days: i64,
) -> sqlx::Result<NewRefresh> {
    let minted = token::mint_as(REFRESH_PREFIX);
    let hash = token::hash(ring.current.key(), minted.secret());
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, session_id, secret_hash, pepper_version, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(days => $5))",
        minted.id,
        session,
        &hash[..],
        ring.current.version,
        ttl_days as i32
    )
    .execute(db)
    .await?;
    Ok(NewRefresh {
        plaintext: minted.plaintext,
        id: minted.id,
    })
}

/// Why a refresh was refused: RFC 6749's `invalid_grant` with our code, or our failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// `invalid_grant`: the code and what to say.
    Invalid(&'static str, &'static str),
    /// The tenant has no key to sign with.
    NoSigningKey,
    /// Our side failed.
    Internal,
}

impl From<sqlx::Error> for RefreshError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "a refresh failed on the database");
        Self::Internal
    }
}

impl From<AppError> for RefreshError {
    fn from(err: AppError) -> Self {
        tracing::error!(error = %err, "a refresh failed");
        Self::Internal
    }
}

const INVALID: RefreshError = RefreshError::Invalid(
    "REFRESH_TOKEN_INVALID",
    "The refresh token is not valid: sign in again.",
);

/// The key the grace window's copy of a successor is sealed under.
fn successor_key(master: &crate::domain::tokens::pepper::MasterKey) -> Zeroizing<[u8; 32]> {
    let derived = master.derive("staff-console refresh successor v1");
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&derived[..32]);
    key
}

/// Exchanges a refresh token of the tenant `slug` for a new access token and its successor.
pub async fn refresh(
    id: Identity<'_>,
    slug: &str,
    presented: &str,
    caller: &Caller,
) -> Result<Tokens, RefreshError> {
    let presented = token::parse_as(REFRESH_PREFIX, presented.trim()).map_err(|_| INVALID)?;
    let tenant = id.tenant(slug).await?.ok_or(INVALID)?;
    let ring = id.ring().await?;
    let system = Actor::system(id.pool.clone(), "identity");
    let mut change = system.change().await?;
    let Some(row) = sqlx::query!(
        r#"SELECT r.secret_hash, r.pepper_version, r.expires_at, r.used_at, r.revoked_at,
                  r.successor_id, r.successor_nonce, r.successor_sealed,
                  s.id AS session_id, s.user_id, s.tenant_id, s.created_at AS session_created,
                  s.ended_at, u.state::text AS "state!",
                  greatest(u.not_before, t.sessions_not_before) AS not_before,
                  n.used_at AS "successor_used_at?", now() AS "now!"
           FROM refresh_tokens r
           JOIN end_user_sessions s ON s.id = r.session_id
           JOIN end_users u ON u.id = s.user_id
           JOIN tenants t ON t.id = s.tenant_id
           LEFT JOIN refresh_tokens n ON n.id = r.successor_id
           WHERE r.id = $1
           FOR UPDATE OF r FOR SHARE OF u, t"#,
        presented.id
    )
    .fetch_optional(change.db())
    .await?
    else {
        return Err(INVALID);
    };
    let now = row.now;
    let genuine = row.tenant_id == tenant.id
        && ring
            .get(row.pepper_version, now)
            .is_some_and(|p| token::verify(p.key(), presented.secret(), &row.secret_hash));
    if !genuine {
        return Err(INVALID);
    }
    let refused = |code, message| Err(RefreshError::Invalid(code, message));
    if row.revoked_at.is_some() || row.ended_at.is_some() {
        return refused(
            "REFRESH_TOKEN_REVOKED",
            "This session has ended: sign in again.",
        );
    }
    if row.not_before.is_some_and(|nb| row.session_created <= nb) {
        // Revoked by an epoch: mark it so (the background marking may not have reached it).
        end_session(change.db(), row.session_id, "revoked").await?;
        change.commit_all(&[]).await?;
        return refused(
            "REFRESH_TOKEN_REVOKED",
            "This session was revoked: sign in again.",
        );
    }
    match row.state.as_str() {
        "active" => {}
        "locked" => return refused("ACCOUNT_LOCKED", "This account is locked."),
        "needs_password_reset" => {
            return refused(
                "PASSWORD_RESET_REQUIRED",
                "This account must set a new password first.",
            )
        }
        _ => return Err(INVALID),
    }
    if row.expires_at <= now {
        return refused(
            "REFRESH_TOKEN_EXPIRED",
            "The refresh token has expired: sign in again.",
        );
    }
    let Some((kid, key)) = tenant.signer.clone() else {
        return Err(RefreshError::NoSigningKey);
    };
    let issue_access = || {
        access::issue(
            (&kid, &key),
            id.public_origin,
            slug,
            row.user_id,
            row.session_id,
            id.policy.access_ttl_secs,
            // The database's time, under the shared locks a revocation waits for: an epoch
            // set after this commits is later than this token.
            now,
        )
        .0
    };
    if let Some(used_at) = row.used_at {
        let since = (now - used_at).whole_seconds();
        // A parallel use within the grace window (parallel tabs): the same successor, while
        // it is unused itself. A copy used again after its successor moved on is a reuse.
        if since <= REFRESH_GRACE_SECS && row.successor_used_at.is_none() {
            if let (Some(successor), Some(nonce), Some(sealed)) = (
                &row.successor_id,
                &row.successor_nonce,
                &row.successor_sealed,
            ) {
                let opened = crate::domain::sealed::open(
                    &successor_key(id.verifier.master_key()),
                    successor.as_bytes(),
                    nonce,
                    sealed,
                )
                .and_then(|plain| String::from_utf8(plain.to_vec()).ok());
                if let Some(plaintext) = opened {
                    change.commit_all(&[]).await?;
                    return Ok(Tokens {
                        access_token: issue_access(),
                        expires_in: id.policy.access_ttl_secs,
                        refresh_token: Zeroizing::new(plaintext),
                        session_id: row.session_id,
                        user_id: row.user_id,
                    });
                }
            }
        }
        // A spent token used again: someone else has a copy. The whole family goes.
        sqlx::query!(
            "UPDATE refresh_tokens SET revoked_at = now()
             WHERE session_id = $1 AND revoked_at IS NULL",
            row.session_id
        )
        .execute(change.db())
        .await?;
        end_session(change.db(), row.session_id, "reuse_detected").await?;
        let event = caller
            .apply(NewEvent::new(
                Source::Identity,
                end_user(row.user_id),
                "token.reuse_detected",
            ))
            .denied("REFRESH_TOKEN_REUSED")
            .tenant(tenant.id)
            .target(format!("session:{}", row.session_id))
            .details(serde_json::json!({
                "refresh_token": presented.id,
                "session": row.session_id,
                "seconds_since_first_use": since,
            }));
        change.commit(event).await?;
        return refused(
            "REFRESH_TOKEN_REUSED",
            "This refresh token was already used: the session is revoked. Sign in again.",
        );
    }
    let successor = insert_refresh(
        change.db(),
        row.session_id,
        &ring,
        id.policy.refresh_ttl_days,
    )
    .await?;
    let (nonce, sealed) = crate::domain::sealed::seal(
        &successor_key(id.verifier.master_key()),
        successor.id.as_bytes(),
        successor.plaintext.as_bytes(),
    );
    sqlx::query!(
        "UPDATE refresh_tokens SET used_at = now(), successor_id = $2,
                successor_nonce = $3, successor_sealed = $4
         WHERE id = $1",
        presented.id,
        successor.id,
        &nonce[..],
        sealed
    )
    .execute(change.db())
    .await?;
    sqlx::query!(
        "UPDATE end_user_sessions SET last_used_at = now(), ip = coalesce($2::text::inet, ip)
         WHERE id = $1",
        row.session_id,
        caller.ip.map(|ip| ip.to_string())
    )
    .execute(change.db())
    .await?;
    change.commit_all(&[]).await?;
    Ok(Tokens {
        access_token: issue_access(),
        expires_in: id.policy.access_ttl_secs,
        refresh_token: successor.plaintext,
        session_id: row.session_id,
        user_id: row.user_id,
    })
}

async fn end_session(db: &mut sqlx::PgConnection, session: Uuid, reason: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE end_user_sessions SET ended_at = now(), end_reason = $2
         WHERE id = $1 AND ended_at IS NULL",
        session,
        reason
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Erases the sealed copies of successors whose grace window is over (a job).
pub async fn forget_successors(pool: &PgPool) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE refresh_tokens SET successor_nonce = NULL, successor_sealed = NULL
         WHERE successor_sealed IS NOT NULL AND used_at < now() - make_interval(secs => $1)",
        REFRESH_GRACE_SECS as f64
    )
    .execute(pool)
    .await?
    .rows_affected())
}
