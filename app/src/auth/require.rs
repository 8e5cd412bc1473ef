//! `require(permission)`: the first line of every server function, and the handle it returns.

use super::{queries, session, Permission, StaffIdentity};
use crate::audit::{self, NewEvent, Source};
use crate::controls::state::Controls;
use crate::error::AppError;
use crate::integrations::verify::Verifier;
use leptos::prelude::use_context;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use time::OffsetDateTime;

/// What the audit log keeps about the request being served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestMeta {
    /// The client's address (resolved through trusted proxies, see `TRUSTED_PROXIES`).
    pub ip: Option<IpAddr>,
    /// The User-Agent header, cut to 256 characters.
    pub user_agent: Option<String>,
    /// The request id from the middleware.
    pub request_id: Option<String>,
    /// The request path (the server function's URL).
    pub path: Option<String>,
}

impl RequestMeta {
    /// Copies the request facts into `event`.
    pub fn apply(&self, mut event: NewEvent) -> NewEvent {
        event.ip = self.ip.map(|ip| ip.to_string());
        event.user_agent = self.user_agent.clone();
        event.request_id = self.request_id.clone();
        event
    }
}

/// Reads the request facts from Leptos context.
pub fn request_meta() -> RequestMeta {
    let Some(parts) = use_context::<http::request::Parts>() else {
        return RequestMeta::default();
    };
    RequestMeta {
        ip: parts
            .extensions
            .get::<crate::request::ClientIp>()
            .map(|ip| ip.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    // An IPv4 client of a socket on `[::]` arrives IPv4-mapped.
                    .map(|info| info.0.ip().to_canonical())
            }),
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        request_id: parts
            .extensions
            .get::<crate::request::RequestId>()
            .map(|id| id.0.to_string()),
        path: Some(parts.uri.path().to_owned()),
    }
}

/// The signed-in staff member, read from the database on every call: a disabled person, a
/// password reset or a changed role takes effect on their very next request. A session past
/// its absolute timeout, of a disabled person, or from before a reset (an older session
/// epoch) is ended here, and stays ended if the person is re-enabled.
pub async fn current_staff() -> Result<Option<StaffIdentity>, AppError> {
    // Read before the first await (see `require`).
    let pool = crate::db::pool()?;
    let Some(session) = session::from_context().await else {
        return Ok(None);
    };
    let Some(signed_in) = session::signed_in(&session).await? else {
        return Ok(None);
    };
    if signed_in.expired(OffsetDateTime::now_utc()) {
        session::end(&session).await?;
        return Ok(None);
    }
    match queries::active_identity(&pool, signed_in.staff_id, signed_in.epoch).await? {
        Some(identity) => {
            // Using the console keeps the session alive: marking the expiry makes the layer
            // save the session, which pushes the idle expiry and the cookie's Max-Age
            // forward. Unchanged sessions are otherwise never re-saved.
            session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(
                session::IDLE_TIMEOUT,
            )));
            Ok(Some(identity))
        }
        None => {
            session::end(&session).await?;
            Ok(None)
        }
    }
}

/// Who performs a change.
#[derive(Debug, Clone)]
enum Who {
    Staff(StaffIdentity),
    CommandLine(String),
}

/// An authorized caller. Only [`require`] (for requests) and [`Actor::command_line`] (for
/// the operators' CLI) make one, and only an `Actor` can open a [`Change`].
#[derive(Clone)]
pub struct Actor {
    who: Who,
    meta: RequestMeta,
    pool: PgPool,
    verifier: Option<Arc<Verifier>>,
    controls: Option<Arc<Controls>>,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("who", &self.who)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Authorizes the current request for `permission`.
///
/// Signed out: `Unauthenticated` (not audited: anonymous traffic must not be able to write
/// to the audit log). Signed in with a password someone else chose: `PasswordChangeRequired`
/// for everything but [`Permission::OwnAccount`]. Signed in without the role: a `deny`
/// event is recorded and `Forbidden` returned.
pub async fn require(permission: Permission) -> Result<Actor, AppError> {
    // Every context is read here, before the first await: a server function run as a
    // page's resource during server rendering may resume, after really waiting, where the
    // render's context is no longer found.
    let pool = crate::db::pool()?;
    let verifier = use_context::<Arc<Verifier>>();
    let controls = use_context::<Arc<Controls>>();
    let meta = request_meta();
    let Some(staff) = current_staff().await? else {
        return Err(AppError::Unauthenticated);
    };
    // A handed-over password opens nothing but the way to replace it (and signing out).
    // Not audited: the person did nothing wrong, and the page sends them to the form.
    if staff.must_change_password && permission != Permission::OwnAccount {
        return Err(AppError::PasswordChangeRequired);
    }
    if !staff.can(permission) {
        let event = meta
            .apply(NewEvent::new(
                Source::Console,
                format!("staff:{}", staff.id),
                "authorization.refused",
            ))
            .actor_name(staff.email.clone())
            .denied("FORBIDDEN")
            .details(serde_json::json!({
                "permission": permission.as_str(),
                "required_role": permission.minimum_role().as_str(),
                "role": staff.role.as_str(),
                "path": meta.path,
            }));
        let mut conn = pool.acquire().await?;
        audit::queries::record(&mut conn, &event).await?;
        return Err(AppError::Forbidden);
    }
    Ok(Actor {
        who: Who::Staff(staff),
        meta,
        pool,
        verifier,
        controls,
    })
}

impl Actor {
    /// An actor for the operators' command line, which runs with database access and so
    /// needs no session. Never call this from a server function.
    pub fn command_line(pool: PgPool, user: &str) -> Self {
        Self {
            who: Who::CommandLine(user.to_owned()),
            meta: RequestMeta::default(),
            pool,
            verifier: None,
            controls: None,
        }
    }

    /// The signed-in staff member, for request actors.
    pub fn staff(&self) -> Option<&StaffIdentity> {
        match &self.who {
            Who::Staff(staff) => Some(staff),
            Who::CommandLine(_) => None,
        }
    }

    /// The actor as records name them (`revoked_by`): an email, or `cli:<user>`.
    pub fn label(&self) -> String {
        match &self.who {
            Who::Staff(staff) => staff.email.clone(),
            Who::CommandLine(user) => format!("cli:{user}"),
        }
    }

    /// The request facts (address, user agent, request id) of a request actor.
    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    /// The pool, for reads that change nothing.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The gateway's token verifier (minting, revoking and rotating use its key and cache).
    pub fn verifier(&self) -> Result<Arc<Verifier>, AppError> {
        self.verifier
            .clone()
            .ok_or_else(|| AppError::internal(&"token verifier missing from Leptos context"))
    }

    /// Drops the tokens of `owner` from this instance's gateway cache, after a committed
    /// change to the owner (the other instances hear of it through the notification the
    /// change sent). Nothing to do for the command line, which has no cache.
    pub fn forget_cached_tokens_of(&self, owner: uuid::Uuid) {
        if let Some(verifier) = &self.verifier {
            verifier.invalidate_owner(owner);
        }
    }

    /// The gateway's controls (switch and limit changes apply to this instance at once).
    pub fn controls(&self) -> Result<Arc<Controls>, AppError> {
        self.controls
            .clone()
            .ok_or_else(|| AppError::internal(&"gateway controls missing from Leptos context"))
    }

    /// A success event for `action`, with the actor and request facts filled in.
    pub fn event(&self, action: &str) -> NewEvent {
        match &self.who {
            Who::Staff(staff) => self
                .meta
                .apply(NewEvent::new(
                    Source::Console,
                    format!("staff:{}", staff.id),
                    action,
                ))
                .actor_name(staff.email.clone()),
            Who::CommandLine(user) => NewEvent::new(Source::System, format!("cli:{user}"), action),
        }
    }

    /// Opens a change: a transaction that commits only with its audit event.
    pub async fn change(&self) -> Result<Change, AppError> {
        Ok(Change {
            tx: self.pool.begin().await?,
        })
    }
}

/// A transaction for one audited change. Dropped without [`Change::commit`], it rolls back.
pub struct Change {
    tx: Transaction<'static, Postgres>,
}

impl Change {
    /// The connection to run the change's statements on.
    pub fn db(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `event` in the same transaction and commits both. Returns the event's
    /// position in the audit chain.
    pub async fn commit(mut self, event: NewEvent) -> Result<i64, AppError> {
        let seq = audit::queries::record(&mut self.tx, &event).await?;
        self.tx.commit().await?;
        Ok(seq)
    }

    /// Records `event` now, before the statements that follow it, for a change whose event
    /// must see the database as it was: an event takes the retention class its tenant has
    /// when it is written, so shortening a tenant's retention records its event first, in
    /// the old (longer) class, rather than in the class it is about to drop sooner.
    ///
    /// The chain head stays locked from here until the commit: keep what follows short.
    pub async fn record_first(mut self, event: NewEvent) -> Result<Recorded, AppError> {
        let seq = audit::queries::record(&mut self.tx, &event).await?;
        Ok(Recorded { tx: self.tx, seq })
    }
}

/// A change whose audit event is already recorded ([`Change::record_first`]): its
/// remaining statements run on [`Recorded::db`], and [`Recorded::commit`] needs no event.
/// Dropped without committing, it rolls back, event included.
pub struct Recorded {
    tx: Transaction<'static, Postgres>,
    seq: i64,
}

impl Recorded {
    /// The connection to run the rest of the change on.
    pub fn db(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits the change and its event. Returns the event's position in the audit chain.
    pub async fn commit(self) -> Result<i64, AppError> {
        self.tx.commit().await?;
        Ok(self.seq)
    }
}
