//! Server functions of the audit panel. Reading needs `ViewConsole`; the export (an axum
//! route, see [`super::export`]) needs `ExportAudit`.

use super::{AuditContext, AuditQuery, EventDetail, EventPage, Histogram};
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;

/// What the panel shows above the table: last verification, head, export right, tenants.
#[server]
pub async fn audit_overview() -> Result<AuditContext, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let pool = actor.reader();
    let (verified, head_seq) = super::queries::last_verification(pool).await?;
    Ok(AuditContext {
        verified,
        head_seq,
        can_export: actor
            .staff()
            .is_some_and(|s| s.can(Permission::ExportAudit)),
        can_manage_retention: actor
            .staff()
            .is_some_and(|s| s.can(Permission::ManageRetention)),
        tenants: super::queries::tenants(pool).await?,
    })
}

/// One page of events matching `query`, after the cursor `after` when given.
#[server]
pub async fn audit_page(
    query: AuditQuery,
    #[server(default)] after: String,
) -> Result<EventPage, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let filter = query.parse(time::OffsetDateTime::now_utc(), super::VIEW_MAX_DAYS)?;
    let cursor = match after.trim() {
        "" => None,
        raw => Some(super::queries::decode_cursor(raw)?),
    };
    let tenant = super::queries::tenant_id(actor.reader(), &filter).await?;
    super::queries::page(actor.reader(), &filter, tenant, cursor).await
}

/// The histogram of `query`'s window.
#[server]
pub async fn audit_histogram(query: AuditQuery) -> Result<Histogram, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let filter = query.parse(time::OffsetDateTime::now_utc(), super::VIEW_MAX_DAYS)?;
    let tenant = super::queries::tenant_id(actor.reader(), &filter).await?;
    super::queries::histogram(actor.reader(), &filter, tenant).await
}

/// Every field of one event.
#[server]
pub async fn audit_event(seq: String) -> Result<EventDetail, AppError> {
    let actor = require(Permission::ViewConsole).await?;
    let seq: i64 = seq
        .trim()
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| AppError::not_found(format!("Audit event “{seq}”")))?;
    super::queries::detail(actor.reader(), seq).await
}

/// Sets how long a tenant's audit events are kept, from now on (admin).
#[server]
pub async fn set_audit_retention(
    tenant: String,
    months: String,
    reason: String,
) -> Result<(), AppError> {
    let actor = require_stepped_up(Permission::ManageRetention).await?;
    super::ops::set_retention(&actor, &tenant, &months, &reason).await
}
