//! What an operator asks every running instance (runbook 001), and what a verification
//! finds: shared by the instances that answer (`instances`, server-only) and the
//! keys panel that shows the answers.

use crate::domain::status::SigningKeyState;
use serde::{Deserialize, Serialize};

/// What an operator asks every live instance to do (runbook 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceRequestKind {
    /// Reload the key set now, and answer the epoch it then holds.
    Refresh,
    /// Check, with the key set it holds, that tokens of keys no longer trusted are refused
    /// and a fresh one accepted.
    Verify,
}

impl InstanceRequestKind {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refresh => "refresh",
            Self::Verify => "verify",
        }
    }

    /// From its stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "refresh" => Some(Self::Refresh),
            "verify" => Some(Self::Verify),
            _ => None,
        }
    }
}

/// One probe of a verification: a token naming one key, and what the instance made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// The key the token names.
    pub kid: String,
    /// The key's state in the database.
    pub state: SigningKeyState,
    /// Whether it should be accepted.
    pub expect_accepted: bool,
    /// What the instance answered: `accepted`, or the refusal's code.
    pub outcome: String,
    /// Whether that is what it should answer.
    pub passed: bool,
    /// Why it is expected so, or what a failure means.
    pub note: String,
}
