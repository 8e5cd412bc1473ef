//! The audit panel's one change: a tenant's retention class, audited in the transaction
//! that changes it.

use super::{queries, REASON_MAX, RETENTION_CLASSES};
use crate::auth::Actor;
use crate::error::AppError;

/// Sets `tenant`'s retention class to `months`, with `reason`: checked, changed and audited
/// in one transaction. Applies to events written from now on; its own event is kept for
/// the longer of the old and the new class.
pub async fn set_retention(
    actor: &Actor,
    tenant: &str,
    months: &str,
    reason: &str,
) -> Result<(), AppError> {
    let months: i16 = months
        .trim()
        .parse()
        .ok()
        .filter(|m| RETENTION_CLASSES.contains(m))
        .ok_or_else(|| {
            AppError::validation("months", "Choose one of 1, 3, 6, 12, 24 or 84 months.")
        })?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AppError::validation(
            "reason",
            "Say why the retention changes.",
        ));
    }
    if reason.chars().count() > REASON_MAX {
        return Err(AppError::validation(
            "reason",
            format!("Keep the reason under {REASON_MAX} characters."),
        ));
    }
    let mut change = actor.change().await?;
    let row = queries::lock_retention(&mut change, tenant.trim())
        .await?
        .ok_or_else(|| AppError::validation("tenant", format!("No tenant “{}”.", tenant.trim())))?;
    if row.audit_retention_months == months {
        return Err(AppError::Conflict {
            field: None,
            message: format!(
                "{} already keeps its audit events {months} months.",
                tenant.trim()
            ),
        });
    }
    let event = actor
        .event("tenant.audit_retention_changed")
        .target(format!("tenant:{}", tenant.trim()))
        .reason(reason)
        .details(serde_json::json!({
            "from_months": row.audit_retention_months,
            "to_months": months,
        }))
        .tenant(row.id);
    // The event is the evidence of the change, so it is kept for the longer of the two
    // classes: an event takes its tenant's class as it is written (the chain trigger
    // checks that), so shortening records it before the update, in the old class, and
    // lengthening records it after, in the new one. Recorded in the shorter class, it
    // would be dropped together with the events it explains.
    if months < row.audit_retention_months {
        let change = crate::domain::freeze::guard(
            actor,
            change,
            crate::domain::freeze::FrozenOp::LowerRetention,
        )
        .await?;
        let mut recorded = change.record_first(event).await?;
        queries::set_class(recorded.change(), row.id, months).await?;
        recorded.commit().await?;
    } else {
        queries::set_class(&mut change, row.id, months).await?;
        change.commit(event).await?;
    }
    Ok(())
}
