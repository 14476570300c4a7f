//! The connect node: accepts sockets, authenticates the upgrade, owns the buckets, routes pushes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use natter_infra::Sessions;
use natter_proto::ErrorCode;
use natter_proto::frame::ServerFrame;
use natter_proto::handle::LogicHandle;
use natter_proto::token::TokenKeys;
use natter_proto::v1::{ConnectionEvent, Message, PushLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::bucket::{Bucket, bucket_index};
use crate::config::ConnectConfig;
use crate::connection::{CloseReason, Connection, Outgoing};
use crate::routine::{Completion, PushJob};
use crate::socket::{Socket, drive};

/// One connect node.
pub struct ConnectServer {
    config: ConnectConfig,
    /// This node's name, as sessions record it.
    node: String,
    buckets: Vec<Arc<Bucket>>,
    logic: LogicHandle,
    sessions: Arc<dyn Sessions>,
    tokens: TokenKeys,
    next_connection_id: AtomicU64,
    /// Flips to true when the node shuts down.
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for ConnectServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectServer")
            .field("node", &self.node)
            .field("buckets", &self.buckets.len())
            .finish_non_exhaustive()
    }
}

/// An HTTP problem response refusing an upgrade.
fn refusal(status: StatusCode, code: ErrorCode, detail: &str) -> ErrorResponse {
    let body = serde_json::json!({
        "type": format!("https://natter.dev/problems/{}", code.as_str()),
        "title": code.as_str(),
        "status": status.as_u16(),
        "detail": detail,
        "code": code.as_str(),
    });
    let mut response = ErrorResponse::new(Some(body.to_string()));
    *response.status_mut() = status;
    if let Ok(value) = "application/problem+json".parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// The token in `?token=` or in `Authorization: Bearer`.
fn bearer_token(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get("authorization") {
        let value = value.to_str().ok()?;
        return value.strip_prefix("Bearer ").map(str::to_string);
    }
    request.uri().query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "token")
            .map(|(_, value)| value.to_string())
    })
}

impl ConnectServer {
    /// A node named `node` whose buckets and routines start now (needs a tokio runtime).
    pub fn new(
        config: ConnectConfig,
        node: String,
        logic: LogicHandle,
        sessions: Arc<dyn Sessions>,
        tokens: TokenKeys,
    ) -> Arc<Self> {
        let buckets = (0..config.buckets.max(1))
            .map(|index| Bucket::new(index, &config))
            .collect();
        let (shutdown, _) = watch::channel(false);
        Arc::new(ConnectServer {
            config,
            node,
            buckets,
            logic,
            sessions,
            tokens,
            next_connection_id: AtomicU64::new(1),
            shutdown,
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn bucket(&self, user_id: i64) -> &Arc<Bucket> {
        &self.buckets[bucket_index(user_id, self.buckets.len())]
    }

    /// Open connections on this node.
    pub fn connection_count(&self) -> usize {
        self.buckets
            .iter()
            .map(|bucket| bucket.connection_count())
            .sum()
    }

    /// Accept connections until [`ConnectServer::shutdown`].
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let mut stopping = self.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = stopping.changed() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let server = Arc::clone(&self);
                        tokio::spawn(async move { server.handle_socket(stream).await });
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }

    /// Close every connection and stop accepting.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        for bucket in &self.buckets {
            for connection in bucket.all_connections() {
                connection.close(CloseReason::ShuttingDown);
            }
        }
    }

    fn socket_config(&self) -> WebSocketConfig {
        let hard_max = self
            .config
            .hard_max_frame_bytes
            .max(self.config.max_frame_bytes);
        WebSocketConfig::default()
            .read_buffer_size(self.config.read_buffer_bytes)
            .write_buffer_size(self.config.write_buffer_bytes)
            .max_write_buffer_size(self.config.write_buffer_bytes + 2 * hard_max)
            .max_message_size(Some(hard_max))
            .max_frame_size(Some(hard_max))
    }

    // The refusal type is tungstenite's `ErrorResponse`, fixed by its handshake callback.
    #[allow(clippy::result_large_err)]
    async fn handle_socket(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut user_id = None;
        let authenticate = |request: &Request, response: Response| {
            if request.uri().path() != "/ws" {
                return Err(refusal(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    "connect at /ws",
                ));
            }
            let Some(token) = bearer_token(request) else {
                return Err(refusal(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "pass the access token as ?token= or Authorization: Bearer",
                ));
            };
            match self.tokens.verify(&token) {
                Ok(id) => {
                    user_id = Some(id);
                    Ok(response)
                }
                Err(error) => Err(refusal(
                    StatusCode::UNAUTHORIZED,
                    error.code(),
                    &error.to_string(),
                )),
            }
        };
        // Futures that finish early are boxed: an async fn's state is as large as its largest
        // await, and this one lives as long as the connection, so an unboxed handshake or
        // gRPC call would cost every idle connection its size for hours.
        let socket = match Box::pin(tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            authenticate,
            Some(self.socket_config()),
        ))
        .await
        {
            // Boxed: moved through three futures, it would otherwise take room in each.
            Ok(socket) => Box::new(socket),
            Err(error) => {
                tracing::debug!(%error, "upgrade refused or failed");
                return;
            }
        };
        let Some(user_id) = user_id else { return };
        self.run_connection(socket, user_id).await;
    }

    async fn run_connection(&self, socket: Box<Socket>, user_id: i64) {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let connection = Connection::new(
            id,
            user_id,
            self.config.outbound_queue,
            self.config.inbound_rate,
            self.config.inbound_burst,
        );
        // The session must exist before any frame is read: the sync/live seam relies on it.
        if let Err(status) = Box::pin(self.logic.connected(self.event(user_id, id))).await {
            tracing::warn!(%status, "registering a session failed; closing");
            connection.send_frame(&ServerFrame::error(
                ErrorCode::Unavailable,
                "the server cannot take connections right now",
                None,
            ));
            connection.close(CloseReason::ShuttingDown);
            drive(socket, &connection, &self.logic, &self.config).await;
            return;
        }
        let bucket = Arc::clone(self.bucket(user_id));
        bucket.add(Arc::clone(&connection));
        metrics::gauge!("natter_connections_open").increment(1.0);
        metrics::counter!("natter_connections_total").increment(1);
        connection.send_frame(&ServerFrame::Welcome {
            user_id: user_id.to_string(),
            connection_id: id,
            node: self.node.clone(),
        });
        if *self.shutdown.borrow() {
            connection.close(CloseReason::ShuttingDown);
        }
        drive(socket, &connection, &self.logic, &self.config).await;
        bucket.remove(&connection);
        metrics::gauge!("natter_connections_open").decrement(1.0);
        if let Err(status) = Box::pin(self.logic.disconnected(self.event(user_id, id))).await {
            tracing::warn!(%status, "unregistering a session failed");
        }
    }

    /// The session event of a connection (built when needed, so idle connections do not
    /// each keep a copy of the node's name).
    fn event(&self, user_id: i64, connection_id: u64) -> ConnectionEvent {
        ConnectionEvent {
            user_id,
            node: self.node.clone(),
            connection_id,
        }
    }

    /// Queue a batch to every connection of `users` on this node; the lock is released once
    /// every bucket has queued it. Returns how many users had connections here.
    pub async fn push_users(
        &self,
        users: &[i64],
        messages: &[Message],
        lock: Option<PushLock>,
    ) -> usize {
        let mut per_bucket: BTreeMap<usize, Vec<Arc<Connection>>> = BTreeMap::new();
        let mut reached = 0;
        for user in users {
            let index = bucket_index(*user, self.buckets.len());
            let connections = self.buckets[index].user_connections(*user);
            if !connections.is_empty() {
                reached += 1;
                per_bucket.entry(index).or_default().extend(connections);
            }
        }
        let messages: Arc<[Outgoing]> = messages.iter().map(Outgoing::new).collect();
        let completion = lock.map(|lock| {
            Completion::new(
                per_bucket.len().max(1),
                lock,
                Arc::clone(&self.sessions),
                self.config.hold_push_locks,
            )
        });
        if per_bucket.is_empty() {
            // Nobody here to push to: the push is complete at once.
            if let Some(completion) = &completion {
                completion.part_done().await;
            }
        }
        for (index, connections) in per_bucket {
            let job = PushJob {
                connections,
                messages: Arc::clone(&messages),
                completion: completion.clone(),
            };
            if !self.buckets[index].dispatch(job).await {
                tracing::warn!(bucket = index, "bucket routines are gone; push dropped");
            }
        }
        reached
    }

    /// Queue a batch to every connection on this node (system broadcast).
    pub async fn push_all(&self, messages: &[Message]) -> usize {
        let messages: Arc<[Outgoing]> = messages.iter().map(Outgoing::new).collect();
        let mut reached = 0;
        for bucket in &self.buckets {
            let connections = bucket.all_connections();
            if connections.is_empty() {
                continue;
            }
            reached += connections.len();
            let job = PushJob {
                connections,
                messages: Arc::clone(&messages),
                completion: None,
            };
            bucket.dispatch(job).await;
        }
        reached
    }

    /// Close every connection of a user; returns how many.
    pub fn kick(&self, user_id: i64) -> usize {
        let connections = self.bucket(user_id).user_connections(user_id);
        for connection in &connections {
            connection.close(CloseReason::Kicked);
        }
        connections.len()
    }
}
