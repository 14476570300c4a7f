//! The inbox entries this process appended lately: what a delivery receipt needs (each
//! sender's newest message in a range the recipient acknowledged, and its seq in the sender's
//! own inbox) without reading the history. A range is answered only when every seq in it was
//! appended here, so a cluster's logic processes, each appending some of an inbox's entries,
//! answer what they appended and leave the rest to the history.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// Entries remembered per inbox: a burst a client acknowledges at once fits.
const PER_INBOX: usize = 64;

/// Inboxes remembered before the memory starts afresh (a bound, not an eviction policy:
/// forgetting only sends a receipt through the history instead).
const INBOXES: usize = 100_000;

/// An inbox entry's author and the seq of their own copy in their inbox, for a one-to-one
/// message from another user; `None` for any other entry.
type Entry = Option<(i64, u64)>;

/// The recent inbox entries, by recipient, each inbox's by seq.
#[derive(Debug, Default)]
pub struct RecentCopies(Mutex<HashMap<i64, BTreeMap<u64, Entry>>>);

impl RecentCopies {
    fn inboxes(&self) -> MutexGuard<'_, HashMap<i64, BTreeMap<u64, Entry>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Remembers that `seq` of `owner`'s inbox was appended here (any entry). A one-to-one
    /// copy from another user is then told with [`Self::record`].
    pub(crate) fn appended(&self, owner: i64, seq: u64) {
        self.put(owner, seq, None);
    }

    /// Remembers a one-to-one message appended as `seq` of `recipient`'s inbox and
    /// `sender_seq` of `sender`'s.
    pub(crate) fn record(&self, recipient: i64, seq: u64, sender: i64, sender_seq: u64) {
        self.put(recipient, seq, Some((sender, sender_seq)));
    }

    fn put(&self, owner: i64, seq: u64, entry: Entry) {
        let mut inboxes = self.inboxes();
        if inboxes.len() >= INBOXES && !inboxes.contains_key(&owner) {
            inboxes.clear();
        }
        let inbox = inboxes.entry(owner).or_default();
        // A retried send's copy is told again: what it says about the author wins.
        let known = inbox.entry(seq).or_insert(None);
        if entry.is_some() {
            *known = entry;
        }
        if inbox.len() > PER_INBOX {
            inbox.pop_first();
        }
    }

    /// Each sender's newest copy among `recipient`'s inbox seqs in `(after, upto]`, as
    /// (sender, seq of their own copy) — or None when a seq there was not appended here (by
    /// another process, before a restart, or longer ago than the memory reaches), and the
    /// history must tell.
    pub(crate) fn newest_per_sender(
        &self,
        recipient: i64,
        after: u64,
        upto: u64,
    ) -> Option<Vec<(i64, u64)>> {
        if upto <= after {
            return Some(Vec::new());
        }
        let inboxes = self.inboxes();
        let inbox = inboxes.get(&recipient)?;
        let in_range = inbox.range(after + 1..=upto);
        if u64::try_from(in_range.clone().count()).ok() != Some(upto - after) {
            return None;
        }
        let mut newest: Vec<(i64, u64)> = Vec::new();
        for (sender, sender_seq) in in_range.filter_map(|(_, entry)| *entry) {
            match newest.iter_mut().find(|(known, _)| *known == sender) {
                Some(found) => found.1 = found.1.max(sender_seq),
                None => newest.push((sender, sender_seq)),
            }
        }
        Some(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_whose_every_seq_was_appended_here_is_answered_and_others_are_not() {
        let recent = RecentCopies::default();
        recent.record(1, 5, 20, 50);
        recent.record(1, 6, 30, 70);
        recent.appended(1, 7);
        recent.record(1, 8, 20, 52);
        let mut found = recent.newest_per_sender(1, 4, 8).expect("remembered");
        found.sort_unstable();
        assert_eq!(found, [(20, 52), (30, 70)]);
        assert_eq!(recent.newest_per_sender(1, 6, 7), Some(Vec::new()));
        assert_eq!(recent.newest_per_sender(1, 8, 8), Some(Vec::new()));
        assert_eq!(
            recent.newest_per_sender(1, 3, 8),
            None,
            "seq 4 was not appended here"
        );
        assert_eq!(recent.newest_per_sender(2, 0, 8), None);
    }

    #[test]
    fn a_seq_another_process_appended_sends_the_range_to_the_history() {
        let recent = RecentCopies::default();
        recent.record(1, 5, 20, 50);
        // Seq 6 went through another logic process; 7 arrives here first (answers to two
        // sends need not come in seq order).
        recent.record(1, 7, 30, 71);
        assert_eq!(
            recent.newest_per_sender(1, 4, 7),
            None,
            "seq 6 is unknown here"
        );
        assert_eq!(recent.newest_per_sender(1, 6, 7), Some(vec![(30, 71)]));
        recent.appended(1, 6);
        assert!(
            recent.newest_per_sender(1, 4, 7).is_some(),
            "now every seq is known"
        );
    }

    #[test]
    fn a_copy_told_after_its_append_keeps_its_author() {
        let recent = RecentCopies::default();
        recent.appended(1, 5);
        recent.record(1, 5, 20, 50);
        recent.appended(1, 5);
        assert_eq!(recent.newest_per_sender(1, 4, 5), Some(vec![(20, 50)]));
    }

    #[test]
    fn the_oldest_entries_are_forgotten_past_the_bound() {
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
