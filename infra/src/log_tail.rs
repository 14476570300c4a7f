//! The newest entries of each object's log, kept in memory by the log's only writer so that a
//! reader that is nearly up to date (task, a sync after a short absence) needs no query.
//!
//! Each object keeps its end and a contiguous run of its newest messages ending there. The
//! writer records what it committed, in seq order; readers fall back to the database for
//! anything older than the run or for an object not remembered.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use natter_proto::ObjectId;
use natter_proto::v1::Message;

/// Newest messages kept per object: enough for a delivery batch or a short reconnect.
const RECENT_PER_OBJECT: usize = 64;
/// Messages kept in all; past this the runs start over (ends are kept) rather than grow.
const MAX_RECENT: usize = 200_000;
/// Objects remembered at most; past this everything starts over.
const MAX_OBJECTS: usize = 1_000_000;

/// One object's remembered end and newest messages.
#[derive(Debug, Default)]
struct ObjectTail {
    /// The seq of the last committed message.
    end: u64,
    /// Committed messages ending at `end`, contiguous in seq (possibly empty).
    recent: VecDeque<Message>,
}

#[derive(Debug, Default)]
struct TailState {
    objects: HashMap<ObjectId, ObjectTail>,
    /// Messages held across every `recent`.
    held: usize,
}

/// The remembered tails of every object's log.
#[derive(Debug, Default)]
pub(crate) struct LogTail {
    state: Mutex<TailState>,
}

impl LogTail {
    fn state(&self) -> MutexGuard<'_, TailState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered end of an object's log, if any.
    pub(crate) fn end(&self, object: &ObjectId) -> Option<u64> {
        self.state().objects.get(object).map(|tail| tail.end)
    }

    /// Merges in an end read from the database (a lower bound of the truth): the larger of
    /// the two is kept. Returns the remembered end.
    pub(crate) fn learn_end(&self, object: ObjectId, end: u64) -> u64 {
        let mut state = self.state();
        if state.objects.len() >= MAX_OBJECTS {
            state.objects.clear();
            state.held = 0;
        }
        let tail = state.objects.entry(object).or_default();
        tail.end = tail.end.max(end);
        tail.end
    }

    /// Up to `max` messages after `after`, if the remembered run covers them: `None` means
    /// "ask the database".
    pub(crate) fn read(&self, object: &ObjectId, after: u64, max: usize) -> Option<Vec<Message>> {
        let state = self.state();
        let tail = state.objects.get(object)?;
        if after >= tail.end {
            return Some(Vec::new());
        }
        let first = tail.recent.front()?.seq;
        if first > after + 1 {
            return None;
        }
        let skip = (after + 1 - first) as usize;
        Some(tail.recent.iter().skip(skip).take(max).cloned().collect())
    }

    /// Records messages just committed to one object, in seq order, with `object` and `seq`
    /// filled in.
    pub(crate) fn appended(&self, object: ObjectId, messages: Vec<Message>) {
        let Some(last) = messages.last().map(|message| message.seq) else {
            return;
        };
        let mut state = self.state();
        if state.held + messages.len() > MAX_RECENT {
            for tail in state.objects.values_mut() {
                tail.recent.clear();
            }
            state.held = 0;
        }
        if state.objects.len() >= MAX_OBJECTS {
            state.objects.clear();
            state.held = 0;
        }
        let tail = state.objects.entry(object).or_default();
        let mut removed = 0usize;
        let contiguous = tail
            .recent
            .back()
            .is_none_or(|newest| newest.seq + 1 == messages[0].seq);
        if !contiguous {
            removed += tail.recent.len();
            tail.recent.clear();
        }
        let added = messages.len();
        tail.recent.extend(messages);
        while tail.recent.len() > RECENT_PER_OBJECT {
            tail.recent.pop_front();
            removed += 1;
        }
        tail.end = tail.end.max(last);
        state.held = (state.held + added).saturating_sub(removed);
    }

    /// Forgets every object (another process may have written to any of them).
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.objects.clear();
        state.held = 0;
    }

    /// Forgets an object (its writes failed and what the database holds must be read again).
    pub(crate) fn forget(&self, object: &ObjectId) {
        let mut state = self.state();
        if let Some(tail) = state.objects.remove(object) {
            state.held = state.held.saturating_sub(tail.recent.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64) -> Message {
        Message {
            seq,
            id: seq * 10,
            ..Message::default()
        }
    }

    #[test]
    fn reads_are_served_only_from_a_contiguous_run() {
        let tail = LogTail::default();
        let object = ObjectId::User(1);
        assert_eq!(tail.read(&object, 0, 10), None, "unknown: ask the database");
        tail.learn_end(object, 3);
        assert_eq!(tail.read(&object, 3, 10), Some(Vec::new()), "up to date");
        assert_eq!(tail.read(&object, 1, 10), None, "older than the run");
        tail.appended(object, vec![at(4), at(5)]);
        let read = tail.read(&object, 3, 10).expect("covered");
        assert_eq!(read.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(tail.read(&object, 4, 1).expect("covered")[0].seq, 5);
        assert_eq!(tail.read(&object, 2, 10), None);
        // A gap (another writer's commit) restarts the run.
        tail.appended(object, vec![at(9)]);
        assert_eq!(tail.end(&object), Some(9));
        assert_eq!(tail.read(&object, 5, 10), None);
        assert_eq!(tail.read(&object, 8, 10).expect("covered")[0].seq, 9);
        tail.forget(&object);
        assert_eq!(tail.end(&object), None);
    }

    #[test]
    fn a_run_keeps_only_the_newest_messages() {
        let tail = LogTail::default();
        let object = ObjectId::Group(2);
        let messages: Vec<Message> = (1..=200).map(at).collect();
        tail.appended(object, messages);
        assert_eq!(tail.read(&object, 0, 10), None);
        let newest = tail.read(&object, 199 - 1, 10).expect("covered");
        assert_eq!(newest.len(), 2);
        assert_eq!(tail.state().held, RECENT_PER_OBJECT);
    }
}
