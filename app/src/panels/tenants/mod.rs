//! Tenant management (admin): creating a tenant (with its first active signing key, in the
//! same change), renaming it, and its settings: the longest token lifetime, the audiences
//! delegated tokens may be issued for, and the algorithm of its new signing keys. The same
//! `ops` serve the console and `staff-console tenant create|list`.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::domain::status::SigningAlgorithm;
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Shortest slug of a new tenant.
pub const SLUG_MIN: usize = 2;
/// Longest slug of a new tenant.
pub const SLUG_MAX: usize = 40;
/// Longest tenant name.
pub const NAME_MAX: usize = 200;
/// Most audiences a tenant allows.
pub const AUDIENCES_MAX: usize = 20;
/// Longest audience.
pub const AUDIENCE_MAX_LEN: usize = 100;
/// The audience of the agent API, which every new tenant allows unless told otherwise.
pub const AGENT_API_AUDIENCE: &str = "agent-api";
/// Longest token lifetime a tenant may set, in days (ten years, as the schema allows).
pub const MAX_TOKEN_DAYS: i32 = 3650;

/// A tenant with its settings, for the settings page and the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Its slug.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// How long its audit events are kept, in months (changed in the audit panel).
    pub audit_retention_months: i16,
    /// The longest lifetime of its personal access tokens, in days.
    pub max_token_lifetime_days: i32,
    /// The audiences its delegated tokens may be issued for.
    pub allowed_audiences: Vec<String>,
    /// The algorithm its new signing keys use.
    pub signing_algorithm: SigningAlgorithm,
    /// The kid of its active signing key, if it has one.
    pub active_kid: Option<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A tenant to create, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTenantForm {
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Retention class in months.
    pub retention_months: String,
    /// Longest token lifetime in days.
    pub max_token_days: String,
    /// Allowed audiences, separated by commas, spaces or new lines.
    pub audiences: String,
    /// `ES256` or `EdDSA`.
    pub algorithm: String,
}

/// A checked new tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Retention class in months.
    pub retention_months: i16,
    /// Longest token lifetime in days.
    pub max_token_days: i32,
    /// Allowed audiences.
    pub audiences: Vec<String>,
    /// Its signing keys' algorithm.
    pub algorithm: SigningAlgorithm,
}

impl NewTenantForm {
    /// Checks every field; the first problem found, at its field.
    pub fn check(&self) -> Result<NewTenant, AppError> {
        Ok(NewTenant {
            slug: check_new_slug(&self.slug)?,
            name: check_name(&self.name)?,
            retention_months: check_retention(&self.retention_months)?,
            max_token_days: check_max_token_days(&self.max_token_days)?,
            audiences: check_audiences(&self.audiences)?,
            algorithm: check_algorithm(&self.algorithm)?,
        })
    }
}

/// A new tenant's slug: lowercase letters, digits and hyphens, 2 to 40 characters,
/// starting with a letter and ending with a letter or digit (it appears in paths and in
/// tokens' issuer).
pub fn check_new_slug(raw: &str) -> Result<String, AppError> {
    let field = "slug";
    let slug = raw.trim();
    if slug.is_empty() {
        return Err(AppError::validation(field, "Enter a slug."));
    }
    let len = slug.chars().count();
    if !(SLUG_MIN..=SLUG_MAX).contains(&len) {
        return Err(AppError::validation(
            field,
            format!("A slug has {SLUG_MIN} to {SLUG_MAX} characters; this one has {len}."),
        ));
    }
    if let Some(bad) = slug
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let hint = if bad.is_ascii_uppercase() {
            " (use lowercase)"
        } else {
            ""
        };
        return Err(AppError::validation(
            field,
            format!("A slug uses lowercase letters, digits and hyphens only: “{bad}” is not allowed{hint}."),
        ));
    }
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(AppError::validation(field, "A slug starts with a letter."));
    }
    if slug.ends_with('-') {
        return Err(AppError::validation(
            field,
            "A slug ends with a letter or digit.",
        ));
    }
    Ok(slug.to_owned())
}

/// A tenant's display name: 1 to 200 characters, trimmed.
pub fn check_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::validation("name", "Enter a name."));
    }
    if name.chars().count() > NAME_MAX {
        return Err(AppError::validation(
            "name",
            format!("A name has at most {NAME_MAX} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "name",
            "A name has no control characters (tabs, new lines).",
        ));
    }
    Ok(name.to_owned())
}

/// A retention class, in months.
pub fn check_retention(raw: &str) -> Result<i16, AppError> {
    let classes = crate::domain::audit::RETENTION_CLASSES;
    raw.trim()
        .parse::<i16>()
        .ok()
        .filter(|m| classes.contains(m))
        .ok_or_else(|| {
            let list: Vec<String> = classes.iter().map(i16::to_string).collect();
            AppError::validation(
                "retention_months",
                format!(
                    "Pick one of the retention classes: {} months.",
                    list.join(", ")
                ),
            )
        })
}

/// The longest token lifetime, in days.
pub fn check_max_token_days(raw: &str) -> Result<i32, AppError> {
    raw.trim()
        .parse::<i32>()
        .ok()
        .filter(|d| (1..=MAX_TOKEN_DAYS).contains(d))
        .ok_or_else(|| {
            AppError::validation(
                "max_token_days",
                format!("Enter a whole number of days from 1 to {MAX_TOKEN_DAYS}."),
            )
        })
}

/// The allowed audiences: separated by commas, spaces or new lines; each 1 to 100 of
/// lowercase letters, digits and `-._:/`; at least one, at most 20, duplicates dropped.
pub fn check_audiences(raw: &str) -> Result<Vec<String>, AppError> {
    let field = "audiences";
    let mut audiences: Vec<String> = Vec::new();
    for audience in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        if audience.is_empty() || audiences.iter().any(|a| a == audience) {
            continue;
        }
        if audience.len() > AUDIENCE_MAX_LEN {
            return Err(AppError::validation(
                field,
                format!("An audience has at most {AUDIENCE_MAX_LEN} characters."),
            ));
        }
        if let Some(bad) = audience.chars().find(|c| {
            !(c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '-' | '.' | '_' | ':' | '/'))
        }) {
            return Err(AppError::validation(
                field,
                format!("“{audience}”: an audience uses lowercase letters, digits and - . _ : / only, not “{bad}”."),
            ));
        }
        audiences.push(audience.to_owned());
    }
    if audiences.is_empty() {
        return Err(AppError::validation(
            field,
            format!(
                "Allow at least one audience (delegated agent tokens need “{AGENT_API_AUDIENCE}”)."
            ),
        ));
    }
    if audiences.len() > AUDIENCES_MAX {
        return Err(AppError::validation(
            field,
            format!("A tenant allows at most {AUDIENCES_MAX} audiences."),
        ));
    }
    Ok(audiences)
}

/// The signing algorithm (`ES256` when left empty).
pub fn check_algorithm(raw: &str) -> Result<SigningAlgorithm, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(SigningAlgorithm::Es256);
    }
    SigningAlgorithm::parse(raw)
        .ok_or_else(|| AppError::validation("algorithm", "Pick ES256 (P-256) or EdDSA (Ed25519)."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_slugs_follow_the_rules_with_a_message_saying_which() {
        for ok in ["ab", "acme-prod", "t1", &format!("a{}", "b".repeat(39))] {
            assert_eq!(check_new_slug(ok).as_deref(), Ok(ok), "{ok}");
        }
        for (bad, says) in [
            ("", "Enter"),
            ("a", "2 to 40"),
            (&"a".repeat(41), "2 to 40"),
            ("Acme", "use lowercase"),
            ("ac me", "“ ”"),
            ("1acme", "starts with a letter"),
            ("-acme", "starts with a letter"),
            ("acme-", "ends with"),
            ("acmé", "“é”"),
        ] {
            let err = check_new_slug(bad).expect_err(bad);
            let message = err.field_message("slug").unwrap_or_default();
            assert!(message.contains(says), "{bad:?}: {message}");
        }
    }

    #[test]
    fn audiences_are_split_deduplicated_and_checked() {
        assert_eq!(
            check_audiences("agent-api, billing\nagent-api").expect("ok"),
            vec!["agent-api", "billing"]
        );
        assert!(check_audiences(" , ").is_err());
        assert!(check_audiences("Agent").is_err());
        assert!(check_audiences(&"a".repeat(101)).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("a{i}")).collect();
        assert!(check_audiences(&many.join(",")).is_err());
    }

    #[test]
    fn a_form_is_checked_field_by_field() {
        let form = NewTenantForm {
            slug: "acme".into(),
            name: " Acme ".into(),
            retention_months: "12".into(),
            max_token_days: "90".into(),
            audiences: "agent-api".into(),
            algorithm: "".into(),
        };
        let checked = form.check().expect("valid");
        assert_eq!(checked.name, "Acme");
        assert_eq!(checked.algorithm, SigningAlgorithm::Es256);
        for (change, field) in [
            (
                NewTenantForm {
                    retention_months: "5".into(),
                    ..form.clone()
                },
                "retention_months",
            ),
            (
                NewTenantForm {
                    max_token_days: "0".into(),
                    ..form.clone()
                },
                "max_token_days",
            ),
            (
                NewTenantForm {
                    algorithm: "HS256".into(),
                    ..form.clone()
                },
                "algorithm",
            ),
            (
                NewTenantForm {
                    name: "".into(),
                    ..form.clone()
                },
                "name",
            ),
        ] {
            assert!(
                change
                    .check()
                    .expect_err(field)
                    .field_message(field)
                    .is_some(),
                "{field}"
            );
        }
    }
}
