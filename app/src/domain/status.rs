//! The states things are in, as types: a client's status, a token's, a key's, a pepper
//! version's, a staff member's, and what a rate limit is for. Each has one spelling, shared
//! by the database, the wire (JSON) and the pages, so a comparison with a misspelled
//! string cannot compile.
//!
//! They read from a text column or a PostgreSQL enum cast to text (`status::text AS
//! "status!: ClientStatus"`); a value the type does not know is a decoding error, never a
//! silent default.

/// Decoding from text for a type with `parse`, for the server build.
macro_rules! from_text {
    ($name:ident) => {
        #[cfg(feature = "ssr")]
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <String as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        #[cfg(feature = "ssr")]
        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                Self::parse(text)
                    .ok_or_else(|| format!("not a {}: {text:?}", stringify!($name)).into())
            }
        }
    };
}
pub(crate) use from_text;

/// A status enum: its variants with their one spelling, `as_str`, `parse`, `Display`, and
/// decoding from text.
macro_rules! status {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The one spelling (database, wire, page).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The value spelled `text`, if there is one.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $crate::domain::status::from_text!($name);
    };
}
pub(crate) use status;

status! {
    /// An API client's status (`client_status`).
    ClientStatus {
        /// Its tokens work.
        Active = "active",
        /// Its tokens are refused (403 `CLIENT_SUSPENDED`) until it is reactivated.
        Suspended = "suspended",
        /// Final: its tokens and keys are revoked.
        Revoked = "revoked",
    }
}

status! {
    /// A token's status as the console shows it: `pat_status`, with an active token past
    /// its expiry shown as expired.
    TokenStatus {
        /// It works.
        Active = "active",
        /// Past its expiry.
        Expired = "expired",
        /// Revoked, for good.
        Revoked = "revoked",
    }
}

status! {
    /// A client key version's state.
    KeyState {
        /// The key in use.
        Active = "active",
        /// An old key still working during its grace period after a rotation.
        Retiring = "retiring",
        /// An old key past its grace period.
        Retired = "retired",
        /// Revoked with its client.
        Revoked = "revoked",
    }
}

status! {
    /// A token pepper version's state.
    PepperState {
        /// New tokens are hashed under it.
        Current = "current",
        /// The version before: tokens on it still verify during the grace period.
        Previous = "previous",
        /// No longer verifies anything.
        Retired = "retired",
    }
}

status! {
    /// A staff account's status (`staff_status`).
    StaffStatus {
        /// Can sign in.
        Active = "active",
        /// Cannot sign in; their sessions ended when they were disabled.
        Disabled = "disabled",
    }
}

status! {
    /// What a rate-limit override is for.
    LimitScope {
        /// A tenant: all its callers together.
        Tenant = "tenant",
        /// One API client.
        Client = "client",
        /// An address or network: each address in it.
        Ip = "ip",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_spelling_reads_back_and_matches_the_wire() {
        for status in ClientStatus::ALL {
            assert_eq!(ClientStatus::parse(status.as_str()), Some(*status));
            assert_eq!(
                serde_json::to_string(status).unwrap_or_default(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(KeyState::parse("Retiring"), None);
        assert_eq!(PepperState::parse(""), None);
    }
}

status! {
    /// A signing key's state (`signing_key_state`): `staged` (published, not signing) →
    /// `active` (signs; one per tenant) → `retired` (published, verifies until its
    /// `verify_until`) → `removed`; `revoked` from any of the first three.
    SigningKeyState {
        /// Published in the JWKS, not signing yet.
        Staged = "staged",
        /// The tenant's one signing key.
        Active = "active",
        /// Published and verifying until its `verify_until`; signs nothing.
        Retired = "retired",
        /// Past its `verify_until`: unpublished, its private part erased.
        Removed = "removed",
        /// Unpublished at once, its tokens refused at once, its private part erased.
        Revoked = "revoked",
    }
}

impl SigningKeyState {
    /// Whether the key is in the published JWKS.
    pub fn published(self) -> bool {
        matches!(self, Self::Staged | Self::Active | Self::Retired)
    }

    /// Whether `self → to` is a transition a person may ask for (removal is the server's,
    /// at `verify_until`; revocation is open to every published key).
    pub fn may_become(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Staged, Self::Active)
                | (Self::Active, Self::Retired)
                | (Self::Staged | Self::Active | Self::Retired, Self::Revoked)
        )
    }
}

status! {
    /// The algorithm of a tenant's signing keys (JOSE `alg`): ES256 (ECDSA P-256 with
    /// SHA-256) by default, EdDSA (Ed25519) as an option.
    SigningAlgorithm {
        /// ECDSA on P-256 with SHA-256.
        Es256 = "ES256",
        /// Ed25519.
        EdDsa = "EdDSA",
    }
}
