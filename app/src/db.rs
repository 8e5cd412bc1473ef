//! Server-only access to the database pool provided through Leptos context.

use crate::error::AppError;
use leptos::prelude::use_context;
use sqlx::PgPool;

/// The pool the server put into context for this render or server-function call.
///
/// Missing context is a wiring bug, not a user error: it is logged and reported with a
/// reference id like any other internal failure.
pub(crate) fn pool() -> Result<PgPool, AppError> {
    use_context::<PgPool>()
        .ok_or_else(|| AppError::internal(&"database pool missing from Leptos context"))
}
