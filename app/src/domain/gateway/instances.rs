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
use super::verify::Verifier;
use crate::auth::Actor;
use crate::domain::gateway::decision::Refusal;
use crate::domain::keys::{self, PrivateKey};
use crate::domain::status::{SigningAlgorithm, SigningKeyState};
use crate::error::AppError;
use crate::panels::keys::{InstanceRequestKind, Probe};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// How often an instance says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// Most keys no longer trusted a verification probes (the most recently ended first).
pub const MAX_ENDED_PROBES: i64 = 20;

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

/// Writes this instance's row: alive now, holding the key epoch it holds.
pub async fn heartbeat(verifier: &Verifier) -> sqlx::Result<()> {
    let me = verifier.instance();
    let snapshot = verifier.keys().snapshot();
    sqlx::query!(
        "INSERT INTO instances (id, host, version, started_at, last_seen, key_epoch, keys_loaded_at)
         VALUES ($1, $2, $3, $4, now(), $5, $6)
         ON CONFLICT (id) DO UPDATE
             SET last_seen = now(), key_epoch = EXCLUDED.key_epoch,
                 keys_loaded_at = EXCLUDED.keys_loaded_at",
        me.id,
        me.host,
        me.version,
        me.started_at,
        snapshot.epoch,
        snapshot.loaded_at
    )
    .execute(verifier.pool())
    .await?;
    // Instances that stopped without saying so (killed, a lost machine).
    sqlx::query!("DELETE FROM instances WHERE last_seen < now() - interval '1 day'")
        .execute(verifier.pool())
        .await?;
    Ok(())
}

/// Deletes this instance's row (at shutdown).
pub async fn deregister(verifier: &Verifier) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM instances WHERE id = $1",
        verifier.instance().id
    )
    .execute(verifier.pool())
    .await?;
    Ok(())
}

/// Answers the request `id`: reloads first for a refresh, probes for a verification; then
/// records the answer. Failures are logged: the panel shows the instance as silent.
pub async fn answer(verifier: std::sync::Arc<Verifier>, kind: InstanceRequestKind, id: Uuid) {
    let answered = match kind {
        InstanceRequestKind::Refresh => refresh(&verifier, id).await,
        InstanceRequestKind::Verify => verify(&verifier, id).await,
    };
    if let Err(err) = answered {
        tracing::error!(error = %err, request = %id, kind = kind.as_str(), "answering an instance request failed");
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

async fn refresh(verifier: &Verifier, id: Uuid) -> Result<(), AppError> {
    let epoch = verifier
        .keys()
        .reload()
        .await
        .map_err(|e| AppError::internal(&e))?;
    let Some((tenant, _)) = request_tenant(verifier, id).await? else {
        return Ok(());
    };
    record(verifier, id, tenant, epoch, None, &[]).await?;
    heartbeat(verifier).await?;
    Ok(())
}

async fn verify(verifier: &Verifier, id: Uuid) -> Result<(), AppError> {
    let Some((tenant, slug)) = request_tenant(verifier, id).await? else {
        return Ok(());
    };
    let keys = tenant_keys(verifier, tenant).await?;
    // What this instance holds now, as it is: a verification must not repair what it checks.
    let snapshot = verifier.keys().snapshot();
    let probes = probe(
        &snapshot,
        &verifier.instance().public_origin,
        &slug,
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
/// ones, from the database (the truth the instance's key set is checked against).
pub async fn tenant_keys(verifier: &Verifier, tenant: Uuid) -> Result<Vec<ProbedKey>, AppError> {
    let rows = sqlx::query!(
        r#"(SELECT kid AS "kid!", algorithm AS "algorithm!: SigningAlgorithm",
                   state::text AS "state!: SigningKeyState", verify_until, nonce, sealed
            FROM signing_keys WHERE tenant_id = $1 AND state IN ('active', 'retired'))
           UNION ALL
           (SELECT kid, algorithm, state::text, verify_until, NULL, NULL
            FROM signing_keys WHERE tenant_id = $1 AND state IN ('revoked', 'removed')
            ORDER BY coalesce(revoked_at, removed_at) DESC LIMIT $2)"#,
        tenant,
        MAX_ENDED_PROBES
    )
    .fetch_all(verifier.pool())
    .await?;
    Ok(rows
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
        .collect())
}

/// Checks a token of each key against `snapshot` (the instance's key set) as the gateway
/// would: the active key's and a retired key's within its `verify_until` must be accepted;
/// one naming a revoked, removed or expired retired key must be refused because the key is
/// not trusted. A key whose private half is gone (revoked, removed) cannot sign: its probe
/// is signed by a throwaway key and names its kid, so it passes only when the instance
/// refuses the kid itself; an instance that still trusts the key refuses it for its
/// signature instead, and the probe fails.
pub fn probe(
    snapshot: &Snapshot,
    public_origin: &str,
    slug: &str,
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
            let passed = match (&answer, expect_accepted) {
                (Ok(_), true) => true,
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
            if expect_accepted && !signed_by_it {
                note = format!("{note}; its private key does not open with this ENCRYPTION_KEY");
            }
            Probe {
                kid: key.kid.clone(),
                state: key.state,
                expect_accepted,
                outcome,
                passed: passed && (signed_by_it || !expect_accepted),
                note,
            }
        })
        .collect()
}
