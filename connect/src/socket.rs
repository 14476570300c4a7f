//! One connection's two tasks: the reader (frames in, answered through logic) and the writer
//! (queued frames out in one flush, pings, the close frame).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use natter_proto::ErrorCode;
use natter_proto::ObjectId;
use natter_proto::frame::{ClientFrame, ServerFrame};
use natter_proto::handle::LogicHandle;
use natter_proto::v1::{AckRequest, Cursor, SendRequest, SyncRequest};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage, Utf8Bytes};

use crate::config::ConnectConfig;
use crate::connection::{CloseReason, Connection};

/// The write half of a socket.
pub type WsSink = SplitSink<WebSocketStream<TcpStream>, WsMessage>;
/// The read half of a socket.
pub type WsSource = SplitStream<WebSocketStream<TcpStream>>;

/// How long the writer may take to send its last frames and the close frame.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// Send what is already queued (the error frames explaining the close, say), except to a
/// client too slow to take it, then the close frame.
async fn say_goodbye(
    sink: &mut WsSink,
    frames: &mut mpsc::Receiver<Utf8Bytes>,
    reason: CloseReason,
) -> Result<(), tungstenite::Error> {
    if reason != CloseReason::SlowConsumer {
        while let Ok(frame) = frames.try_recv() {
            sink.feed(WsMessage::Text(frame)).await?;
        }
    }
    let frame = CloseFrame {
        code: CloseCode::from(reason.code()),
        reason: reason.reason().into(),
    };
    sink.send(WsMessage::Close(Some(frame))).await
}

/// Write queued frames (everything queued goes out in one flush), pings, and finally the
/// close frame.
pub async fn run_writer(
    mut sink: WsSink,
    mut frames: mpsc::Receiver<Utf8Bytes>,
    mut closed: watch::Receiver<Option<CloseReason>>,
    config: ConnectConfig,
) {
    let mut ping = tokio::time::interval(config.heartbeat_interval());
    ping.tick().await;
    let result: Result<(), tungstenite::Error> = async {
        loop {
            tokio::select! {
                biased;
                changed = closed.changed() => {
                    let reason = *closed.borrow();
                    if let (Ok(()), Some(reason)) = (changed, reason) {
                        let goodbye = say_goodbye(&mut sink, &mut frames, reason);
                        // A client that stopped reading must not hold the writer forever.
                        if tokio::time::timeout(GOODBYE_TIMEOUT, goodbye).await.is_err() {
                            tracing::debug!(reason = reason.reason(), "close frame timed out");
                        }
                    }
                    return Ok(());
                }
                frame = frames.recv() => {
                    let Some(frame) = frame else { return Ok(()) };
                    sink.feed(WsMessage::Text(frame)).await?;
                    while let Ok(frame) = frames.try_recv() {
                        sink.feed(WsMessage::Text(frame)).await?;
                    }
                    sink.flush().await?;
                }
                _ = ping.tick() => {
                    sink.send(WsMessage::Ping(Default::default())).await?;
                }
            }
        }
    }
    .await;
    if let Err(error) = result {
        tracing::debug!(%error, "writer stopped");
    }
}

/// Reads and answers one connection's frames until it closes.
pub struct Reader {
    /// The connection.
    pub connection: Arc<Connection>,
    /// Where frames are answered.
    pub logic: LogicHandle,
    /// Limits and timings.
    pub config: ConnectConfig,
}

impl Reader {
    /// Read until the client leaves, the heartbeat times out, or a close is requested.
    pub async fn run(&self, mut source: WsSource) {
        let mut closed = self.connection.closed();
        let mut strikes = 0u32;
        loop {
            let next = tokio::select! {
                _ = closed.changed() => return,
                next = tokio::time::timeout(self.config.heartbeat_timeout(), source.next()) => next,
            };
            let message = match next {
                Err(_) => {
                    self.connection.close(CloseReason::HeartbeatTimeout);
                    return;
                }
                Ok(None) => return,
                Ok(Some(Err(tungstenite::Error::Capacity(_)))) => {
                    self.connection.close(CloseReason::FrameTooLarge);
                    return;
                }
                Ok(Some(Err(error))) => {
                    tracing::debug!(%error, "socket read failed");
                    return;
                }
                Ok(Some(Ok(message))) => message,
            };
            let text = match message {
                WsMessage::Text(text) => text,
                WsMessage::Binary(_) => {
                    self.refuse(ErrorCode::BadFrame, "binary frames are not supported", None);
                    continue;
                }
                WsMessage::Close(_) => return,
                // Pings are answered by the socket itself; any frame counts as a heartbeat.
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
            };
            metrics::counter!("natter_frames_received_total").increment(1);
            if self.connection.inbound.check().is_err() {
                strikes += 1;
                if strikes > self.config.inbound_strikes {
                    self.connection.close(CloseReason::RateLimited);
                    return;
                }
                self.refuse(ErrorCode::RateLimited, "too many frames; slow down", None);
                continue;
            }
            strikes = 0;
            if text.len() > self.config.max_frame_bytes {
                let message = format!(
                    "the frame has {} bytes; at most {} are allowed",
                    text.len(),
                    self.config.max_frame_bytes
                );
                self.refuse(ErrorCode::FrameTooLarge, message, None);
                continue;
            }
            match ClientFrame::parse(text.as_str()) {
                // Boxed so the reader's idle state does not include a gRPC call's.
                Ok(frame) => Box::pin(self.handle(frame)).await,
                Err(error) => self.refuse(error.code(), error.to_string(), None),
            }
        }
    }

    fn refuse(&self, code: ErrorCode, message: impl Into<String>, cid: Option<String>) {
        self.connection
            .send_frame(&ServerFrame::error(code, message, cid));
    }

    fn refuse_status(&self, status: &tonic::Status, cid: Option<String>) {
        let code = ErrorCode::of_status(status);
        let message = match code {
            // Internal details stay in the server's logs.
            ErrorCode::Internal => "internal error".to_string(),
            _ => status.message().to_string(),
        };
        self.refuse(code, message, cid);
    }

    async fn handle(&self, frame: ClientFrame) {
        let user_id = self.connection.user_id;
        match frame {
            ClientFrame::Ping => {
                self.connection.send_frame(&ServerFrame::Pong);
            }
            ClientFrame::Send {
                cid,
                to,
                kind,
                body,
            } => {
                let (target_kind, target_id) = match to.parse::<ObjectId>() {
                    Ok(ObjectId::User(id)) => ("user", id),
                    Ok(ObjectId::Group(id)) => ("group", id),
                    Err(error) => {
                        self.refuse(ErrorCode::InvalidInput, error.to_string(), Some(cid));
                        return;
                    }
                };
                let request = SendRequest {
                    sender: user_id,
                    cid: cid.clone(),
                    target_kind: target_kind.into(),
                    target_id,
                    kind,
                    body,
                };
                match self.logic.send(request).await {
                    Ok(reply) => {
                        self.connection.send_frame(&ServerFrame::Sent {
                            cid: reply.cid,
                            id: reply.id.to_string(),
                            object: reply.object,
                            seq: reply.seq,
                            ts: reply.ts,
                        });
                    }
                    Err(status) => self.refuse_status(&status, Some(cid)),
                }
            }
            ClientFrame::Ack { object, seq } => {
                let request = AckRequest {
                    user_id,
                    object: object.clone(),
                    seq,
                };
                match self.logic.ack(request).await {
                    Ok(reply) => {
                        self.connection.send_frame(&ServerFrame::Acked {
                            object,
                            seq: reply.seq,
                        });
                    }
                    Err(status) => self.refuse_status(&status, None),
                }
            }
            ClientFrame::Sync { cursors } => self.sync(cursors).await,
        }
    }

    /// Page through logic's sync, then go live (see [`Connection`] for the seam).
    async fn sync(&self, given: BTreeMap<String, u64>) {
        self.connection.begin_sync(&given);
        let mut cursors: Vec<Cursor> = given
            .into_iter()
            .map(|(object, seq)| Cursor { object, seq })
            .collect();
        loop {
            let request = SyncRequest {
                user_id: self.connection.user_id,
                cursors: cursors.clone(),
                limit: 0,
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
        self.connection.finish_sync(positions);
    }
}
