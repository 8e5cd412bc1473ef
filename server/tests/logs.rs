//! The log lines a request produces: JSON, with its request id, with emails redacted.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

mod common;

use common::{app, get, unreachable_pool};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        let text = String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect()
    }
}

// current_thread runtime: the thread-local subscriber sees every event of the request.
#[tokio::test]
async fn request_log_lines_are_json_with_the_request_id_and_no_email() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(server::logging::subscriber(captured.clone()));

    let router = app(unreachable_pool());
    let res = get(&router, "/lookup/alice@example.com").await;
    let request_id = res.header("x-request-id").to_owned();

    let lines = captured.lines();
    let finished = lines
        .iter()
        .find(|l| l["message"] == "request finished")
        .expect("a request finished line");
    assert_eq!(finished["span"]["request_id"], request_id.as_str());
    assert_eq!(finished["status"], 404);
    let all = serde_json::to_string(&lines).expect("json");
    assert!(!all.contains("alice@example.com"), "email leaked: {all}");
    assert!(all.contains("[email]"), "path was logged redacted: {all}");
}

#[tokio::test]
async fn internal_errors_are_logged_with_their_reference_and_request_id() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(server::logging::subscriber(captured.clone()));

    let router = app(unreachable_pool());
    let res = common::get_as(&router, "/", common::SOME_SESSION).await;
    let request_id = res.header("x-request-id").to_owned();

    let lines = captured.lines();
    let internal = lines
        .iter()
        .find(|l| l["message"] == "internal error")
        .expect("the database failure was logged");
    assert_eq!(internal["request_id"], request_id.as_str());
    let ref_id = internal["ref_id"].as_str().expect("ref id");
    assert!(res.body.contains(ref_id), "the page shows the reference");
}
