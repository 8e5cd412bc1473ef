//! The console's domain, apart from its pages: what the panels, the command line and the
//! gateway all act on. Nothing here renders or imports a panel (the panels import it).
//!
//! - [`audit`]: the audit log's event types, its writer's chain walk and its retention;
//! - [`tenants`]: tenants and their look-ups;
//! - [`tokens`]: the token format, its peppers, who may own a token;
//! - [`gateway`]: the data plane: the token verifier, its cache and audit ledger, the change
//!   listener, and the controls (kill switches, rate limits, IP blocks) it decides with;
//! - [`factors`]: staff second factors (TOTP, recovery codes);
//! - [`endusers`]: each tenant's end users: sign-in, sessions, refresh tokens, access
//!   tokens and the revocation epochs that end them;
//! - [`freeze`]: the platform-wide freeze of high-risk operations, and its guard;
//! - [`keys`]: tenants' signing keys, their JWKs and JWS signatures;
//! - [`sealed`]: secrets sealed under `ENCRYPTION_KEY` (peppers, TOTP secrets);
//! - [`secrets`]: what is sealed under which key during an `ENCRYPTION_KEY` rotation, and
//!   the re-sealing that ends it;
//! - [`input`]: input rules shared by the panels and the command line.
//!
//! Data types used by the browser too (a tenant, a switch key, the scopes) compile in both
//! builds; everything that touches the database is server-only (`ssr`).

pub mod admin;
pub mod audit;
#[cfg(feature = "ssr")]
pub mod endusers;
pub mod factors;
pub mod freeze;
pub mod gateway;
pub mod input;
#[cfg(feature = "ssr")]
pub mod keys;
#[cfg(feature = "ssr")]
pub mod sealed;
#[cfg(feature = "ssr")]
pub mod secrets;
pub mod status;
pub mod tenants;
pub mod tokens;
