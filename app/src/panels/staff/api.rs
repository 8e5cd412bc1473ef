//! Server functions of the Staff panel. Each starts with `require(Permission::ManageStaff)`.

use super::{OneTimePassword, StaffRow};
#[cfg(feature = "ssr")]
use crate::auth::Role;
#[cfg(feature = "ssr")]
use crate::auth::{require, require_stepped_up, Permission};
use crate::error::AppError;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use uuid::Uuid;

#[cfg(feature = "ssr")]
fn parse_id(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| AppError::validation("staff_id", "That is not a staff id."))
}

#[cfg(feature = "ssr")]
fn parse_role(raw: &str) -> Result<Role, AppError> {
    Role::parse(raw.trim())
        .ok_or_else(|| AppError::validation("role", "Choose one of the listed roles."))
}

/// Every staff member.
#[server]
pub async fn list_staff() -> Result<Vec<StaffRow>, AppError> {
    let actor = require(Permission::ManageStaff).await?;
    Ok(super::queries::list(actor.reader()).await?)
}

/// Creates a staff member and returns their one-time password, shown once.
#[server]
pub async fn create_staff(
    email: String,
    display_name: String,
    role: String,
) -> Result<OneTimePassword, AppError> {
    let actor = require_stepped_up(Permission::ManageStaff).await?;
    let role = parse_role(&role)?;
    let (_, secret) = super::ops::create(&actor, &email, &display_name, role, None).await?;
    Ok(secret)
}

/// Changes a staff member's role.
#[server]
pub async fn change_staff_role(staff_id: String, role: String) -> Result<(), AppError> {
    let actor = require_stepped_up(Permission::ManageStaff).await?;
    super::ops::change_role(&actor, parse_id(&staff_id)?, parse_role(&role)?).await
}

/// Disables (`active = false`) or re-enables a staff member.
#[server]
pub async fn set_staff_active(staff_id: String, active: bool) -> Result<(), AppError> {
    let actor = require_stepped_up(Permission::ManageStaff).await?;
    super::ops::set_active(&actor, parse_id(&staff_id)?, active).await
}

/// Resets a staff member's password to a new one-time password, shown once.
#[server]
pub async fn reset_staff_password(staff_id: String) -> Result<OneTimePassword, AppError> {
    let actor = require_stepped_up(Permission::ManageStaff).await?;
    super::ops::reset_password(&actor, parse_id(&staff_id)?, None).await
}

/// Resets a staff member's second factors (with a reason), ending their sessions; answers
/// the one-time password that replaces theirs, shown once.
#[server]
pub async fn reset_staff_factors(
    staff_id: String,
    reason: String,
) -> Result<OneTimePassword, AppError> {
    let actor = require_stepped_up(Permission::ManageStaff).await?;
    super::ops::reset_factors(&actor, parse_id(&staff_id)?, &reason).await
}

#[cfg(feature = "ssr")]
fn parse_session(raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| AppError::validation("session_id", "That is not a session id."))
}

/// Every live staff session, of everyone: who is signed in, where, since when.
#[server]
pub async fn staff_sessions() -> Result<Vec<crate::auth::StaffSession>, AppError> {
    let actor = require(Permission::ManageStaff).await?;
    let mut sessions = crate::auth::queries::live_sessions(actor.reader(), None).await?;
    for s in &mut sessions {
        s.current = actor.session_row() == Some(s.id);
    }
    Ok(sessions)
}

/// Ends one staff session, with a reason. Protective: no step-up, allowed during a freeze.
#[server]
pub async fn end_staff_session(session_id: String, reason: String) -> Result<(), AppError> {
    let actor = require(Permission::ManageStaff).await?;
    super::ops::end_session(&actor, parse_session(&session_id)?, &reason).await
}

/// Ends every session of one staff member, with a reason; answers how many were live.
#[server]
pub async fn end_all_staff_sessions(staff_id: String, reason: String) -> Result<usize, AppError> {
    let actor = require(Permission::ManageStaff).await?;
    super::ops::end_all_sessions(&actor, parse_id(&staff_id)?, &reason).await
}
