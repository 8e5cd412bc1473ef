//! The signed-in person's own account: `/account/password`.
//!
//! A password someone else chose or saw — the first admin's, a new account's, a reset's —
//! must be replaced by its owner at their first sign-in: until then `require` refuses every
//! permission but [`Permission::OwnAccount`](crate::auth::Permission::OwnAccount) and the
//! layout sends every page here. The same page is the self-service change afterwards.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

/// What the change form sends. Holds passwords: never logged (`Debug` is redacted).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct PasswordChange {
    /// The password in use now: a stolen session alone cannot change it.
    pub current: String,
    /// The new password.
    pub new: String,
    /// The new password again, so a typo does not lock its owner out.
    pub confirm: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::PasswordChange;

    #[test]
    fn the_change_never_prints_a_password() {
        let change = PasswordChange {
            current: "old secret value".into(),
            new: "new secret value".into(),
            confirm: "new secret value".into(),
        };
        let printed = format!("{change:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
