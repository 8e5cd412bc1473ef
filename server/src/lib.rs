//! The staff-console server: configuration, wiring, middleware, the operations endpoints and
//! the command-line interface. The console itself lives in the `app` crate.

pub mod admin_api;
pub mod check_config;
pub mod config;
pub mod db;
pub mod endusers;
pub mod exchange;
pub mod gateway;
pub mod jobs;
pub mod logging;
pub mod published;
pub mod serve;
pub mod smoke;
pub mod switches_api;
pub mod web;
