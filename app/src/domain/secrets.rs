//! Secrets at rest across an `ENCRYPTION_KEY` rotation (runbook 004, database compromise).
//!
//! During a rotation the server runs with the new key as `ENCRYPTION_KEY` and the replaced
//! one as `ENCRYPTION_KEY_PREVIOUS`: it seals under the new key only and opens under
//! either. [`reseal`] moves every token pepper, signing key and TOTP secret still sealed
//! under the previous key to the new one, a batch per transaction with its audit event, so
//! it can be stopped and run again; [`census`] says what is left. Recovery codes are
//! hashes, not sealed: they cannot be moved, only replaced by their owners, so the census
//! counts the staff whose codes are still on the previous key.

use crate::auth::Actor;
use crate::domain::factors::totp::TotpSecret;
use crate::domain::status::SigningAlgorithm;
use crate::domain::tokens::pepper::{self, MasterKey, SealedUnder};
use crate::error::AppError;
use sqlx::PgPool;
use uuid::Uuid;

/// How many secrets of one kind are under which key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Count {
    /// Under `ENCRYPTION_KEY`.
    pub current: u64,
    /// Under `ENCRYPTION_KEY_PREVIOUS`: to be re-sealed.
    pub previous: u64,
    /// Under neither: a wrong key, or an altered row.
    pub unopened: u64,
    /// One that did not open, for the message.
    pub first_unopened: Option<String>,
}

impl Count {
    fn add(&mut self, under: Option<SealedUnder>, name: impl FnOnce() -> String) {
        match under {
            Some(SealedUnder::Current) => self.current += 1,
            Some(SealedUnder::Previous) => self.previous += 1,
            None => {
                self.unopened += 1;
                if self.first_unopened.is_none() {
                    self.first_unopened = Some(name());
                }
            }
        }
    }
}

/// What is sealed under which key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Token peppers in use (current and previous versions).
    pub peppers: Count,
    /// Private signing keys still stored (staged, active, retired).
    pub signing_keys: Count,
    /// Staff TOTP secrets.
    pub totp: Count,
    /// Staff with unused recovery codes hashed under the previous key.
    pub recovery_staff_previous: u64,
    /// Staff with unused recovery codes made before the key was recorded beside them
    /// (during a rotation, they may be under either key).
    pub recovery_staff_unknown: u64,
}

impl Census {
    /// Secrets still sealed under the previous key.
    pub fn on_previous(&self) -> u64 {
        self.peppers.previous + self.signing_keys.previous + self.totp.previous
    }

    /// The first secret that opens under neither key, named (never its contents).
    pub fn unopened(&self) -> Option<String> {
        [&self.peppers, &self.signing_keys, &self.totp]
            .into_iter()
            .find_map(|c| c.first_unopened.clone())
    }

    /// The first pepper or signing key that opens under neither key: the server cannot
    /// check tokens or sign without them, so it does not start. (A TOTP secret that does
    /// not open locks out one person, who is named in a warning instead.)
    pub fn unopened_required(&self) -> Option<String> {
        [&self.peppers, &self.signing_keys]
            .into_iter()
            .find_map(|c| c.first_unopened.clone())
    }

    /// What the recovery codes still need, as a sentence's tail ("" when nothing).
    pub fn recovery_note(&self) -> String {
        match (self.recovery_staff_previous, self.recovery_staff_unknown) {
            (0, 0) => String::new(),
            (previous, unknown) => format!(
                "; {} staff member(s) have recovery codes made under the previous key{}: they work until ENCRYPTION_KEY_PREVIOUS is removed, so ask them to make new ones (Account → Recovery codes) first",
                previous + unknown,
                if unknown > 0 { " (or before the key was recorded)" } else { "" }
            ),
        }
    }
}

/// Counts, for every sealed secret, the key it opens under.
pub async fn census(pool: &PgPool, master: &MasterKey) -> Result<Census, sqlx::Error> {
    let mut census = Census::default();
    for row in peppers(pool).await? {
        let under = master
            .open_either(|k| pepper::open_under(k.expose(), row.version, &row.nonce, &row.sealed))
            .map(|(_, under)| under);
        census
            .peppers
            .add(under, || format!("token pepper version {}", row.version));
    }
    for row in signing_keys(pool).await? {
        let under = open_signing_key(master, &row).map(|(_, under)| under);
        census
            .signing_keys
            .add(under, || format!("signing key {}", row.kid));
    }
    for row in totp_secrets(pool).await? {
        let under = TotpSecret::open_either(master, row.staff_id, &row.nonce, &row.sealed)
            .map(|(_, under)| under);
        census.totp.add(under, || {
            format!("the TOTP secret of staff {}", row.staff_id)
        });
    }
    if let Some(previous) = master.previous() {
        let counts = sqlx::query!(
            r#"SELECT count(DISTINCT staff_id) FILTER (WHERE key_fingerprint = $1) AS "previous!",
                      count(DISTINCT staff_id) FILTER (WHERE key_fingerprint IS NULL) AS "unknown!"
               FROM staff_recovery_codes WHERE used_at IS NULL"#,
            &previous.fingerprint()[..]
        )
        .fetch_one(pool)
        .await?;
        census.recovery_staff_previous = counts.previous.max(0) as u64;
        census.recovery_staff_unknown = counts.unknown.max(0) as u64;
    }
    Ok(census)
}

/// What one run of [`reseal`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Token peppers moved to the current key.
    pub peppers: u64,
    /// Signing keys moved.
    pub signing_keys: u64,
    /// TOTP secrets moved.
    pub totp: u64,
    /// Rows that changed while this ran (re-sealed or replaced by someone else): the next
    /// run looks at them again.
    pub skipped: u64,
}

/// Most secrets re-sealed per transaction.
pub const BATCH: usize = 100;

/// Re-seals everything still under the previous key under the current one: a batch of at
/// most [`BATCH`] per transaction, each with a `secrets.resealed` audit event naming what
/// it moved. Stopping half-way loses nothing (every row holds a whole secret under one key
/// or the other); running again continues. `progress` hears of each batch.
pub async fn reseal(
    actor: &Actor,
    pool: &PgPool,
    master: &MasterKey,
    mut progress: impl FnMut(&str, u64),
) -> Result<Resealed, AppError> {
    if master.previous().is_none() {
        return Err(AppError::validation(
            "ENCRYPTION_KEY_PREVIOUS",
            "Set ENCRYPTION_KEY_PREVIOUS to the key being replaced: without it nothing sealed under that key opens.",
        ));
    }
    // Moving secrets to a key the running servers do not hold would leave them unable to
    // open them: every live instance must already run with this ENCRYPTION_KEY.
    let others = sqlx::query!(
        r#"SELECT id::text AS "id!", host FROM instances
           WHERE last_seen > now() - interval '20 seconds' AND encryption_key_fingerprint <> $1
           ORDER BY started_at"#,
        &master.fingerprint()[..]
    )
    .fetch_all(pool)
    .await?;
    if let Some(other) = others.first() {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "{} running instance(s) use another ENCRYPTION_KEY (the first: {} on {}): start every instance with the new key as ENCRYPTION_KEY and the replaced one as ENCRYPTION_KEY_PREVIOUS, then re-seal with the same two.",
                others.len(),
                other.id,
                other.host
            ),
        });
    }
    let mut done = Resealed::default();
    let moved: Vec<Moved> = peppers(pool)
        .await?
        .into_iter()
        .filter_map(|row| {
            let (pepper, under) = master.open_either(|k| {
                pepper::open_under(k.expose(), row.version, &row.nonce, &row.sealed)
            })?;
            (under == SealedUnder::Previous).then(|| {
                let (nonce, sealed) = pepper::seal(master.expose(), row.version, pepper.key());
                Moved::new(Sealed::Pepper(row.version), nonce, sealed, row.nonce)
            })
        })
        .collect();
    (done.peppers, done.skipped) = write(actor, "token_peppers", moved, &mut progress).await?;
    let moved: Vec<Moved> = signing_keys(pool)
        .await?
        .into_iter()
        .filter_map(|row| {
            let (key, under) = open_signing_key(master, &row)?;
            (under == SealedUnder::Previous).then(|| {
                let (nonce, sealed) =
                    crate::domain::keys::seal(master.expose(), row.tenant_id, &row.kid, &key);
                Moved::new(Sealed::SigningKey(row.kid), nonce, sealed, row.nonce)
            })
        })
        .collect();
    let (moved_keys, skipped) = write(actor, "signing_keys", moved, &mut progress).await?;
    done.signing_keys = moved_keys;
    done.skipped += skipped;
    let moved: Vec<Moved> = totp_secrets(pool)
        .await?
        .into_iter()
        .filter_map(|row| {
            let (secret, under) =
                TotpSecret::open_either(master, row.staff_id, &row.nonce, &row.sealed)?;
            (under == SealedUnder::Previous).then(|| {
                let (nonce, sealed) = secret.seal(master, row.staff_id);
                Moved::new(Sealed::Totp(row.staff_id), nonce, sealed, row.nonce)
            })
        })
        .collect();
    let (moved_totp, skipped) = write(actor, "staff_totp", moved, &mut progress).await?;
    done.totp = moved_totp;
    done.skipped += skipped;
    Ok(done)
}

/// Which stored secret.
enum Sealed {
    Pepper(i32),
    SigningKey(String),
    Totp(Uuid),
}

impl Sealed {
    /// As the audit event names it (never its contents).
    fn name(&self) -> String {
        match self {
            Self::Pepper(version) => format!("pepper:v{version}"),
            Self::SigningKey(kid) => format!("signing_key:{kid}"),
            Self::Totp(staff) => format!("staff_totp:{staff}"),
        }
    }
}

/// A secret re-sealed under the current key, to replace the row still holding `old_nonce`.
struct Moved {
    what: Sealed,
    nonce: [u8; 12],
    sealed: Vec<u8>,
    old_nonce: Vec<u8>,
}

impl Moved {
    fn new(what: Sealed, nonce: [u8; 12], sealed: Vec<u8>, old_nonce: Vec<u8>) -> Self {
        Self {
            what,
            nonce,
            sealed,
            old_nonce,
        }
    }

    /// Replaces the row, unless it changed since it was read (its nonce differs: re-sealed
    /// or replaced meanwhile). Whether it did.
    async fn write(&self, change: &mut crate::auth::Change) -> sqlx::Result<bool> {
        let (nonce, sealed, old) = (&self.nonce[..], &self.sealed, &self.old_nonce);
        let updated = match &self.what {
            Sealed::Pepper(version) => sqlx::query!(
                "UPDATE token_peppers SET nonce = $2, sealed = $3 WHERE version = $1 AND nonce = $4",
                version,
                nonce,
                sealed,
                old
            )
            .execute(change.db())
            .await?
            .rows_affected(),
            Sealed::SigningKey(kid) => sqlx::query!(
                "UPDATE signing_keys SET nonce = $2, sealed = $3 WHERE kid = $1 AND nonce = $4",
                kid,
                nonce,
                sealed,
                old
            )
            .execute(change.db())
            .await?
            .rows_affected(),
            Sealed::Totp(staff) => sqlx::query!(
                "UPDATE staff_totp SET nonce = $2, secret_sealed = $3
                 WHERE staff_id = $1 AND nonce = $4",
                staff,
                nonce,
                sealed,
                old
            )
            .execute(change.db())
            .await?
            .rows_affected(),
        };
        Ok(updated == 1)
    }
}

/// Writes `moved` a batch per transaction: (written, skipped).
async fn write(
    actor: &Actor,
    kind: &str,
    moved: Vec<Moved>,
    progress: &mut impl FnMut(&str, u64),
) -> Result<(u64, u64), AppError> {
    let (mut written, mut skipped) = (0, 0);
    for batch in moved.chunks(BATCH) {
        let mut change = actor.change().await?;
        let mut names = Vec::new();
        for one in batch {
            if one.write(&mut change).await? {
                names.push(one.what.name());
            } else {
                skipped += 1;
            }
        }
        written += names.len() as u64;
        commit_batch(actor, change, kind, names, progress).await?;
    }
    Ok((written, skipped))
}

async fn commit_batch(
    actor: &Actor,
    change: crate::auth::Change,
    kind: &str,
    names: Vec<String>,
    progress: &mut impl FnMut(&str, u64),
) -> Result<(), AppError> {
    if names.is_empty() {
        // Nothing written: dropping the change ends its transaction.
        return Ok(());
    }
    let count = names.len() as u64;
    let event = actor
        .event("secrets.resealed")
        .target(format!("secrets:{kind}"))
        .details(serde_json::json!({ "kind": kind, "count": count, "secrets": names }));
    change.commit(event).await?;
    progress(kind, count);
    Ok(())
}

struct SealedPepper {
    version: i32,
    nonce: Vec<u8>,
    sealed: Vec<u8>,
}

async fn peppers(pool: &PgPool) -> sqlx::Result<Vec<SealedPepper>> {
    sqlx::query_as!(
        SealedPepper,
        "SELECT version, nonce, sealed FROM token_peppers
         WHERE state IN ('current', 'previous') ORDER BY version"
    )
    .fetch_all(pool)
    .await
}

struct SealedSigningKey {
    kid: String,
    tenant_id: Uuid,
    algorithm: SigningAlgorithm,
    nonce: Vec<u8>,
    sealed: Vec<u8>,
}

async fn signing_keys(pool: &PgPool) -> sqlx::Result<Vec<SealedSigningKey>> {
    sqlx::query_as!(
        SealedSigningKey,
        r#"SELECT kid, tenant_id, algorithm AS "algorithm: SigningAlgorithm",
                  nonce AS "nonce!", sealed AS "sealed!"
           FROM signing_keys WHERE sealed IS NOT NULL ORDER BY kid"#
    )
    .fetch_all(pool)
    .await
}

fn open_signing_key(
    master: &MasterKey,
    row: &SealedSigningKey,
) -> Option<(crate::domain::keys::PrivateKey, SealedUnder)> {
    master.open_either(|k| {
        crate::domain::keys::open_under(
            k.expose(),
            row.tenant_id,
            &row.kid,
            row.algorithm,
            &row.nonce,
            &row.sealed,
        )
    })
}

struct SealedTotp {
    staff_id: Uuid,
    nonce: Vec<u8>,
    sealed: Vec<u8>,
}

async fn totp_secrets(pool: &PgPool) -> sqlx::Result<Vec<SealedTotp>> {
    sqlx::query_as!(
        SealedTotp,
        r#"SELECT staff_id, nonce, secret_sealed AS sealed FROM staff_totp ORDER BY staff_id"#
    )
    .fetch_all(pool)
    .await
}
