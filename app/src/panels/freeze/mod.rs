//! The Freeze panel (platform-wide, runbook 001): an incident commander turns a freeze of
//! high-risk operations on, with a reason and an optional expiry, and lifts it again. While
//! it is on, every operation in [`FrozenOp::ALL`] is refused for everyone (`423 FROZEN`),
//! the top bar of every page says so, and `GET /api/v1/switches` carries it for other
//! services. The guard itself is the domain's ([`crate::domain::freeze`]).

pub mod api;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

pub use crate::domain::freeze::{Freeze, FrozenOp};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What to type to lift a freeze.
pub const CONFIRM_LIFT: &str = "lift";

/// A freeze of the past, for the panel's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastFreeze {
    /// The freeze.
    pub freeze: Freeze,
    /// When it was lifted (or its expiry passed, for one the timer has not lifted yet).
    pub lifted_at: Option<OffsetDateTime>,
    /// Who lifted it: an email, or `system` for an expiry.
    pub lifted_by: Option<String>,
    /// Why.
    pub lift_reason: Option<String>,
}

/// The Freeze page's data: the freeze on now, if any, and the last ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeState {
    /// The freeze on now.
    pub on: Option<Freeze>,
    /// The last freezes, newest first.
    pub history: Vec<PastFreeze>,
}
