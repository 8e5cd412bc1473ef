//! `loaded(resource).await`: the one way a view awaits a resource inside a `Suspend`.
//!
//! Why not `resource.await`: a page's views can outlive its reactive owner. When a route is
//! left, the router disposes the page's owner (its resources and memos) but the page's
//! render effects live on until the old view is dropped, which happens later (after the new
//! route has loaded; a `Transition` keeps the old view up meanwhile). A resource fetch still
//! in flight then completes, notifies those effects, and they run again: a new `Suspend`
//! whose future awaits the disposed resource. Awaiting a disposed resource panics
//! (reactive_graph's `AsyncDerived::into_future`), and a panic in WebAssembly kills the
//! page. The audit panel hit this on nearly every quick detail/pivot/back, because its
//! resources follow the query string, which changes in the same tick as the route.
//!
//! `loaded` checks, in the same poll as the await starts and again in the poll where the
//! value arrives, that the resource still exists; if it does not, the page is gone and the
//! future simply never resolves (the `Suspend` is aborted when its view is dropped). Values
//! a view reads right after the await (a page's memos, which share the resource's owner)
//! are alive whenever the resource is, because an owner disposes all of its values at once.

use leptos::prelude::*;

/// Awaits `resource`, unless the page that owns it has been left: then never resolves.
pub async fn loaded<T>(resource: Resource<T>) -> T
where
    T: Clone + Send + Sync + 'static,
{
    if resource.is_disposed() {
        return left_page().await;
    }
    let value = resource.await;
    if resource.is_disposed() {
        return left_page().await;
    }
    value
}

/// The page was left while it loaded: nothing will show what it was loading.
async fn left_page<T>() -> T {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    /// Every `Suspend` in the app awaits through [`super::loaded`] before anything else: a
    /// bare `resource.await` compiles, works, and panics in the browser when its page is
    /// left mid-load, so the rule is checked here rather than remembered.
    #[test]
    fn every_suspend_awaits_its_resource_through_loaded() {
        let mut offenders = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut suspends = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|ext| ext != "rs") || path.ends_with("loaded.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
                for (at, _) in text.match_indices("Suspend::new(async move {") {
                    suspends += 1;
                    let body = &text[at..];
                    let first_await = body.find(".await").unwrap_or(body.len());
                    if !body[..first_await].contains("loaded(") {
                        let line = text[..at].lines().count();
                        offenders.push(format!("{}:{line}", path.display()));
                    }
                }
            }
        }
        assert!(
            suspends >= 15,
            "found only {suspends} Suspends: is the scan broken?"
        );
        assert!(
            offenders.is_empty(),
            "await resources with `loaded(resource).await` first in every Suspend:\n{}",
            offenders.join("\n")
        );
    }
}
