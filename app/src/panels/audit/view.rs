//! The audit panel's pages: `/audit` (filters, histogram, table, export) and
//! `/audit/{seq}` (one event, with pivots).

use super::api::{audit_event, audit_histogram, audit_overview, audit_page, SetAuditRetention};
use super::{
    rfc3339, AuditContext, AuditQuery, EventDetail, EventPage, Histogram, LastVerification,
    OUTCOMES, PIVOT_MINUTES, PRESETS, SOURCES,
};
use crate::components::feedback::{outcome_badge, ErrorNotice};
use crate::components::loaded::loaded;
use crate::components::step_up::{redispatch, StepUp};
use crate::components::table::{Col, DataTable, KeysetPager};
use crate::error::AppError;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use time::OffsetDateTime;

/// The filters in the URL.
fn query_from_url() -> Memo<AuditQuery> {
    let query = use_query_map();
    Memo::new(move |_| {
        let q = query.read();
        let get = |k: &str| q.get(k).unwrap_or_default();
        AuditQuery {
            outcome: q.get_all("outcome").unwrap_or_default(),
            source: get("source"),
            tenant: get("tenant"),
            actor: get("actor"),
            action: get("action"),
            target: get("target"),
            code: get("code"),
            ip: get("ip"),
            incident: get("incident"),
            window: get("window"),
            from: get("from"),
            to: get("to"),
        }
    })
}

/// `2026-11-22 10:05:03 UTC`.
fn utc_seconds(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A time in the viewer's local zone once the page is interactive (UTC before, and without
/// WebAssembly), with UTC on hover.
#[component]
pub fn LocalTime(at: OffsetDateTime) -> impl IntoView {
    let utc = utc_seconds(at);
    let shown = RwSignal::new(utc.clone());
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        shown.set(local_seconds(at));
    });
    view! { <time datetime=rfc3339(at) title=utc>{move || shown.get()}</time> }
}

#[cfg(feature = "hydrate")]
fn local_seconds(at: OffsetDateTime) -> String {
    let ms = (at.unix_timestamp_nanos() / 1_000_000) as f64;
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    let offset = -(d.get_timezone_offset() as i64);
    let zone = if offset == 0 {
        "UTC".to_owned()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let offset = offset.abs();
        if offset % 60 == 0 {
            format!("UTC{sign}{}", offset / 60)
        } else {
            format!("UTC{sign}{}:{:02}", offset / 60, offset % 60)
        }
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// `/audit`: the log, filtered.
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = query_from_url();
    let use_query = use_query_map();
    let after = Memo::new(move |_| use_query.read().get("after").unwrap_or_default());
    let retention = ServerAction::<SetAuditRetention>::new();
    // Re-read after a retention change that went through (a refused one changes nothing).
    let changed = RwSignal::new(0_u32);
    Effect::new(move |_| {
        if let Some(Ok(())) = retention.value().get() {
            changed.update(|n| *n += 1);
        }
    });
    let context = Resource::new(move || changed.get(), |_| audit_overview());
    let histogram = Resource::new(move || query.get(), audit_histogram);
    let page = Resource::new(
        move || (query.get(), after.get()),
        |(q, a)| audit_page(q, a),
    );
    view! {
        <Title text="Audit log" />
        <h1 class="text-2xl font-semibold">"Audit log"</h1>
        <p class="mt-1 max-w-prose text-slate-600">
            "Every change, sign-in, refusal and gateway decision, hash-chained. Filter to deny and error events to find what was refused; the view lives in the URL."
        </p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(context).await {
                    Ok(ctx) => {
                        let for_retention = ctx.clone();
                        view! {
                            <Header ctx=ctx.clone() query />
                            <FilterBar ctx query />
                            <Show when=move || for_retention.can_manage_retention>
                                {let ctx = for_retention.clone(); view! { <RetentionSection ctx action=retention /> }}
                            </Show>
                        }.into_any()
                    }
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Counting…"</p> }>
            {move || Suspend::new(async move {
                match loaded(histogram).await {
                    Ok(h) => view! { <HistogramView h query=query.get_untracked() /> }.into_any(),
                    Err(error) => view! { <div class="mt-4" role="alert"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
        <div class="mt-4">
            <Transition fallback=|| view! { <p class="text-slate-500">"Loading events…"</p> }>
                {move || Suspend::new(async move {
                    match loaded(page).await {
                        Ok(page) => view! { <EventTable page query=query.get_untracked() /> }.into_any(),
                        // The histogram above already says what is wrong with the filters.
                        Err(AppError::Validation { .. }) => ().into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
    .into_any()
}

#[component]
fn Header(ctx: AuditContext, query: Memo<AuditQuery>) -> impl IntoView {
    let verified = match ctx.verified {
        None => view! {
            <p class="text-sm text-amber-800" data-testid="last-verified">
                "The chain has not been verified yet: run " <code>"staff-console audit verify"</code> "."
            </p>
        }
        .into_any(),
        Some(LastVerification { finished_at, to_seq, checked, broken: None }) => view! {
            <p class="text-sm text-slate-700" data-testid="last-verified">
                "Chain verified up to event " <strong>{to_seq}</strong> " (" {checked} " events checked) on "
                <LocalTime at=finished_at /> "; the head is at event " {ctx.head_seq} "."
            </p>
        }
        .into_any(),
        Some(LastVerification { finished_at, broken: Some((seq, problem)), .. }) => view! {
            <p class="text-sm font-medium text-red-800" role="alert" data-testid="last-verified">
                "The last verification, on " <LocalTime at=finished_at /> ", found the chain broken at "
                <a class="link" href=format!("/audit/{seq}")>"event " {seq}</a> ": " {problem}
            </p>
        }
        .into_any(),
    };
    let export = ctx.can_export.then(|| view! { <ExportLinks query /> });
    view! {
        <div class="mt-4 flex max-w-6xl flex-wrap items-start justify-between gap-3">
            <div>{verified}</div>
            {export}
        </div>
    }
    .into_any()
}

/// The export links: plain downloads, with a progress line when the page is interactive.
#[component]
fn ExportLinks(query: Memo<AuditQuery>) -> impl IntoView {
    let progress = RwSignal::new(None::<String>);
    let href = move |format: &str| {
        format!(
            "/audit/export?{}",
            query.get().to_query(&[("format", format)])
        )
    };
    let start = move |ev: leptos::ev::MouseEvent, format: &'static str| {
        #[cfg(feature = "hydrate")]
        {
            ev.prevent_default();
            let url = href(format);
            let window = query
                .get_untracked()
                .parse(browser_now(), super::EXPORT_MAX_DAYS)
                .map(|f| (f.from, f.to));
            progress.set(Some("Starting the export…".into()));
            leptos::task::spawn_local(async move {
                let said = match download(&url, window.ok(), progress).await {
                    Ok(rows) => format!("Downloaded {rows}."),
                    Err(message) => format!("Export failed: {message}"),
                };
                progress.set(Some(said));
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (ev, format);
    };
    view! {
        <div class="text-sm">
            <span class="mr-2 text-slate-600">"Export this view:"</span>
            <a class="btn" data-testid="export-csv" href=move || href("csv") download="" on:click=move |ev| start(ev, "csv")>"CSV"</a>
            " "
            <a class="btn" data-testid="export-jsonl" href=move || href("jsonl") download="" on:click=move |ev| start(ev, "jsonl")>"JSON Lines"</a>
            <p class="mt-1 text-slate-600" role="status" aria-live="polite" data-testid="export-progress">{move || progress.get()}</p>
        </div>
    }
}

#[cfg(feature = "hydrate")]
fn browser_now() -> OffsetDateTime {
    let ms = js_sys::Date::now() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Fetches the export as a stream, showing how far through the window it is, then saves it
/// under the server's file name.
#[cfg(feature = "hydrate")]
async fn download(
    url: &str,
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    progress: RwSignal<Option<String>>,
) -> Result<String, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let js = |e: wasm_bindgen::JsValue| format!("{e:?}");
    let window_obj = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window_obj.fetch_with_str(url))
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    if !response.ok() {
        let text = JsFuture::from(response.text().map_err(js)?)
            .await
            .map_err(js)?;
        return Err(text.as_string().unwrap_or_default().trim().to_owned());
    }
    let name = response
        .headers()
        .get("content-disposition")
        .ok()
        .flatten()
        .and_then(|v| {
            v.split("filename=\"")
                .nth(1)
                .map(|n| n.trim_end_matches('"').to_owned())
        })
        .unwrap_or_else(|| "audit-export".into());
    let body = response.body().ok_or("the export had no body")?;
    let reader: web_sys::ReadableStreamDefaultReader = body
        .get_reader()
        .dyn_into()
        .map_err(|_| "the export could not be read")?;
    let parts = js_sys::Array::new();
    let mut bytes = 0_usize;
    let mut lines = 0_usize;
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(js)?;
        let done = js_sys::Reflect::get(&step, &"done".into())
            .map_err(js)?
            .as_bool()
            .unwrap_or(true);
        if done {
            break;
        }
        let chunk: js_sys::Uint8Array = js_sys::Reflect::get(&step, &"value".into())
            .map_err(js)?
            .dyn_into()
            .map_err(js)?;
        let data = chunk.to_vec();
        bytes += data.len();
        lines += data.iter().filter(|b| **b == b'\n').count();
        parts.push(&chunk);
        let share = match (window, last_stamp(&data)) {
            (Some((from, to)), Some(at)) if to > from => {
                let done = (at - from).as_seconds_f64() / (to - from).as_seconds_f64();
                format!(" · {:.0} % of the window", (done * 100.0).clamp(0.0, 100.0))
            }
            _ => String::new(),
        };
        progress.set(Some(format!(
            "Downloading… {} KiB, about {lines} lines{share}",
            bytes / 1024
        )));
    }
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(js)?;
    let href = web_sys::Url::create_object_url_with_blob(&blob).map_err(js)?;
    let document = window_obj.document().ok_or("no document")?;
    let anchor: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(js)?
        .dyn_into()
        .map_err(|_| "no link element")?;
    anchor.set_href(&href);
    anchor.set_download(&name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&href);
    Ok(format!("{name} ({} KiB)", bytes / 1024))
}

/// The last event time in a chunk: `2026-11-22T10:00:00.123456Z`, as both formats write it.
#[cfg(feature = "hydrate")]
fn last_stamp(data: &[u8]) -> Option<OffsetDateTime> {
    let shape = |w: &[u8]| {
        w.len() == 27
            && w[4] == b'-'
            && w[7] == b'-'
            && w[10] == b'T'
            && w[13] == b':'
            && w[16] == b':'
            && w[19] == b'.'
            && w[26] == b'Z'
    };
    let start = (0..data.len().saturating_sub(26))
        .rev()
        .find(|&i| shape(&data[i..i + 27]))?;
    let text = std::str::from_utf8(&data[start..start + 27]).ok()?;
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// The filters, as a plain GET form.
#[component]
fn FilterBar(ctx: AuditContext, query: Memo<AuditQuery>) -> impl IntoView {
    let q = query.get_untracked();
    let custom = !q.from.is_empty() || !q.to.is_empty();
    let input = |id: &'static str,
                 name: &'static str,
                 label: &'static str,
                 value: String,
                 width: &'static str| {
        view! {
            <div>
                <label for=id class="block text-xs font-medium text-slate-600">{label}</label>
                <input id=id name=name type="search" autocomplete="off" spellcheck="false"
                    class=format!("input mt-1 {width}") value=value />
            </div>
        }
    };
    let window_value = if custom {
        String::new()
    } else {
        q.window.clone()
    };
    view! {
        <form method="get" class="mt-4 max-w-6xl rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200" aria-label="Filter events">
            <div class="flex flex-wrap items-end gap-3">
                <fieldset>
                    <legend class="block text-xs font-medium text-slate-600">"Outcome"</legend>
                    <div class="mt-2 flex gap-3">
                        {OUTCOMES.into_iter().map(|o| {
                            let checked = q.outcome.iter().any(|x| x == o);
                            let id = format!("f-outcome-{o}");
                            let label_for = id.clone();
                            view! {
                                <label for=label_for class="flex items-center gap-1 text-sm">
                                    <input id=id type="checkbox" name="outcome" value=o checked=checked />
                                    {o}
                                </label>
                            }
                        }).collect_view()}
                    </div>
                </fieldset>
                <div>
                    <label for="f-source" class="block text-xs font-medium text-slate-600">"Source"</label>
                    <select id="f-source" name="source" class="input mt-1">
                        <option value="" selected=q.source.is_empty()>"Any"</option>
                        {SOURCES.into_iter().map(|(k, l)| view! { <option value=k selected=q.source == k>{l}</option> }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="f-tenant" class="block text-xs font-medium text-slate-600">"Tenant"</label>
                    <select id="f-tenant" name="tenant" class="input mt-1 max-w-48">
                        <option value="" selected=q.tenant.is_empty()>"All tenants"</option>
                        {ctx.tenants.into_iter().map(|t| {
                            let selected = q.tenant == t.slug;
                            view! { <option value=t.slug selected=selected>{t.name}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div>
                    <label for="f-window" class="block text-xs font-medium text-slate-600">"Window"</label>
                    <select id="f-window" name="window" class="input mt-1">
                        {PRESETS.into_iter().map(|(k, l, _)| {
                            let selected = window_value == k || (window_value.is_empty() && !custom && k == super::DEFAULT_PRESET);
                            view! { <option value=k selected=selected>{l}</option> }
                        }).collect_view()}
                    </select>
                </div>
                {input("f-from", "from", "From (UTC, custom)", q.from.clone(), "w-48")}
                {input("f-to", "to", "To (UTC, custom)", q.to.clone(), "w-48")}
            </div>
            <div class="mt-3 flex flex-wrap items-end gap-3">
                {input("f-actor", "actor", "Actor (id or email)", q.actor.clone(), "w-56")}
                {input("f-action", "action", "Action (token.* for a prefix)", q.action.clone(), "w-48")}
                {input("f-target", "target", "Target", q.target.clone(), "w-48")}
                {input("f-code", "code", "Code", q.code.clone(), "w-36")}
                {input("f-ip", "ip", "IP or network", q.ip.clone(), "w-40")}
                {input("f-incident", "incident", "Incident id", q.incident.clone(), "w-72")}
                <button type="submit" class="btn">"Apply"</button>
                <a href="/audit" class="link text-sm">"Clear"</a>
            </div>
            <p class="mt-2 text-xs text-slate-500">
                "A custom from/to (2026-11-22T10:00, UTC) wins over the window preset. Times in the table are shown in your local time; hover one for UTC."
            </p>
        </form>
    }
    .into_any()
}

/// How long each tenant's events are kept, and the form to change it (admins).
#[component]
fn RetentionSection(ctx: AuditContext, action: ServerAction<SetAuditRetention>) -> impl IntoView {
    use crate::components::form::{Field, FormErrors, FormFeedback, ReasonField};
    let first = ctx
        .tenants
        .first()
        .map(|t| t.slug.clone())
        .unwrap_or_default();
    let tenant = RwSignal::new(first);
    let months = RwSignal::new("12".to_owned());
    let reason = RwSignal::new(String::new());
    let errors = FormErrors::of(action.value());
    let done = Signal::derive(move || {
        matches!(action.value().get(), Some(Ok(()))).then(|| "Retention set.".to_owned())
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        action.dispatch(SetAuditRetention {
            tenant: tenant.get_untracked(),
            months: months.get_untracked(),
            reason: reason.get_untracked(),
        });
    };
    let tenants = ctx.tenants.clone();
    view! {
        <details class="mt-4 max-w-6xl rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200">
            <summary class="cursor-pointer font-semibold">"Retention per tenant"</summary>
            <p class="mt-2 max-w-prose text-sm text-slate-600">
                "Events are kept for their tenant's class, counted from the end of their month, then their whole partition is dropped (audited). A change applies to events written from now on; older events keep the class they were written under. Platform events are kept 84 months."
            </p>
            <DataTable caption="Retention per tenant" testid="retention-table" class="mt-2"
                rows=tenants.len()
                empty=("No tenants", "Retention is set per tenant, and there are no tenants yet.")
                columns=vec![Col::new("Tenant"), Col::new("Kept")]>
                    {tenants.into_iter().map(|t| view! {
                        <tr><td>{t.name}</td><td>{t.months} " months"</td></tr>
                    }).collect_view()}
                </DataTable>
            <form class="mt-3 flex flex-wrap items-start gap-3" novalidate on:submit=submit>
                <Field id="ret-tenant" label="Tenant" error=errors.field("tenant")>
                    <select id="ret-tenant" class="input mt-1" aria-describedby="ret-tenant-error" on:change=move |ev| tenant.set(event_target_value(&ev))>
                        {ctx.tenants.into_iter().map(|t| view! { <option value=t.slug>{t.name}</option> }).collect_view()}
                    </select>
                </Field>
                <Field id="ret-months" label="Keep for" error=errors.field("months")>
                    <select id="ret-months" class="input mt-1" aria-describedby="ret-months-error" on:change=move |ev| months.set(event_target_value(&ev))>
                        {super::RETENTION_CLASSES.into_iter().map(|m| view! { <option value=m.to_string() selected=m == 12>{m} " months"</option> }).collect_view()}
                    </select>
                </Field>
                <ReasonField id="ret-reason" value=reason error=errors.field("reason") />
                <button type="submit" class="btn mt-6">"Set retention"</button>
            </form>
            <StepUp errors retry=redispatch(action) id="retention-step-up" />
            <FormFeedback error=errors.other() done />
        </details>
    }
    .into_any()
}

/// The window's events per bucket, stacked by outcome, as server-rendered SVG: each bar
/// links to the same filters narrowed to its bucket.
#[component]
fn HistogramView(h: Histogram, query: AuditQuery) -> impl IntoView {
    const W: f64 = 960.0;
    const H: f64 = 120.0;
    let bars = h.counts.len().max(1);
    let width = W / bars as f64;
    let max = h
        .counts
        .iter()
        .map(|c| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0);
    let total: i64 = h.counts.iter().flatten().sum();
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" class=\"h-32 w-full\" role=\"group\" aria-labelledby=\"hist-title\" data-testid=\"histogram\"><title id=\"hist-title\">Events per {} over the window, by outcome</title>",
        bucket_label(h.bucket_secs)
    );
    let colours = ["#cbd5e1", "#f59e0b", "#dc2626"];
    for (i, counts) in h.counts.iter().enumerate() {
        let start = h.from + time::Duration::seconds(h.bucket_secs * i as i64);
        let end = (start + time::Duration::seconds(h.bucket_secs)).min(h.to);
        let href = format!("/audit?{}", query.with_window(start, end).to_query(&[]));
        let label = format!(
            "{} to {}: {} success, {} deny, {} error",
            utc_seconds(start),
            utc_seconds(end),
            counts[0],
            counts[1],
            counts[2]
        );
        let x = i as f64 * width;
        svg.push_str(&format!(
            "<a href=\"{}\" data-testid=\"histogram-bar\"><title>{}</title><rect x=\"{x:.2}\" y=\"0\" width=\"{:.2}\" height=\"{H}\" fill=\"transparent\"/>",
            escape(&href),
            escape(&label),
            width
        ));
        let mut y = H;
        for (n, colour) in counts.iter().zip(colours) {
            if *n == 0 || max == 0 {
                continue;
            }
            let height = (*n as f64 / max as f64) * (H - 4.0);
            y -= height;
            svg.push_str(&format!(
                "<rect x=\"{:.2}\" y=\"{y:.2}\" width=\"{:.2}\" height=\"{height:.2}\" fill=\"{colour}\"/>",
                x + 0.5,
                (width - 1.0).max(0.5)
            ));
        }
        svg.push_str("</a>");
    }
    svg.push_str("</svg>");
    view! {
        <section class="mt-4 max-w-6xl rounded-lg bg-white p-3 shadow-sm ring-1 ring-slate-200" aria-labelledby="hist-heading">
            <div class="flex flex-wrap items-baseline justify-between gap-2 text-sm">
                <h2 id="hist-heading" class="font-semibold">
                    {total} " events in the window"
                    <span class="ml-2 font-normal text-slate-600">"(bars of " {bucket_label(h.bucket_secs)} ", tallest " {max} "; select one to narrow the window)"</span>
                </h2>
                <p class="flex gap-3 text-xs">
                    <span><span class="inline-block h-3 w-3 rounded-sm bg-slate-300 align-middle"></span>" success"</span>
                    <span><span class="inline-block h-3 w-3 rounded-sm bg-amber-500 align-middle"></span>" deny"</span>
                    <span><span class="inline-block h-3 w-3 rounded-sm bg-red-600 align-middle"></span>" error"</span>
                </p>
            </div>
            <div class="mt-2" inner_html=svg></div>
            <div class="flex justify-between text-xs text-slate-600">
                <LocalTime at=h.from />
                <LocalTime at=h.to />
            </div>
        </section>
    }
    .into_any()
}

fn bucket_label(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[component]
fn EventTable(page: EventPage, query: AuditQuery) -> impl IntoView {
    let rows = page.rows.len();
    let next = page
        .next
        .as_deref()
        .map(|cursor| format!("/audit?{}", query.to_query(&[("after", cursor)])));
    let first = format!("/audit?{}", query.to_query(&[]));
    view! {
        <DataTable caption="Audit events, newest first" testid="audit-table" class="max-w-6xl"
            rows
            empty=("No events match", "Nothing in this window matches these filters. Widen the window or clear a filter.")
            columns=vec![Col::new("Time"), Col::new("Outcome"), Col::new("Action"), Col::new("Code"), Col::new("Actor"), Col::new("Target"), Col::new("Source"), Col::new("Tenant"), Col::new("IP")]>
                {page.rows.into_iter().map(|row| {
                    let href = format!("/audit/{}", row.seq);
                    let badge = outcome_badge(row.outcome);
                    let actor = row.actor_name.clone().unwrap_or_else(|| row.actor.clone());
                    view! {
                        <tr data-seq=row.seq>
                            <td class="whitespace-nowrap"><a class="link" href=href><LocalTime at=row.ts /><span class="sr-only">", event " {row.seq}</span></a></td>
                            <td><span class=badge>{row.outcome.as_str()}</span></td>
                            <td class="font-mono text-xs">{row.action}</td>
                            <td class="font-mono text-xs">{row.code}</td>
                            <td class="max-w-48 truncate" title=row.actor>{actor}</td>
                            <td class="max-w-48 truncate font-mono text-xs">{row.target}</td>
                            <td>{row.source.as_str()}</td>
                            <td>{row.tenant}</td>
                            <td class="font-mono text-xs">{row.ip}</td>
                        </tr>
                    }
                }).collect_view()}
            </DataTable>
        {(rows > 0).then(|| view! { <KeysetPager first first_label="Newest" next next_label="Older events" /> })}
    }
    .into_any()
}

/// `/audit/{seq}`: one event.
#[component]
pub fn AuditEventPage() -> impl IntoView {
    let params = use_params_map();
    let seq = Memo::new(move |_| params.read().get("seq").unwrap_or_default());
    let event = Resource::new(move || seq.get(), audit_event);
    view! {
        <Title text="Audit event" />
        <p class="text-sm"><a class="link" href="/audit">"← Audit log"</a></p>
        <Transition fallback=|| view! { <p class="mt-4 text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match loaded(event).await {
                    Ok(detail) => view! { <EventDetailView detail /> }.into_any(),
                    Err(error) => view! { <div class="mt-4"><ErrorNotice error /></div> }.into_any(),
                }
            })}
        </Transition>
    }
    .into_any()
}

#[component]
fn EventDetailView(detail: EventDetail) -> impl IntoView {
    let row = detail.row.clone();
    let around = |field: &str, value: &str| {
        let from = row.ts - time::Duration::minutes(PIVOT_MINUTES);
        let to = row.ts + time::Duration::minutes(PIVOT_MINUTES);
        let mut q = AuditQuery::default().with_window(from, to);
        match field {
            "actor" => q.actor = value.to_owned(),
            "ip" => q.ip = value.to_owned(),
            _ => q.target = value.to_owned(),
        }
        format!("/audit?{}", q.to_query(&[]))
    };
    let mut pivots = vec![(
        "pivot-actor",
        format!("Same actor ({}) ±{PIVOT_MINUTES} min", row.actor),
        around("actor", &row.actor),
    )];
    if let Some(ip) = &row.ip {
        pivots.push((
            "pivot-ip",
            format!("Same IP ({ip}) ±{PIVOT_MINUTES} min"),
            around("ip", ip),
        ));
    }
    let token = [Some(&row.actor), row.target.as_ref()]
        .into_iter()
        .flatten()
        .find(|v| v.starts_with("pat:"))
        .cloned();
    if let Some(token) = token {
        let href = if row.actor == token {
            around("actor", &token)
        } else {
            around("target", &token)
        };
        pivots.push((
            "pivot-token",
            format!("Same token ({token}) ±{PIVOT_MINUTES} min"),
            href,
        ));
    }
    let field = |label: &'static str, value: Option<String>| {
        view! {
            <div class="py-2 sm:grid sm:grid-cols-4 sm:gap-4">
                <dt class="text-sm font-medium text-slate-600">{label}</dt>
                <dd class="break-all font-mono text-sm sm:col-span-3">{value.unwrap_or_else(|| "—".into())}</dd>
            </div>
        }
    };
    let badge = outcome_badge(row.outcome);
    view! {
        <h1 class="mt-2 text-2xl font-semibold">"Event " {row.seq} ": " <span class="font-mono">{row.action.clone()}</span></h1>
        <p class="mt-1 text-slate-700"><span class=badge>{row.outcome.as_str()}</span> " at " <LocalTime at=row.ts /></p>
        <nav class="mt-4 flex flex-wrap gap-3" aria-label="Pivots">
            {pivots.into_iter().map(|(id, label, href)| view! { <a class="btn" data-testid=id href=href>{label}</a> }).collect_view()}
        </nav>
        <dl class="mt-4 max-w-4xl divide-y divide-slate-200 rounded-lg bg-white px-4 shadow-sm ring-1 ring-slate-200" data-testid="event-detail">
            {field("Time (UTC)", Some(utc_seconds(row.ts)))}
            {field("Tenant", row.tenant.clone())}
            {field("Source", Some(row.source.as_str().to_owned()))}
            {field("Actor", Some(row.actor.clone()))}
            {field("Actor name", row.actor_name.clone())}
            {field("Action", Some(row.action.clone()))}
            {field("Outcome", Some(row.outcome.as_str().to_owned()))}
            {field("Code", row.code.clone())}
            {field("Target", row.target.clone())}
            {field("IP", row.ip.clone())}
            {field("User agent", detail.user_agent.clone())}
            {field("Request id", detail.request_id.clone())}
            {field("Incident", detail.incident_id.map(|i| i.to_string()))}
            {field("Reason", detail.reason.clone())}
            {field("Retention", Some(format!("{} months", detail.retention_months)))}
            {field("Previous hash", Some(detail.prev_hash.clone()))}
            {field("Hash", Some(detail.hash.clone()))}
            <div class="py-2">
                <dt class="text-sm font-medium text-slate-600">"Details"</dt>
                <dd><pre class="mt-1 overflow-x-auto rounded bg-slate-50 p-2 text-xs">{detail.details.clone()}</pre></dd>
            </div>
        </dl>
    }
    .into_any()
}
