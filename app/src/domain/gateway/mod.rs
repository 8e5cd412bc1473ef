//! The data plane: how the agent API decides on a call. The verifier checks the bearer
//! token against its cache ([`verify`]), the controls add the kill switches, rate limits
//! and blocks ([`controls`]), each decision is one of the types in [`decision`] (the leaf
//! the others share), the ledger batches the decisions into the audit log ([`ledger`]), and
//! the change listener keeps every instance's caches current ([`sync`]). Delegated agent
//! tokens are issued and checked in [`delegated`] against each instance's key set
//! ([`keyset`]). Each instance registers itself and answers operators' requests to every
//! instance in [`instances`].

pub mod controls;
#[cfg(feature = "ssr")]
pub mod decision;
#[cfg(feature = "ssr")]
pub mod delegated;
#[cfg(feature = "ssr")]
pub mod instances;
#[cfg(feature = "ssr")]
pub mod keyset;
#[cfg(feature = "ssr")]
pub mod ledger;
pub mod requests;
#[cfg(feature = "ssr")]
pub mod sync;
#[cfg(feature = "ssr")]
pub mod verify;
