//! The instances of the server now running (runbook 001: "which instance still holds an
//! old key set"), and their answers to an operator's requests.
//!
//! Each instance writes its row once its change listener is in effect and then every
//! [`HEARTBEAT_EVERY`], with the key epoch it holds; it deletes the row when it shuts down.
//! A request (`refresh` or `verify`, made by the keys panel) notifies every instance when
//! it commits; each one answers with a row and an audit event, so the panel shows which
//! instances answered, with which epoch, and what each verification found.

use super::delegated::{self, Claims, AGENT_API_AUDIENCE, TYP};
use super::keyset::Snapshot;
use super::requests::{InstanceRequestKind, Probe};
use super::verify::Verifier;
use crate::auth::Actor;
use crate::domain::gateway::decision::Refusal;
use crate::domain::keys::{self, PrivateKey};
use crate::domain::status::{SigningAlgorithm, SigningKeyState};
use crate::error::AppError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// How often an instance says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// Most keys no longer trusted a verification probes (the most recently ended first).
pub const MAX_ENDED_PROBES: i64 = 20;

/// Verifications one instance runs at once (each opens keys and signs a probe per key);
/// more wait their turn.
pub const VERIFICATIONS_AT_ONCE: usize = 2;

/// This instance, as the others and the console see it.
#[derive(Debug, Clone)]
pub struct Instance {
    /// New at every start.
    pub id: Uuid,
    /// The host it runs on (`HOSTNAME`, or the system's name).
    pub host: String,
    /// The build's version.
    pub version: &'static str,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// `PUBLIC_URL`: the issuer of its tenants' tokens, which a verification's probes use.
    pub public_origin: String,
    /// Set when it deregisters (shutting down): no heartbeat lists it again.
    stopping: Arc<AtomicBool>,
    /// Bounds the verifications it runs at once.
    verifying: Arc<tokio::sync::Semaphore>,
}

impl Instance {
    /// This process, serving `public_origin`.
    pub fn new(public_origin: &str) -> Self {
        Self {
            id: Uuid::new_v4(),
            host: host_name(),
            version: env!("CARGO_PKG_VERSION"),
            started_at: OffsetDateTime::now_utc(),
            public_origin: public_origin.trim_end_matches('/').to_owned(),
            stopping: Arc::new(AtomicBool::new(false)),
            verifying: Arc::new(tokio::sync::Semaphore::new(VERIFICATIONS_AT_ONCE)),
        }
    }
}

fn host_name() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    name.chars().take(255).collect()
}

/// Writes this instance's row: alive now, holding the key epoch it holds, listening or
/// not. Nothing once it has deregistered.
pub async fn heartbeat(verifier: &Verifier) -> sqlx::Result<()> {
    let me = verifier.instance();
    if me.stopping.load(Ordering::Acquire) {
        return Ok(());
    }
    let snapshot = verifier.keys().snapshot();
    sqlx::query!(
        "INSERT INTO instances (id, host, version, started_at, last_seen, key_epoch, keys_loaded_at,
                                listening, encryption_key_fingerprint)
         VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE
             SET last_seen = now(), key_epoch = EXCLUDED.key_epoch,
                 keys_loaded_at = EXCLUDED.keys_loaded_at, listening = EXCLUDED.listening,
                 encryption_key_fingerprint = EXCLUDED.encryption_key_fingerprint",
        me.id,
        me.host,
        me.version,
        me.started_at,
        snapshot.epoch,
        snapshot.loaded_at,
        verifier.is_listening(),
        &verifier.master_key().fingerprint()[..]
    )
    .execute(verifier.pool())
    .await?;
    // Instances that stopped without saying so (killed, a lost machine).
    sqlx::query!("DELETE FROM instances WHERE last_seen < now() - interval '1 day'")
        .execute(verifier.pool())
        .await?;
    Ok(())
}

/// Deletes this instance's row (at shutdown); its heartbeat stops.
pub async fn deregister(verifier: &Verifier) -> sqlx::Result<()> {
    verifier.instance().stopping.store(true, Ordering::Release);
    sqlx::query!(
        "DELETE FROM instances WHERE id = $1",
        verifier.instance().id
    )
    .execute(verifier.pool())
    .await?;
    Ok(())
}

/// Answers the request `id`, heard at `heard`: reloads first for a refresh (once for
/// every refresh heard before a reload began), probes for a verification; then records
/// the answer. A failure is recorded as a failed answer when the database allows.
pub async fn answer(verifier: Arc<Verifier>, kind: InstanceRequestKind, id: Uuid, heard: Instant) {
    let answered = match kind {
        InstanceRequestKind::Refresh => refresh(&verifier, id, heard).await,
        InstanceRequestKind::Verify => {
            let Ok(_turn) = verifier.instance().verifying.clone().acquire_owned().await else {
                return;
            };
            verify(&verifier, id).await
        }
    };
    if let Err(err) = answered {
        tracing::error!(error = %err, request = %id, kind = kind.as_str(), "answering an instance request failed");
        let failed = Probe {
            kid: String::new(),
            state: SigningKeyState::Active,
            expect_accepted: true,
            outcome: "ERROR".to_owned(),
            passed: false,
            note: "this instance could not carry out the request (see its log)".to_owned(),
        };
        if let Ok(Some((tenant, _))) = request_tenant(&verifier, id).await {
            let epoch = verifier.keys().epoch();
            if let Err(err) = record(&verifier, id, tenant, epoch, Some(false), &[failed]).await {
                tracing::error!(error = %err, request = %id, "recording a failed answer failed");
            }
        }
    }
}

async fn request_tenant(verifier: &Verifier, id: Uuid) -> Result<Option<(Uuid, String)>, AppError> {
    Ok(sqlx::query!(
        "SELECT r.tenant_id, t.slug FROM instance_requests r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.id = $1",
        id
    )
    .fetch_optional(verifier.pool())
    .await?
    .map(|r| (r.tenant_id, r.slug)))
}

async fn refresh(verifier: &Verifier, id: Uuid, heard: Instant) -> Result<(), AppError> {
    let Some((tenant, _)) = request_tenant(verifier, id).await? else {
        return Ok(());
    };
    let epoch = verifier
        .keys()
        .reload_unless_since(heard)
        .await
        .map_err(|e| AppError::internal(&e))?;
    record(verifier, id, tenant, epoch, None, &[]).await?;
    heartbeat(verifier).await?;
    Ok(())
}

async fn verify(verifier: &Verifier, id: Uuid) -> Result<(), AppError> {
    let Some((tenant, slug)) = request_tenant(verifier, id).await? else {
        return Ok(());
    };
    let (keys, agent_api) = tenant_keys(verifier, tenant).await?;
    // What this instance holds now, as it is: a verification must not repair what it checks.
    let snapshot = verifier.keys().snapshot();
    let probes = probe(
        &snapshot,
        &verifier.instance().public_origin,
        &slug,
        agent_api,
        &keys,
        OffsetDateTime::now_utc(),
    );
    let passed = !probes.is_empty() && probes.iter().all(|p| p.passed);
    record(verifier, id, tenant, snapshot.epoch, Some(passed), &probes).await
}

async fn record(
    verifier: &Verifier,
    request: Uuid,
    tenant: Uuid,
    epoch: i64,
    passed: Option<bool>,
    probes: &[Probe],
) -> Result<(), AppError> {
    let me = verifier.instance();
    let results = serde_json::to_value(probes).map_err(|e| AppError::internal(&e))?;
    let system = Actor::system(verifier.pool().clone(), "instance");
    let mut change = system.change().await?;
    let written = sqlx::query!(
        "INSERT INTO instance_acks (request_id, instance_id, host, epoch, passed, results)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (request_id, instance_id) DO NOTHING",
        request,
        me.id,
        me.host,
        epoch,
        passed,
        results
    )
    .execute(change.db())
    .await?
    .rows_affected();
    if written == 0 {
        // Answered already (a notification delivered twice).
        return Ok(());
    }
    let action = if passed.is_some() {
        "keys.verified"
    } else {
        "keys.refresh_acknowledged"
    };
    let event = system
        .event(action)
        .tenant(tenant)
        .target(format!("instance:{}", me.id))
        .details(serde_json::json!({
            "request": request,
            "instance": me.id,
            "host": me.host,
            "version": me.version,
            "epoch": epoch,
            "passed": passed,
            "probes": results,
        }));
    change.commit(event).await?;
    Ok(())
}

/// A tenant's key, as a verification probes it.
#[derive(Debug)]
pub struct ProbedKey {
    /// Its kid.
    pub kid: String,
    /// Its algorithm.
    pub algorithm: SigningAlgorithm,
    /// Its state in the database.
    pub state: SigningKeyState,
    /// Until when, retired, it verifies.
    pub verify_until: Option<OffsetDateTime>,
    /// Its private key, while it is stored (staged, active, retired).
    pub private: Option<PrivateKey>,
}

/// The tenant's active and retired keys, and the most recently ended revoked and removed
/// ones, from the database (the truth the instance's key set is checked against); and
/// whether the tenant lets delegated tokens reach the agent API.
pub async fn tenant_keys(
    verifier: &Verifier,
    tenant: Uuid,
) -> Result<(Vec<ProbedKey>, bool), AppError> {
    let agent_api = sqlx::query_scalar!(
        r#"SELECT $2 = ANY(allowed_audiences) AS "allowed!" FROM tenants WHERE id = $1"#,
        tenant,
        AGENT_API_AUDIENCE
    )
    .fetch_one(verifier.pool())
    .await?;
    let rows = sqlx::query!(
        r#"(SELECT kid AS "kid!", algorithm AS "algorithm!: SigningAlgorithm",
                   state::text AS "state!: SigningKeyState", verify_until, nonce, sealed
            FROM signing_keys WHERE tenant_id = $1 AND state IN ('active', 'retired'))
           UNION ALL
           (SELECT kid, algorithm, state::text, verify_until, NULL, NULL
            FROM signing_keys WHERE tenant_id = $1 AND state IN ('revoked', 'removed')
            ORDER BY coalesce(revoked_at, removed_at) DESC NULLS LAST LIMIT $2)"#,
        tenant,
        MAX_ENDED_PROBES
    )
    .fetch_all(verifier.pool())
    .await?;
    let keys = rows
        .into_iter()
        .map(|row| {
            let private = match (&row.nonce, &row.sealed) {
                (Some(nonce), Some(sealed)) => keys::open(
                    verifier.master_key(),
                    tenant,
                    &row.kid,
                    row.algorithm,
                    nonce,
                    sealed,
                ),
                _ => None,
            };
            ProbedKey {
                kid: row.kid,
                algorithm: row.algorithm,
                state: row.state,
                verify_until: row.verify_until,
                private,
            }
        })
        .collect();
    Ok((keys, agent_api))
}

/// Checks a token of each key against `snapshot` (the instance's key set) as the gateway
/// would: the active key's and a retired key's within its `verify_until` must be accepted
/// (refused for its audience when the tenant does not allow `agent-api`: `agent_api`);
/// one naming a revoked, removed or expired retired key must be refused because the key is
/// not trusted. A key whose private half is gone (revoked, removed) cannot sign: its probe
/// is signed by a throwaway key and names its kid, so it passes only when the instance
/// refuses the kid itself; an instance that still trusts the key refuses it for its
/// signature instead, and the probe fails.
pub fn probe(
    snapshot: &Snapshot,
    public_origin: &str,
    slug: &str,
    agent_api: bool,
    keys: &[ProbedKey],
    now: OffsetDateTime,
) -> Vec<Probe> {
    let iat = now.unix_timestamp();
    keys.iter()
        .map(|key| {
            let claims = Claims {
                iss: delegated::issuer(public_origin, slug),
                sub: "verification:probe".to_owned(),
                act: None,
                aud: AGENT_API_AUDIENCE.to_owned(),
                scope: String::new(),
                jti: Uuid::new_v4(),
                iat,
                nbf: Some(iat),
                exp: iat + 60,
                tenant: slug.to_owned(),
                pat: "verification".to_owned(),
            };
            let value = serde_json::to_value(&claims).unwrap_or_default();
            let (expect_accepted, mut note) = match key.state {
                SigningKeyState::Active => (true, "the active key: its tokens are accepted".to_owned()),
                SigningKeyState::Retired => match key.verify_until {
                    Some(until) if now < until => (
                        true,
                        format!(
                            "retired: by design it verifies until {} UTC (revoke it to refuse its tokens now)",
                            crate::components::time::utc_seconds(until)
                        ),
                    ),
                    _ => (false, "retired past its verify_until: refused".to_owned()),
                },
                _ => (false, format!("{}: refused", key.state)),
            };
            let (token, signed_by_it) = match &key.private {
                Some(private) => (keys::sign_compact(private, &key.kid, TYP, &value), true),
                None => {
                    let throwaway = PrivateKey::generate(key.algorithm);
                    (keys::sign_compact(&throwaway, &key.kid, TYP, &value), false)
                }
            };
            let answer = delegated::check_fresh(snapshot, public_origin, &token, now);
            let outcome = match &answer {
                Ok(_) => "accepted".to_owned(),
                Err(rejected) => rejected.refusal.code().to_owned(),
            };
            // A tenant without the agent API audience has none of its tokens accepted,
            // whatever the key: its trusted keys' probes are refused for the audience.
            let audience_refused = expect_accepted && !agent_api;
            let expect_accepted = expect_accepted && agent_api;
            if audience_refused {
                note = format!("{note}; but the tenant does not allow agent-api, so it is refused for its audience");
            }
            let passed = match (&answer, expect_accepted) {
                (Ok(_), true) => true,
                (Err(rejected), false) if audience_refused => {
                    let right = rejected.refusal == Refusal::DelegatedAudienceMismatch;
                    if !right {
                        note = format!("{note}; this instance refused it for another reason: its key set may be out of date");
                    }
                    right
                }
                (Err(_), true) => {
                    note = format!("{note}; this instance refused it: its key set may be out of date");
                    false
                }
                (Ok(_), false) => {
                    note = format!("{note}; this instance ACCEPTED it: it still trusts the key");
                    false
                }
                (Err(rejected), false) => {
                    let untrusted = matches!(
                        rejected.refusal,
                        Refusal::DelegatedKeyRevoked | Refusal::DelegatedKeyUnknown
                    );
                    if !untrusted {
                        note = format!(
                            "{note}; refused for another reason ({}): this instance still trusts the key",
                            rejected.refusal.code()
                        );
                    }
                    untrusted
                }
            };
            let trusted = expect_accepted || audience_refused;
            if trusted && !signed_by_it {
                note = format!("{note}; its private key does not open with this ENCRYPTION_KEY");
            }
            Probe {
                kid: key.kid.clone(),
                state: key.state,
                expect_accepted,
                outcome,
                passed: passed && (signed_by_it || !trusted),
                note,
            }
        })
        .collect()
}
