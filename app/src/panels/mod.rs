//! One module per console panel, each laid out the same way, so that whoever has read one
//! finds everything in the next:
//!
//! - `mod.rs`: the wire types shared by server and browser, and the pure validation helpers;
//! - `api.rs`: the `#[server]` functions: `require`, decode the wire strings into typed
//!   input, call `ops` (or `queries` for a read), then the cache effects after the commit;
//! - `ops.rs`: one audited change per function (validate, lock, change, record the event
//!   through the `Change`, commit), with typed arguments, reused by the CLI;
//! - `queries.rs`: all of the panel's SQL, as small named functions: reads take an executor
//!   or the `Reader`; writes take the `Change` itself (`&mut Change`), so a panel's write
//!   cannot be called outside an audited change (and the database refuses a transaction
//!   that changed an audited table without its event, whatever wrote it);
//! - `view.rs`: the Leptos components.
//!
//! `ops` and `queries` are server-only (`ssr`); a panel without a change or SQL of its own
//! leaves the file out.

pub mod account;
pub mod agent_ops;
pub mod audit;
pub mod freeze;
pub mod integrations;
pub mod keys;
pub mod limits;
pub mod overview;
pub mod pepper;
pub mod staff;
pub mod switches;
pub mod tenants;
pub mod users;
