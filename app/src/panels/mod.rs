//! One module per console panel: data types, server functions, SQL and views.

pub mod account;
pub mod agent_ops;
pub mod audit;
pub mod integrations;
pub mod limits;
pub mod overview;
pub mod pepper;
pub mod staff;
pub mod switches;
