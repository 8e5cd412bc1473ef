//! The landing pages: the tenant list and one tenant's overview.
//!
//! Its data comes from [`crate::tenants`]; it owns no SQL of its own yet.

pub mod view;
