//! Shared UI pieces used by every panel.

pub mod context;
pub mod feedback;
pub mod form;
pub mod layout;
pub mod loaded;
pub mod not_found;
pub mod passkey;
pub mod sessions;
pub mod step_up;
pub mod table;
pub mod tenant_switcher;
pub mod time;
