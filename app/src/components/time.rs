//! How times are shown. Everything is stored and sent in UTC.

use time::macros::format_description;
use time::OffsetDateTime;

/// `2026-11-22 10:20 UTC`: minute precision, explicit zone.
pub fn utc_minutes(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn shows_utc_whatever_the_offset() {
        assert_eq!(
            utc_minutes(datetime!(2026-11-22 12:05 +02:00)),
            "2026-11-22 10:05 UTC"
        );
    }
}
