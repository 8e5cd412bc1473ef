//! Graceful shutdown: in-flight requests finish, then the server stops; a stuck request
//! cannot hold the process past the grace period.
#![allow(clippy::expect_used, clippy::unwrap_used)] // Tests fail loudly by design.

use axum::routing::get;
use axum::Router;
use server::serve::serve;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

/// A router whose one route takes `delay`, and says on `started` when a request reached it
/// (so a test stops the server with the request in flight, not after guessing how long the
/// request takes to arrive).
fn slow_router(delay: Duration, started: Arc<Notify>) -> Router {
    Router::new().route(
        "/slow",
        get(move || async move {
            started.notify_one();
            tokio::time::sleep(delay).await;
            "finished"
        }),
    )
}

async fn start(
    router: Router,
    grace: Duration,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(serve(
        listener,
        router,
        async move {
            let _ = rx.await;
        },
        grace,
    ));
    (addr, tx, handle)
}

async fn request(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}

#[tokio::test]
async fn in_flight_requests_finish_before_the_server_stops() {
    let started = Arc::new(Notify::new());
    let (addr, stop, server) = start(
        slow_router(Duration::from_millis(600), started.clone()),
        Duration::from_secs(10),
    )
    .await;
    let client = tokio::spawn(request(addr));
    started.notified().await;
    stop.send(()).expect("signal");

    let answer = client.await.expect("client task");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("finished"), "{answer}");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stopped")
        .expect("join")
        .expect("clean stop");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn a_stuck_request_cannot_outlast_the_grace_period() {
    let started = Arc::new(Notify::new());
    let (addr, stop, server) = start(
        slow_router(Duration::from_secs(60), started.clone()),
        Duration::from_millis(300),
    )
    .await;
    let _client = tokio::spawn(request(addr));
    started.notified().await;
    let asked = Instant::now();
    stop.send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stopped within the grace period")
        .expect("join")
        .expect("stop");
    assert!(asked.elapsed() < Duration::from_secs(3));
}
