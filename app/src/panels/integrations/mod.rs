//! The Integrations panel: a tenant's personal access tokens. List with filters, a token's
//! own event history, mint (the plaintext shown once), revoke one, revoke all of a tenant,
//! a client or an owner.

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

use crate::domain::audit::Outcome;
pub use crate::domain::input::{normalize_reason, REASON_MAX};
use crate::domain::status::TokenStatus;
use crate::domain::tokens::SCOPES;
pub use crate::domain::tokens::{Owner, STAFF_TOKEN_MIN_ROLE};
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Rows per page of the token list.
pub const PAGE_SIZE: i64 = 50;
/// Longest token name.
pub const NAME_MAX: usize = 100;

/// A token as the panel lists it. Never holds the secret or its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRow {
    /// The id inside the token (`mf_pat_v1.<id>.…`).
    pub id: String,
    /// What the token is for, in its minter's words.
    pub name: String,
    /// Who owns it.
    pub owner: Owner,
    /// The owner as people read it: an email or a client name.
    pub owner_label: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Its status, expiry applied.
    pub status: TokenStatus,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was minted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who minted it (an email), when known.
    pub created_by: Option<String>,
    /// Last successful use (updated at most about once a minute).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The address of that use.
    pub last_used_ip: Option<String>,
    /// The pepper version its hash is keyed with.
    pub pepper_version: i32,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Who revoked it (`staff:<uuid>`, an email, or `system`).
    pub revoked_by: Option<String>,
    /// Why.
    pub revoke_reason: Option<String>,
}

/// One event of a token's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEvent {
    /// Position in the audit chain.
    pub seq: i64,
    /// When (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The event kind: `created`, `used`, `revoked`, `failed_auth`, `rehashed`.
    pub kind: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The refusal code, for `failed_auth`.
    pub code: Option<String>,
    /// Who (an email, `pat:<id>`, `system`).
    pub actor: String,
    /// The caller's address.
    pub ip: Option<String>,
    /// How many calls the event stands for (gateway events are coalesced per second).
    pub count: i64,
    /// The reason given, for revocations.
    pub reason: Option<String>,
}

/// A token and its history, for the detail view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenDetail {
    /// The token.
    pub token: TokenRow,
    /// Its audit events, newest first (at most [`HISTORY_LIMIT`]).
    pub events: Vec<TokenEvent>,
}

/// Most history events the detail view shows.
pub const HISTORY_LIMIT: i64 = 200;

/// One page of the token list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenPage {
    /// The rows, newest first.
    pub rows: Vec<TokenRow>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// A possible owner, for the mint form and the filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerChoice {
    /// The owner.
    pub owner: Owner,
    /// An email or a client name.
    pub label: String,
    /// Whether the owner can hold a new token (active staff, active client).
    pub active: bool,
}

/// What the panel needs besides the list: owners to choose from and the lifetime policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelContext {
    /// The tenant's name.
    pub tenant_name: String,
    /// Staff members and the tenant's API clients.
    pub owners: Vec<OwnerChoice>,
    /// The tenant's longest token lifetime, in days.
    pub max_lifetime_days: i32,
    /// The signed-in person, as the default owner.
    pub me: Uuid,
}

/// A freshly minted token. The plaintext is returned by the mint call only, never again;
/// `Debug` leaves it out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct MintedToken {
    /// The token id.
    pub id: String,
    /// The whole token. Shown once.
    pub plaintext: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("id", &self.id)
            .field("plaintext", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The mint form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MintForm {
    /// A name saying what the token is for.
    #[serde(default)]
    pub name: String,
    /// `staff:<uuid>` or `client:<uuid>`.
    #[serde(default)]
    pub owner: String,
    /// Scopes from [`SCOPES`].
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Lifetime in days, as typed.
    #[serde(default)]
    pub lifetime_days: String,
}

/// What a mass revoke covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RevokeScope {
    /// Every active token of the tenant.
    Tenant,
    /// Every active token of one API client.
    Client(Uuid),
    /// Every active token of one staff owner.
    Owner(Uuid),
}

impl RevokeScope {
    /// `tenant`, `client:<uuid>` or `owner:<uuid>`.
    pub fn encode(self) -> String {
        match self {
            Self::Tenant => "tenant".into(),
            Self::Client(id) => format!("client:{id}"),
            Self::Owner(id) => format!("owner:{id}"),
        }
    }

    /// Parses [`RevokeScope::encode`]'s form.
    pub fn decode(raw: &str) -> Result<Self, AppError> {
        let raw = raw.trim();
        let bad = || {
            AppError::validation(
                "scope",
                "Choose what to revoke: the tenant, a client or an owner.",
            )
        };
        if raw == "tenant" {
            return Ok(Self::Tenant);
        }
        let (kind, id) = raw.split_once(':').ok_or_else(bad)?;
        let id = Uuid::parse_str(id).map_err(|_| bad())?;
        match kind {
            "client" => Ok(Self::Client(id)),
            "owner" => Ok(Self::Owner(id)),
            _ => Err(bad()),
        }
    }
}

/// What a mass revoke would touch, shown before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokePreview {
    /// The scope previewed.
    pub scope: RevokeScope,
    /// "every token of Demo Tenant", "every token of client ci-bot".
    pub description: String,
    /// Active tokens it would revoke now.
    pub active_tokens: i64,
    /// What the person must type to confirm.
    pub confirm_with: String,
}

/// What a mass revoke did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeOutcome {
    /// Tokens this call revoked (others may have been revoked meanwhile by someone else).
    pub revoked: i64,
}

/// Checks a token name: 1 to [`NAME_MAX`] characters after trimming, no control characters.
pub fn normalize_token_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::validation(
            "name",
            "Give the token a name that says what it is for.",
        ));
    }
    if name.chars().count() > NAME_MAX {
        return Err(AppError::validation(
            "name",
            format!("A token name has at most {NAME_MAX} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "name",
            "A token name cannot contain line breaks or control characters.",
        ));
    }
    Ok(name.to_owned())
}

/// Checks the scopes: at least one, each from the fixed list; returns them sorted, unique.
pub fn normalize_scopes(raw: &[String]) -> Result<Vec<String>, AppError> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in raw {
        let scope = scope.trim();
        if !SCOPES.contains(&scope) {
            return Err(AppError::validation(
                "scopes",
                format!(
                    "Unknown scope “{}”. Choose from {}.",
                    scope.chars().take(40).collect::<String>(),
                    SCOPES.join(", ")
                ),
            ));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    if scopes.is_empty() {
        return Err(AppError::validation("scopes", "Choose at least one scope."));
    }
    scopes.sort();
    Ok(scopes)
}

/// Checks a lifetime in days against the tenant's maximum.
pub fn parse_lifetime(raw: &str, max_days: i32) -> Result<i32, AppError> {
    let field = "lifetime_days";
    let days: i64 = raw.trim().parse().map_err(|_| {
        AppError::validation(field, "Enter the lifetime as a whole number of days.")
    })?;
    if days < 1 {
        return Err(AppError::validation(
            field,
            "The expiry must be in the future: at least 1 day.",
        ));
    }
    if days > i64::from(max_days) {
        return Err(AppError::validation(
            field,
            format!("This tenant allows tokens of at most {max_days} days."),
        ));
    }
    Ok(days as i32)
}

/// Whether `text` can be (a prefix of) a token id: 1 to 32 ASCII letters and digits.
pub fn is_token_id_text(text: &str) -> bool {
    !text.is_empty() && text.len() <= 32 && text.chars().all(|c| c.is_ascii_alphanumeric())
}

/// What the id filter box holds: a token id or prefix, or a whole pasted token (whose id is
/// taken, once its checksum is right).
pub fn id_filter(raw: &str) -> Result<Option<String>, AppError> {
    let field = "id";
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(AppError::validation(
            field,
            "The token or id contains spaces or line breaks: paste it again without them.",
        ));
    }
    if trimmed.starts_with("mf_pat_") {
        #[cfg(feature = "ssr")]
        {
            return match crate::domain::tokens::token::parse(trimmed) {
                Ok(presented) => Ok(Some(presented.id.clone())),
                Err(_) => Err(AppError::validation(
                    field,
                    "That is not a whole, valid token: its format or checksum is wrong. Paste the id alone instead.",
                )),
            };
        }
        #[cfg(not(feature = "ssr"))]
        {
            return Ok(Some(trimmed.to_owned()));
        }
    }
    if !is_token_id_text(trimmed) {
        return Err(AppError::validation(
            field,
            "A token id has at most 32 letters and digits.",
        ));
    }
    Ok(Some(trimmed.to_owned()))
}

/// The id part of a pasted whole token (`mf_pat_…`), so the secret never lands in a URL,
/// browser history or a proxy log; anything else is returned unchanged.
pub fn strip_pasted_token(raw: &str) -> String {
    let trimmed = raw.trim();
    if trimmed.starts_with("mf_pat_") {
        trimmed.split('.').nth(1).unwrap_or_default().to_owned()
    } else {
        raw.to_owned()
    }
}

/// The list's filters, as carried in the page's URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFilter {
    /// `active`, `expired`, `revoked`, or empty for all.
    #[serde(default)]
    pub status: String,
    /// A staff owner's id.
    #[serde(default)]
    pub owner: String,
    /// An API client's id.
    #[serde(default)]
    pub client: String,
    /// One scope.
    #[serde(default)]
    pub scope: String,
    /// Created within: `24h`, `7d`, `30d`, `90d`.
    #[serde(default)]
    pub created: String,
    /// Last used: `24h`, `7d`, `30d` (within), `never`, `stale30` (not within 30 days).
    #[serde(default)]
    pub used: String,
    /// An id prefix or a pasted token.
    #[serde(default)]
    pub id: String,
}

/// Windows the created and last-used filters offer, with their length in hours.
pub const WINDOWS: [(&str, &str, i64); 4] = [
    ("24h", "Last 24 hours", 24),
    ("7d", "Last 7 days", 24 * 7),
    ("30d", "Last 30 days", 24 * 30),
    ("90d", "Last 90 days", 24 * 90),
];

/// The filters, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckedFilter {
    /// Status wanted.
    pub status: Option<String>,
    /// Staff owner.
    pub owner: Option<Uuid>,
    /// Client owner.
    pub client: Option<Uuid>,
    /// Scope held.
    pub scope: Option<String>,
    /// Created within this many hours.
    pub created_hours: Option<i64>,
    /// Used within this many hours.
    pub used_hours: Option<i64>,
    /// Never used.
    pub never_used: bool,
    /// Not used within this many hours (or never).
    pub stale_hours: Option<i64>,
    /// Id prefix.
    pub id_prefix: Option<String>,
}

impl TokenFilter {
    /// Checks every filter; a bad one is named.
    pub fn check(&self) -> Result<CheckedFilter, AppError> {
        let status = match self.status.trim() {
            "" => None,
            s @ ("active" | "expired" | "revoked") => Some(s.to_owned()),
            _ => {
                return Err(AppError::validation(
                    "status",
                    "Status is active, expired or revoked.",
                ))
            }
        };
        let uuid = |raw: &str, field: &str, what: &str| -> Result<Option<Uuid>, AppError> {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(None);
            }
            Uuid::parse_str(raw)
                .map(Some)
                .map_err(|_| AppError::validation(field, format!("That is not a {what} id.")))
        };
        let scope = match self.scope.trim() {
            "" => None,
            s if SCOPES.contains(&s) => Some(s.to_owned()),
            _ => {
                return Err(AppError::validation(
                    "scope",
                    format!("Scope is one of {}.", SCOPES.join(", ")),
                ))
            }
        };
        let window = |raw: &str, field: &str| -> Result<Option<i64>, AppError> {
            let raw = raw.trim();
            if raw.is_empty() {
                return Ok(None);
            }
            WINDOWS
                .iter()
                .find(|(key, _, _)| *key == raw)
                .map(|(_, _, hours)| Some(*hours))
                .ok_or_else(|| AppError::validation(field, "Choose one of the listed windows."))
        };
        let (used_hours, never_used, stale_hours) = match self.used.trim() {
            "never" => (None, true, None),
            "stale30" => (None, false, Some(24 * 30)),
            other => (window(other, "used")?, false, None),
        };
        Ok(CheckedFilter {
            status,
            owner: uuid(&self.owner, "owner", "staff")?,
            client: uuid(&self.client, "client", "client")?,
            scope,
            created_hours: window(&self.created, "created")?,
            used_hours,
            never_used,
            stale_hours,
            id_prefix: id_filter(&self.id)?,
        })
    }
}

/// A keyset cursor: the last row's creation time and id ([`crate::cursor`]'s format).
pub fn encode_cursor(created_at: OffsetDateTime, id: &str) -> String {
    crate::cursor::encode(created_at, id)
}

/// Parses [`encode_cursor`]'s form; a bad cursor is a validation error on `after`.
pub fn decode_cursor(raw: &str) -> Result<(OffsetDateTime, String), AppError> {
    Ok(crate::cursor::decode_with(raw, |id| {
        is_token_id_text(id).then(|| id.to_owned())
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_a_token_needs_what_minting_one_needs() {
        assert_eq!(
            STAFF_TOKEN_MIN_ROLE,
            crate::auth::Permission::Operate.minimum_role()
        );
    }

    #[test]
    fn names_are_required_bounded_and_single_line() {
        assert_eq!(
            normalize_token_name("  ci deploy  "),
            Ok("ci deploy".into())
        );
        for bad in ["", "   ", "a\nb", &"x".repeat(NAME_MAX + 1)] {
            let err = normalize_token_name(bad).expect_err(bad);
            assert!(err.field_message("name").is_some());
        }
    }

    #[test]
    fn scopes_come_from_the_fixed_list() {
        assert_eq!(
            normalize_scopes(&[
                "payments:write".into(),
                "agent:read".into(),
                "agent:read".into()
            ]),
            Ok(vec!["agent:read".into(), "payments:write".into()])
        );
        assert!(normalize_scopes(&[]).is_err());
        let err = normalize_scopes(&["admin:all".into()]).expect_err("unknown");
        assert!(err.to_string().contains("admin:all"), "{err}");
    }

    #[test]
    fn lifetimes_respect_the_policy() {
        assert_eq!(parse_lifetime("30", 90), Ok(30));
        assert!(parse_lifetime("0", 90)
            .expect_err("past")
            .to_string()
            .contains("future"));
        assert!(parse_lifetime("-3", 90).is_err());
        assert!(parse_lifetime("91", 90)
            .expect_err("long")
            .to_string()
            .contains("90"));
        assert!(parse_lifetime("soon", 90).is_err());
    }

    #[test]
    fn reasons_are_required() {
        assert!(normalize_reason("  ").is_err());
        assert!(normalize_reason(&"r".repeat(REASON_MAX + 1)).is_err());
        assert_eq!(
            normalize_reason(" leaked in CI log "),
            Ok("leaked in CI log".into())
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
            + time::Duration::microseconds(123);
        let cursor = encode_cursor(at, "AbC123");
        assert_eq!(decode_cursor(&cursor), Ok((at, "AbC123".into())));
        let huge = format!("{}.abc", i128::MAX);
        for junk in ["", "x.y", "12", "12.", "12.a-b", &huge] {
            assert!(decode_cursor(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn owners_and_scopes_round_trip() {
        let id = Uuid::new_v4();
        for owner in [Owner::Staff(id), Owner::Client(id)] {
            assert_eq!(Owner::decode(&owner.encode()), Some(owner));
        }
        for scope in [
            RevokeScope::Tenant,
            RevokeScope::Client(id),
            RevokeScope::Owner(id),
        ] {
            assert_eq!(RevokeScope::decode(&scope.encode()), Ok(scope));
        }
        assert!(RevokeScope::decode("everything").is_err());
    }

    #[test]
    fn a_pasted_token_is_cut_to_its_id() {
        assert_eq!(
            strip_pasted_token(" mf_pat_v1.AbC123.secretpart "),
            "AbC123"
        );
        assert_eq!(strip_pasted_token("AbC"), "AbC");
        assert_eq!(strip_pasted_token("mf_pat_v1"), "");
    }

    #[test]
    fn the_id_filter_explains_pasted_spaces() {
        let err = id_filter("mf_pat_v1.abc def").expect_err("spaces");
        assert!(err.to_string().contains("spaces"));
        assert_eq!(id_filter("  AbC  "), Ok(Some("AbC".into())));
        assert_eq!(id_filter(""), Ok(None));
        assert!(id_filter("a;drop").is_err());
    }

    #[test]
    fn filters_name_the_bad_one() {
        let filter = TokenFilter {
            status: "gone".into(),
            ..Default::default()
        };
        assert!(filter
            .check()
            .expect_err("status")
            .field_message("status")
            .is_some());
        let filter = TokenFilter {
            used: "stale30".into(),
            created: "7d".into(),
            ..Default::default()
        };
        let checked = filter.check().expect("valid");
        assert_eq!(checked.stale_hours, Some(720));
        assert_eq!(checked.created_hours, Some(168));
    }
}
