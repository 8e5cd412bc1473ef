//! The gateway's controls: kill switches, rate limits and IP blocks.
//!
//! Their rows live in PostgreSQL; every instance keeps a snapshot in memory that the agent
//! API reads on every call without touching the database ([`state::Controls`]), refreshed
//! by `LISTEN/NOTIFY` and a poll of at most [`poll::POLL_EVERY`].

#[cfg(feature = "ssr")]
pub mod anonymous;
#[cfg(feature = "ssr")]
pub mod blocks;
#[cfg(feature = "ssr")]
pub mod poll;
#[cfg(feature = "ssr")]
pub mod ratelimit;
#[cfg(feature = "ssr")]
pub mod service_token;
#[cfg(feature = "ssr")]
pub mod state;

use serde::{Deserialize, Serialize};

/// A kill switch. Each has a global value and optional per-tenant overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SwitchKey {
    /// Off: every `/agent/v1` call gets 503 `AGENT_API_DISABLED`.
    #[serde(rename = "agentApiEnabled")]
    AgentApiEnabled,
    /// Off: the payments route gets 503 `AGENT_PAYMENTS_DISABLED`.
    #[serde(rename = "agentPaymentsEnabled")]
    AgentPaymentsEnabled,
    /// On: tokens of API clients that are not allowlisted get 403 `CLIENT_NOT_ALLOWLISTED`.
    #[serde(rename = "strictAllowlist")]
    StrictAllowlist,
    /// On: sign-up and sign-in skip the captcha (Turnstile outage). Removes a protection.
    #[serde(rename = "TURNSTILE_DISABLED")]
    TurnstileDisabled,
    /// Off: no magic-link sign-in.
    #[serde(rename = "magicLinkEnabled")]
    MagicLinkEnabled,
    /// Off: no outgoing email (SMTP breach).
    #[serde(rename = "emailSendingEnabled")]
    EmailSendingEnabled,
}

impl SwitchKey {
    /// Every switch, in the panel's order.
    pub const ALL: [SwitchKey; 6] = [
        Self::AgentApiEnabled,
        Self::AgentPaymentsEnabled,
        Self::StrictAllowlist,
        Self::TurnstileDisabled,
        Self::MagicLinkEnabled,
        Self::EmailSendingEnabled,
    ];

    /// The key as services and the database spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentApiEnabled => "agentApiEnabled",
            Self::AgentPaymentsEnabled => "agentPaymentsEnabled",
            Self::StrictAllowlist => "strictAllowlist",
            Self::TurnstileDisabled => "TURNSTILE_DISABLED",
            Self::MagicLinkEnabled => "magicLinkEnabled",
            Self::EmailSendingEnabled => "emailSendingEnabled",
        }
    }

    /// Parses the key.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Position in [`Self::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The value a new installation starts with.
    pub fn default_value(self) -> bool {
        matches!(
            self,
            Self::AgentApiEnabled
                | Self::AgentPaymentsEnabled
                | Self::MagicLinkEnabled
                | Self::EmailSendingEnabled
        )
    }

    /// The value that adds protection (closes a path or adds a check). Setting the other
    /// value removes a protection and asks for a stronger confirmation.
    pub fn protective_value(self) -> bool {
        matches!(self, Self::StrictAllowlist)
    }

    /// What the switch does, for the panel.
    pub fn describe(self) -> &'static str {
        match self {
            Self::AgentApiEnabled => "The whole agent API. Off: every /agent/v1 call is refused with 503 AGENT_API_DISABLED.",
            Self::AgentPaymentsEnabled => "The agent payments route. Off: POST /agent/v1/payments is refused with 503 AGENT_PAYMENTS_DISABLED.",
            Self::StrictAllowlist => "Strict allowlist posture. On: tokens of API clients not on the allowlist are refused with 403 CLIENT_NOT_ALLOWLISTED.",
            Self::TurnstileDisabled => "Captcha bypass for a Turnstile outage. On: sign-up and sign-in skip the captcha — the bot-mitigation layer is gone while it is on.",
            Self::MagicLinkEnabled => "Magic-link sign-in. Off: no magic links are sent or accepted.",
            Self::EmailSendingEnabled => "Outgoing email (recovery, verification, magic links). Off during an SMTP breach.",
        }
    }

    /// How a value reads for this switch (`on`/`off`, `disabled`/`enabled` for the
    /// negatively named captcha switch).
    pub fn value_label(self, value: bool) -> &'static str {
        match (self, value) {
            (Self::TurnstileDisabled, true) => "captcha off",
            (Self::TurnstileDisabled, false) => "captcha on",
            (_, true) => "on",
            (_, false) => "off",
        }
    }
}

/// A rate limit: requests per minute, with a burst allowed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once, on top of the sustained rate.
    pub burst: u32,
}

/// Largest limit accepted, per minute (a hundred thousand a second).
pub const MAX_PER_MINUTE: u32 = 6_000_000;
/// Largest burst accepted.
pub const MAX_BURST: u32 = 1_000_000;

/// One stored switch value: the global one (`tenant` empty) or a tenant's override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchRow {
    /// Which switch.
    pub key: SwitchKey,
    /// The tenant's slug for an override; `None` for the global value.
    pub tenant: Option<String>,
    /// The value.
    pub value: bool,
    /// Why it was set.
    pub reason: String,
    /// Who set it (an email, `system`).
    pub set_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub set_at: time::OffsetDateTime,
    /// When it reverts by itself.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<time::OffsetDateTime>,
    /// What it reverts to; `None` on an override means the override goes away.
    pub revert_to: Option<bool>,
}
