//! One connection's shared handle: its outbound queue, its close request and its sync state.
//!
//! The queue is a plain deque under the connection's lock rather than a channel: an idle
//! connection then holds no queue memory at all, and the connection's task takes everything
//! queued in one go and writes it in one flush.
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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use natter_proto::frame::{EVENT_KIND, MessageFrame, ServerFrame, TYPING_KIND};
use natter_proto::v1::Message;
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
    /// The frame's JSON.
    pub text: Utf8Bytes,
    /// A user this frame is not for although it reaches their connections (the typist of a
    /// typing indicator, who is a member of the group too); 0 for none.
    pub not_for: i64,
}

impl Outgoing {
    /// Serialise a message as a `msg` frame, or as a `notice` if it is ephemeral (seq 0: it
    /// has no place in any log).
    pub fn new(message: &Message) -> Self {
        let mut not_for = 0;
        if message.seq == 0 && message.kind == EVENT_KIND {
            // An event is a whole frame already, made by logic.
            return Outgoing {
                object: Arc::from(message.object.as_str()),
                seq: 0,
                ts: message.ts,
                text: Utf8Bytes::from(message.body.as_str()),
                not_for,
            };
        }
        let frame = if message.seq == 0 && message.kind == TYPING_KIND {
            not_for = message.sender;
            ServerFrame::Typing {
                from: message.sender.to_string(),
                to: format!("{}:{}", message.target_kind, message.target_id),
            }
        } else if message.seq == 0 {
            ServerFrame::Notice {
                id: message.id.to_string(),
                body: message.body.clone(),
                ts: message.ts,
            }
        } else {
            ServerFrame::Msg(MessageFrame::from(message))
        };
        let text = frame.to_json();
        Outgoing {
            object: Arc::from(message.object.as_str()),
            seq: message.seq,
            ts: message.ts,
            text: Utf8Bytes::from(text),
            not_for,
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
    /// A text frame that is not UTF-8 (1007).
    InvalidPayload,
    /// A frame that breaks the WebSocket protocol: reserved bits, an unmasked frame, a bad
    /// opcode or continuation (1002).
    ProtocolError,
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
            CloseReason::InvalidPayload => 1007,
            CloseReason::ProtocolError => 1002,
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
            CloseReason::InvalidPayload => "invalid_utf8",
            CloseReason::ProtocolError => "protocol_error",
        }
    }

    const ALL: [CloseReason; 8] = [
        CloseReason::SlowConsumer,
        CloseReason::Kicked,
        CloseReason::HeartbeatTimeout,
        CloseReason::RateLimited,
        CloseReason::FrameTooLarge,
        CloseReason::ShuttingDown,
        CloseReason::InvalidPayload,
        CloseReason::ProtocolError,
    ];

    /// Stored in an atomic as its place in [`CloseReason::ALL`] plus one (0: no close).
    fn to_u8(self) -> u8 {
        CloseReason::ALL
            .iter()
            .position(|reason| *reason == self)
            .map_or(0, |index| index as u8 + 1)
    }

    fn from_u8(value: u8) -> Option<CloseReason> {
        CloseReason::ALL
            .get(usize::from(value).checked_sub(1)?)
            .copied()
    }
}

/// Where a connection stands with sync.
#[derive(Debug)]
enum Phase {
    /// No sync yet: live pushes are dropped (the first sync reads them from the log).
    AwaitingSync,
    /// A sync is running: live pushes wait here. What was sent before it is kept, so a
    /// refused sync (a cursor from another history, say) leaves the connection as it was.
    Syncing {
        held: Vec<Outgoing>,
        was_live: bool,
        sent_before: HashMap<Arc<str>, u64>,
        own_before: VecDeque<(Arc<str>, u64)>,
    },
    /// Synced: live pushes go out in order, beyond what was sent.
    Live,
}

/// How many of its own messages a connection that asked for no echo remembers until their
/// push arrives; past this the oldest is forgotten and its echo goes out after all, which a
/// client drops as a repeat.
const OWN_MESSAGES_REMEMBERED: usize = 64;

/// What a client chose for its connection when it upgraded (`docs/protocol.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// Live pushes include the messages this connection sent itself (`?echo=false` turns
    /// that off: its `sent` answers carry their place already).
    pub echo: bool,
    /// Each `ack` is answered with `acked` (`?acked=false` turns that off; refusals are still
    /// answered).
    pub acked: bool,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            echo: true,
            acked: true,
        }
    }
}

#[derive(Debug)]
struct State {
    /// Frames waiting for the connection's task to write them.
    queue: VecDeque<Utf8Bytes>,
    phase: Phase,
    /// The highest seq sent on this connection per object.
    sent: HashMap<Arc<str>, u64>,
    /// Messages this connection sent and was answered `sent` for whose push has not come yet
    /// (only without echo): that push is not sent to it.
    own: VecDeque<(Arc<str>, u64)>,
}

impl State {
    /// Forgets the connection's own answered messages of `object` up to `seq`. Answers whether
    /// `seq` is one of them (the client holds it from its `sent`), and the highest seq below
    /// `seq` the client holds in a row from `last` (sent here): the own ones below `seq` count,
    /// since their pushes never come (task spares a lone connection that wants no echo its own
    /// copies).
    fn take_own_through(&mut self, object: &str, seq: u64, mut last: u64) -> (bool, u64) {
        let mut found = false;
        let mut below: Vec<u64> = Vec::new();
        self.own.retain(|(own_object, own_seq)| {
            let passed = *own_seq <= seq && **own_object == *object;
            if passed {
                if *own_seq == seq {
                    found = true;
                } else {
                    below.push(*own_seq);
                }
            }
            !passed
        });
        below.sort_unstable();
        for own_seq in below {
            if own_seq == last + 1 {
                last = own_seq;
            }
        }
        (found, last)
    }
}

/// The handle every part of the node holds for one connection.
#[derive(Debug)]
pub struct Connection {
    /// Unique on this node.
    pub id: u64,
    /// The authenticated user.
    pub user_id: i64,
    /// What the client chose when it upgraded.
    pub options: ConnectionOptions,
    /// Most frames the queue may hold, also the bound on pushes held during a sync.
    queue_capacity: usize,
    /// Wakes the connection's task when frames are queued or a close is asked for.
    wake: AtomicWaker,
    /// The close asked for, set once (see [`CloseReason::to_u8`]).
    close_reason: AtomicU8,
    /// Told each time the connection's task takes the queue, so a sync can pace its pages
    /// to the client's reading instead of overflowing the queue.
    taken: Notify,
    /// Inbound frame limiter.
    pub inbound: Limiter,
    state: Mutex<State>,
    /// The groups this connection is in, with its place in each group's list in its bucket,
    /// so leaving (or disconnecting) is O(1) per group.
    groups: Mutex<HashMap<i64, ListHandle>>,
}

impl Connection {
    /// A new connection with the default options whose queue holds at most `queue_capacity`
    /// frames.
    pub fn new(
        id: u64,
        user_id: i64,
        queue_capacity: usize,
        inbound_rate: u32,
        inbound_burst: u32,
    ) -> Arc<Connection> {
        let options = ConnectionOptions::default();
        Connection::with_options(
            id,
            user_id,
            options,
            queue_capacity,
            inbound_rate,
            inbound_burst,
        )
    }

    /// A new connection with the client's `options`.
    pub fn with_options(
        id: u64,
        user_id: i64,
        options: ConnectionOptions,
        queue_capacity: usize,
        inbound_rate: u32,
        inbound_burst: u32,
    ) -> Arc<Connection> {
        Arc::new(Connection {
            id,
            user_id,
            options,
            queue_capacity: queue_capacity.max(1),
            wake: AtomicWaker::new(),
            close_reason: AtomicU8::new(0),
            taken: Notify::new(),
            inbound: limiter(inbound_rate, inbound_burst),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                phase: Phase::AwaitingSync,
                sent: HashMap::new(),
                own: VecDeque::new(),
            }),
            groups: Mutex::new(HashMap::new()),
        })
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

    /// Ask the connection's task to close with `reason` (the first reason wins).
    pub fn close(&self, reason: CloseReason) {
        let asked = self.close_reason.compare_exchange(
            0,
            reason.to_u8(),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if asked.is_ok() {
            self.wake.wake();
        }
    }

    /// The close asked for, if any.
    pub fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.close_reason.load(Ordering::Acquire))
    }

    /// The connection's task waits here for frames or a close; register before taking.
    pub fn register_waker(&self, waker: &Waker) {
        self.wake.register(waker);
    }

    /// Everything queued, in order, leaving the queue empty (and its memory freed).
    pub fn take_queued(&self) -> VecDeque<Utf8Bytes> {
        let taken = std::mem::take(&mut self.state().queue);
        if !taken.is_empty() {
            self.taken.notify_waiters();
        }
        taken
    }

    /// Most frames the queue holds.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// Waits until the queue has room for `frames` more (a sync page), or the connection is
    /// closing.
    pub async fn room_for(&self, frames: usize) {
        loop {
            // Made before the check, so a take between the check and the wait still wakes it.
            let taken = self.taken.notified();
            let queued = self.state().queue.len();
            if queued + frames <= self.queue_capacity || self.close_reason().is_some() {
                return;
            }
            taken.await;
        }
    }

    /// Queue a frame the connection's own handling produced (answers, errors); false if the
    /// queue is full.
    pub fn send_frame(&self, frame: &ServerFrame) -> bool {
        let text = Utf8Bytes::from(frame.to_json());
        let mut state = self.state();
        self.enqueue(&mut state, text)
    }

    fn enqueue(&self, state: &mut State, text: Utf8Bytes) -> bool {
        if self.close_reason().is_some() {
            // Closing: nothing more goes out but what is already queued.
            return false;
        }
        if state.queue.len() >= self.queue_capacity {
            metrics::counter!("natter_connections_closed_slow_total").increment(1);
            self.close(CloseReason::SlowConsumer);
            return false;
        }
        state.queue.push_back(text);
        // A queue that was not empty has a wake pending already.
        if state.queue.len() == 1 {
            self.wake.wake();
        }
        true
    }

    /// Send the messages with a seq beyond what was sent; returns how many went out.
    fn send_new(&self, state: &mut State, messages: &[Outgoing]) -> usize {
        let mut sent = 0;
        for message in messages {
            if message.seq == 0 {
                if message.not_for == self.user_id {
                    continue;
                }
                // Ephemeral: no position to keep, nothing to de-duplicate against.
                if !self.enqueue(state, message.text.clone()) {
                    return sent;
                }
                sent += 1;
                continue;
            }
            let mut last = state.sent.get(&message.object).copied().unwrap_or(0);
            if message.seq <= last {
                continue;
            }
            if !state.own.is_empty() {
                let (own, held) = state.take_own_through(&message.object, message.seq, last);
                if own {
                    // The client holds it from its `sent`: it counts as sent here.
                    state.sent.insert(Arc::clone(&message.object), message.seq);
                    continue;
                }
                last = held;
            }
            if last != 0 && message.seq != last + 1 {
                if self.options.echo {
                    // Cannot happen while pushes are in order; clients fill gaps with a sync.
                    metrics::counter!("natter_live_push_gaps_total").increment(1);
                    tracing::warn!(object = %message.object, last, seq = message.seq, "gap in live pushes");
                } else {
                    // Without echo the hole is usually this connection's own message, whose
                    // `sent` is still on its way: its push was spared, and a later one overtook
                    // the answer. The client holds it from that `sent`.
                    tracing::debug!(object = %message.object, last, seq = message.seq, "a live push passes an unanswered own message");
                }
            }
            if !self.enqueue(state, message.text.clone()) {
                return sent;
            }
            state.sent.insert(Arc::clone(&message.object), message.seq);
            sent += 1;
        }
        sent
    }

    /// Answers a `send` of this connection with its `sent` frame; without echo, the message's
    /// push is then not sent here.
    pub fn answer_sent(&self, frame: &ServerFrame) {
        let text = Utf8Bytes::from(frame.to_json());
        let mut state = self.state();
        if let ServerFrame::Sent { object, seq, .. } = frame
            && !self.options.echo
            && !matches!(state.phase, Phase::AwaitingSync)
        {
            let seq = *seq;
            let last = state.sent.get(object.as_str()).copied().unwrap_or(0);
            // A push that came first went out already.
            if seq > last {
                if state.own.len() == OWN_MESSAGES_REMEMBERED {
                    state.own.pop_front();
                }
                state.own.push_back((Arc::from(object.as_str()), seq));
            }
        }
        self.enqueue(&mut state, text);
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
        // What the client says it holds replaces what was sent; objects it leaves out start
        // from the stored cursor, so anything the sync returns for them goes out. A sync
        // returns everything after the client's cursors, its own messages too.
        let sent_before = std::mem::take(&mut state.sent);
        let own_before = std::mem::take(&mut state.own);
        state.phase = Phase::Syncing {
            held: Vec::new(),
            was_live,
            sent_before,
            own_before,
        };
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
        if self.enqueue(&mut state, Utf8Bytes::from(synced.to_json())) {
            self.send_new(&mut state, &held);
        }
    }

    /// The sync failed: return to the phase and the positions before it (held pushes go out
    /// if it was live), so the cursors the refused sync gave are forgotten.
    pub fn abort_sync(&self) {
        let mut state = self.state();
        match std::mem::replace(&mut state.phase, Phase::AwaitingSync) {
            Phase::Syncing {
                held,
                was_live,
                sent_before,
                own_before,
            } => {
                state.sent = sent_before;
                state.own = own_before;
                if was_live {
                    state.phase = Phase::Live;
                    self.send_new(&mut state, &held);
                }
            }
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

    fn drain(connection: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for frame in connection.take_queued() {
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
        let connection = Connection::new(1, 1, 64, 10, 10);
        // Before any sync, live pushes are dropped: the sync will read them.
        assert_eq!(connection.push(&outgoing([1])), 0);
        connection.begin_sync(&BTreeMap::new());
        connection.sync_page(&[message(1), message(2)]);
        // Pushed while syncing: 2 overlaps the sync, 3 does not.
        connection.push(&outgoing([2, 3]));
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 2)]));
        connection.push(&outgoing([3, 4]));
        assert_eq!(
            drain(&connection),
            ["msg1", "msg2", "synced", "msg3", "msg4"]
        );
    }

    #[test]
    fn a_refused_sync_forgets_its_cursors_so_live_pushes_still_go_out() {
        let connection = Connection::new(1, 1, 64, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 0)]));
        // A cursor far past the end, refused by logic: the connection stays where it was.
        connection.begin_sync(&BTreeMap::from([("user:1".to_string(), 1_000_000)]));
        connection.abort_sync();
        connection.push(&outgoing([1, 2]));
        assert_eq!(drain(&connection), ["synced", "msg1", "msg2"]);
    }

    #[test]
    fn a_resync_resends_what_the_client_says_it_lacks() {
        let connection = Connection::new(1, 1, 64, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 0)]));
        connection.push(&outgoing([1, 2]));
        connection.begin_sync(&BTreeMap::from([("user:1".to_string(), 1)]));
        connection.sync_page(&[message(2)]);
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 2)]));
        assert_eq!(
            drain(&connection),
            ["synced", "msg1", "msg2", "msg2", "synced"]
        );
    }

    #[test]
    fn ephemeral_messages_go_out_as_notices_beside_the_log() {
        let connection = Connection::new(1, 1, 64, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::new());
        let notice = Message {
            id: 9,
            body: "maintenance at noon".into(),
            ..Message::default()
        };
        connection.push(&[Outgoing::new(&notice), Outgoing::new(&notice)]);
        connection.push(&outgoing([1]));
        // Both notices go out (they have no seq to de-duplicate by), and the log is untouched.
        assert_eq!(drain(&connection), ["synced", "notice", "notice", "msg1"]);
    }

    fn sent_frame(seq: u64) -> ServerFrame {
        ServerFrame::Sent {
            cid: format!("c{seq}"),
            id: seq.to_string(),
            object: "user:1".into(),
            seq,
            ts: 0,
        }
    }

    fn without_echo() -> Arc<Connection> {
        let options = ConnectionOptions {
            echo: false,
            acked: true,
        };
        let connection = Connection::with_options(1, 1, options, 64, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 0)]));
        connection
    }

    #[test]
    fn without_echo_a_connection_is_not_pushed_what_it_was_answered_sent_for() {
        let connection = without_echo();
        connection.push(&outgoing([1]));
        connection.answer_sent(&sent_frame(2));
        connection.push(&outgoing([2, 3]));
        assert_eq!(drain(&connection), ["synced", "msg1", "sent", "msg3"]);
        // A push that comes before its `sent` has gone out already and is not held back.
        connection.push(&outgoing([4]));
        connection.answer_sent(&sent_frame(4));
        connection.push(&outgoing([4, 5]));
        assert_eq!(drain(&connection), ["msg4", "sent", "msg5"]);
    }

    #[test]
    fn own_messages_whose_push_never_comes_are_not_a_gap_and_are_forgotten() {
        let connection = without_echo();
        connection.push(&outgoing([1]));
        // Task spares this connection the pushes of 2 and 3: the next push is 4.
        connection.answer_sent(&sent_frame(2));
        connection.answer_sent(&sent_frame(3));
        connection.push(&outgoing([4]));
        assert_eq!(
            drain(&connection),
            ["synced", "msg1", "sent", "sent", "msg4"]
        );
        let mut state = connection.state();
        assert!(state.own.is_empty(), "passed own messages are forgotten");
        // A seq missing between them is still a gap: 6 was never sent nor answered.
        state.own.push_back((Arc::from("user:1"), 5));
        assert_eq!(state.take_own_through("user:1", 8, 4), (false, 5));
        assert!(state.own.is_empty());
        // Another object's own messages are kept.
        state.own.push_back((Arc::from("group:7"), 2));
        assert_eq!(state.take_own_through("user:1", 9, 8), (false, 8));
        assert_eq!(state.own.len(), 1);
    }

    #[test]
    fn without_echo_a_sync_still_returns_the_connections_own_messages() {
        let connection = without_echo();
        connection.answer_sent(&sent_frame(1));
        connection.begin_sync(&BTreeMap::from([("user:1".to_string(), 0)]));
        connection.sync_page(&[message(1)]);
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 1)]));
        connection.push(&outgoing([1, 2]));
        assert_eq!(
            drain(&connection),
            ["synced", "sent", "msg1", "synced", "msg2"]
        );
    }

    #[test]
    fn with_echo_a_connection_is_pushed_its_own_messages() {
        let connection = Connection::new(1, 1, 64, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::from([("user:1".to_string(), 0)]));
        connection.answer_sent(&sent_frame(1));
        connection.push(&outgoing([1]));
        assert_eq!(drain(&connection), ["synced", "sent", "msg1"]);
    }

    #[test]
    fn a_full_queue_closes_the_connection_as_slow() {
        let connection = Connection::new(1, 1, 2, 10, 10);
        connection.begin_sync(&BTreeMap::new());
        connection.finish_sync(BTreeMap::new());
        connection.push(&outgoing([1, 2, 3]));
        assert_eq!(connection.close_reason(), Some(CloseReason::SlowConsumer));
        // The first close reason stays.
        connection.close(CloseReason::Kicked);
        assert_eq!(connection.close_reason(), Some(CloseReason::SlowConsumer));
    }
}
