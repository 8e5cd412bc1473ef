//! The server's integration tests, in one binary: one link instead of one per file, and
//! one pool of test threads over every file's tests (a file's slow tail no longer holds the
//! next file back). Each file is a module; `cargo test -p server --features app/ssr --test
//! integration agent_ops::` runs one of them.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

mod admin_api;
mod agent_ops;
mod audit;
mod audit_panel;
mod audit_verify;
mod auth;
mod database;
mod delegated;
mod enduser_mail;
mod endusers;
mod factors;
mod freeze;
mod http;
mod integrations;
mod keys;
mod logs;
mod passkeys;
mod permissions;
mod release;
mod rollout;
mod secrets;
mod sessions;
mod shutdown;
mod tokens;
