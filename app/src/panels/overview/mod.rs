//! The landing pages: the tenant list and one tenant's overview, and the shell's tenant
//! list. Its data comes from the domain ([`crate::domain::tenants`], the audit log); it owns
//! no SQL of its own.

pub mod api;
pub mod view;
