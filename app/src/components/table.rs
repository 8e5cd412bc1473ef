//! Every list in the console is one of these: a caption for screen readers, column headers
//! scoped to their columns, the rows, and for keyset-paged lists the pager under it. A list
//! with no rows is its empty state instead (an [`EmptyState`]: what would be listed, or what
//! to do), so no page leaves an empty table or a bare "None." behind.

use crate::components::feedback::EmptyState;
use leptos::prelude::*;

/// A column header. [`Col::hidden`] names a column for screen readers only (a column of
/// buttons).
#[derive(Clone, Copy)]
pub struct Col(&'static str, bool);

impl Col {
    /// A visible header.
    pub const fn new(title: &'static str) -> Self {
        Self(title, true)
    }

    /// A header only screen readers announce.
    pub const fn hidden(title: &'static str) -> Self {
        Self(title, false)
    }
}

/// A table of rows (the children: `<tr>`s) under `columns`, captioned `caption`; or, when
/// there are no `rows`, the `empty` state in its place (the children are then not rendered).
#[component]
pub fn DataTable(
    /// What the table lists, as screen readers announce it.
    caption: &'static str,
    /// The column headers, in order.
    columns: Vec<Col>,
    /// How many rows the children render: 0 shows `empty` instead of the table.
    rows: usize,
    /// The empty state's title and sentence (what would be listed here, or what to do):
    /// `("No overrides", "The defaults apply to everyone.")`.
    empty: (&'static str, &'static str),
    /// The `data-testid`, so tests and people can point at the table (not at the empty
    /// state: a test finding the table finds rows).
    #[prop(into)]
    testid: String,
    /// Layout classes beyond the table's own (`mt-4`, `max-w-6xl`), for the empty state too.
    #[prop(optional)]
    class: &'static str,
    /// The rows.
    children: Children,
) -> impl IntoView {
    if rows == 0 {
        let (title, body) = empty;
        return view! {
            <div class=(!class.is_empty()).then_some(class)>
                <EmptyState title>{body}</EmptyState>
            </div>
        }
        .into_any();
    }
    let class = if class.is_empty() {
        "data-table".to_owned()
    } else {
        format!("data-table {class}")
    };
    view! {
        <table class=class data-testid=testid>
            <caption class="sr-only">{caption}</caption>
            <thead>
                <tr>
                    {columns.into_iter().map(|Col(title, visible)| if visible {
                        view! { <th scope="col">{title}</th> }.into_any()
                    } else {
                        view! { <th scope="col"><span class="sr-only">{title}</span></th> }.into_any()
                    }).collect_view()}
                </tr>
            </thead>
            <tbody>{children()}</tbody>
        </table>
    }
    .into_any()
}

/// The links under a keyset-paged list: back to the first page, and on to the next when
/// there is one (`next`: its URL, made with [`crate::cursor::encode`]'s cursor).
#[component]
pub fn KeysetPager(
    /// The first page's URL.
    first: String,
    /// What the first link says ("First page", "Newest").
    #[prop(default = "First page")]
    first_label: &'static str,
    /// The next page's URL, when there are more rows.
    next: Option<String>,
    /// What the next link says ("Next page", "Older events").
    #[prop(default = "Next page")]
    next_label: &'static str,
) -> impl IntoView {
    view! {
        <nav class="mt-3 flex gap-4 text-sm" aria-label="Pages">
            <a class="link" href=first>{first_label}</a>
            {next.map(|href| view! { <a class="link" href=href rel="next" data-testid="next-page">{next_label}</a> })}
        </nav>
    }
}
