//! The table of staff sessions, shared by "Your sessions" and the admins' list of everyone's.

use crate::auth::StaffSession;
use crate::components::table::{Col, DataTable};
use crate::components::time::utc_minutes;
use leptos::prelude::*;

/// Live sessions, most recently seen first: device, address, sign-in (and its factor), last
/// seen, step-up; `whose` adds a column for the person; `action` renders each row's last
/// cell (an End button, or "This session").
#[component]
pub fn SessionsTable(
    /// The sessions.
    rows: Vec<StaffSession>,
    /// Whether to show whose each session is.
    whose: bool,
    /// The caption, for screen readers and the tests.
    caption: &'static str,
    /// The table's test id.
    testid: &'static str,
    /// What the empty table says.
    empty: (&'static str, &'static str),
    /// The last cell of a row.
    action: Callback<StaffSession, AnyView>,
) -> impl IntoView {
    let mut columns = Vec::new();
    if whose {
        columns.push(Col::new("Person"));
    }
    columns.extend([
        Col::new("Device"),
        Col::new("Address"),
        Col::new("Signed in (UTC)"),
        Col::new("Last seen (UTC)"),
        Col::new("Stepped up"),
        Col::hidden("Actions"),
    ]);
    view! {
        <DataTable caption testid class="mt-4" rows=rows.len() empty columns>
            {rows.into_iter().map(|s| {
                let stepped = match s.stepped_up_at {
                    Some(at) => utc_minutes(at),
                    None => "no".to_owned(),
                };
                let signed_in = format!("{} ({})", utc_minutes(s.signed_in_at), s.factor.label());
                let person = whose.then(|| view! { <td>{s.email.clone()}</td> });
                let device = s.device.clone();
                let ip = s.ip.clone().unwrap_or_else(|| "unknown".to_owned());
                let seen = utc_minutes(s.last_seen_at);
                let row_id = s.id.to_string();
                view! {
                    <tr data-session=row_id>
                        {person}
                        <td>{device}</td>
                        <td class="font-mono">{ip}</td>
                        <td>{signed_in}</td>
                        <td>{seen}</td>
                        <td>{stepped}</td>
                        <td>{action.run(s)}</td>
                    </tr>
                }
            }).collect_view()}
        </DataTable>
    }
}
