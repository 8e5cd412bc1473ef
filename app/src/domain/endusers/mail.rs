//! End users' mail: recovery and magic links (runbooks 000 §3 and 004).
//!
//! Mail is queued in `outbound_mail` inside the change that asks for it, and sent by every
//! instance's sender ([`send_due`]), each mail by one of them (its row locked, skipping
//! those another holds). A queued row holds no secret: the one-time link is made as the
//! mail is sent, so mail held for hours still carries a link that lasts its full
//! [`LINK_TTL_SECS`]. While `emailSendingEnabled` is off for the tenant, mail stays queued
//! (held: nothing lost) until it is on again or an operator drops it with a reason. Sending
//! goes through SMTP (`SMTP_URL`) or, in development without it, to `.eml` files in
//! `DATA_DIR/outbox` that the console lists.

use crate::auth::{Actor, Change};
use crate::domain::gateway::controls::state::Controls;
use crate::domain::gateway::controls::SwitchKey;
use crate::domain::gateway::verify::Verifier;
use crate::domain::tokens::token;
use crate::error::AppError;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// How long a link works after its mail is sent.
pub const LINK_TTL_SECS: i64 = 15 * 60;
/// Attempts before a mail is given up as failed.
pub const MAX_ATTEMPTS: i32 = 5;
/// Mail of one kind an account may be sent per [`REQUEST_WINDOW_SECS`] when the caller
/// asks (an operator's request always goes): no mailbox is flooded through this form.
pub const MAX_REQUESTS: i64 = 3;
/// The window of [`MAX_REQUESTS`].
pub const REQUEST_WINDOW_SECS: i64 = 15 * 60;
/// How long one SMTP conversation may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a mail carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A one-time sign-in link.
    MagicLink,
    /// A one-time link to set a new password.
    Recovery,
}

impl Kind {
    /// The database's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MagicLink => "magic_link",
            Self::Recovery => "recovery",
        }
    }

    /// Parses the database's spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "magic_link" => Some(Self::MagicLink),
            "recovery" => Some(Self::Recovery),
            _ => None,
        }
    }

    /// The link token's prefix: a recovery token is never taken for a sign-in link.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::MagicLink => "mf_ml_v1",
            Self::Recovery => "mf_rc_v1",
        }
    }

    /// The route the link opens, under `/a/{tenant}/auth/`.
    pub fn path(self) -> &'static str {
        match self {
            Self::MagicLink => "magic-link",
            Self::Recovery => "recovery",
        }
    }

    fn subject(self) -> &'static str {
        match self {
            Self::MagicLink => "Your sign-in link",
            Self::Recovery => "Set a new password",
        }
    }

    fn body(self, url: &str) -> String {
        let minutes = LINK_TTL_SECS / 60;
        match self {
            Self::MagicLink => format!(
                "Open this link to sign in. It works once, for {minutes} minutes:\n\n{url}\n\nIf you did not ask for it, ignore this mail: nobody can sign in without it.\n"
            ),
            Self::Recovery => format!(
                "Open this link to set a new password. It works once, for {minutes} minutes, and signs out every other session of your account:\n\n{url}\n\nIf you did not ask for it, you can ignore this mail; your password stays as it is.\n"
            ),
        }
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf, AsyncFileTransport<Tokio1Executor>),
    Unconfigured,
}

/// Where mail goes, and from whom.
pub struct Mailer {
    transport: Transport,
    from: Option<Mailbox>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.describe())
            .field("from", &self.from.as_ref().map(ToString::to_string))
            .finish()
    }
}

fn mailbox(from: &str) -> Result<Mailbox, String> {
    from.parse::<Mailbox>()
        .map_err(|_| format!("MAIL_FROM is not an address: {from:?}"))
}

impl Mailer {
    /// SMTP at `url` (`smtp://host:587?tls=required`, `smtps://host:465`; credentials in
    /// it, or the password in `password` with the user in the URL).
    pub fn smtp(url: &str, password: Option<&str>, from: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|_| "SMTP_URL is not a URL".to_owned())?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            return Err("SMTP_URL must start with smtp:// or smtps://".into());
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL is not usable: {e}"))?
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            let user = percent_encoding::percent_decode_str(parsed.username())
                .decode_utf8()
                .map_err(|_| "SMTP_URL's user name is not UTF-8".to_owned())?
                .into_owned();
            if user.is_empty() {
                return Err("SMTP_PASSWORD is set but SMTP_URL names no user".into());
            }
            builder = builder.credentials(Credentials::new(user, password.to_owned()));
        }
        Ok(Self {
            transport: Transport::Smtp(builder.build()),
            from: Some(mailbox(from)?),
        })
    }

    /// Development: every mail is a `.eml` file in `dir` (made if missing).
    pub fn outbox(dir: PathBuf, from: &str) -> Result<Self, String> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("the outbox {} cannot be made: {e}", dir.display()))?;
        Ok(Self {
            transport: Transport::Outbox(dir.clone(), AsyncFileTransport::new(dir)),
            from: Some(mailbox(from)?),
        })
    }

    /// No transport (production without `SMTP_URL`): mail stays queued, visibly.
    pub fn unconfigured() -> Self {
        Self {
            transport: Transport::Unconfigured,
            from: None,
        }
    }

    /// `smtp`, `outbox` or `none`, for the console.
    pub fn describe(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(..) => "outbox",
            Transport::Unconfigured => "none",
        }
    }

    /// The development outbox, if mail goes there.
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Outbox(dir, _) => Some(dir),
            _ => None,
        }
    }

    /// Sends `message`: the transport's name and the message's id (the outbox file's name).
    async fn deliver(&self, message: Message) -> Result<(&'static str, String), String> {
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|answer| {
                    let id = answer.message().collect::<Vec<_>>().join(" ");
                    ("smtp", id.chars().take(200).collect())
                })
                .map_err(|e| format!("SMTP: {e}")),
            Transport::Outbox(_, file) => file
                .send(message)
                .await
                .map(|id| ("outbox", id))
                .map_err(|e| format!("outbox: {e}")),
            Transport::Unconfigured => Err("no mail transport: set SMTP_URL".into()),
        }
    }
}

/// Whether `email` may be sent links under the tenant's allowlist (empty: any domain).
pub fn domain_allowed(domains: &[String], email: &str) -> bool {
    if domains.is_empty() {
        return true;
    }
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    domains.iter().any(|d| d == domain)
}

/// Queues a mail of `kind` to `user` in `change` (sent once it commits): its id.
pub async fn enqueue(
    change: &mut Change,
    tenant: Uuid,
    user: Uuid,
    to: &str,
    kind: Kind,
    requested_by: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar!(
        "INSERT INTO outbound_mail (tenant_id, user_id, kind, to_address, requested_by)
         VALUES ($1, $2, $3::text::end_user_link_purpose, $4, $5) RETURNING id",
        tenant,
        user,
        kind.as_str(),
        to,
        requested_by
    )
    .fetch_one(change.db())
    .await
}

/// Mail of `kind` queued for `user` in the last [`REQUEST_WINDOW_SECS`] (dropped mail not
/// counted).
pub async fn recent(change: &mut Change, user: Uuid, kind: Kind) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM outbound_mail
           WHERE user_id = $1 AND kind = $2::text::end_user_link_purpose AND state <> 'dropped'
             AND created_at > now() - make_interval(secs => $3)"#,
        user,
        kind.as_str(),
        REQUEST_WINDOW_SECS as f64
    )
    .fetch_one(change.db())
    .await
}

/// Drops the user's queued mail (a lock, a reset, a deletion, a recovery): mail asked for
/// before must not go out after, with a fresh link. How many.
pub async fn drop_queued_of_user(
    change: &mut Change,
    user: Uuid,
    kind: Option<Kind>,
    by: &str,
    why: &str,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE outbound_mail SET state = 'dropped', dropped_at = now(), dropped_by = $2,
                dropped_reason = $3
         WHERE user_id = $1 AND state = 'pending'
           AND ($4::text IS NULL OR kind = $4::text::end_user_link_purpose)",
        user,
        by,
        why,
        kind.map(Kind::as_str)
    )
    .execute(change.db())
    .await?
    .rows_affected())
}

/// Drops the tenants' queued magic-link mail (a tenant's or the platform's revocation).
pub async fn drop_queued_magic_links(
    change: &mut Change,
    tenant: Option<Uuid>,
    by: &str,
    why: &str,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE outbound_mail SET state = 'dropped', dropped_at = now(), dropped_by = $2,
                dropped_reason = $3
         WHERE state = 'pending' AND kind = 'magic_link' AND ($1::uuid IS NULL OR tenant_id = $1)",
        tenant,
        by,
        why
    )
    .execute(change.db())
    .await?
    .rows_affected())
}

/// Cancels the user's unused links (a lock, a recovery, a deletion).
pub async fn cancel_links(change: &mut Change, user: Uuid) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE end_user_links SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        user
    )
    .execute(change.db())
    .await?
    .rows_affected())
}

/// What a sender works with.
pub struct Sender<'a> {
    /// The database.
    pub pool: &'a PgPool,
    /// The peppers links are hashed under.
    pub verifier: &'a Verifier,
    /// `emailSendingEnabled`, `magicLinkEnabled`.
    pub controls: &'a Controls,
    /// Where mail goes.
    pub mailer: &'a Mailer,
    /// `PUBLIC_URL`, the links' origin.
    pub public_origin: &'a str,
}

/// What one pass of the sender did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Mail sent.
    pub sent: u32,
    /// Attempts that failed (to be retried, or given up).
    pub failed: u32,
    /// Mail no longer to send (the account deleted, the domain no longer allowed).
    pub dropped: u32,
    /// Mail held by `emailSendingEnabled` (due, of the tenants where it is off).
    pub held: u32,
}

/// Sends up to `max` due mail, skipping tenants whose `emailSendingEnabled` is off (held).
pub async fn send_due(sender: &Sender<'_>, max: i64) -> Result<Pass, AppError> {
    let mut pass = Pass::default();
    let Some(from) = &sender.mailer.from else {
        return Ok(pass);
    };
    // The tenants with mail due, and which of them hold it: held mail is left out of the
    // batch, so however much piles up it never stands in front of another tenant's.
    let tenants = sqlx::query!(
        r#"SELECT tenant_id, count(*) AS "due!" FROM outbound_mail
           WHERE state = 'pending' AND next_attempt_at <= now()
           GROUP BY tenant_id"#
    )
    .fetch_all(sender.pool)
    .await?;
    let mut sending = Vec::new();
    for t in tenants {
        if sender
            .controls
            .switch(SwitchKey::EmailSendingEnabled, t.tenant_id)
        {
            sending.push(t.tenant_id);
        } else {
            pass.held += u32::try_from(t.due).unwrap_or(u32::MAX);
        }
    }
    if sending.is_empty() {
        return Ok(pass);
    }
    let due = sqlx::query_scalar!(
        "SELECT id FROM outbound_mail
         WHERE state = 'pending' AND next_attempt_at <= now() AND tenant_id = ANY($1)
         ORDER BY next_attempt_at LIMIT $2",
        &sending,
        max
    )
    .fetch_all(sender.pool)
    .await?;
    for id in due {
        // One mail's failure on our side does not hold up the others.
        match send_one(sender, from, id).await {
            Ok(Some(Outcome::Sent)) => pass.sent += 1,
            Ok(Some(Outcome::Failed)) => pass.failed += 1,
            Ok(Some(Outcome::Dropped)) => pass.dropped += 1,
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(mail = %id, error = %err, "a mail could not be handled");
                pass.failed += 1;
            }
        }
    }
    Ok(pass)
}

enum Outcome {
    Sent,
    Failed,
    Dropped,
}

async fn send_one(
    sender: &Sender<'_>,
    from: &Mailbox,
    id: Uuid,
) -> Result<Option<Outcome>, AppError> {
    let actor = Actor::system(sender.pool.clone(), "mailer");
    let mut change = actor.change().await?;
    let Some(mail) = sqlx::query!(
        r#"SELECT m.kind::text AS "kind!", m.to_address, m.user_id, m.tenant_id, m.attempts,
                  u.state::text AS "state!", t.slug, t.email_domains
           FROM outbound_mail m
           JOIN end_users u ON u.id = m.user_id
           JOIN tenants t ON t.id = m.tenant_id
           WHERE m.id = $1 AND m.state = 'pending' AND m.next_attempt_at <= now()
           FOR UPDATE OF m SKIP LOCKED"#,
        id
    )
    .fetch_optional(change.db())
    .await?
    else {
        return Ok(None);
    };
    let kind = Kind::parse(&mail.kind).unwrap_or(Kind::Recovery);
    let event = |action: &str| {
        actor
            .event(action)
            .tenant(mail.tenant_id)
            .target(format!("end_user:{}", mail.user_id))
    };
    // Checked again as it goes: the account or the tenant's rules may have changed while
    // it waited.
    let magic_off = kind == Kind::MagicLink
        && !sender
            .controls
            .switch(SwitchKey::MagicLinkEnabled, mail.tenant_id);
    let to = mail.to_address.parse::<Mailbox>().ok();
    let not_now = match (kind, mail.state.as_str()) {
        (_, "deleted") => Some("the account is deleted"),
        (_, "locked") => Some("the account is locked"),
        (Kind::MagicLink, state) if state != "active" => Some("the account may not sign in"),
        _ if magic_off => Some("magic links are off (magicLinkEnabled)"),
        _ if !domain_allowed(&mail.email_domains, &mail.to_address) => {
            Some("the address is outside the tenant's email domains")
        }
        _ if to.is_none() => Some("the address cannot be delivered to"),
        _ => None,
    };
    let (Some(to), None) = (to, not_now) else {
        let why = not_now.unwrap_or("the address cannot be delivered to");
        sqlx::query!(
            "UPDATE outbound_mail SET state = 'dropped', dropped_at = now(),
                    dropped_by = 'mailer', dropped_reason = $2
             WHERE id = $1",
            id,
            why
        )
        .execute(change.db())
        .await?;
        let dropped = event("mail.dropped")
            .reason(why)
            .details(serde_json::json!({ "mail": id, "kind": kind.as_str() }));
        change.commit(dropped).await?;
        return Ok(Some(Outcome::Dropped));
    };
    let ring = sender
        .verifier
        .pepper_ring()
        .await
        .map_err(|e| AppError::internal(&e))?;
    let minted = token::mint_as(kind.prefix());
    let url = format!(
        "{}/a/{}/auth/{}?token={}",
        sender.public_origin,
        mail.slug,
        kind.path(),
        minted.plaintext.as_str()
    );
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(kind.subject())
        .header(ContentType::TEXT_PLAIN)
        .body(kind.body(&url))
        .map_err(|e| AppError::internal(&e))?;
    match sender.mailer.deliver(message).await {
        Ok((transport, message_id)) => {
            let hash = token::hash(ring.current.key(), minted.secret());
            sqlx::query!(
                "INSERT INTO end_user_links
                     (id, tenant_id, user_id, purpose, mail_id, secret_hash, pepper_version, expires_at)
                 VALUES ($1, $2, $3, $4::text::end_user_link_purpose, $5, $6, $7,
                         now() + make_interval(secs => $8))",
                minted.id,
                mail.tenant_id,
                mail.user_id,
                kind.as_str(),
                id,
                &hash[..],
                ring.current.version,
                LINK_TTL_SECS as f64
            )
            .execute(change.db())
            .await?;
            sqlx::query!(
                "UPDATE outbound_mail SET state = 'sent', sent_at = now(), attempts = attempts + 1,
                        transport = $2, message_id = $3, last_error = NULL
                 WHERE id = $1",
                id,
                transport,
                message_id
            )
            .execute(change.db())
            .await?;
            let sent = event("mail.sent").details(serde_json::json!({
                "mail": id,
                "kind": kind.as_str(),
                "transport": transport,
                "link": minted.id,
            }));
            change.commit(sent).await?;
            Ok(Some(Outcome::Sent))
        }
        Err(error) => {
            let error: String = error.chars().take(300).collect();
            let attempts = mail.attempts + 1;
            let gave_up = attempts >= MAX_ATTEMPTS;
            // 10 s, 20 s, 40 s, 80 s between attempts.
            let wait = 5.0 * f64::from(1u32 << attempts.clamp(1, 8));
            sqlx::query!(
                "UPDATE outbound_mail SET attempts = $2, last_error = $3,
                        state = CASE WHEN $4 THEN 'failed'::mail_state ELSE state END,
                        next_attempt_at = now() + make_interval(secs => $5)
                 WHERE id = $1",
                id,
                attempts,
                error,
                gave_up,
                wait
            )
            .execute(change.db())
            .await?;
            tracing::warn!(mail = %id, attempts, gave_up, error = %error, "sending a mail failed");
            let failed = event("mail.send_failed")
                .failed(if gave_up {
                    "MAIL_GIVEN_UP"
                } else {
                    "MAIL_SEND_FAILED"
                })
                .details(serde_json::json!({
                    "mail": id,
                    "kind": kind.as_str(),
                    "attempts": attempts,
                    "error": error,
                }));
            change.commit(failed).await?;
            Ok(Some(Outcome::Failed))
        }
    }
}

/// Drops pending mail of the tenant with a reason: one mail, or every one held. How many.
pub async fn drop_pending(
    actor: &Actor,
    tenant: Uuid,
    mail: Option<Uuid>,
    reason: &str,
) -> Result<u64, AppError> {
    let mut change = actor.change().await?;
    let ids = sqlx::query_scalar!(
        "UPDATE outbound_mail SET state = 'dropped', dropped_at = now(), dropped_by = $3,
                dropped_reason = $4
         WHERE tenant_id = $1 AND state = 'pending' AND ($2::uuid IS NULL OR id = $2)
         RETURNING id",
        tenant,
        mail,
        actor.label(),
        reason
    )
    .fetch_all(change.db())
    .await?;
    if ids.is_empty() {
        return Err(AppError::Conflict {
            field: None,
            message: match mail {
                Some(_) => {
                    "That mail is no longer queued: it was sent or dropped meanwhile.".into()
                }
                None => "No mail is queued.".into(),
            },
        });
    }
    let event = actor
        .event("mail.dropped")
        .tenant(tenant)
        .target(match mail {
            Some(id) => format!("mail:{id}"),
            None => "mail:queued".to_owned(),
        })
        .reason(reason)
        .details(serde_json::json!({ "dropped": ids.len(), "mail": ids }));
    change.commit(event).await?;
    Ok(ids.len() as u64)
}

/// Reads an outbox file (development), by its message id: its headers and its text as a
/// mail client shows it (quoted-printable decoded, so the link reads whole).
pub async fn outbox_message(dir: &Path, message_id: &str) -> Option<String> {
    // Ids are lettre's UUIDs: nothing else names a file.
    let id = Uuid::parse_str(message_id).ok()?;
    let raw = tokio::fs::read_to_string(dir.join(format!("{id}.eml")))
        .await
        .ok()?;
    Some(readable(&raw))
}

/// A message's headers, a blank line, and its body decoded from quoted-printable when its
/// headers say so (RFC 2045 §6.7: `=XX` octets, `=` at a line's end joins it to the next).
pub fn readable(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let Some((headers, body)) = raw.split_once("\n\n") else {
        return raw;
    };
    let quoted = headers
        .lines()
        .any(|h| h.eq_ignore_ascii_case("Content-Transfer-Encoding: quoted-printable"));
    if !quoted {
        return raw;
    }
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(octet)) => {
                out.push(octet);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    format!("{headers}\n\n{}", String::from_utf8_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::{domain_allowed, readable};

    #[test]
    fn quoted_printable_reads_whole_and_other_bodies_stay_as_they_are() {
        let qp = "To: a@b.example\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhttp://x/?token=3Dmf_rc_v1.ab=\r\ncd caf=C3=A9\r\n";
        assert_eq!(
            readable(qp),
            "To: a@b.example\nContent-Transfer-Encoding: quoted-printable\n\nhttp://x/?token=mf_rc_v1.abcd café\n"
        );
        let plain = "To: a@b.example\n\nx=3D";
        assert_eq!(readable(plain), plain);
    }

    #[test]
    fn the_allowlist_matches_whole_domains() {
        assert!(domain_allowed(&[], "a@anything.example"));
        let list = vec!["example.org".to_owned()];
        assert!(domain_allowed(&list, "a@example.org"));
        assert!(!domain_allowed(&list, "a@evil-example.org"));
        assert!(!domain_allowed(&list, "a@example.org.evil.test"));
    }
}
