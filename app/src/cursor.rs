//! The one codec for keyset-page cursors (`?after=` in page URLs), shared by every keyset
//! page: the audit panel's (time, seq) and the integrations panel's (created, token id).
//!
//! A cursor reads `<unix microseconds>.<key>`: the last row's time and its tie-breaking key.
//! It comes back from the browser, so it is untrusted input: every step is checked (length,
//! digits, range, no arithmetic that can overflow), and a bad cursor is a validation error
//! on the `after` field, never a panic, an empty page or a database error.

use crate::error::AppError;
use time::OffsetDateTime;

/// The URL parameter, and the field validation errors name.
pub const FIELD: &str = "after";

/// Longest cursor accepted: a 16-digit time, a dot and a key of up to 64 characters,
/// with room to spare. Anything longer is refused before it is parsed.
pub const MAX_LEN: usize = 96;

/// Why a cursor was refused. Its `Display` is the message shown beside the page links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorError {
    /// Longer than [`MAX_LEN`].
    TooLong,
    /// Not `<digits>.<key>`.
    Shape,
    /// The time is not a whole number of microseconds from 0 up to the year 9999.
    Time,
    /// The key is not one this page makes.
    Key,
}

impl std::fmt::Display for CursorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self {
            Self::TooLong => "it is too long",
            Self::Shape => "it is not a time and a position",
            Self::Time => "its time is out of range",
            Self::Key => "its position is not valid",
        };
        write!(
            f,
            "This page link is damaged ({why}): start from the first page."
        )
    }
}

impl From<CursorError> for AppError {
    fn from(err: CursorError) -> Self {
        AppError::validation(FIELD, err.to_string())
    }
}

/// The cursor of a row at `at` with key `key`.
pub fn encode(at: OffsetDateTime, key: &str) -> String {
    // unix_timestamp_nanos is an i128 well inside range for any OffsetDateTime, and
    // dividing cannot overflow.
    format!("{}.{key}", at.unix_timestamp_nanos() / 1000)
}

/// Reads a cursor into its time and its key text (checked only for being non-empty; see
/// [`decode_seq`] and [`decode_with`] for typed keys).
pub fn decode(raw: &str) -> Result<(OffsetDateTime, &str), CursorError> {
    if raw.len() > MAX_LEN {
        return Err(CursorError::TooLong);
    }
    let (micros, key) = raw.split_once('.').ok_or(CursorError::Shape)?;
    if micros.is_empty() || key.is_empty() {
        return Err(CursorError::Shape);
    }
    // Digits only: no sign (no event predates 1970), no `+`, no spaces.
    if !micros.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CursorError::Time);
    }
    let micros: i64 = micros.parse().map_err(|_| CursorError::Time)?;
    let nanos = i128::from(micros)
        .checked_mul(1000)
        .ok_or(CursorError::Time)?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .filter(|at| at.year() <= 9999)
        .ok_or(CursorError::Time)?;
    Ok((at, key))
}

/// Reads a cursor whose key is a positive integer (the audit log's `seq`).
pub fn decode_seq(raw: &str) -> Result<(OffsetDateTime, i64), CursorError> {
    decode_with(raw, |key| {
        if !key.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        key.parse::<i64>().ok().filter(|seq| *seq > 0)
    })
}

/// Reads a cursor whose key `parse` accepts (`None`: refused).
pub fn decode_with<K>(
    raw: &str,
    parse: impl FnOnce(&str) -> Option<K>,
) -> Result<(OffsetDateTime, K), CursorError> {
    let (at, key) = decode(raw)?;
    let key = parse(key).ok_or(CursorError::Key)?;
    Ok((at, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time")
            + time::Duration::microseconds(123_456)
    }

    #[test]
    fn cursors_round_trip() {
        // Past i64 nanoseconds (year 2262) but well within range: kept.
        let late = OffsetDateTime::from_unix_timestamp(9_300_000_000).expect("time");
        assert_eq!(decode_seq(&encode(late, "7")), Ok((late, 7)));
        let cursor = encode(at(), "42");
        assert_eq!(cursor, "1800000000123456.42");
        assert_eq!(decode_seq(&cursor), Ok((at(), 42)));
        assert_eq!(decode(&encode(at(), "AbC")), Ok((at(), "AbC")));
        assert_eq!(
            decode_seq(&encode(OffsetDateTime::UNIX_EPOCH, "1")),
            Ok((OffsetDateTime::UNIX_EPOCH, 1))
        );
    }

    #[test]
    fn overflowing_times_are_refused_not_multiplied() {
        let cases = [
            // Past i64: refused by the parse, not wrapped.
            format!("{}.1", i128::MAX),
            format!("{}.1", u64::MAX),
            format!("{}0.1", i64::MAX),
            // Fits i64, but times 1000 would overflow an i64 (and is past year 9999).
            format!("{}.1", i64::MAX),
            // Past year 9999 without overflowing anything.
            "253402300800000000.1".to_owned(),
            "9".repeat(40) + ".1",
        ];
        for raw in &cases {
            assert_eq!(decode_seq(raw), Err(CursorError::Time), "{raw}");
        }
        assert_eq!(
            decode_seq(&format!("{}.1", "9".repeat(200))),
            Err(CursorError::TooLong)
        );
    }

    #[test]
    fn negative_signed_and_junk_cursors_are_refused() {
        for (raw, why) in [
            ("-1.1", CursorError::Time),
            (&format!("{}.1", i64::MIN), CursorError::Time),
            ("+5.1", CursorError::Time),
            (" 5.1", CursorError::Time),
            ("1e6.1", CursorError::Time),
            ("0x10.1", CursorError::Time),
            ("", CursorError::Shape),
            ("12", CursorError::Shape),
            ("12.", CursorError::Shape),
            (".12", CursorError::Shape),
            ("x.y", CursorError::Time),
            ("5.-1", CursorError::Key),
            ("5.0", CursorError::Key),
            ("5.1.2", CursorError::Key),
            (&format!("5.{}", u64::MAX), CursorError::Key),
            ("5.+1", CursorError::Key),
        ] {
            assert_eq!(decode_seq(raw), Err(why), "{raw:?}");
        }
    }

    #[test]
    fn refusals_are_validation_errors_on_the_after_field() {
        let err = AppError::from(CursorError::Time);
        let message = err.field_message(FIELD).expect("on the after field");
        assert!(message.contains("damaged"), "{message}");
        assert!(message.contains("out of range"), "{message}");
        assert!(message.contains("first page"), "{message}");
    }
}
