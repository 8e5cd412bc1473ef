//! The Staff panel (admins): who can use the console, with which role; create, change
//! role, disable and re-enable, reset password. Nobody can remove the last active admin.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::auth::Role;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A staff member as the panel lists them. Holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StaffRow {
    /// Staff id.
    pub id: Uuid,
    /// Sign-in email.
    pub email: String,
    /// Shown name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Whether they can sign in.
    pub active: bool,
    /// Locked after failed sign-ins, until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub locked_until: Option<OffsetDateTime>,
    /// Last successful sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_sign_in_at: Option<OffsetDateTime>,
}

/// A password shown exactly once: to the admin who created or reset the account.
/// `Debug` leaves the password out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct OneTimePassword {
    /// Whose password.
    pub email: String,
    /// The password. Never stored, logged or returned again.
    pub password: String,
}

impl std::fmt::Debug for OneTimePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimePassword")
            .field("email", &self.email)
            .field("password", &format_args!("[redacted]"))
            .finish()
    }
}

/// Checks an email address for a staff account; returns it trimmed and lowercased.
pub fn normalize_email(raw: &str) -> Result<String, crate::error::AppError> {
    let email = raw.trim().to_lowercase();
    let field = "email";
    if email.is_empty() {
        return Err(crate::error::AppError::validation(
            field,
            "Enter an email address.",
        ));
    }
    if email.len() > 254 {
        return Err(crate::error::AppError::validation(
            field,
            "An email address has at most 254 characters.",
        ));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if !valid {
        return Err(crate::error::AppError::validation(
            field,
            "Enter an email address such as name@example.com.",
        ));
    }
    Ok(email)
}

/// Checks a display name: 1 to 100 characters after trimming.
pub fn normalize_name(raw: &str) -> Result<String, crate::error::AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(crate::error::AppError::validation(
            "display_name",
            "Enter a name.",
        ));
    }
    if name.chars().count() > 100 {
        return Err(crate::error::AppError::validation(
            "display_name",
            "A name has at most 100 characters.",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_explained() {
        assert_eq!(
            normalize_email("  Alice@Example.COM "),
            Ok("alice@example.com".into())
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a b@example.com",
            "a@example",
            "a@b@c.com",
        ] {
            let err = normalize_email(bad).expect_err(bad);
            assert!(err.field_message("email").is_some(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name("  Ada  "), Ok("Ada".into()));
        assert!(normalize_name("   ").is_err());
        assert!(normalize_name(&"x".repeat(101)).is_err());
    }
}
