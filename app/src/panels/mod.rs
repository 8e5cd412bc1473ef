//! One module per console panel: data types, server functions, SQL and views.

pub mod integrations;
pub mod overview;
pub mod pepper;
pub mod staff;
