//! The HTTP server of every process (the API, `/metrics`, `/healthz`): the router over
//! hyper's HTTP/1.1 with the handshake limits of [`HandshakeLimits`], so a socket that never
//! sends a request, or trickles one, is closed instead of holding a file descriptor for good.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use natter_connect::HandshakeLimits;
use natter_connect::gate::{HandshakeGate, HandshakeTicket};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::telemetry;

/// Serves `router` plus `/metrics` over HTTP until `stopping` turns true, then lets the
/// requests in progress finish.
pub(crate) fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    stopping: watch::Receiver<bool>,
    limits: HandshakeLimits,
) -> JoinHandle<()> {
    let router = router.route(
        "/metrics",
        axum::routing::get(|| async { telemetry::render_metrics() }),
    );
    tokio::spawn(async move {
        let gate = HandshakeGate::new(limits.per_address);
        let mut connections = JoinSet::new();
        let mut stop = stopping.clone();
        let stopped = stop_requested(&mut stop);
        tokio::pin!(stopped);
        loop {
            tokio::select! {
                () = &mut stopped => break,
                // Finished connections are reaped as they go, so the set stays small.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                (stream, ticket) = gate.accept(&listener) => {
                    connections.spawn(serve_connection(
                        stream,
                        ticket,
                        router.clone(),
                        limits.timeout(),
                        stopping.clone(),
                    ));
                }
            }
        }
        while connections.join_next().await.is_some() {}
    })
}

/// One HTTP connection: its first request's headers must be in by `timeout` (counted from
/// the accept), and every later request's within `timeout` of the previous response, so an
/// idle keep-alive connection is closed too.
async fn serve_connection(
    stream: TcpStream,
    ticket: HandshakeTicket,
    router: axum::Router,
    timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let first_request = Arc::new(Notify::new());
    // The place in the handshake is given back when the first request arrives.
    let ticket = Mutex::new(Some(ticket));
    let arrived = Arc::clone(&first_request);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        if ticket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
        {
            arrived.notify_one();
        }
        let router = router.clone();
        // The router never fails: every error is already a response.
        async move { router.oneshot(request).await }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        biased;
        () = first_request.notified() => {}
        result = connection.as_mut() => {
            log_ended(result);
            return;
        }
        () = tokio::time::sleep(timeout) => {
            metrics::counter!("natter_handshakes_refused_total", "reason" => "timeout")
                .increment(1);
            return;
        }
        () = stop_requested(&mut stopping) => return,
    }
    tokio::select! {
        result = connection.as_mut() => log_ended(result),
        () = stop_requested(&mut stopping) => {
            connection.as_mut().graceful_shutdown();
            log_ended(connection.await);
        }
    }
}

/// Returns once `stopping` turns true (or its sender is gone).
async fn stop_requested(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not held: it may not cross an await.
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// A connection's end is worth a debug line at most: clients go away all the time.
fn log_ended(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}
