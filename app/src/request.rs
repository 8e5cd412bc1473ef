//! Per-request facts the server's middleware attaches, readable from Leptos context.

use leptos::prelude::use_context;
use std::sync::Arc;

/// The id of the HTTP request being served: returned in `x-request-id`, on every log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

/// The current request's id, when rendering or running a server function for a request.
///
/// Resources may run on other tasks than the request's, outside its tracing span; this reads
/// the id from the request parts in Leptos context instead, which follow the owner.
pub fn current_request_id() -> Option<Arc<str>> {
    use_context::<http::request::Parts>()?
        .extensions
        .get::<RequestId>()
        .map(|id| id.0.clone())
}

/// The client's address as the server resolved it: the peer, or, behind a trusted proxy,
/// the address that proxy forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);
