//! Delivery and read receipts: when a user acknowledges their inbox or moves a read cursor,
//! the authors of the messages they passed learn it. Nothing is stored per message: each
//! receipt is derived from the cursor and the history, in the background, so acknowledgements
//! never wait for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use natter_infra::InfraError;
use natter_proto::ObjectId;
use natter_proto::frame::ServerFrame;

use crate::state::LogicService;

/// Cursor moves waiting for their receipts; past this many, new ones are dropped (counted on
/// `/metrics`): receipts are live news, and the state is read again over REST on reload.
const PENDING_CAP: usize = 65_536;

/// How far back a range with no earlier position looks, so a first acknowledgement after a
/// long absence costs a bounded query.
const LOOKBACK: u64 = 500;

/// Positions remembered per reader and conversation before the memory starts afresh.
const PROCESSED_CAP: usize = 100_000;

/// Cursor moves are gathered this long before a round, so a burst of acks costs one query
/// per reader.
const GATHER: Duration = Duration::from_millis(20);

/// Which cursor moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum CursorMove {
    /// The reader acknowledged their inbox: what reached a device of theirs.
    Delivered,
    /// The reader's read cursor on a conversation.
    Read,
}

/// One reader's cursor on one conversation (or their inbox).
type MoveKey = (i64, String, CursorMove);

/// The receipts waiting to be worked out, and the worker that does it.
#[derive(Debug, Default)]
pub struct Receipts {
    /// The newest position per reader and cursor, not yet worked out.
    pending: Mutex<HashMap<MoveKey, u64>>,
    /// The position each reader's receipts were last worked out to.
    processed: Mutex<HashMap<MoveKey, u64>>,
    /// Whether a worker is running.
    running: AtomicBool,
}

impl Receipts {
    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<MoveKey, u64>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_processed(&self) -> std::sync::MutexGuard<'_, HashMap<MoveKey, u64>> {
        self.processed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a cursor move; true if a worker must be started for it.
    fn record(&self, key: MoveKey, seq: u64) -> bool {
        {
            let mut pending = self.lock_pending();
            if pending.len() >= PENDING_CAP && !pending.contains_key(&key) {
                metrics::counter!("natter_receipts_dropped_total").increment(1);
                return false;
            }
            let entry = pending.entry(key).or_insert(seq);
            *entry = (*entry).max(seq);
        }
        !self.running.swap(true, Ordering::AcqRel)
    }

    /// Takes every pending move; when there are none, stops the worker (unless a move came in
    /// meanwhile and found it still running).
    fn take(&self) -> Option<Vec<(MoveKey, u64)>> {
        let taken: Vec<_> = self.lock_pending().drain().collect();
        if !taken.is_empty() {
            return Some(taken);
        }
        self.running.store(false, Ordering::Release);
        // A move recorded between the drain and the store saw the worker running: take it
        // over, unless another worker already started for it.
        if self.lock_pending().is_empty() || self.running.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(self.lock_pending().drain().collect())
    }

    /// Whether a range for `key` was worked out here, or its start set.
    fn knows(&self, key: &MoveKey) -> bool {
        self.lock_processed().contains_key(key)
    }

    /// The positions worked out, with room for `key` (past the cap they start afresh).
    fn processed_with_room_for(
        &self,
        key: &MoveKey,
    ) -> std::sync::MutexGuard<'_, HashMap<MoveKey, u64>> {
        let mut processed = self.lock_processed();
        if processed.len() >= PROCESSED_CAP && !processed.contains_key(key) {
            processed.clear();
        }
        processed
    }

    /// Sets where `key`'s first range starts, unless one was worked out here since.
    fn start_from(&self, key: &MoveKey, seq: u64) {
        self.processed_with_room_for(key)
            .entry(key.clone())
            .or_insert(seq);
    }

    /// The start of the range a move covers, and remembers its end.
    fn range_start(&self, key: &MoveKey, upto: u64) -> u64 {
        let previous = self.processed_with_room_for(key).insert(key.clone(), upto);
        previous.unwrap_or_else(|| upto.saturating_sub(LOOKBACK))
    }
}

/// The move key of `reader` acknowledging `object`, when it is their own inbox (the only
/// acknowledgement that makes delivery receipts).
fn delivered_key(reader: i64, object: &ObjectId) -> Option<MoveKey> {
    matches!(object, ObjectId::User(owner) if *owner == reader)
        .then(|| (reader, object.to_string(), CursorMove::Delivered))
}

impl LogicService {
    /// Whether the delivery receipts of `reader` acknowledging `object` have no start here
    /// yet (their first acknowledgement since this process started): the caller then hands
    /// in the cursor stored before it, rather than the range looking back over the history.
    pub(crate) fn receipt_start_unknown(&self, reader: i64, object: &ObjectId) -> bool {
        delivered_key(reader, object).is_some_and(|key| !self.receipts.knows(&key))
    }

    /// A user acknowledged their inbox up to `seq` (from `previous`, when known): the senders
    /// of what they passed learn it reached them.
    pub(crate) fn receipt_for_ack(
        &self,
        reader: i64,
        object: &ObjectId,
        seq: u64,
        previous: Option<u64>,
    ) {
        if let Some(key) = delivered_key(reader, object) {
            if let Some(previous) = previous {
                self.receipts.start_from(&key, previous);
            }
            self.record_move(key, seq);
        }
    }

    /// A user read a conversation up to `seq`: the authors of what they passed learn it.
    pub(crate) fn receipt_for_read(&self, reader: i64, conversation: &str, seq: u64) {
        self.record_move((reader, conversation.to_string(), CursorMove::Read), seq);
    }

    fn record_move(&self, key: MoveKey, seq: u64) {
        if self.receipts.record(key, seq) {
            let logic = self.clone();
            tokio::spawn(async move { logic.work_out_receipts().await });
        }
    }

    /// The worker: works out receipts for the pending moves until none are left.
    async fn work_out_receipts(self) {
        loop {
            tokio::time::sleep(GATHER).await;
            let Some(moves) = self.receipts.take() else {
                return;
            };
            for (key, upto) in moves {
                if let Err(error) = self.receipts_of(&key, upto).await {
                    // Live news only: the next move, or a reload, shows the state.
                    tracing::warn!(%error, reader = key.0, conversation = %key.1, "receipt not sent");
                    metrics::counter!("natter_receipts_failed_total").increment(1);
                }
            }
        }
    }

    /// Works out and sends the receipts of one reader's move to `upto`.
    async fn receipts_of(&self, key: &MoveKey, upto: u64) -> Result<(), InfraError> {
        let (reader, conversation, cursor) = key;
        let Ok(target) = conversation.parse::<ObjectId>() else {
            return Ok(());
        };
        match (cursor, target) {
            (CursorMove::Delivered, ObjectId::User(_)) => {
                let after = self.receipts.range_start(key, upto);
                let remembered = self.recent_copies.newest_per_sender(*reader, after, upto);
                let newest = match remembered {
                    Some(newest) => newest,
                    None => self.store.newest_own_copies(*reader, after, upto).await?,
                };
                for (sender, sender_seq) in newest {
                    self.send_one_to_one_receipt(*reader, sender, sender_seq, *cursor)
                        .await;
                }
            }
            (CursorMove::Read, ObjectId::User(peer)) => {
                let inbox = ObjectId::User(*reader);
                if let Some(id) = self.store.newest_from(&inbox, peer, peer, upto).await? {
                    self.read_receipt(*reader, peer, id).await?;
                }
            }
            (CursorMove::Read, ObjectId::Group(group)) => {
                let after = self.receipts.range_start(key, upto);
                let log = ObjectId::Group(group);
                for newest in self.store.newest_per_sender(&log, after, upto).await? {
                    if newest.sender == *reader {
                        continue;
                    }
                    let readers = self
                        .store
                        .readers(conversation, newest.seq, newest.sender, 0)
                        .await?;
                    let frame = ServerFrame::Receipt {
                        conversation: conversation.clone(),
                        delivered: None,
                        read: Some(newest.seq),
                        read_count: Some(readers.count),
                    };
                    self.notify_users(vec![newest.sender], &frame).await;
                    metrics::counter!("natter_receipts_sent_total", "kind" => "group_read")
                        .increment(1);
                }
            }
            (CursorMove::Delivered, ObjectId::Group(_)) => {}
        }
        Ok(())
    }

    /// Tells `author` that `reader` read their message `id`, and so everything before it,
    /// naming the author's own copy of it.
    async fn read_receipt(&self, reader: i64, author: i64, id: u64) -> Result<(), InfraError> {
        let author_inbox = ObjectId::User(author).to_string();
        let copies = self.store.message_copies(id).await?;
        if let Some(own) = copies.iter().find(|copy| copy.object == author_inbox) {
            self.send_one_to_one_receipt(reader, author, own.seq, CursorMove::Read)
                .await;
        }
        Ok(())
    }

    /// Tells `author` that `reader` got (or read) their messages up to `author_seq` of the
    /// author's own inbox.
    async fn send_one_to_one_receipt(
        &self,
        reader: i64,
        author: i64,
        author_seq: u64,
        cursor: CursorMove,
    ) {
        if author == reader || author <= 0 {
            return;
        }
        let conversation = ObjectId::User(reader).to_string();
        let (frame, kind) = match cursor {
            CursorMove::Delivered => (
                ServerFrame::Receipt {
                    conversation,
                    delivered: Some(author_seq),
                    read: None,
                    read_count: None,
                },
                "delivered",
            ),
            CursorMove::Read => (
                ServerFrame::Receipt {
                    conversation,
                    delivered: None,
                    read: Some(author_seq),
                    read_count: None,
                },
                "read",
            ),
        };
        self.notify_users(vec![author], &frame).await;
        metrics::counter!("natter_receipts_sent_total", "kind" => kind).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(reader: i64) -> MoveKey {
        (reader, format!("user:{reader}"), CursorMove::Delivered)
    }

    #[test]
    fn a_first_range_starts_at_the_cursor_handed_in_or_looks_back() {
        let receipts = Receipts::default();
        assert!(!receipts.knows(&key(1)));
        receipts.start_from(&key(1), 40);
        assert!(receipts.knows(&key(1)));
        assert_eq!(receipts.range_start(&key(1), 42), 40);
        assert_eq!(
            receipts.range_start(&key(1), 45),
            42,
            "then from the last range's end"
        );
        // A start handed in after a range was worked out does not move it back.
        receipts.start_from(&key(1), 10);
        assert_eq!(receipts.range_start(&key(1), 46), 45);
        // Without a start, the first range looks back a bounded way.
        assert_eq!(receipts.range_start(&key(2), 900), 900 - LOOKBACK);
        assert_eq!(receipts.range_start(&key(3), 7), 0);
    }
}
