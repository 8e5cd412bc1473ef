//! The audit log panel: the events filtered by outcome, source, actor, action, target,
//! code, address, incident and time window, newest first in keyset pages; a histogram of
//! the window stacked by outcome; an event's detail with pivots; and the streamed export.
//!
//! The filters travel in the URL query ([`AuditQuery`], as typed) and are checked into an
//! [`AuditFilter`] by [`AuditQuery::parse`] before any query runs.

pub mod api;
#[cfg(feature = "ssr")]
pub mod export;
#[cfg(feature = "ssr")]
pub mod ops;
#[cfg(feature = "ssr")]
pub mod queries;
pub mod view;

pub use crate::domain::input::parse_instant;
use crate::error::AppError;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;
/// The widest window an export may cover.
pub const EXPORT_MAX_DAYS: i64 = 93;
/// The widest window the panel shows (its histogram stays readable).
pub const VIEW_MAX_DAYS: i64 = 366;
/// The window a pivot opens around an event, either side.
pub const PIVOT_MINUTES: i64 = 15;
/// The window presets: URL value, label, length.
pub const PRESETS: [(&str, &str, i64); 5] = [
    ("15m", "Last 15 min", 15 * 60),
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 h", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("30d", "Last 30 days", 30 * 86_400),
];
/// The preset used when the URL names no window.
pub const DEFAULT_PRESET: &str = "24h";
/// Outcomes, as stored.
pub const OUTCOMES: [&str; 3] = ["success", "deny", "error"];
/// Sources, as stored, with their labels.
pub const SOURCES: [(&str, &str); 4] = [
    ("console", "Console"),
    ("agent_api", "Agent API"),
    ("admin_api", "Admin API"),
    ("system", "System"),
];

/// The filters as the URL carries them, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Any of `success`, `deny`, `error`; empty means all.
    #[serde(default)]
    pub outcome: Vec<String>,
    /// One of [`SOURCES`], or empty.
    #[serde(default)]
    pub source: String,
    /// A tenant's slug, or empty for every tenant.
    #[serde(default)]
    pub tenant: String,
    /// `staff:<uuid>`, `pat:<id>`, `cli:<user>`, `system`, or a staff email.
    #[serde(default)]
    pub actor: String,
    /// An action (`token.revoked`), or a prefix ending in `*` (`token.*`).
    #[serde(default)]
    pub action: String,
    /// What was acted on (`pat:<id>`, `client:<uuid>`).
    #[serde(default)]
    pub target: String,
    /// A refusal or error code (`PAT_REVOKED`).
    #[serde(default)]
    pub code: String,
    /// An address or network (`203.0.113.7`, `203.0.113.0/24`).
    #[serde(default)]
    pub ip: String,
    /// An incident id.
    #[serde(default)]
    pub incident: String,
    /// A preset from [`PRESETS`]; ignored when `from` or `to` is set.
    #[serde(default)]
    pub window: String,
    /// Custom window start, UTC (`2026-11-22T10:00`, RFC 3339, or a date).
    #[serde(default)]
    pub from: String,
    /// Custom window end, UTC; default now.
    #[serde(default)]
    pub to: String,
}

/// The checked filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Outcomes to keep; empty means all.
    pub outcomes: Vec<&'static str>,
    /// The source to keep.
    pub source: Option<&'static str>,
    /// The tenant's slug as given (resolved to an id by the query layer).
    pub tenant: Option<String>,
    /// Exact actor id, or a staff email (contains `@`).
    pub actor: Option<String>,
    /// Exact action, or a prefix (without the `*`).
    pub action: Option<(String, bool)>,
    /// Exact target.
    pub target: Option<String>,
    /// Exact code.
    pub code: Option<String>,
    /// An address or network, normalised.
    pub ip: Option<String>,
    /// The incident.
    pub incident: Option<Uuid>,
    /// Window start (inclusive).
    pub from: OffsetDateTime,
    /// Window end (exclusive).
    pub to: OffsetDateTime,
}

fn text(raw: &str, field: &str, max: usize) -> Result<Option<String>, AppError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > max || raw.chars().any(char::is_control) {
        return Err(AppError::validation(
            field,
            format!("Use at most {max} printable characters."),
        ));
    }
    Ok(Some(raw.to_owned()))
}

impl AuditQuery {
    /// Checks the filters against `now`; the window may span at most `max_days`.
    pub fn parse(&self, now: OffsetDateTime, max_days: i64) -> Result<AuditFilter, AppError> {
        let mut outcomes = Vec::new();
        for raw in &self.outcome {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let Some(known) = OUTCOMES.iter().find(|o| **o == raw) else {
                return Err(AppError::validation(
                    "outcome",
                    format!("Unknown outcome “{raw}”: use success, deny or error."),
                ));
            };
            if !outcomes.contains(known) {
                outcomes.push(*known);
            }
        }
        outcomes.sort_by_key(|o| OUTCOMES.iter().position(|k| k == o));
        if outcomes.len() == OUTCOMES.len() {
            outcomes.clear();
        }
        let source = match self.source.trim() {
            "" => None,
            raw => Some(
                SOURCES
                    .iter()
                    .find(|(k, _)| *k == raw)
                    .map(|(k, _)| *k)
                    .ok_or_else(|| {
                        AppError::validation(
                            "source",
                            format!("Unknown source “{raw}”: use console, agent_api, admin_api or system."),
                        )
                    })?,
            ),
        };
        let tenant = text(&self.tenant, "tenant", 63)?;
        let actor = text(&self.actor, "actor", 320)?;
        let action = text(&self.action, "action", 100)?.map(|a| match a.strip_suffix('*') {
            Some(prefix) => (prefix.to_owned(), true),
            None => (a, false),
        });
        let target = text(&self.target, "target", 320)?;
        let code = text(&self.code, "code", 64)?.map(|c| c.to_ascii_uppercase());
        let ip = match text(&self.ip, "ip", 64)? {
            None => None,
            Some(raw) => Some(normalise_ip(&raw).ok_or_else(|| {
                AppError::validation(
                    "ip",
                    format!("“{raw}” is not an address or network (203.0.113.7, 2001:db8::/32)."),
                )
            })?),
        };
        let incident = match self.incident.trim() {
            "" => None,
            raw => Some(Uuid::parse_str(raw).map_err(|_| {
                AppError::validation("incident", format!("“{raw}” is not an incident id."))
            })?),
        };
        let (from, to) = self.window(now)?;
        if from >= to {
            return Err(AppError::validation(
                "from",
                "The window's start is not before its end.",
            ));
        }
        if to - from > Duration::days(max_days) {
            return Err(AppError::validation(
                "from",
                format!("The window is longer than {max_days} days: narrow it."),
            ));
        }
        Ok(AuditFilter {
            outcomes,
            source,
            tenant,
            actor,
            action,
            target,
            code,
            ip,
            incident,
            from,
            to,
        })
    }

    /// The window: custom from/to when either is set (to defaults to now, from to a day
    /// before to), else the preset.
    fn window(&self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime), AppError> {
        let (from, to) = (self.from.trim(), self.to.trim());
        if !from.is_empty() || !to.is_empty() {
            let to = if to.is_empty() {
                now
            } else {
                parse_instant(to, "to")?
            };
            let from = if from.is_empty() {
                to - Duration::days(1)
            } else {
                parse_instant(from, "from")?
            };
            return Ok((from, to));
        }
        let preset = if self.window.trim().is_empty() {
            DEFAULT_PRESET
        } else {
            self.window.trim()
        };
        let Some((_, _, secs)) = PRESETS.iter().find(|(k, _, _)| *k == preset) else {
            return Err(AppError::validation(
                "window",
                format!(
                    "Unknown window “{preset}”: use 15m, 1h, 24h, 7d or 30d, or a custom from/to."
                ),
            ));
        };
        Ok((now - Duration::seconds(*secs), now))
    }

    /// The URL query for these filters, with `extra` pairs appended; empty values left out.
    pub fn to_query(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .outcome
            .iter()
            .map(|o| ("outcome", o.as_str()))
            .collect();
        pairs.extend([
            ("source", self.source.as_str()),
            ("tenant", self.tenant.as_str()),
            ("actor", self.actor.as_str()),
            ("action", self.action.as_str()),
            ("target", self.target.as_str()),
            ("code", self.code.as_str()),
            ("ip", self.ip.as_str()),
            ("incident", self.incident.as_str()),
            ("window", self.window.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ]);
        pairs.extend_from_slice(extra);
        let encoded: Vec<String> = pairs
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        encoded.join("&")
    }

    /// The same filters over `from..to` (UTC), the preset cleared.
    pub fn with_window(&self, from: OffsetDateTime, to: OffsetDateTime) -> Self {
        Self {
            window: String::new(),
            from: rfc3339(from),
            to: rfc3339(to),
            ..self.clone()
        }
    }
}

/// `2026-11-22T10:00:00Z`, the form URLs carry.
pub fn rfc3339(at: OffsetDateTime) -> String {
    use time::format_description::well_known::Rfc3339;
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32` in canonical form; `None` if not one.
fn normalise_ip(raw: &str) -> Option<String> {
    if let Ok(addr) = raw.parse::<std::net::IpAddr>() {
        return Some(addr.to_string());
    }
    let (addr, len) = raw.split_once('/')?;
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then(|| format!("{addr}/{len}"))
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// Position in the chain.
    pub seq: i64,
    /// When (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// The tenant's slug, if any.
    pub tenant: Option<String>,
    /// Which plane.
    pub source: crate::domain::audit::Source,
    /// Who (id).
    pub actor: String,
    /// Who, readable.
    pub actor_name: Option<String>,
    /// What.
    pub action: String,
    /// How it ended.
    pub outcome: crate::domain::audit::Outcome,
    /// The refusal or error code.
    pub code: Option<String>,
    /// What was acted on.
    pub target: Option<String>,
    /// The caller's address.
    pub ip: Option<String>,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The rows.
    pub rows: Vec<EventRow>,
    /// The cursor of the next (older) page, when there is one.
    pub next: Option<String>,
}

/// The histogram of a window: one bar per bucket, counts per outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Window start (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// Window end (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Bucket length in seconds.
    pub bucket_secs: i64,
    /// Per bucket from `from`: success, deny, error.
    pub counts: Vec<[i64; 3]>,
}

/// Bucket lengths the histogram chooses from, in seconds.
pub const BUCKETS: [i64; 11] = [
    10,
    30,
    60,
    300,
    900,
    1800,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
];
/// At most this many bars.
pub const MAX_BARS: i64 = 72;

/// The smallest bucket that shows `window_secs` in at most [`MAX_BARS`] bars.
pub fn bucket_for(window_secs: i64) -> i64 {
    BUCKETS
        .iter()
        .copied()
        .find(|b| window_secs / b < MAX_BARS)
        .unwrap_or(86_400 * ((window_secs / 86_400) / MAX_BARS + 1))
}

/// Everything about one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The table's fields.
    pub row: EventRow,
    /// The user agent.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// The incident.
    pub incident_id: Option<Uuid>,
    /// Why, in the actor's words.
    pub reason: Option<String>,
    /// Details, pretty-printed JSON.
    pub details: String,
    /// The chain link, hex.
    pub prev_hash: String,
    /// The event's hash, hex.
    pub hash: String,
    /// Retention class, in months.
    pub retention_months: i16,
}

/// The last `audit verify` run, for the panel's header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastVerification {
    /// When it finished.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Up to which event.
    pub to_seq: i64,
    /// Events checked.
    pub checked: i64,
    /// The first broken event and why, if any.
    pub broken: Option<(i64, String)>,
}

/// What the panel shows above the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditContext {
    /// The last verification, if any ran.
    pub verified: Option<LastVerification>,
    /// The chain head's position.
    pub head_seq: i64,
    /// Whether the viewer may export.
    pub can_export: bool,
    /// Whether the viewer may change retention classes.
    pub can_manage_retention: bool,
    /// Tenants, for the tenant filter and the retention section.
    pub tenants: Vec<TenantRetention>,
}

/// A tenant and how long its audit events are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRetention {
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Its retention class, in months.
    pub months: i16,
}

pub use crate::domain::audit::RETENTION_CLASSES;
/// Longest reason for a retention change.
pub const REASON_MAX: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    fn query() -> AuditQuery {
        AuditQuery::default()
    }

    #[test]
    fn the_default_window_is_a_day_and_presets_apply() {
        let f = query().parse(NOW, VIEW_MAX_DAYS).unwrap();
        assert_eq!((f.from, f.to), (NOW - Duration::days(1), NOW));
        let q = AuditQuery {
            window: "15m".into(),
            ..query()
        };
        assert_eq!(q.parse(NOW, 1).unwrap().from, NOW - Duration::minutes(15));
    }

    #[test]
    fn bad_input_names_its_field() {
        let field = |q: AuditQuery| match q.parse(NOW, EXPORT_MAX_DAYS) {
            Err(AppError::Validation { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(AuditQuery {
                outcome: vec!["denied".into()],
                ..query()
            }),
            "outcome"
        );
        assert_eq!(
            field(AuditQuery {
                source: "web".into(),
                ..query()
            }),
            "source"
        );
        assert_eq!(
            field(AuditQuery {
                from: "yesterday".into(),
                ..query()
            }),
            "from"
        );
        assert_eq!(
            field(AuditQuery {
                from: "2026-11-22T10:00".into(),
                to: "2026-11-22T09:00".into(),
                ..query()
            }),
            "from"
        );
        assert_eq!(
            field(AuditQuery {
                from: "2026-01-01".into(),
                to: "2026-11-01".into(),
                ..query()
            }),
            "from"
        );
        assert_eq!(
            field(AuditQuery {
                ip: "10.0.0.300".into(),
                ..query()
            }),
            "ip"
        );
        assert_eq!(
            field(AuditQuery {
                window: "2w".into(),
                ..query()
            }),
            "window"
        );
        assert_eq!(
            field(AuditQuery {
                incident: "x".into(),
                ..query()
            }),
            "incident"
        );
    }

    #[test]
    fn filters_are_normalised() {
        let q = AuditQuery {
            outcome: vec!["error".into(), "deny".into(), "deny".into()],
            action: "token.*".into(),
            code: "pat_revoked".into(),
            ip: "2001:DB8::1".into(),
            from: "2026-11-22T10:00".into(),
            ..query()
        };
        let f = q.parse(NOW, 1).unwrap();
        assert_eq!(f.outcomes, ["deny", "error"]);
        assert_eq!(f.action, Some(("token.".into(), true)));
        assert_eq!(f.code.as_deref(), Some("PAT_REVOKED"));
        assert_eq!(f.ip.as_deref(), Some("2001:db8::1"));
        assert_eq!((f.from, f.to), (datetime!(2026-11-22 10:00 UTC), NOW));
        // All three outcomes is no outcome filter.
        let all = AuditQuery {
            outcome: OUTCOMES.map(String::from).to_vec(),
            ..query()
        };
        assert!(all.parse(NOW, 1).unwrap().outcomes.is_empty());
    }

    #[test]
    fn the_query_string_round_trips_what_matters() {
        let q = AuditQuery {
            outcome: vec!["deny".into()],
            actor: "a b@x".into(),
            ..query()
        };
        assert_eq!(
            q.to_query(&[("after", "1.2")]),
            "outcome=deny&actor=a%20b%40x&after=1.2"
        );
    }

    #[test]
    fn buckets_keep_the_bar_count_readable() {
        assert_eq!(bucket_for(15 * 60), 30);
        assert_eq!(bucket_for(86_400), 1800);
        assert_eq!(bucket_for(7 * 86_400), 3 * 3600);
        assert_eq!(bucket_for(30 * 86_400), 12 * 3600);
        assert!(366 * 86_400 / bucket_for(366 * 86_400) <= MAX_BARS);
    }
}
