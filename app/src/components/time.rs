//! How times are shown. Everything is stored and sent in UTC.

pub use crate::domain::input::{utc_minutes, utc_seconds};
use time::OffsetDateTime;

/// `59 min 05 s`, `3 h 20 min`: what is left of `secs`.
pub fn remaining(secs: i64) -> String {
    match secs {
        ..=0 => "now".to_owned(),
        1..=3599 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// Seconds since 1970 on whichever side renders: the server's clock, or the browser's.
pub fn unix_now() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        (js_sys::Date::now() / 1000.0) as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// "reverts in 59 min 58 s (at 2026-11-22 23:45 UTC)", ticking every second in the browser.
#[leptos::component]
pub fn Countdown(
    until: OffsetDateTime,
    // What happens at the end: "reverts in", "expires in".
    #[prop(default = "reverts in")] label: &'static str,
) -> impl leptos::prelude::IntoView {
    use leptos::prelude::*;
    let end = until.unix_timestamp();
    let now = RwSignal::new(unix_now());
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Ok(handle) = set_interval_with_handle(
            move || now.set(unix_now()),
            std::time::Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <span data-testid="countdown" class="font-medium text-amber-900">
            {label} " " <span role="timer">{move || remaining(end - now.get())}</span>
            {format!(" (at {})", utc_minutes(until))}
        </span>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_reads_naturally() {
        assert_eq!(remaining(0), "now");
        assert_eq!(remaining(3599), "59 min 59 s");
        assert_eq!(remaining(65), "1 min 05 s");
        assert_eq!(remaining(3 * 3600 + 20 * 60 + 5), "3 h 20 min");
    }
    use time::macros::datetime;

    #[test]
    fn shows_utc_whatever_the_offset() {
        assert_eq!(
            utc_minutes(datetime!(2026-11-22 12:05 +02:00)),
            "2026-11-22 10:05 UTC"
        );
    }
}
