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

use crate::secret::SecretString;

/// What the change form sends. Holds passwords: `Debug` prints none of them.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// The password in use now: a stolen session alone cannot change it.
    pub current: SecretString,
    /// The new password.
    pub new: SecretString,
    /// The new password again, so a typo does not lock its owner out.
    pub confirm: SecretString,
}

#[cfg(test)]
mod tests {
    use super::{PasswordChange, SecretString};

    #[test]
    fn the_change_never_prints_a_password() {
        let change = PasswordChange {
            current: SecretString::new("old secret value"),
            new: SecretString::new("new secret value"),
            confirm: SecretString::new("new secret value"),
        };
        let printed = format!("{change:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
