//! `require(permission)`: the first line of every server function, and the handle it returns.

use super::{queries, session, Permission, StaffIdentity};
use crate::domain::audit::{NewEvent, Source};
use crate::domain::gateway::controls::state::Controls;
use crate::domain::gateway::verify::Verifier;
use crate::error::AppError;
use futures_util::{future::BoxFuture, stream::BoxStream};
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
/// its absolute timeout, of a disabled person, from before a reset (an older session
/// epoch), or whose row was ended (by its owner or an admin, on any instance) is ended
/// here, and stays ended if the person is re-enabled.
pub async fn current_staff() -> Result<Option<StaffIdentity>, AppError> {
    Ok(current_session().await?.map(|(staff, _)| staff))
}

/// [`current_staff`] with the session's facts (its row, factor and step-up).
async fn current_session() -> Result<Option<(StaffIdentity, queries::SessionFacts)>, AppError> {
    // Read before the first await (see `require`).
    let pool = crate::db::pool()?;
    let policy = use_context::<super::api::SignInPolicy>().unwrap_or_default();
    let Some(session) = session::from_context().await else {
        return Ok(None);
    };
    let Some(signed_in) = session::signed_in(&session).await? else {
        return Ok(None);
    };
    let Some(row) = signed_in
        .row
        .filter(|_| !signed_in.expired(OffsetDateTime::now_utc()))
    else {
        session::end(&session).await?;
        return Ok(None);
    };
    match queries::active_identity(
        &pool,
        signed_in.staff_id,
        signed_in.epoch,
        row,
        policy.mfa_required,
    )
    .await?
    {
        Some(found) => {
            // Using the console keeps the session alive: marking the expiry makes the layer
            // save the session, which pushes the idle expiry and the cookie's Max-Age
            // forward. Unchanged sessions are otherwise never re-saved.
            session.set_expiry(Some(tower_sessions::Expiry::OnInactivity(
                session::IDLE_TIMEOUT,
            )));
            queries::touch_session(&pool, row).await?;
            Ok(Some(found))
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
    /// A staff member through one of their admin API tokens (its id).
    AdminToken(StaffIdentity, String),
    CommandLine(String),
    System(&'static str),
    SignInAttempt,
}

/// An authorized caller, and the only way to write: reads go through [`Actor::reader`],
/// which cannot begin a transaction, and changes through [`Actor::change`], which commits
/// only with its audit event (the database refuses the commit otherwise, see the migration
/// `audit_obligation`).
///
/// Made by [`require`] (requests), [`Actor::system`] (the server's own jobs),
/// [`Actor::sign_in_attempt`] (the sign-in form, before anyone is known) and
/// [`Actor::command_line_unchecked`] (the operators' CLI).
#[derive(Clone)]
pub struct Actor {
    who: Who,
    meta: RequestMeta,
    pool: Reader,
    verifier: Option<Arc<Verifier>>,
    controls: Option<Arc<Controls>>,
    /// A request actor's session (its factor and step-up); `None` for everyone else.
    session: Option<queries::SessionFacts>,
    policy: super::api::SignInPolicy,
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
    let policy = use_context::<super::api::SignInPolicy>().unwrap_or_default();
    let Some((staff, facts)) = current_session().await? else {
        return Err(AppError::Unauthenticated);
    };
    // A handed-over password opens nothing but the way to replace it (and signing out);
    // then, where a second factor is required, nothing but enrolling one. Not audited:
    // the person did nothing wrong, and the page sends them to the form.
    if staff.must_change_password && permission != Permission::OwnAccount {
        return Err(AppError::PasswordChangeRequired);
    }
    if staff.must_enrol_factor && permission != Permission::OwnAccount {
        return Err(AppError::EnrolmentRequired);
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
        let refused = Actor {
            who: Who::Staff(staff),
            meta,
            pool: Reader(pool),
            verifier,
            controls,
            session: Some(facts),
            policy,
        };
        refused.change().await?.commit(event).await?;
        return Err(AppError::Forbidden);
    }
    Ok(Actor {
        who: Who::Staff(staff),
        meta,
        pool: Reader(pool),
        verifier,
        controls,
        session: Some(facts),
        policy,
    })
}

/// [`require`] for a dangerous action: the caller must also have used a second factor in
/// this session within `STEP_UP_SECONDS`, or the answer is `StepUpRequired` (checked
/// before the input is read, so the same request can be sent again after stepping up).
pub async fn require_stepped_up(permission: Permission) -> Result<Actor, AppError> {
    let actor = require(permission).await?;
    actor.require_step_up()?;
    Ok(actor)
}

/// `StepUpRequired` unless the actor's session, read again now inside `change` (after the
/// caller took the person's lock), was opened with a second factor and stepped up within
/// `STEP_UP_SECONDS`: for a change whose need of a step-up another session's commit may
/// have created since the request began (a factor added beside one enrolled meanwhile).
pub async fn require_session_stepped_up(
    actor: &Actor,
    change: &mut Change,
) -> Result<(), AppError> {
    let Some(row) = actor.session_row() else {
        return actor.require_step_up();
    };
    let recent = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM staff_sessions
                          WHERE id = $1 AND ended_at IS NULL AND factor <> 'none'
                            AND stepped_up_at > now() - make_interval(secs => $2)) AS "recent!""#,
        row,
        actor.policy.step_up_secs as f64
    )
    .fetch_one(change.db())
    .await?;
    if recent {
        Ok(())
    } else {
        Err(AppError::StepUpRequired)
    }
}

impl Actor {
    /// An actor for the operators' command line, which runs with database access and so
    /// needs no session: it checks nothing, the operator's shell is the check. In a server
    /// function or a route this would be a hole; there, use [`require`].
    pub fn command_line_unchecked(pool: PgPool, user: &str) -> Self {
        Self::unchecked(
            Who::CommandLine(user.to_owned()),
            pool,
            RequestMeta::default(),
        )
    }

    /// A call of the admin API with a token of `staff` (authenticated and authorized for
    /// the route's scope by `domain::admin::tokens`): it acts as its owner, with this
    /// instance's gateway, each change audited as source `admin_api` naming the token.
    pub fn admin_token(
        pool: PgPool,
        meta: RequestMeta,
        staff: StaffIdentity,
        token_id: String,
        verifier: Arc<Verifier>,
        controls: Arc<Controls>,
    ) -> Self {
        let mut actor = Self::unchecked(Who::AdminToken(staff, token_id), pool, meta);
        actor.verifier = Some(verifier);
        actor.controls = Some(controls);
        actor
    }

    /// Whether this is the operators' command line.
    pub fn is_command_line(&self) -> bool {
        matches!(self.who, Who::CommandLine(_))
    }

    /// The admin token a call came with, if it did.
    pub fn admin_token_id(&self) -> Option<&str> {
        match &self.who {
            Who::AdminToken(_, id) => Some(id),
            _ => None,
        }
    }

    /// The server itself, for its timed jobs (switch and key timers, pepper grace, audit
    /// retention and verification, the gateway's ledger). `job` names the job in logs; the
    /// audit log names the actor `system`.
    pub fn system(pool: PgPool, job: &'static str) -> Self {
        Self::unchecked(Who::System(job), pool, RequestMeta::default())
    }

    /// A sign-in attempt: nobody is known yet, and the events it records name whoever the
    /// attempt turns out to be about (`anonymous`, or the account).
    pub(in crate::auth) fn sign_in_attempt(pool: PgPool, meta: RequestMeta) -> Self {
        Self::unchecked(Who::SignInAttempt, pool, meta)
    }

    fn unchecked(who: Who, pool: PgPool, meta: RequestMeta) -> Self {
        Self {
            who,
            meta,
            pool: Reader(pool),
            verifier: None,
            controls: None,
            session: None,
            policy: super::api::SignInPolicy::default(),
        }
    }

    /// Whether this actor may do a dangerous action now: a request actor whose session
    /// used a second factor within `STEP_UP_SECONDS` (or, where `MFA_REQUIRED=false`, who
    /// has none to use); the server's own jobs and the command line always.
    pub fn stepped_up(&self) -> bool {
        let Some(facts) = &self.session else {
            // The command line and the server's jobs act without one. An admin token never
            // counts as stepped up: a dangerous action that asks for a recent second factor
            // inside its change (a protection removed, a setting widened) is refused to it.
            return !matches!(self.who, Who::Staff(_) | Who::AdminToken(..));
        };
        if !facts.has_factor && !self.policy.mfa_required {
            return true;
        }
        let window = time::Duration::seconds(self.policy.step_up_secs);
        facts
            .stepped_up_at
            .is_some_and(|at| OffsetDateTime::now_utc() - at < window)
    }

    /// `StepUpRequired` unless [`Actor::stepped_up`]: for an action whose danger depends on
    /// its input (turning a switch off, not on), checked once the input is read.
    pub fn require_step_up(&self) -> Result<(), AppError> {
        if self.stepped_up() {
            Ok(())
        } else {
            Err(AppError::StepUpRequired)
        }
    }

    /// The session a request actor acts in (its `staff_sessions` row).
    pub fn session_row(&self) -> Option<uuid::Uuid> {
        self.session.map(|facts| facts.row)
    }

    /// Gives a non-request actor this instance's gateway verifier and controls, so changes
    /// it makes reach the local caches at once.
    pub fn with_gateway(mut self, verifier: Arc<Verifier>, controls: Arc<Controls>) -> Self {
        self.verifier = Some(verifier);
        self.controls = Some(controls);
        self
    }

    /// The signed-in staff member, for request actors.
    pub fn staff(&self) -> Option<&StaffIdentity> {
        match &self.who {
            Who::Staff(staff) | Who::AdminToken(staff, _) => Some(staff),
            _ => None,
        }
    }

    /// The actor as records name them (`revoked_by`): an email, `cli:<user>` or `system`.
    pub fn label(&self) -> String {
        match &self.who {
            Who::Staff(staff) => staff.email.clone(),
            Who::AdminToken(staff, id) => format!("{} (admin token {id})", staff.email),
            Who::CommandLine(user) => format!("cli:{user}"),
            Who::System(_) => "system".to_owned(),
            Who::SignInAttempt => "anonymous".to_owned(),
        }
    }

    /// The job a [`Actor::system`] actor runs, for its logs.
    pub fn job(&self) -> Option<&'static str> {
        match self.who {
            Who::System(job) => Some(job),
            _ => None,
        }
    }

    /// The request facts (address, user agent, request id) of a request actor.
    pub fn meta(&self) -> &RequestMeta {
        &self.meta
    }

    /// The database for reads: it runs statements, and cannot begin a transaction. A
    /// write through it would be a transaction of its own without an audit event, which
    /// the database refuses for every audited table.
    pub fn reader(&self) -> &Reader {
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
            Who::AdminToken(staff, id) => self
                .meta
                .apply(NewEvent::new(
                    Source::AdminApi,
                    format!("staff:{}", staff.id),
                    action,
                ))
                .actor_name(format!("{} (admin token {id})", staff.email)),
            Who::CommandLine(user) => NewEvent::new(Source::System, format!("cli:{user}"), action),
            Who::System(_) => NewEvent::new(Source::System, "system", action),
            Who::SignInAttempt => {
                self.meta
                    .apply(NewEvent::new(Source::Console, "anonymous", action))
            }
        }
    }

    /// Opens a change: a transaction that commits only with its audit event.
    pub async fn change(&self) -> Result<Change, AppError> {
        Ok(Change::begin(&self.pool.0).await?)
    }
}

/// The database, for reads: an [`Executor`](sqlx::Executor) for one statement at a time,
/// with no way to begin a transaction or to take a connection out of the pool. From
/// [`Actor::reader`], or [`Reader::new`] for the server's background readers.
#[derive(Debug, Clone)]
pub struct Reader(PgPool);

impl Reader {
    /// Reads through `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self(pool)
    }

    /// A read-only transaction on one snapshot (repeatable read), for a read that must
    /// see the database at one instant across many statements (an export). The database
    /// refuses any write in it.
    pub async fn snapshot(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        let mut tx = self.0.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        // A first query fixes the mode: after it, `SET TRANSACTION READ WRITE` is refused.
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
        Ok(tx)
    }

    /// Whether the pool was closed (the server is stopping): background loops end then.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl<'c> sqlx::Executor<'c> for &'c Reader {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<
        'e,
        Result<sqlx::Either<sqlx::postgres::PgQueryResult, sqlx::postgres::PgRow>, sqlx::Error>,
    >
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, Postgres>,
    {
        (&self.0).fetch_many(query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<sqlx::postgres::PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + sqlx::Execute<'q, Postgres>,
    {
        (&self.0).fetch_optional(query)
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::postgres::PgTypeInfo],
    ) -> BoxFuture<'e, Result<sqlx::postgres::PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&self.0).prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        (&self.0).describe(sql)
    }
}

/// A transaction for one audited change. Dropped without committing, it rolls back.
///
/// The only way to write an audit event: [`Change::commit`] (one change, one event),
/// [`Change::record_each`] then `commit` (a change over many objects: an event per object,
/// then the summary), [`Change::commit_all`] (the server's batches) and
/// [`Change::record_first`].
pub struct Change {
    tx: Transaction<'static, Postgres>,
}

impl Change {
    async fn begin(pool: &PgPool) -> sqlx::Result<Self> {
        Ok(Self {
            tx: pool.begin().await?,
        })
    }

    /// The connection to run the change's statements on.
    pub fn db(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `event` in the same transaction and commits both. Returns the event's
    /// position in the audit chain.
    pub async fn commit(mut self, event: NewEvent) -> Result<i64, AppError> {
        let seq = write::one(&mut self.tx, &event).await?;
        self.tx.commit().await?;
        Ok(seq)
    }

    /// Records one event per object of a change over many (a token each of a mass
    /// revoke), in one statement; the change's own event follows with [`Change::commit`].
    pub async fn record_each(&mut self, events: &[NewEvent]) -> Result<u64, AppError> {
        Ok(write::many(&mut self.tx, events).await?)
    }

    /// Records `events` in order and commits: the server's batches (timed reverts and
    /// retirements, the gateway's ledger), where each event is its own change. With no
    /// events it commits what the transaction wrote outside the audited tables (the
    /// ledger's last-used times), and the database refuses it if anything audited changed.
    pub async fn commit_all(mut self, events: &[NewEvent]) -> Result<u64, AppError> {
        let written = write::many(&mut self.tx, events).await?;
        self.tx.commit().await?;
        Ok(written)
    }

    /// Records `event` now, before the statements that follow it, for a change whose event
    /// must see the database as it was: an event takes the retention class its tenant has
    /// when it is written, so shortening a tenant's retention records its event first, in
    /// the old (longer) class, rather than in the class it is about to drop sooner.
    ///
    /// The chain head stays locked from here until the commit: keep what follows short.
    pub async fn record_first(mut self, event: NewEvent) -> Result<Recorded, AppError> {
        let seq = write::one(&mut self.tx, &event).await?;
        Ok(Recorded { change: self, seq })
    }
}

/// A change whose audit event is already recorded ([`Change::record_first`]): its
/// remaining statements run on [`Recorded::change`], and [`Recorded::commit`] needs no
/// event. Dropped without committing, it rolls back, event included.
pub struct Recorded {
    change: Change,
    seq: i64,
}

impl Recorded {
    /// The change, to run the rest of its statements on (the queries that write take it).
    pub fn change(&mut self) -> &mut Change {
        &mut self.change
    }

    /// Commits the change and its event. Returns the event's position in the audit chain.
    pub async fn commit(self) -> Result<i64, AppError> {
        self.change.tx.commit().await?;
        Ok(self.seq)
    }
}

/// The audit log's inserts, private to [`Change`]. The chain (seq, ts, prev_hash, hash) is
/// computed by the database's insert trigger, under a lock on the chain head that is held
/// until the transaction ends: events are recorded last, just before the commit.
mod write {
    use crate::domain::audit::NewEvent;
    use sqlx::PgConnection;

    pub(super) async fn one(conn: &mut PgConnection, event: &NewEvent) -> sqlx::Result<i64> {
        sqlx::query_scalar!(
            r#"INSERT INTO audit_events
               (tenant_id, source, actor, actor_name, action, outcome, code, target,
                ip, user_agent, request_id, incident_id, reason, details, retention_months)
           VALUES ($1, $2::text::audit_source, $3, $4, $5, $6::text::audit_outcome, $7, $8,
                   $9::text::inet, $10, $11, $12, $13, $14, audit_retention_for($1))
           RETURNING seq"#,
            event.tenant_id,
            event.source.as_str(),
            event.actor,
            event.actor_name,
            event.action,
            event.outcome.as_str(),
            event.code,
            event.target,
            event.ip,
            event.user_agent,
            event.request_id,
            event.incident_id,
            event.reason,
            event.details,
        )
        .fetch_one(conn)
        .await
    }

    /// One statement for all of `events`, in order (the chain trigger still runs per row).
    pub(super) async fn many(conn: &mut PgConnection, events: &[NewEvent]) -> sqlx::Result<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let n = events.len();
        let mut tenant = Vec::with_capacity(n);
        let mut source = Vec::with_capacity(n);
        let mut actor = Vec::with_capacity(n);
        let mut actor_name = Vec::with_capacity(n);
        let mut action = Vec::with_capacity(n);
        let mut outcome = Vec::with_capacity(n);
        let mut code = Vec::with_capacity(n);
        let mut target = Vec::with_capacity(n);
        let mut ip = Vec::with_capacity(n);
        let mut user_agent = Vec::with_capacity(n);
        let mut request_id = Vec::with_capacity(n);
        let mut incident = Vec::with_capacity(n);
        let mut reason = Vec::with_capacity(n);
        let mut details = Vec::with_capacity(n);
        for e in events {
            tenant.push(e.tenant_id);
            source.push(e.source.as_str().to_owned());
            actor.push(e.actor.clone());
            actor_name.push(e.actor_name.clone());
            action.push(e.action.clone());
            outcome.push(e.outcome.as_str().to_owned());
            code.push(e.code.clone());
            target.push(e.target.clone());
            ip.push(e.ip.clone());
            user_agent.push(e.user_agent.clone());
            request_id.push(e.request_id.clone());
            incident.push(e.incident_id);
            reason.push(e.reason.clone());
            details.push(e.details.to_string());
        }
        let done = sqlx::query!(
            r#"INSERT INTO audit_events
               (tenant_id, source, actor, actor_name, action, outcome, code, target,
                ip, user_agent, request_id, incident_id, reason, details, retention_months)
           SELECT tenant, src::audit_source, who, who_name, act, res::audit_outcome, code,
                  target, addr::inet, ua, rid, incident, why, details::jsonb,
                  audit_retention_for(tenant)
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                       $12::uuid[], $13::text[], $14::text[])
                WITH ORDINALITY AS e(tenant, src, who, who_name, act, res, code, target, addr,
                                     ua, rid, incident, why, details, n)
           ORDER BY n"#,
            &tenant as &[Option<uuid::Uuid>],
            &source,
            &actor,
            &actor_name as &[Option<String>],
            &action,
            &outcome,
            &code as &[Option<String>],
            &target as &[Option<String>],
            &ip as &[Option<String>],
            &user_agent as &[Option<String>],
            &request_id as &[Option<String>],
            &incident as &[Option<uuid::Uuid>],
            &reason as &[Option<String>],
            &details,
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }
}
