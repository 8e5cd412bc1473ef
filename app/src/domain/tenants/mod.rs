//! Tenants: every object in the console belongs to one. The shell's tenant switcher and
//! the tenant overview read them from here.

#[cfg(feature = "ssr")]
pub mod queries;

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A tenant as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Stable identifier.
    pub id: Uuid,
    /// URL-safe short name, used in console and API paths (`/t/{slug}`, `/a/{slug}/...`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// When the tenant was created (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Longest slug accepted; matches the database check constraint.
pub const SLUG_MAX_LEN: usize = 63;

/// Checks a tenant slug before it reaches the database: lowercase letters, digits and
/// hyphens, starting with a letter or digit, at most [`SLUG_MAX_LEN`] characters.
pub fn validate_slug(slug: &str) -> Result<(), AppError> {
    let field = "tenant";
    if slug.is_empty() {
        return Err(AppError::validation(field, "Enter a tenant slug."));
    }
    if slug.len() > SLUG_MAX_LEN {
        return Err(AppError::validation(
            field,
            format!("A tenant slug has at most {SLUG_MAX_LEN} characters."),
        ));
    }
    let mut chars = slug.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(first_ok && rest_ok) {
        return Err(AppError::validation(
            field,
            "A tenant slug uses lowercase letters, digits and hyphens, and starts with a letter or digit.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_slugs() {
        for slug in ["demo", "acme-prod", "t1", "0day"] {
            assert_eq!(validate_slug(slug), Ok(()), "{slug}");
        }
    }

    #[test]
    fn refuses_bad_slugs_with_a_message_for_the_field() {
        for slug in [
            "",
            "-lead",
            "Upper",
            "sp ace",
            "semi;colon",
            &"a".repeat(64),
        ] {
            let err = validate_slug(slug).expect_err(slug);
            assert!(err.field_message("tenant").is_some(), "{slug}: {err:?}");
        }
    }
}
