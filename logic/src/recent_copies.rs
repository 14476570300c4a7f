//! The one-to-one copies this process appended lately, per recipient inbox: what a delivery
//! receipt needs (each sender's newest message in a range the recipient acknowledged, and its
//! seq in the sender's own inbox) without reading the history, for a logic process that is the
//! only one appending (the embedded deployment).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Copies remembered per inbox: a burst a client acknowledges at once fits.
const PER_INBOX: usize = 64;

/// Inboxes remembered before the memory starts afresh (a bound, not an eviction policy:
/// forgetting only sends a receipt through the history instead).
const INBOXES: usize = 100_000;

/// One recipient copy of a one-to-one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RecentCopy {
    /// Its seq in the recipient's inbox.
    seq: u64,
    /// Its author.
    sender: i64,
    /// The seq of the author's own copy, in their inbox.
    sender_seq: u64,
}

/// One inbox's recent copies.
#[derive(Debug, Default)]
struct Inbox {
    /// Every copy from another user after this seq is among `copies`.
    known_after: u64,
    copies: VecDeque<RecentCopy>,
}

/// The recent recipient copies, by recipient.
#[derive(Debug, Default)]
pub struct RecentCopies(Mutex<HashMap<i64, Inbox>>);

impl RecentCopies {
    /// Remembers a one-to-one message appended as `seq` of `recipient`'s inbox and
    /// `sender_seq` of `sender`'s. Copies are recorded in the order they were appended.
    pub(crate) fn record(&self, recipient: i64, seq: u64, sender: i64, sender_seq: u64) {
        let mut inboxes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if inboxes.len() >= INBOXES && !inboxes.contains_key(&recipient) {
            inboxes.clear();
        }
        let inbox = inboxes.entry(recipient).or_insert_with(|| Inbox {
            known_after: seq.saturating_sub(1),
            copies: VecDeque::new(),
        });
        if seq <= inbox.known_after || inbox.copies.back().is_some_and(|last| last.seq >= seq) {
            // Appends to one inbox are answered in order; an older one means a retry's copy.
            return;
        }
        inbox.copies.push_back(RecentCopy {
            seq,
            sender,
            sender_seq,
        });
        if inbox.copies.len() > PER_INBOX
            && let Some(forgotten) = inbox.copies.pop_front()
        {
            inbox.known_after = forgotten.seq;
        }
    }

    /// Each sender's newest copy among `recipient`'s inbox seqs in `(after, upto]`, as
    /// (sender, seq of their own copy) — or None when the memory does not reach back to
    /// `after` (a restart, or more copies since than it keeps), and the history must tell.
    pub(crate) fn newest_per_sender(
        &self,
        recipient: i64,
        after: u64,
        upto: u64,
    ) -> Option<Vec<(i64, u64)>> {
        let inboxes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let inbox = inboxes.get(&recipient)?;
        if after < inbox.known_after {
            return None;
        }
        let mut newest: Vec<(i64, u64)> = Vec::new();
        for copy in inbox
            .copies
            .iter()
            .filter(|copy| copy.seq > after && copy.seq <= upto)
        {
            match newest.iter_mut().find(|(sender, _)| *sender == copy.sender) {
                Some(found) => found.1 = found.1.max(copy.sender_seq),
                None => newest.push((copy.sender, copy.sender_seq)),
            }
        }
        Some(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_within_memory_is_answered_and_one_before_it_is_not() {
        let recent = RecentCopies::default();
        recent.record(1, 5, 20, 50);
        recent.record(1, 6, 30, 70);
        recent.record(1, 8, 20, 52);
        let mut found = recent.newest_per_sender(1, 4, 8).expect("remembered");
        found.sort_unstable();
        assert_eq!(found, [(20, 52), (30, 70)]);
        assert_eq!(recent.newest_per_sender(1, 6, 7), Some(Vec::new()));
        assert_eq!(
            recent.newest_per_sender(1, 2, 8),
            None,
            "seqs 3 and 4 are unknown"
        );
        assert!(
            recent.newest_per_sender(1, 4, 8).is_some(),
            "from the first copy on"
        );
        assert_eq!(recent.newest_per_sender(2, 0, 8), None);
    }

    #[test]
    fn the_oldest_copies_are_forgotten_past_the_bound() {
        let recent = RecentCopies::default();
        for seq in 1..=(PER_INBOX as u64 + 10) {
            recent.record(1, seq, 20, seq);
        }
        assert_eq!(recent.newest_per_sender(1, 0, 5), None);
        assert_eq!(
            recent.newest_per_sender(1, 9, 20),
            None,
            "seq 10 was forgotten"
        );
        assert_eq!(
            recent.newest_per_sender(1, 10, PER_INBOX as u64 + 10),
            Some(vec![(20, PER_INBOX as u64 + 10)])
        );
    }
}
