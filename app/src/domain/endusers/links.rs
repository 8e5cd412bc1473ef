//! Magic links and recovery: asking for a link by email, and using it.
//!
//! Asking answers the same whether or not the address has an account (nothing to learn
//! from it); the mail is queued only for an account that may have it, within the tenant's
//! email domains, at most [`mail::MAX_REQUESTS`] per [`mail::REQUEST_WINDOW_SECS`]. Every
//! request is audited with what became of it. A link works once, for
//! [`mail::LINK_TTL_SECS`] after its mail is sent; a magic link opens a session, a recovery
//! link sets a new password, makes the account `active` again and ends all its sessions.
//! A link is refused once the account's or the tenant's sessions are revoked after it was
//! made, when its address is outside the tenant's email domains now, while
//! `emailSendingEnabled` is off (links that went through a breached provider), and for a
//! locked account (which comes back only through an operator).

use super::mail::{self, Kind};
use super::sessions::{
    account, audit_refusal, check_captcha, check_password, end_user, normalize_email, open_session,
    Caller, Identity, SignInError, Tokens,
};
use crate::auth::Actor;
use crate::domain::audit::{NewEvent, Source};
use crate::domain::gateway::controls::SwitchKey;
use crate::domain::tokens::token;
use uuid::Uuid;

/// Asks for a link of `kind` to `email` of the tenant `slug`. `Ok` says nothing of whether
/// the address has an account.
pub async fn request(
    id: Identity<'_>,
    slug: &str,
    kind: Kind,
    email: &str,
    captcha_token: &str,
    caller: &Caller,
) -> Result<(), SignInError> {
    let tenant = id.tenant(slug).await?.ok_or(SignInError::TenantNotFound)?;
    if kind == Kind::MagicLink && !id.controls.switch(SwitchKey::MagicLinkEnabled, tenant.id) {
        return Err(SignInError::MagicLinkDisabled);
    }
    let email = normalize_email(email)?;
    let captcha = check_captcha(id, tenant.id, captcha_token, caller).await?;
    let system = Actor::system(id.pool.clone(), "identity");
    let mut change = system.change().await?;
    // The account's row locked: parallel requests count one another.
    let user = sqlx::query!(
        r#"SELECT u.id, u.state::text AS "state!", t.email_domains
           FROM end_users u JOIN tenants t ON t.id = u.tenant_id
           WHERE u.tenant_id = $1 AND u.email = $2
           FOR UPDATE OF u"#,
        tenant.id,
        email
    )
    .fetch_optional(change.db())
    .await?;
    let not_sent = match &user {
        None => Some("unknown_email"),
        Some(u) if u.state == "deleted" => Some("deleted"),
        // A locked account comes back only through an operator (step-up, not frozen).
        Some(u) if u.state == "locked" => Some("locked"),
        Some(u) if kind == Kind::MagicLink && u.state != "active" => Some("may_not_sign_in"),
        Some(u) if !mail::domain_allowed(&u.email_domains, &email) => Some("domain_not_allowed"),
        Some(u) if mail::recent(&mut change, u.id, kind).await? >= mail::MAX_REQUESTS => {
            Some("too_many_requests")
        }
        Some(_) => None,
    };
    let queued = match (&user, not_sent) {
        (Some(u), None) => {
            Some(mail::enqueue(&mut change, tenant.id, u.id, &email, kind, "end_user").await?)
        }
        _ => None,
    };
    let action = match kind {
        Kind::MagicLink => "end_user.magic_link_requested",
        Kind::Recovery => "end_user.recovery_requested",
    };
    let actor = user
        .as_ref()
        .map(|u| end_user(u.id))
        .unwrap_or_else(|| "anonymous".to_owned());
    let mut event = caller
        .apply(NewEvent::new(Source::Identity, actor, action))
        .tenant(tenant.id)
        .details(serde_json::json!({
            "queued": queued.is_some(),
            "not_sent": not_sent,
            "mail": queued,
            "captcha": captcha,
        }));
    if let Some(u) = &user {
        event = event.target(end_user(u.id));
    }
    change.commit(event).await?;
    Ok(())
}

struct Link {
    user_id: Uuid,
    email: String,
    state: String,
    used: bool,
    expired: bool,
    /// Made before a revocation of the user's or the tenant's sessions: cancelled.
    revoked: bool,
    /// The address is outside the tenant's email domains now.
    outside: bool,
}

/// The link `presented` names, if it is genuine (this tenant's, this purpose, the secret
/// right), locked when `lock`.
async fn find_link(
    db: &mut sqlx::PgConnection,
    ring: &crate::domain::tokens::pepper::PepperRing,
    tenant: Uuid,
    kind: Kind,
    presented: &token::Presented,
) -> Result<Option<Link>, SignInError> {
    let row = sqlx::query!(
        r#"SELECT l.tenant_id, l.user_id, l.purpose::text AS "purpose!", l.secret_hash,
                  l.pepper_version, l.used_at, l.expires_at <= now() AS "expired!",
                  coalesce(l.created_at <= greatest(u.not_before, t.sessions_not_before), false)
                      AS "revoked!",
                  u.email, u.state::text AS "state!", t.email_domains, now() AS "now!"
           FROM end_user_links l
           JOIN end_users u ON u.id = l.user_id
           JOIN tenants t ON t.id = l.tenant_id
           WHERE l.id = $1
           FOR UPDATE OF l, u"#,
        presented.id
    )
    .fetch_optional(&mut *db)
    .await?;
    Ok(row
        .filter(|r| {
            r.tenant_id == tenant
                && r.purpose == kind.as_str()
                && ring
                    .get(r.pepper_version, r.now)
                    .is_some_and(|p| token::verify(p.key(), presented.secret(), &r.secret_hash))
        })
        .map(|r| Link {
            outside: !mail::domain_allowed(&r.email_domains, &r.email),
            user_id: r.user_id,
            email: r.email,
            state: r.state,
            used: r.used_at.is_some(),
            expired: r.expired,
            revoked: r.revoked,
        }))
}

/// Why a link may not be used now, if it may not.
fn refusal(link: Option<&Link>, kind: Kind) -> Option<SignInError> {
    let Some(link) = link else {
        return Some(SignInError::LinkInvalid);
    };
    if link.used || link.revoked || link.outside || link.state == "deleted" {
        return Some(SignInError::LinkInvalid);
    }
    if link.expired {
        return Some(SignInError::LinkExpired);
    }
    match (kind, link.state.as_str()) {
        (_, "locked") => Some(SignInError::AccountLocked),
        (Kind::MagicLink, "needs_password_reset") => Some(SignInError::PasswordResetRequired),
        _ => None,
    }
}

/// Signs in with a magic link of the tenant `slug`: the session's tokens.
pub async fn sign_in_with_link(
    id: Identity<'_>,
    slug: &str,
    presented: &str,
    caller: &Caller,
) -> Result<Tokens, SignInError> {
    let presented = token::parse_as(Kind::MagicLink.prefix(), presented.trim())
        .map_err(|_| SignInError::LinkInvalid)?;
    let tenant = id.tenant(slug).await?.ok_or(SignInError::TenantNotFound)?;
    if !id.controls.switch(SwitchKey::MagicLinkEnabled, tenant.id) {
        return Err(SignInError::MagicLinkDisabled);
    }
    if !id
        .controls
        .switch(SwitchKey::EmailSendingEnabled, tenant.id)
    {
        return Err(SignInError::LinksSuspended);
    }
    let Some((kid, key)) = tenant.signer.clone() else {
        return Err(SignInError::NoSigningKey);
    };
    let ring = id.ring().await?;
    let system = Actor::system(id.pool.clone(), "identity");
    let mut change = system.change().await?;
    let link = find_link(change.db(), &ring, tenant.id, Kind::MagicLink, &presented).await?;
    if let Some(refused) = refusal(link.as_ref(), Kind::MagicLink) {
        drop(change);
        let user = link.as_ref().map(|l| l.user_id);
        audit_refusal(id, tenant.id, user, caller, &refused, "link").await?;
        return Err(refused);
    }
    let Some(link) = link else {
        return Err(SignInError::LinkInvalid);
    };
    sqlx::query!(
        "UPDATE end_user_links SET used_at = now() WHERE id = $1",
        presented.id
    )
    .execute(change.db())
    .await?;
    // The mailbox's owner signed in: the account's run of failed passwords ends.
    sqlx::query!(
        "DELETE FROM end_user_sign_in_failures WHERE account = $1",
        account(id.verifier.master_key(), tenant.id, &link.email)
    )
    .execute(change.db())
    .await?;
    let opened = open_session(
        id,
        &mut change,
        (&kid, &key),
        slug,
        tenant.id,
        link.user_id,
        caller,
    )
    .await?;
    let event = caller
        .apply(NewEvent::new(
            Source::Identity,
            end_user(link.user_id),
            "end_user.signed_in",
        ))
        .tenant(tenant.id)
        .target(format!("session:{}", opened.session_id))
        .details(serde_json::json!({
            "method": "magic_link",
            "link": presented.id,
            "session": opened.session_id,
        }));
    change.commit(event).await?;
    Ok(opened)
}

/// Sets a new password with a recovery link of the tenant `slug`: the account is `active`
/// again and every session it had is ended (their tokens refused at once). How many were
/// live.
pub async fn recover(
    id: Identity<'_>,
    slug: &str,
    presented: &str,
    password: &str,
    caller: &Caller,
) -> Result<i64, SignInError> {
    let presented = token::parse_as(Kind::Recovery.prefix(), presented.trim())
        .map_err(|_| SignInError::LinkInvalid)?;
    let tenant = id.tenant(slug).await?.ok_or(SignInError::TenantNotFound)?;
    check_password(password)?;
    if !id
        .controls
        .switch(SwitchKey::EmailSendingEnabled, tenant.id)
    {
        return Err(SignInError::LinksSuspended);
    }
    let ring = id.ring().await?;
    let system = Actor::system(id.pool.clone(), "identity");
    // Looked at first without waiting on Argon2 under a lock; checked again, locked, after.
    {
        let mut look = system.change().await?;
        let link = find_link(look.db(), &ring, tenant.id, Kind::Recovery, &presented).await?;
        if let Some(refused) = refusal(link.as_ref(), Kind::Recovery) {
            drop(look);
            let user = link.as_ref().map(|l| l.user_id);
            audit_refusal(id, tenant.id, user, caller, &refused, "link").await?;
            return Err(refused);
        }
    }
    let hash = crate::auth::password::hash_end_user(password).await?;
    let mut change = system.change().await?;
    let link = find_link(change.db(), &ring, tenant.id, Kind::Recovery, &presented).await?;
    let (Some(link), None) = (&link, refusal(link.as_ref(), Kind::Recovery)) else {
        // Used by a parallel request meanwhile.
        return Err(SignInError::LinkInvalid);
    };
    sqlx::query!(
        "UPDATE end_users SET password_hash = $2, state = 'active',
                not_before = clock_timestamp(), updated_at = now()
         WHERE id = $1",
        link.user_id,
        hash
    )
    .execute(change.db())
    .await?;
    mail::cancel_links(&mut change, link.user_id).await?;
    mail::drop_queued_of_user(
        &mut change,
        link.user_id,
        None,
        "identity",
        "the account recovered",
    )
    .await?;
    sqlx::query!(
        "DELETE FROM end_user_sign_in_failures WHERE account = $1",
        account(id.verifier.master_key(), tenant.id, &link.email)
    )
    .execute(change.db())
    .await?;
    let live = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM end_user_sessions WHERE user_id = $1 AND ended_at IS NULL"#,
        link.user_id
    )
    .fetch_one(change.db())
    .await?;
    let event = caller
        .apply(NewEvent::new(
            Source::Identity,
            end_user(link.user_id),
            "end_user.recovered",
        ))
        .tenant(tenant.id)
        .target(end_user(link.user_id))
        .details(serde_json::json!({
            "before": link.state,
            "after": "active",
            "link": presented.id,
            "sessions_ended": live,
        }));
    change.commit(event).await?;
    Ok(live)
}
