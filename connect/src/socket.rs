//! One connection's task: it reads frames, writes what is queued, keeps the heartbeat and
//! says goodbye, all from a single future.
//!
//! One task per connection (rather than a reader and a writer) halves the per-connection task
//! memory and needs no channel or lock between the halves. The socket is polled by hand so
//! that reading, writing and the frame being handled all make progress side by side: a client
//! that stops reading stalls only its own writes, and a slow `send` through logic stalls only
//! that client's next frame, never its pushes.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream};
use natter_proto::ErrorCode;
use natter_proto::frame::{ClientFrame, ServerFrame};
use natter_proto::handle::LogicHandle;
use natter_proto::send_request::ClientSend;
use natter_proto::v1::{Acknowledgement, Cursor, ReadRequest, SyncRequest, TypingRequest};
use natter_proto::{ObjectId, trace_root};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};
use tracing::Instrument;

use crate::acks::AckBatcher;
use crate::config::ConnectConfig;
use crate::connection::{CloseReason, Connection};
use crate::sends::SendBatcher;

/// An upgraded WebSocket.
pub type Socket = WebSocketStream<TcpStream>;

/// The least time between two typing indicators a connection passes on.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);

/// How long the goodbye (what is queued, then the close frame) may take.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// How a connection's task ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server closes it for this reason; a goodbye is due.
    Closed(CloseReason),
    /// The client closed it or the socket failed.
    ClientGone,
}

/// A frame being answered through logic.
type Handling<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Runs one connection until it ends, then says goodbye when the server closed it.
pub async fn drive(
    socket: Box<Socket>,
    node: &str,
    connection: &Arc<Connection>,
    logic: &LogicHandle,
    acks: &AckBatcher,
    sends: &SendBatcher,
    config: &ConnectConfig,
) -> Ending {
    let mut driver = Driver {
        socket,
        connection,
        answers: Answers {
            node,
            connection,
            logic,
            acks,
            sends,
        },
        config,
        handling: None,
        writing: VecDeque::new(),
        ping_due: false,
        unflushed: false,
        heartbeat: Box::pin(tokio::time::sleep(config.heartbeat_interval())),
        last_heard: Instant::now(),
        strikes: 0,
        last_typing: None,
    };
    let ending = std::future::poll_fn(|context| driver.poll_connection(context)).await;
    // Boxed: an idle connection's task should not carry room for its goodbye.
    Box::pin(driver.finish(ending)).await;
    ending
}

/// The state of one connection's task.
struct Driver<'a> {
    socket: Box<Socket>,
    connection: &'a Connection,
    answers: Answers<'a>,
    config: &'a ConnectConfig,
    /// The frame being answered; reading waits until it is (one frame at a time per client).
    handling: Option<Handling<'a>>,
    /// Frames taken from the queue and not yet handed to the socket.
    writing: VecDeque<Utf8Bytes>,
    /// A ping should go out.
    ping_due: bool,
    /// Frames were handed to the socket since the last flush.
    unflushed: bool,
    /// Fires at the next ping, or when the client's silence runs out.
    heartbeat: Pin<Box<Sleep>>,
    /// When the client last sent anything.
    last_heard: Instant,
    /// Frames refused for rate in a row.
    strikes: u32,
    /// When the last typing indicator was passed on (more than one a second are dropped).
    last_typing: Option<Instant>,
}

impl Driver<'_> {
    /// Says goodbye when the server closed the connection, or sends the close reply
    /// tungstenite queued when the client did.
    async fn finish(&mut self, ending: Ending) {
        let goodbye = async {
            match ending {
                Ending::Closed(reason) => {
                    if let Err(error) = self.say_goodbye(reason).await {
                        tracing::debug!(%error, reason = reason.reason(), "goodbye failed");
                    }
                }
                Ending::ClientGone => {
                    let _ = self.socket.flush().await;
                }
            }
        };
        // A client that stopped reading must not hold the task.
        if tokio::time::timeout(GOODBYE_TIMEOUT, goodbye)
            .await
            .is_err()
        {
            tracing::debug!(?ending, "goodbye timed out");
        }
    }

    /// Polls every part until none makes progress; ready when the connection ends.
    fn poll_connection(&mut self, context: &mut Context<'_>) -> Poll<Ending> {
        loop {
            if let Some(reason) = self.connection.close_reason() {
                return Poll::Ready(Ending::Closed(reason));
            }
            let mut progressed = self.poll_heartbeat(context);
            if let Some(handling) = &mut self.handling
                && handling.as_mut().poll(context).is_ready()
            {
                self.handling = None;
                progressed = true;
            }
            match self.poll_read(context) {
                Poll::Ready(Some(ending)) => return Poll::Ready(ending),
                Poll::Ready(None) => progressed = true,
                Poll::Pending => {}
            }
            match self.poll_write(context) {
                Poll::Ready(Some(ending)) => return Poll::Ready(ending),
                Poll::Ready(None) => progressed = true,
                Poll::Pending => {}
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }

    /// Pings on schedule; closes a client silent for longer than the timeout.
    fn poll_heartbeat(&mut self, context: &mut Context<'_>) -> bool {
        if self.heartbeat.as_mut().poll(context).is_pending() {
            return false;
        }
        let now = Instant::now();
        let silent_until = self.last_heard + self.config.heartbeat_timeout();
        if now >= silent_until {
            self.connection.close(CloseReason::HeartbeatTimeout);
        } else {
            self.ping_due = true;
            let next_ping = now + self.config.heartbeat_interval();
            self.heartbeat.as_mut().reset(next_ping.min(silent_until));
        }
        true
    }

    /// Reads and dispatches frames while no frame is being answered. `Ready(None)`: progress.
    fn poll_read(&mut self, context: &mut Context<'_>) -> Poll<Option<Ending>> {
        if self.handling.is_some() {
            return Poll::Pending;
        }
        let message = match Pin::new(&mut *self.socket).poll_next(context) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(Some(Ending::ClientGone)),
            Poll::Ready(Some(Err(tungstenite::Error::Capacity(_)))) => {
                self.connection.close(CloseReason::FrameTooLarge);
                return Poll::Ready(None);
            }
            // RFC 6455 §7.4.1: answered with a close frame saying why, not a reset.
            Poll::Ready(Some(Err(tungstenite::Error::Utf8(_)))) => {
                self.connection.close(CloseReason::InvalidPayload);
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(tungstenite::Error::Protocol(violation))))
                if !matches!(violation, ProtocolError::ResetWithoutClosingHandshake) =>
            {
                tracing::debug!(%violation, "protocol violation; closing");
                self.connection.close(CloseReason::ProtocolError);
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::debug!(%error, "socket read failed");
                return Poll::Ready(Some(Ending::ClientGone));
            }
            Poll::Ready(Some(Ok(message))) => message,
        };
        // Any frame, pongs included, shows the client is alive.
        self.last_heard = Instant::now();
        match message {
            WsMessage::Text(text) => self.on_text(text),
            WsMessage::Binary(_) => {
                self.answers
                    .refuse(ErrorCode::BadFrame, "binary frames are not supported", None);
            }
            WsMessage::Close(_) => return Poll::Ready(Some(Ending::ClientGone)),
            // Pings are answered by the socket itself.
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
        }
        Poll::Ready(None)
    }

    /// Checks a text frame's rate and size, answers pings at once, and starts the handling of
    /// anything that needs logic.
    fn on_text(&mut self, text: Utf8Bytes) {
        metrics::counter!("natter_frames_received_total").increment(1);
        if self.connection.inbound.check().is_err() {
            self.strikes += 1;
            if self.strikes > self.config.inbound_strikes {
                self.connection.close(CloseReason::RateLimited);
            } else {
                // A refused send names its cid, or its client could not tell which send to
                // make again and would wait for an answer that never comes. Only refused
                // frames pay for this parse.
                let cid = ClientFrame::parse(text.as_str())
                    .ok()
                    .and_then(ClientFrame::into_cid);
                self.answers
                    .refuse(ErrorCode::RateLimited, "too many frames; slow down", cid);
            }
            return;
        }
        self.strikes = 0;
        if text.len() > self.config.max_frame_bytes {
            let message = format!(
                "the frame has {} bytes; at most {} are allowed",
                text.len(),
                self.config.max_frame_bytes
            );
            self.answers.refuse(ErrorCode::FrameTooLarge, message, None);
            return;
        }
        match ClientFrame::parse(text.as_str()) {
            Ok(ClientFrame::Ping {}) => {
                self.connection.send_frame(&ServerFrame::Pong);
            }
            // Indicators are hints: beyond one a second they are dropped without a word.
            Ok(ClientFrame::Typing { .. })
                if self
                    .last_typing
                    .is_some_and(|last| last.elapsed() < TYPING_INTERVAL) => {}
            Ok(frame @ ClientFrame::Typing { .. }) => {
                self.last_typing = Some(Instant::now());
                self.handling = Some(Box::pin(self.answers.answer(frame)));
            }
            // Boxed: only a frame in flight costs the memory of a logic call.
            Ok(frame) => self.handling = Some(Box::pin(self.answers.answer(frame))),
            Err(error) => self.answers.refuse(error.code(), error.to_string(), None),
        }
    }

    /// Hands queued frames (and a due ping) to the socket and flushes them in one go.
    /// `Ready(None)`: progress.
    fn poll_write(&mut self, context: &mut Context<'_>) -> Poll<Option<Ending>> {
        // Register before taking, so a frame queued after the take wakes this task.
        self.connection.register_waker(context.waker());
        if self.writing.is_empty() {
            self.writing = self.connection.take_queued();
        }
        let mut progressed = false;
        while self.ping_due || !self.writing.is_empty() {
            match self.socket.poll_ready_unpin(context) {
                Poll::Pending => break,
                Poll::Ready(Err(error)) => return Poll::Ready(Some(write_failed(error))),
                Poll::Ready(Ok(())) => {}
            }
            let message = if self.ping_due {
                self.ping_due = false;
                WsMessage::Ping(Default::default())
            } else if let Some(frame) = self.writing.pop_front() {
                WsMessage::Text(frame)
            } else {
                break;
            };
            if let Err(error) = self.socket.start_send_unpin(message) {
                return Poll::Ready(Some(write_failed(error)));
            }
            self.unflushed = true;
            progressed = true;
        }
        if self.unflushed {
            match self.socket.poll_flush_unpin(context) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    // Let the next burst start from an empty deque rather than keep this one's.
                    if self.writing.is_empty() {
                        self.writing = VecDeque::new();
                    }
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Some(write_failed(error))),
                Poll::Pending => {}
            }
        }
        if progressed {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    /// Sends what is queued (the error frames explaining the close, say), except to a client
    /// too slow to take it, then the close frame.
    async fn say_goodbye(&mut self, reason: CloseReason) -> Result<(), tungstenite::Error> {
        if reason != CloseReason::SlowConsumer {
            let mut frames = std::mem::take(&mut self.writing);
            frames.extend(self.connection.take_queued());
            for frame in frames {
                self.socket.feed(WsMessage::Text(frame)).await?;
            }
        }
        let frame = CloseFrame {
            code: CloseCode::from(reason.code()),
            reason: reason.reason().into(),
        };
        self.socket.send(WsMessage::Close(Some(frame))).await
    }
}

/// A write error ends the connection: the client is gone or unreachable.
fn write_failed(error: tungstenite::Error) -> Ending {
    tracing::debug!(%error, "socket write failed");
    Ending::ClientGone
}

/// Answers a connection's frames through logic.
#[derive(Clone, Copy)]
struct Answers<'a> {
    /// This connect node's name.
    node: &'a str,
    connection: &'a Arc<Connection>,
    logic: &'a LogicHandle,
    acks: &'a AckBatcher,
    sends: &'a SendBatcher,
}

impl<'a> Answers<'a> {
    fn refuse(&self, code: ErrorCode, message: impl Into<String>, cid: Option<String>) {
        let message = message.into();
        natter_proto::refusal::answered("connect", code, &message);
        self.connection
            .send_frame(&ServerFrame::error(code, message, cid));
    }

    fn refuse_status(&self, status: &tonic::Status, cid: Option<String>) {
        refuse_status(self.connection, status, cid);
    }

    /// Answers one frame; takes a copy of the references so the future borrows nothing of
    /// the task that holds it.
    async fn answer(self, frame: ClientFrame) {
        let user_id = self.connection.user_id;
        match frame {
            ClientFrame::Ping {} => {
                self.connection.send_frame(&ServerFrame::Pong);
            }
            ClientFrame::Send {
                cid,
                to,
                kind,
                body,
                reply_to,
            } => {
                let written = ClientSend {
                    cid: cid.clone(),
                    to,
                    kind,
                    body,
                    reply_to,
                };
                let mut request = match written.into_request(user_id) {
                    Ok(request) => request,
                    Err(error) => {
                        self.refuse(ErrorCode::InvalidInput, error, Some(cid));
                        return;
                    }
                };
                if !self.connection.options.echo {
                    // Spares task pushing this connection a copy it would drop.
                    request.unechoed_node = self.node.to_owned();
                    request.unechoed_connection = self.connection.id;
                }
                // A sampled message's trace starts here, with the client's send.
                let span = trace_root!("connect.send", user_id, cid = %cid);
                let sent = self.sends.send(request).instrument(span.clone()).await;
                let _entered = span.enter();
                match sent {
                    Ok(reply) => {
                        let frame = ServerFrame::Sent {
                            cid: reply.cid,
                            id: reply.id.to_string(),
                            object: reply.object,
                            seq: reply.seq,
                            ts: reply.ts,
                        };
                        self.connection.answer_sent(&frame);
                    }
                    Err(status) => self.refuse_status(&status, Some(cid)),
                }
            }
            ClientFrame::Ack { object, seq } => {
                let ack = Acknowledgement {
                    user_id,
                    object,
                    seq,
                };
                // Answered on the side: the connection's next frames (a send, say) do not
                // wait for the batch the ack goes in.
                self.acks.acknowledge(ack, Arc::clone(self.connection));
            }
            ClientFrame::Sync { cursors } => self.sync(cursors).await,
            ClientFrame::Typing { to } => {
                let (target_kind, target_id) = match to.parse::<ObjectId>() {
                    Ok(object) => object.target(),
                    Err(error) => {
                        self.refuse(ErrorCode::InvalidInput, error.to_string(), None);
                        return;
                    }
                };
                let request = TypingRequest {
                    sender: user_id,
                    target_kind: target_kind.into(),
                    target_id,
                };
                if let Err(status) = self.logic.typing(request).await {
                    self.refuse_status(&status, None);
                }
            }
            ClientFrame::Read { conversation, seq } => {
                let request = ReadRequest {
                    user_id,
                    conversation,
                    seq,
                };
                // Answered by the `read` event every device of the user gets.
                if let Err(status) = self.logic.mark_read(request).await {
                    self.refuse_status(&status, None);
                }
            }
        }
    }

    /// Page through logic's sync, then go live (see [`Connection`] for the seam).
    async fn sync(&self, given: BTreeMap<String, u64>) {
        self.connection.begin_sync(&given);
        let mut cursors: Vec<Cursor> = given
            .into_iter()
            .map(|(object, seq)| Cursor { object, seq })
            .collect();
        // Pages of at most half the queue, each asked for once the queue has room for it:
        // a client far behind is paced by its own reading rather than cut off as slow.
        let page = (self.connection.queue_capacity() / 2).max(1);
        loop {
            self.connection.room_for(page).await;
            let request = SyncRequest {
                user_id: self.connection.user_id,
                cursors: cursors.clone(),
                limit: u32::try_from(page).unwrap_or(u32::MAX),
            };
            match self.logic.sync(request).await {
                Ok(page) => {
                    self.connection.sync_page(&page.messages);
                    cursors = page.cursors;
                    if !page.more {
                        break;
                    }
                }
                Err(status) => {
                    self.connection.abort_sync();
                    self.refuse_status(&status, None);
                    return;
                }
            }
        }
        let positions = cursors
            .into_iter()
            .map(|cursor| (cursor.object, cursor.seq))
            .collect();
        // The pushes held during the sync go out behind `synced`: let the last page drain.
        self.connection
            .room_for(self.connection.queue_capacity())
            .await;
        self.connection.finish_sync(positions);
    }
}

/// Sends the error frame for a refusal from logic on `connection`.
pub(crate) fn refuse_status(connection: &Connection, status: &tonic::Status, cid: Option<String>) {
    let code = ErrorCode::of_status(status);
    let message = match code {
        // Internal details stay in the server's logs.
        ErrorCode::Internal => "internal error".to_string(),
        _ => status.message().to_string(),
    };
    natter_proto::refusal::answered("connect", code, status.message());
    let mut frame = ServerFrame::error(code, message, cid);
    if let ServerFrame::Error { retry_after_ms, .. } = &mut frame {
        *retry_after_ms = natter_proto::error::retry_after(status)
            .map(|wait| wait.as_millis().min(u64::MAX as u128) as u64);
    }
    connection.send_frame(&frame);
}
