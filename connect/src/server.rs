//! The connect node: accepts sockets, authenticates the upgrade, owns the buckets, routes pushes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use natter_infra::Sessions;
use natter_proto::frame::ServerFrame;
use natter_proto::handle::LogicHandle;
use natter_proto::token::TokenKeys;
use natter_proto::v1::{ConnectionEvent, Message, PushLock};
use natter_proto::{ErrorCode, trace_child};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::Instrument;

use crate::acks::AckBatcher;
use crate::bucket::{Bucket, bucket_index};
use crate::config::ConnectConfig;
use crate::connection::{CloseReason, Connection, ConnectionOptions, Outgoing};
use crate::gate::{HandshakeGate, HandshakeLimits, HandshakeTicket};
use crate::lock_releases::LockReleases;
use crate::routine::{Completion, PushJob, Recipients};
use crate::sends::SendBatcher;
use crate::socket::{Ending, Socket, drive};

/// How long a push's answer waits for its lock's release, so that the pusher learns of it
/// from the answer instead of watching the lock.
const RELEASE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(20);

/// What a push did on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// The users (for a user push) or connections (for a group push) it was queued for.
    pub reached: usize,
    /// Its lock was released before the answer: every share was queued.
    pub released: bool,
}

/// One connect node.
pub struct ConnectServer {
    config: ConnectConfig,
    /// This node's name, as sessions record it.
    node: String,
    buckets: Vec<Arc<Bucket>>,
    logic: LogicHandle,
    /// The connections' acknowledgements, on their way to logic together.
    acks: AckBatcher,
    /// Sends on their way to logic, gathered.
    sends: SendBatcher,
    sessions: Arc<dyn Sessions>,
    /// The releases of push locks, gathered when the sessions are remote.
    releases: LockReleases,
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

/// The value of `key` in the upgrade request's query string.
fn query_value<'a>(request: &'a Request, key: &str) -> Option<&'a str> {
    request.uri().query().and_then(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value)
    })
}

/// The token in `?token=` or in `Authorization: Bearer`.
fn bearer_token(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get("authorization") {
        let value = value.to_str().ok()?;
        return natter_proto::token::bearer(value).map(str::to_string);
    }
    query_value(request, "token").map(str::to_string)
}

/// The client's `?echo=` and `?acked=` choices (`true` or `false`, true when left out).
fn connection_options(request: &Request) -> Result<ConnectionOptions, String> {
    let flag = |key: &str| match query_value(request, key) {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{key} must be true or false, not {other:?}")),
    };
    Ok(ConnectionOptions {
        echo: flag("echo")?,
        acked: flag("acked")?,
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
            acks: AckBatcher::new(logic.clone()),
            sends: SendBatcher::new(logic.clone()),
            logic,
            releases: LockReleases::new(Arc::clone(&sessions)),
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

    /// Accept connections until [`ConnectServer::shutdown`], each held to `limits` until its
    /// upgrade is done.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, limits: HandshakeLimits) {
        tokio::spawn(Arc::clone(&self).watch_session_memory());
        let mut stopping = self.shutdown.subscribe();
        let gate = HandshakeGate::new(limits.per_address);
        loop {
            tokio::select! {
                _ = stopping.changed() => return,
                (stream, ticket) = gate.accept(&listener) => {
                    let server = Arc::clone(&self);
                    let timeout = limits.timeout();
                    tokio::spawn(async move {
                        server.handle_socket(stream, ticket, timeout).await;
                    });
                }
            }
        }
    }

    /// Registers this node's connections again whenever the sessions store's memory begins
    /// anew (Redis lost its data): task finds a user's connections there, so until then live
    /// pushes to them would go nowhere. Runs until [`ConnectServer::shutdown`].
    async fn watch_session_memory(self: Arc<Self>) {
        let mut stopping = self.shutdown.subscribe();
        let mut ticks = tokio::time::interval(self.config.session_check_interval());
        let mut known = None;
        loop {
            tokio::select! {
                _ = stopping.changed() => return,
                _ = ticks.tick() => {}
            }
            match self.sessions.memory_began().await {
                Ok(began) => {
                    if known.is_some_and(|known| known != began) {
                        self.register_connections_again().await;
                    }
                    known = Some(began);
                }
                Err(error) => tracing::debug!(%error, "checking the sessions store failed"),
            }
        }
    }

    /// Tells logic of every open connection again, as if each had just connected: for when
    /// the cluster forgot them (the sessions store lost its memory, or this node's lease ran
    /// out and it was taken for dead).
    pub async fn register_connections_again(&self) {
        let mut open = Vec::new();
        for bucket in &self.buckets {
            bucket.for_each_connection(|connection| open.push(Arc::clone(connection)));
        }
        tracing::warn!(
            connections = open.len(),
            "the cluster forgot this node's connections; registering them again"
        );
        for connection in open {
            let event = self.event(connection.user_id, connection.id);
            if let Err(status) = self.logic.connected(event.clone()).await {
                tracing::warn!(%status, "registering a connection again failed");
                continue;
            }
            // One that ended meanwhile has said goodbye already, perhaps before this
            // registration: unregister it, or its session would outlive it.
            if !self.bucket(connection.user_id).holds(&connection)
                && let Err(status) = self.logic.disconnected(event).await
            {
                tracing::warn!(%status, "unregistering an ended connection failed");
            }
        }
        metrics::counter!("natter_sessions_registered_again_total").increment(1);
    }

    /// Close every connection and stop accepting.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        for bucket in &self.buckets {
            bucket.for_each_connection(|connection| connection.close(CloseReason::ShuttingDown));
        }
    }

    /// Runs `connection` on `socket` until it ends, its frames answered through this node's
    /// calls to logic.
    async fn drive(&self, socket: Box<Socket>, connection: &Arc<Connection>) -> Ending {
        drive(
            socket,
            &self.node,
            connection,
            &self.logic,
            &self.acks,
            &self.sends,
            &self.config,
        )
        .await
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
    async fn handle_socket(
        self: Arc<Self>,
        stream: TcpStream,
        ticket: HandshakeTicket,
        timeout: Duration,
    ) {
        let _ = stream.set_nodelay(true);
        if self.config.send_buffer_bytes > 0
            && let Err(error) =
                socket2::SockRef::from(&stream).set_send_buffer_size(self.config.send_buffer_bytes)
        {
            tracing::debug!(%error, "setting the send buffer failed");
        }
        let mut user_id = None;
        let mut options = ConnectionOptions::default();
        let authenticate = |request: &Request, response: Response| {
            if request.uri().path() != "/ws" {
                return Err(refusal(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    "connect at /ws",
                ));
            }
            options = connection_options(request).map_err(|message| {
                refusal(StatusCode::BAD_REQUEST, ErrorCode::InvalidInput, &message)
            })?;
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
        let upgrade = Box::pin(tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            authenticate,
            Some(self.socket_config()),
        ));
        let socket = match tokio::time::timeout(timeout, upgrade).await {
            // Boxed: moved through three futures, it would otherwise take room in each.
            Ok(Ok(socket)) => Box::new(socket),
            Ok(Err(error)) => {
                tracing::debug!(%error, "upgrade refused or failed");
                return;
            }
            Err(_) => {
                metrics::counter!("natter_handshakes_refused_total", "reason" => "timeout")
                    .increment(1);
                tracing::debug!("upgrade not finished in time; closing");
                return;
            }
        };
        drop(ticket);
        let Some(user_id) = user_id else { return };
        self.run_connection(socket, user_id, options).await;
    }

    async fn run_connection(&self, socket: Box<Socket>, user_id: i64, options: ConnectionOptions) {
        let id = self.next_connection_id.fetch_add(1, Ordering::Relaxed);
        let connection = Connection::with_options(
            id,
            user_id,
            options,
            self.config.outbound_queue,
            self.config.inbound_rate,
            self.config.inbound_burst,
        );
        // In the bucket before the session exists, so a membership change logic announces
        // while this connection registers finds it; pushes before the first sync are dropped
        // anyway (see `Connection`).
        let bucket = Arc::clone(self.bucket(user_id));
        bucket.add(Arc::clone(&connection));
        // The session must exist before any frame is read: the sync/live seam relies on it.
        let (groups, epoch) = match Box::pin(self.logic.connected(self.event(user_id, id))).await {
            Ok(reply) => (reply.group_ids, reply.epoch),
            Err(status) => {
                tracing::warn!(%status, "registering a session failed; closing");
                bucket.remove(&connection);
                natter_proto::refusal::answered(
                    "connect",
                    ErrorCode::Unavailable,
                    status.message(),
                );
                connection.send_frame(&ServerFrame::error(
                    ErrorCode::Unavailable,
                    "the server cannot take connections right now",
                    None,
                ));
                connection.close(CloseReason::ShuttingDown);
                self.drive(socket, &connection).await;
                return;
            }
        };
        for group in groups {
            bucket.join_group(group, &connection);
        }
        metrics::gauge!("natter_connections_open").increment(1.0);
        metrics::counter!("natter_connections_total").increment(1);
        connection.send_frame(&ServerFrame::Welcome {
            user_id: user_id.to_string(),
            connection_id: id,
            node: self.node.clone(),
            epoch,
        });
        if *self.shutdown.borrow() {
            connection.close(CloseReason::ShuttingDown);
        }
        self.drive(socket, &connection).await;
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
    /// every bucket has queued it. Says how many users had connections here.
    pub async fn push_users(
        &self,
        users: &[i64],
        messages: &[Message],
        lock: Option<PushLock>,
    ) -> Pushed {
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
        let shares = per_bucket
            .into_iter()
            .map(|(index, connections)| (index, Recipients::Connections(connections)))
            .collect();
        let released = self
            .dispatch(shares, messages, lock)
            .instrument(trace_child!("connect.fanout", users = reached))
            .await;
        Pushed { reached, released }
    }

    /// Queue a batch to every online connection of a group on this node: each bucket with
    /// members gets one job, and its routine walks the bucket's list for the group. The lock is
    /// released once every bucket has queued it. Says how many connections it went to.
    pub async fn push_group(
        &self,
        group: i64,
        messages: &[Message],
        lock: Option<PushLock>,
    ) -> Pushed {
        let mut reached = 0;
        let mut shares = Vec::new();
        for (index, bucket) in self.buckets.iter().enumerate() {
            let members = bucket.group_connection_count(group);
            if members > 0 {
                reached += members;
                shares.push((index, Recipients::Group(group)));
            }
        }
        let released = self
            .dispatch(shares, messages, lock)
            .instrument(trace_child!("connect.fanout", group, connections = reached))
            .await;
        Pushed { reached, released }
    }

    /// Queue a batch to every connection on this node (system broadcast); returns how many.
    pub async fn push_all(&self, messages: &[Message]) -> usize {
        let mut reached = 0;
        let mut shares = Vec::new();
        for (index, bucket) in self.buckets.iter().enumerate() {
            let connections = bucket.connection_count();
            if connections > 0 {
                reached += connections;
                shares.push((index, Recipients::Everyone));
            }
        }
        self.dispatch(shares, messages, None).await;
        reached
    }

    /// Serialises the batch once and hands each bucket its share; the lock, if any, is
    /// released when the last share is queued (at once when there are none).
    /// Hands each bucket its share; returns whether the push's lock was released within
    /// [`RELEASE_PATIENCE`] (the shares are queued in well under that unless a limiter holds
    /// one back, and then the pusher watches the lock instead).
    async fn dispatch(
        &self,
        shares: Vec<(usize, Recipients)>,
        messages: &[Message],
        lock: Option<PushLock>,
    ) -> bool {
        let messages: Arc<[Outgoing]> = messages.iter().map(Outgoing::new).collect();
        let completion = lock.map(|lock| {
            Completion::new(
                shares.len().max(1),
                lock,
                self.releases.clone(),
                self.config.hold_push_locks,
            )
        });
        if shares.is_empty()
            && let Some(completion) = &completion
        {
            completion.part_done().await;
        }
        for (index, recipients) in shares {
            let job = PushJob {
                recipients,
                messages: Arc::clone(&messages),
                completion: completion.clone(),
            };
            if !self.buckets[index].dispatch(job).await {
                tracing::warn!(bucket = index, "bucket routines are gone; push dropped");
            }
        }
        match completion {
            Some(completion) => completion.released_within(RELEASE_PATIENCE).await,
            None => false,
        }
    }

    /// A user joined and left groups: every connection of theirs on this node joins and
    /// leaves the groups' lists at once. Returns how many connections it changed.
    pub fn update_groups(&self, user_id: i64, joined: &[i64], left: &[i64]) -> usize {
        let bucket = self.bucket(user_id);
        let connections = bucket.user_connections(user_id);
        for connection in &connections {
            for group in joined {
                bucket.join_group(*group, connection);
            }
            for group in left {
                bucket.leave_group(*group, connection);
            }
        }
        connections.len()
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use natter_infra::embedded::MemorySessions;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    use super::*;

    struct Node {
        server: Arc<ConnectServer>,
        sessions: Arc<MemorySessions>,
        /// One live connection per user, users 1..=USERS.
        connections: Vec<Arc<Connection>>,
    }

    const USERS: i64 = 40;
    const GROUP: i64 = 7;

    fn node() -> Node {
        let sessions = Arc::new(MemorySessions::new());
        let config = ConnectConfig {
            buckets: 8,
            ..ConnectConfig::default()
        };
        let server = ConnectServer::new(
            config,
            "test".into(),
            // Logic is not reached: pushes and group lists live in connect alone.
            LogicHandle::unreachable("logic"),
            Arc::clone(&sessions) as Arc<dyn Sessions>,
            TokenKeys::new(b"test secret"),
        );
        let connections = (1..=USERS)
            .map(|user| {
                let connection = Connection::new(user as u64, user, 64, 10, 10);
                connection.begin_sync(&BTreeMap::new());
                connection.finish_sync(BTreeMap::new());
                connection.take_queued(); // the `synced` frame
                server.bucket(user).add(Arc::clone(&connection));
                connection
            })
            .collect();
        Node {
            server,
            sessions,
            connections,
        }
    }

    fn message(seq: u64) -> Message {
        Message {
            object: format!("group:{GROUP}"),
            seq,
            id: seq,
            ..Message::default()
        }
    }

    /// Frames queued on each connection, by user, once `expected` frames have been queued in
    /// all (the routines run on the runtime), plus any that arrive just after.
    async fn received(node: &Node, expected: usize) -> Vec<(i64, Vec<Utf8Bytes>)> {
        let mut got: Vec<(i64, Vec<Utf8Bytes>)> = node
            .connections
            .iter()
            .map(|connection| (connection.user_id, Vec::new()))
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut settled = false;
        loop {
            for ((_, frames), connection) in got.iter_mut().zip(&node.connections) {
                frames.extend(connection.take_queued());
            }
            let total: usize = got.iter().map(|(_, frames)| frames.len()).sum();
            if settled {
                return got;
            }
            if total >= expected {
                // One more look, so a frame too many would show.
                settled = true;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {total} of {expected} frames arrived"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (boundedly) for a push's lock to be released.
    async fn assert_released(node: &Node, key: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.sessions.lock_holder(key).await.unwrap().is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{key} was never released"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_group_push_reaches_exactly_the_online_members_through_one_shared_buffer() {
        let node = node();
        let members: Vec<i64> = (1..=USERS).filter(|user| user % 3 == 0).collect();
        for user in &members {
            assert_eq!(node.server.update_groups(*user, &[GROUP], &[]), 1);
        }
        let lock = PushLock {
            key: "lock:group:7".into(),
            token: "t1".into(),
        };
        assert!(
            node.sessions
                .try_lock(&lock.key, &lock.token, Duration::from_secs(30))
                .await
                .unwrap()
        );
        let reached = node
            .server
            .push_group(GROUP, &[message(1)], Some(lock.clone()))
            .await;
        assert_eq!(reached.reached, members.len());
        assert!(reached.released, "the answer says the lock is free");
        let got = received(&node, members.len()).await;
        let mut buffers = Vec::new();
        for (user, frames) in &got {
            if members.contains(user) {
                assert_eq!(frames.len(), 1, "member {user} gets the message once");
                buffers.push(frames[0].as_str().as_ptr());
            } else {
                assert!(frames.is_empty(), "non-member {user} gets nothing");
            }
        }
        // Serialised once: every member's frame is the same bytes in memory.
        assert!(buffers.windows(2).all(|pair| pair[0] == pair[1]));
        // Every bucket queued its share, so the lock is free again.
        assert_released(&node, &lock.key).await;
    }

    #[tokio::test]
    async fn joins_leaves_and_disconnects_change_who_a_group_push_reaches_at_once() {
        let node = node();
        for user in 1..=10 {
            node.server.update_groups(user, &[GROUP], &[]);
        }
        // One leaves, one disconnects, one joins; nobody reconnects.
        node.server.update_groups(3, &[], &[GROUP]);
        let gone = &node.connections[4]; // user 5
        node.server.bucket(5).remove(gone);
        node.server.update_groups(25, &[GROUP], &[]);
        let pushed = node.server.push_group(GROUP, &[message(1)], None).await;
        assert_eq!(pushed.reached, 9);
        assert!(!pushed.released, "no lock, nothing released");
        let got = received(&node, 9).await;
        let reached_users: Vec<i64> = got
            .iter()
            .filter(|(_, frames)| !frames.is_empty())
            .map(|(user, _)| *user)
            .collect();
        assert_eq!(reached_users, [1, 2, 4, 6, 7, 8, 9, 10, 25]);
    }

    #[tokio::test]
    async fn a_broadcast_reaches_everyone_and_a_kick_closes_only_its_user() {
        let node = node();
        let reached = node.server.push_all(&[message(1)]).await;
        assert_eq!(reached, USERS as usize);
        let got = received(&node, USERS as usize).await;
        assert!(got.iter().all(|(_, frames)| frames.len() == 1));
        assert_eq!(node.server.kick(12), 1);
        for connection in &node.connections {
            let expected = (connection.user_id == 12).then_some(CloseReason::Kicked);
            assert_eq!(connection.close_reason(), expected);
        }
    }

    #[tokio::test]
    async fn a_gathered_call_does_each_push_and_answers_them_in_order() {
        use natter_proto::v1::connect_server::Connect;
        use natter_proto::v1::{PushBatchRequest, PushGroupRequest, PushUsersRequest};

        let node = node();
        let service = crate::service::ConnectService::new(Arc::clone(&node.server));
        node.server.update_groups(5, &[GROUP], &[]);
        let mut locks = Vec::new();
        for key in ["lock:user:1", "lock:user:999", "lock:group:7"] {
            let lock = PushLock {
                key: key.into(),
                token: format!("token of {key}"),
            };
            assert!(
                node.sessions
                    .try_lock(&lock.key, &lock.token, Duration::from_secs(30))
                    .await
                    .unwrap()
            );
            locks.push(lock);
        }
        let users = |user_ids: Vec<i64>, lock: &PushLock| PushUsersRequest {
            user_ids,
            messages: vec![message(1)],
            lock: Some(lock.clone()),
            trace_parent: String::new(),
        };
        let request = PushBatchRequest {
            users: vec![users(vec![1, 2], &locks[0]), users(vec![999], &locks[1])],
            groups: vec![PushGroupRequest {
                group_id: GROUP,
                messages: vec![message(2)],
                lock: Some(locks[2].clone()),
                trace_parent: String::new(),
            }],
        };
        let reply = service
            .push_batch(tonic::Request::new(request))
            .await
            .expect("a gathered call is answered")
            .into_inner();
        let reached = |replies: &[natter_proto::v1::PushReply]| -> Vec<(u32, bool)> {
            replies
                .iter()
                .map(|reply| (reply.connections, reply.released))
                .collect()
        };
        // Users 1 and 2 are here, 999 is not, and the group has one member online.
        assert_eq!(reached(&reply.users), [(2, true), (0, true)]);
        assert_eq!(reached(&reply.groups), [(1, true)]);
        let got = received(&node, 3).await;
        let frames_of = |user: i64| got.iter().find(|(id, _)| *id == user).unwrap().1.len();
        assert_eq!((frames_of(1), frames_of(2), frames_of(5)), (1, 1, 1));
        assert_eq!(got.iter().map(|(_, frames)| frames.len()).sum::<usize>(), 3);
        for lock in &locks {
            assert_released(&node, &lock.key).await;
        }
    }

    #[tokio::test]
    async fn a_group_push_with_nobody_online_releases_its_lock_at_once() {
        let node = node();
        let lock = PushLock {
            key: "lock:group:8".into(),
            token: "t2".into(),
        };
        node.sessions
            .try_lock(&lock.key, &lock.token, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(
            node.server
                .push_group(8, &[message(1)], Some(lock.clone()))
                .await,
            Pushed {
                reached: 0,
                released: true
            }
        );
        assert_released(&node, &lock.key).await;
    }
}
