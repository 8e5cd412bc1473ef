//! Input rules shared by the panels, the command line and the domain: a reason for the
//! audit log, and a point in time as people type and read one (always UTC).

use crate::error::AppError;
use time::OffsetDateTime;

/// Longest reason for a change.
pub const REASON_MAX: usize = 500;

/// Checks a reason: required, at most [`REASON_MAX`] characters.
pub fn normalize_reason(raw: &str) -> Result<String, AppError> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(AppError::validation(
            "reason",
            "Say why: the reason goes into the audit log.",
        ));
    }
    if reason.chars().count() > REASON_MAX {
        return Err(AppError::validation(
            "reason",
            format!("A reason has at most {REASON_MAX} characters."),
        ));
    }
    Ok(reason.to_owned())
}

/// Reads a time the way the filter and the command line accept it: RFC 3339, a
/// `datetime-local` value (`2026-11-22T10:00`, taken as UTC), or a UTC date.
pub fn parse_instant(raw: &str, field: &str) -> Result<OffsetDateTime, AppError> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let raw = raw.trim();
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(at);
    }
    for format in [
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ] {
        if let Ok(at) = time::PrimitiveDateTime::parse(raw, format) {
            return Ok(at.assume_utc());
        }
    }
    if let Ok(date) = time::Date::parse(raw, format_description!("[year]-[month]-[day]")) {
        return Ok(date.midnight().assume_utc());
    }
    Err(AppError::validation(
        field,
        format!(
            "“{raw}” is not a date and time: use 2026-11-22T10:00 (UTC), 2026-11-22 or RFC 3339."
        ),
    ))
}

/// `2026-11-22 10:20:05 UTC`: second precision, for times a few minutes apart matter.
pub fn utc_seconds(at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// `2026-11-22 10:20 UTC`: minute precision, explicit zone.
pub fn utc_minutes(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}
