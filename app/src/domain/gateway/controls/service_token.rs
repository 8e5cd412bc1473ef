//! Service tokens: how other services authenticate to `GET /api/v1/switches` and its push
//! stream. `sc_svc_<id>_<secret>`: the id (16 hex characters) finds the row, and the
//! SHA-256 of the secret (32 random bytes, Base58) must match in constant time. Minted and
//! revoked on the command line, each an audited change.

use crate::auth::Actor;
use crate::error::AppError;
use crate::secret::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const PREFIX: &str = "sc_svc_";

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a presented token into id and secret, or `None` when it is not one.
fn parse(raw: &str) -> Option<(&str, &str)> {
    let rest = raw.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let valid_id = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (valid_id && !secret.is_empty() && secret.len() <= 64).then_some((id, secret))
}

/// Mints a service token named `name`; returns its text, shown once.
pub async fn mint(actor: &Actor, name: &str) -> Result<SecretString, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::validation(
            "name",
            "Give the token a name of 1 to 100 characters.",
        ));
    }
    let mut id = [0u8; 8];
    rand::fill(&mut id[..]);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::fill(&mut secret[..]);
    let secret = Zeroizing::new(bs58::encode(&secret[..]).into_string());
    let mut change = crate::domain::freeze::guard(
        actor,
        actor.change().await?,
        crate::domain::freeze::FrozenOp::CreateServiceToken,
    )
    .await?;
    let inserted = sqlx::query!(
        "INSERT INTO service_tokens (id, name, secret_hash, created_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
        id,
        name,
        &hash(&secret)[..],
        actor.label()
    )
    .execute(change.db())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::validation(
            "name",
            format!("A service token named “{name}” exists."),
        ));
    }
    let event = actor
        .event("service_token.created")
        .target(format!("service_token:{id}"))
        .details(serde_json::json!({ "name": name }));
    change.commit(event).await?;
    Ok(SecretString::new(format!(
        "{PREFIX}{id}_{}",
        secret.as_str()
    )))
}

/// Revokes the service token named `name`.
pub async fn revoke(actor: &Actor, name: &str) -> Result<(), AppError> {
    let mut change = actor.change().await?;
    let id = sqlx::query_scalar!(
        "UPDATE service_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL
         RETURNING id",
        name.trim()
    )
    .fetch_optional(change.db())
    .await?
    .ok_or_else(|| {
        AppError::not_found(format!("An active service token named “{}”", name.trim()))
    })?;
    let event = actor
        .event("service_token.revoked")
        .target(format!("service_token:{id}"))
        .details(serde_json::json!({ "name": name.trim() }));
    change.commit(event).await?;
    Ok(())
}

/// Whether `raw` is shaped like a service token, so that [`verify`] would look it up in the
/// database (anything else is refused without a query).
pub fn needs_lookup(raw: &str) -> bool {
    parse(raw).is_some()
}

/// The name of the active service token `raw`, or `None`.
pub async fn verify(db: impl sqlx::PgExecutor<'_>, raw: &str) -> sqlx::Result<Option<String>> {
    let Some((id, secret)) = parse(raw) else {
        return Ok(None);
    };
    let row = sqlx::query!(
        "SELECT name, secret_hash FROM service_tokens WHERE id = $1 AND revoked_at IS NULL",
        id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.and_then(|r| {
        bool::from(r.secret_hash.as_slice().ct_eq(&hash(secret)[..])).then_some(r.name)
    }))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn only_well_formed_tokens_parse() {
        assert_eq!(
            parse("sc_svc_0123456789abcdef_secret"),
            Some(("0123456789abcdef", "secret"))
        );
        for bad in [
            "",
            "sc_svc_",
            "sc_svc_0123_secret",
            "sc_svc_0123456789abcdef_",
            "mf_pat_v1.a.b",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
