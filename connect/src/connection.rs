//! One connection's shared handle: its outbound queue and its sync state.
//!
//! The seam between sync and live pushes is kept exact here. A message reaches a connection
//! only after it is in the log, and a connection's session is registered before it reads any
//! frame, so:
//! - before the first `sync`, live pushes are dropped: the sync reads the log later and
//!   includes them;
//! - during a sync, live pushes are held, then sent after the sync's messages, minus those the
//!   sync already sent;
//! - once live, a push is sent only if its seq is beyond what this connection already sent for
//!   its object, so redeliveries and sync overlaps never reach the client twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use natter_proto::frame::{MessageFrame, ServerFrame};
use natter_proto::v1::Message;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::group_list::ListHandle;
use crate::limiter::{Limiter, limiter};

/// A message ready for the wire: serialised once, shared by every recipient connection.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Its object.
    pub object: Arc<str>,
    /// Its seq in the object.
    pub seq: u64,
    /// Acceptance time, ms since the Unix epoch (for push latency).
    pub ts: i64,
    /// The `msg` frame's JSON.
    pub text: Utf8Bytes,
}

impl Outgoing {
    /// Serialise a message as a `msg` frame.
    pub fn new(message: &Message) -> Self {
        let text = ServerFrame::Msg(MessageFrame::from(message)).to_json();
        Outgoing {
            object: Arc::from(message.object.as_str()),
            seq: message.seq,
            ts: message.ts,
            text: Utf8Bytes::from(text),
        }
    }
}

/// Why the server closes a connection; the code and reason go in the close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The outbound queue filled: the client reads too slowly (4000).
    SlowConsumer,
    /// The user was kicked (4001).
    Kicked,
    /// No frame within the heartbeat timeout (4002).
    HeartbeatTimeout,
    /// Too many frames refused for rate in a row (1008).
    RateLimited,
    /// A frame beyond the hard size limit (1009).
    FrameTooLarge,
    /// The node is shutting down (1001).
    ShuttingDown,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::SlowConsumer => 4000,
            CloseReason::Kicked => 4001,
            CloseReason::HeartbeatTimeout => 4002,
            CloseReason::RateLimited => 1008,
            CloseReason::FrameTooLarge => 1009,
            CloseReason::ShuttingDown => 1001,
        }
    }

    /// The close frame's reason text.
    pub fn reason(self) -> &'static str {
        match self {
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Kicked => "kicked",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::RateLimited => "rate_limited",
            CloseReason::FrameTooLarge => "frame_too_large",
            CloseReason::ShuttingDown => "shutting_down",
        }
    }
}

/// Where a connection stands with sync.
#[derive(Debug)]
enum Phase {
    /// No sync yet: live pushes are dropped (the first sync reads them from the log).
    AwaitingSync,
    /// A sync is running: live pushes wait here.
    Syncing { held: Vec<Outgoing>, was_live: bool },
    /// Synced: live pushes go out in order, beyond what was sent.
    Live,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The highest seq sent on this connection per object.
    sent: HashMap<Arc<str>, u64>,
}

/// The handle every part of the node holds for one connection.
#[derive(Debug)]
pub struct Connection {
    /// Unique on this node.
    pub id: u64,
    /// The authenticated user.
    pub user_id: i64,
    /// Frames for the writer task.
    outbound: mpsc::Sender<Utf8Bytes>,
    /// Capacity of `outbound`, also the bound on pushes held during a sync.
    queue_capacity: usize,
    /// Set once to close the connection with a reason.
    close: watch::Sender<Option<CloseReason>>,
    /// Inbound frame limiter.
    pub inbound: Limiter,
    state: Mutex<State>,
    /// The groups this connection is in, with its place in each group's list in its bucket,
    /// so leaving (or disconnecting) is O(1) per group.
    groups: Mutex<HashMap<i64, ListHandle>>,
}

impl Connection {
    /// A new connection and the receiving ends for its writer (frames, close signal).
    pub fn new(
        id: u64,
        user_id: i64,
        queue_capacity: usize,
        inbound_rate: u32,
        inbound_burst: u32,
    ) -> (
        Arc<Connection>,
        mpsc::Receiver<Utf8Bytes>,
        watch::Receiver<Option<CloseReason>>,
    ) {
        let queue_capacity = queue_capacity.max(1);
        let (outbound, frames) = mpsc::channel(queue_capacity);
        let (close, closed) = watch::channel(None);
        let connection = Arc::new(Connection {
            id,
            user_id,
            outbound,
            queue_capacity,
            close,
            inbound: limiter(inbound_rate, inbound_burst),
            state: Mutex::new(State {
                phase: Phase::AwaitingSync,
                sent: HashMap::new(),
            }),
            groups: Mutex::new(HashMap::new()),
        });
        (connection, frames, closed)
    }

    /// The connection's group handles (see [`crate::bucket::Bucket::join_group`]).
    pub(crate) fn group_handles(&self) -> MutexGuard<'_, HashMap<i64, ListHandle>> {
        self.groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ask the writer to close with `reason` (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// A receiver that sees the close request.
    pub fn closed(&self) -> watch::Receiver<Option<CloseReason>> {
        self.close.subscribe()
    }

    /// Queue a frame the reader produced (answers, errors); false if the queue is full.
    pub fn send_frame(&self, frame: &ServerFrame) -> bool {
        self.enqueue(Utf8Bytes::from(frame.to_json()))
    }

    fn enqueue(&self, text: Utf8Bytes) -> bool {
        match self.outbound.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("natter_connections_closed_slow_total").increment(1);
                self.close(CloseReason::SlowConsumer);
                false
            }
            // The writer is gone: the connection is closing anyway.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Send the messages with a seq beyond what was sent; returns how many went out.
    fn send_new(&self, state: &mut State, messages: &[Outgoing]) -> usize {
        let mut sent = 0;
        for message in messages {
            let last = state.sent.get(&message.object).copied().unwrap_or(0);
            if message.seq <= last {
                continue;
            }
            if last != 0 && message.seq != last + 1 {
                // Cannot happen while pushes are in order; clients fill gaps with a sync.
                tracing::warn!(object = %message.object, last, seq = message.seq, "gap in live pushes");
            }
            if !self.enqueue(message.text.clone()) {
                return sent;
            }
            state.sent.insert(Arc::clone(&message.object), message.seq);
            sent += 1;
        }
        sent
    }

    /// A live push from a routine.
    pub fn push(&self, messages: &[Outgoing]) -> usize {
        let mut state = self.state();
        match &mut state.phase {
            Phase::AwaitingSync => 0,
            Phase::Syncing { held, .. } => {
                if held.len() + messages.len() > self.queue_capacity {
                    drop(state);
                    metrics::counter!("natter_connections_closed_slow_total").increment(1);
                    self.close(CloseReason::SlowConsumer);
                    return 0;
                }
                held.extend_from_slice(messages);
                messages.len()
            }
            Phase::Live => self.send_new(&mut state, messages),
        }
    }

    /// A sync starts: hold live pushes; the client holds `cursors`, so send what lies beyond.
    pub fn begin_sync(&self, cursors: &BTreeMap<String, u64>) {
        let mut state = self.state();
        let was_live = matches!(state.phase, Phase::Live);
        state.phase = Phase::Syncing {
            held: Vec::new(),
            was_live,
        };
        // What the client says it holds replaces what was sent; objects it leaves out start
        // from the stored cursor, so anything the sync returns for them goes out.
        state.sent.clear();
        for (object, seq) in cursors {
            state.sent.insert(Arc::from(object.as_str()), *seq);
        }
    }

    /// One page of sync results.
    pub fn sync_page(&self, messages: &[Message]) {
        let outgoing: Vec<Outgoing> = messages.iter().map(Outgoing::new).collect();
        let mut state = self.state();
        self.send_new(&mut state, &outgoing);
    }

    /// The sync finished at `cursors`: send `synced`, then the held pushes beyond it; go live.
    pub fn finish_sync(&self, cursors: BTreeMap<String, u64>) {
        let mut state = self.state();
        for (object, seq) in &cursors {
            let entry = state.sent.entry(Arc::from(object.as_str())).or_insert(0);
            *entry = (*entry).max(*seq);
        }
        let held = match std::mem::replace(&mut state.phase, Phase::Live) {
            Phase::Syncing { held, .. } => held,
            _ => Vec::new(),
        };
        let synced = ServerFrame::Synced { cursors };
        if self.enqueue(Utf8Bytes::from(synced.to_json())) {
            self.send_new(&mut state, &held);
        }
    }

    /// The sync failed: return to the phase before it (held pushes go out if it was live).
    pub fn abort_sync(&self) {
        let mut state = self.state();
        match std::mem::replace(&mut state.phase, Phase::AwaitingSync) {
            Phase::Syncing {
                held,
                was_live: true,
            } => {
                state.phase = Phase::Live;
                self.send_new(&mut state, &held);
            }
            Phase::Syncing { .. } => {}
            other => state.phase = other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64) -> Message {
        Message {
            object: "user:1".into(),
            seq,
            id: seq,
            ..Message::default()
        }
    }

    fn outgoing(seqs: impl IntoIterator<Item = u64>) -> Vec<Outgoing> {
        seqs.into_iter()
            .map(|seq| Outgoing::new(&message(seq)))
            .collect()
    }

    fn drain(frames: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(frame) = frames.try_recv() {
            let value: serde_json::Value = serde_json::from_str(frame.as_str()).unwrap();
            out.push(match value["type"].as_str().unwrap() {
                "msg" => format!("msg{}", value["seq"]),
                other => other.to_string(),
            });
        }
        out
    }

    #[test]
    fn the_seam_between_sync_and_live_has_no_gap_and_no_duplicate() {
        let (connection, mut frames, _closed) = Connection::new(1, 1, 64, 10, 10);
        // Before any sync, live pushes are dropped: the sync will read them.
        assert_eq!(connection.push(&outgoing([1])), 0);
        connection.begin_sync(&BTreeMap::new());
        connection.sync_page(&[message(1), message(2)]);
        // Pushed while syncing: 2 overlaps the sync, 3 does not.
        connection.push(&outgoing([2, 3]));
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 2)]));
        connection.push(&outgoing([3, 4]));
        assert_eq!(
            drain(&mut frames),
            ["msg1", "msg2", "synced", "msg3", "msg4"]
        );
    }

    #[test]
    fn a_resync_resends_what_the_client_says_it_lacks() {
        let (connection, mut frames, _closed) = Connection::new(1, 1, 64, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 0)]));
        connection.push(&outgoing([1, 2]));
        connection.begin_sync(&BTreeMap::from([("user:1".to_string(), 1)]));
        connection.sync_page(&[message(2)]);
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 2)]));
        assert_eq!(
            drain(&mut frames),
            ["synced", "msg1", "msg2", "msg2", "synced"]
        );
    }

    #[test]
    fn a_full_queue_closes_the_connection_as_slow() {
        let (connection, _frames, closed) = Connection::new(1, 1, 2, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::new());
        connection.push(&outgoing([1, 2, 3]));
        assert_eq!(*closed.borrow(), Some(CloseReason::SlowConsumer));
    }
}
