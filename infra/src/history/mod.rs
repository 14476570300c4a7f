//! The embedded history store: every stored copy of every message, in a log-structured store
//! (fjall) instead of SQLite's B-trees.
//!
//! In a B-tree each copy lands at a random place in its table and in each index, and every
//! commit writes each page it touched whole (about five 4 KiB pages per one-to-one message,
//! then once more when the WAL is checkpointed). Here a commit appends its entries to a
//! journal, sequentially; the entries wait in memory, sorted, and are written out in large
//! sorted runs that background compaction merges. A copy is one entry keyed by its place
//! (object, seq) holding the encoded message, plus one key-only entry per index: by (object,
//! peer, seq) for a conversation's history, by id for a message's copies, by (sender, cid)
//! for a retried send. Key layouts are in [`keys`], the queries in [`queries`].
//!
//! One writer at a time: the embedded deployment's batch writer is the only one to number and
//! write copies, and [`History`] holds a lock around each write so that a copy's place is
//! checked and taken atomically.

mod keys;
mod queries;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use natter_proto::ObjectId;
use natter_proto::v1::Message;
use prost::Message as _;

use crate::error::{InfraError, InfraResult};

/// The block cache the store keeps for reads, shared by its keyspaces.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Sorted runs flushed from memory that wait before they are merged into the next level
/// (fjall's default is 4): merging less often rewrites less, about 15% fewer bytes written
/// per message over three minutes at 8,000 msg/s, and fewer sends refused during merges.
const L0_RUNS_BEFORE_MERGE: u8 = 8;

/// How often the store's size goes to `/metrics`.
const METRICS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// What a write does with a copy whose place is already taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Leave the stored copy and write the others (storing again what task repairs).
    Skip,
    /// Fail the whole write (an append: a seq taken twice is a numbering fault, never hidden).
    Refuse,
}

/// Every stored copy of every message, on disk under one folder.
pub struct History {
    database: Database,
    /// Place (object, seq) → the encoded message (its own object, seq and trace are not read
    /// back: the key gives the place).
    messages: Keyspace,
    /// (object, peer, seq) → nothing: an inbox's conversation with one peer, in order.
    by_peer: Keyspace,
    /// (id, object, seq) → nothing: every copy of a message.
    by_id: Keyspace,
    /// (sender, cid, object, seq) → nothing: what a retried send already stored.
    by_cid: Keyspace,
    /// Held across a write's checks and its commit.
    writing: Mutex<()>,
    /// Objects whose copies every write refuses (a fault the tests inject).
    #[cfg(feature = "conformance")]
    refused: Mutex<HashSet<ObjectId>>,
}

/// The stores open in this process, by folder: a database opened twice shares one (the store
/// locks its folder against every other opener).
static OPEN: Mutex<Option<HashMap<PathBuf, Weak<History>>>> = Mutex::new(None);

impl std::fmt::Debug for History {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("History").finish_non_exhaustive()
    }
}

impl History {
    /// The store in `folder`: the one this process has open there already, or else opened
    /// (created if needed) with what a crash left in its journal recovered.
    pub fn open_shared(folder: &Path) -> InfraResult<Arc<History>> {
        std::fs::create_dir_all(folder)?;
        let key = folder.canonicalize()?;
        let mut open = OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let open = open.get_or_insert_with(HashMap::new);
        if let Some(history) = open.get(&key).and_then(Weak::upgrade) {
            return Ok(history);
        }
        let history = Arc::new(History::open(&key)?);
        open.retain(|_, history| history.strong_count() > 0);
        open.insert(key, Arc::downgrade(&history));
        Ok(history)
    }

    /// Open (creating if needed) the store in `folder`; what a crash left in its journal is
    /// recovered. Fails if another store has the folder open.
    pub fn open(folder: &Path) -> InfraResult<History> {
        // Memory is bounded by fjall: each keyspace's in-memory table is written out at 64 MiB,
        // and writes wait while four of them are queued for flushing (or sorted runs pile up
        // unmerged), so the writer's bounded queue fills and sends are refused.
        let database = Database::builder(folder).cache_size(CACHE_BYTES).open()?;
        let options = || {
            KeyspaceCreateOptions::default().compaction_strategy(Arc::new(
                fjall::compaction::Leveled::default().with_l0_threshold(L0_RUNS_BEFORE_MERGE),
            ))
        };
        let keyspace = |name: &str| database.keyspace(name, options);
        Ok(History {
            messages: keyspace("messages")?,
            by_peer: keyspace("by_peer")?,
            by_id: keyspace("by_id")?,
            by_cid: keyspace("by_cid")?,
            writing: Mutex::new(()),
            #[cfg(feature = "conformance")]
            refused: Mutex::new(HashSet::new()),
            database,
        })
    }

    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Store copies (their `object` and `seq` filled in) in one atomic write, in the OS's
    /// hands when this returns (a crash of the process loses none of it). Returns how many
    /// were written; `existing` says what a copy whose place is taken does.
    pub fn write(&self, copies: &[Message], existing: Existing) -> InfraResult<usize> {
        let placed = copies
            .iter()
            .map(Placed::named)
            .collect::<InfraResult<Vec<_>>>()?;
        self.write_parts(&[(&placed, existing)])
    }

    /// [`History::write`] for several lists of placed copies, each with its own `existing`, in
    /// one atomic write: all of it is stored or none.
    pub fn write_parts(&self, parts: &[(&[Placed<'_>], Existing)]) -> InfraResult<usize> {
        let _writing = self.writing();
        let mut batch = self.database.batch().durability(Some(PersistMode::Buffer));
        let mut taken = HashSet::new();
        let mut written = 0;
        for (copies, existing) in parts {
            for &Placed {
                object,
                seq,
                message: copy,
            } in *copies
            {
                #[cfg(feature = "conformance")]
                if self
                    .refused
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .contains(&object)
                {
                    return Err(InfraError::Unavailable(format!("{object} refuses writes")));
                }
                let place = keys::place(object, seq);
                if !taken.insert(place) || self.messages.contains_key(place)? {
                    match existing {
                        Existing::Skip => continue,
                        Existing::Refuse => {
                            return Err(InfraError::Conflict(format!(
                                "{object}@{seq} is already stored"
                            )));
                        }
                    }
                }
                // Encoded as it is: its place is the key, and reading it back sets the place
                // and drops the trace (which the log's records keep apart), so neither the
                // message's own `object` and `seq` nor its trace need clearing in a copy.
                batch.insert(&self.messages, &place[..], copy.encode_to_vec());
                batch.insert(
                    &self.by_peer,
                    &keys::peer_key(object, copy.peer, seq)[..],
                    &[][..],
                );
                batch.insert(
                    &self.by_id,
                    &keys::id_key(copy.id, object, seq)[..],
                    &[][..],
                );
                if !copy.cid.is_empty() {
                    batch.insert(
                        &self.by_cid,
                        keys::cid_key(copy.sender, &copy.cid, object, seq),
                        &[][..],
                    );
                }
                written += 1;
            }
        }
        if written > 0 {
            batch.commit()?;
        }
        Ok(written)
    }

    /// Rewrite every stored copy of message `id` that `change` changes (it returns whether it
    /// did); returns how many copies changed. Only the stored message changes: its place,
    /// peer, id and cid, which the indexes hold, stay as they were.
    pub fn rewrite(&self, id: u64, change: impl Fn(&mut Message) -> bool) -> InfraResult<u64> {
        let _writing = self.writing();
        let mut batch = self.database.batch().durability(Some(PersistMode::Buffer));
        let mut changed = 0;
        for mut copy in self.copies(id)? {
            if change(&mut copy) {
                let object = parse_object(&copy.object)?;
                batch.insert(
                    &self.messages,
                    &keys::place(object, copy.seq)[..],
                    copy.encode_to_vec(),
                );
                changed += 1;
            }
        }
        if changed > 0 {
            batch.commit()?;
        }
        Ok(changed)
    }

    /// Makes every later write holding a copy for `object` fail whole (a fault for tests).
    #[cfg(feature = "conformance")]
    pub fn refuse_writes_to(&self, object: ObjectId) {
        self.refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(object);
    }

    /// Sets the store's gauges on `/metrics`: its disk, its journal's share of it, and the
    /// in-memory tables waiting to be flushed.
    pub fn report_metrics(&self) {
        match self.database.disk_space() {
            Ok(bytes) => metrics::gauge!("natter_history_disk_bytes").set(bytes as f64),
            Err(error) => tracing::warn!(%error, "the history store's size is unknown"),
        }
        if let Ok(bytes) = self.database.journal_disk_space() {
            metrics::gauge!("natter_history_journal_bytes").set(bytes as f64);
        }
        metrics::gauge!("natter_history_flushes_waiting")
            .set(self.database.outstanding_flushes() as f64);
    }

    /// Reports [`History::report_metrics`] every few seconds for as long as the store is open
    /// (on the current tokio runtime).
    pub fn report_metrics_periodically(history: &Arc<History>) {
        let history = Arc::downgrade(history);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(METRICS_INTERVAL);
            loop {
                interval.tick().await;
                let Some(history) = history.upgrade() else {
                    return;
                };
                history.report_metrics();
            }
        });
    }

    /// The stored copy at a place, decoded.
    fn copy_at(&self, object: ObjectId, seq: u64) -> InfraResult<Option<Message>> {
        self.messages
            .get(keys::place(object, seq))?
            .map(|payload| decode(object, seq, &payload))
            .transpose()
    }
}

/// A stored message with its place filled back in and no trace.
fn decode(object: ObjectId, seq: u64, payload: &[u8]) -> InfraResult<Message> {
    let mut message = Message::decode(payload)
        .map_err(|error| InfraError::Corrupt(format!("{object}@{seq}: {error}")))?;
    message.object = object.to_string();
    message.seq = seq;
    message.trace_parent.clear();
    Ok(message)
}

/// A copy to store: its place, and the message (whose own `object` and `seq` are not read).
#[derive(Clone, Copy, Debug)]
pub struct Placed<'m> {
    /// The object whose log holds the copy.
    pub object: ObjectId,
    /// The copy's seq there.
    pub seq: u64,
    /// The message.
    pub message: &'m Message,
}

impl<'m> Placed<'m> {
    /// A message placed where its own `object` and `seq` say.
    pub fn named(message: &'m Message) -> InfraResult<Placed<'m>> {
        Ok(Placed {
            object: parse_object(&message.object)?,
            seq: message.seq,
            message,
        })
    }
}

/// The object a copy names.
fn parse_object(name: &str) -> InfraResult<ObjectId> {
    name.parse()
        .map_err(|_| InfraError::Corrupt(format!("a copy names no object: {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-to-one message from `sender` to `peer` as its copy in `owner`'s inbox.
    fn copy(owner: i64, seq: u64, id: u64, sender: i64, peer: i64, kind: &str) -> Message {
        Message {
            id,
            object: ObjectId::User(owner).to_string(),
            seq,
            sender,
            peer,
            kind: kind.to_owned(),
            body: format!("body {id}"),
            ts: 1_000 + id as i64,
            cid: format!("cid-{id}"),
            target_kind: "user".to_owned(),
            target_id: if owner == sender { peer } else { owner },
            ..Message::default()
        }
    }

    /// Both copies of one message between users 1 and 2 (and 1 and 3 when `with` says so).
    fn exchange(id: u64, sender: i64, with: i64, seqs: (u64, u64)) -> [Message; 2] {
        [
            copy(sender, seqs.0, id, sender, with, "text"),
            copy(with, seqs.1, id, sender, sender, "text"),
        ]
    }

    fn seqs(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|message| message.seq).collect()
    }

    #[test]
    fn copies_read_back_through_every_index() -> InfraResult<()> {
        let folder = tempfile::tempdir()?;
        let history = History::open(folder.path())?;
        let one = ObjectId::User(1);
        let mut copies = Vec::new();
        copies.extend(exchange(10, 1, 2, (1, 1)));
        copies.extend(exchange(11, 2, 1, (2, 2)));
        copies.extend(exchange(12, 1, 3, (3, 1)));
        copies.extend(exchange(13, 3, 1, (2, 4)));
        assert_eq!(history.write(&copies, Existing::Refuse)?, 8);

        assert_eq!(history.end(one)?, 4);
        assert_eq!(history.end(ObjectId::User(9))?, 0);
        assert_eq!(
            history.objects()?,
            vec![ObjectId::User(1), ObjectId::User(2), ObjectId::User(3)]
        );
        let read = history.after(one, 1, 2)?;
        assert_eq!(seqs(&read), vec![2, 3]);
        assert_eq!(read[0], copies[3], "a copy reads back whole");
        assert_eq!(seqs(&history.before(one, 4, 10)?), vec![3, 2, 1]);
        assert_eq!(seqs(&history.with_peer_before(one, 3, 5, 10)?), vec![4, 3]);
        assert_eq!(seqs(&history.with_peer_before(one, 2, 2, 10)?), vec![1]);
        assert_eq!(history.peers(one)?, vec![2, 3]);

        let both = history.copies(12)?;
        assert_eq!(both.len(), 2);
        assert_eq!((both[0].object.as_str(), both[0].seq), ("user:1", 3));
        assert_eq!((both[1].object.as_str(), both[1].seq), ("user:3", 1));
        assert_eq!(history.copies_by_cid(1, "cid-12", 0)?, both);
        assert!(history.copies_by_cid(1, "cid-12", 2_000)?.is_empty());
        assert!(history.copies_by_cid(2, "cid-12", 0)?.is_empty());
        assert_eq!(history.other_copy_seq(12, one)?, Some(1));
        assert_eq!(history.newest_time_before(12)?, Some(1_011));
        assert_eq!(history.newest_time_before(10)?, None);
        assert_eq!(history.newest_from(one, 3, 3, 10)?, Some(13));
        assert_eq!(history.newest_from(one, 3, 3, 3)?, None);
        Ok(())
    }

    #[test]
    fn a_copy_reads_back_at_its_place_without_its_trace() -> InfraResult<()> {
        let folder = tempfile::tempdir()?;
        let history = History::open(folder.path())?;
        let message = Message {
            object: "user:99".into(),
            seq: 42,
            trace_parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            ..copy(5, 0, 50, 5, 6, "text")
        };
        let placed = Placed {
            object: ObjectId::User(5),
            seq: 1,
            message: &message,
        };
        history.write_parts(&[(&[placed], Existing::Refuse)])?;
        let read = history.after(ObjectId::User(5), 0, 10)?;
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].object.as_str(), read[0].seq), ("user:5", 1));
        assert!(read[0].trace_parent.is_empty());
        assert_eq!(read[0].body, message.body);
        assert_eq!(
            history.end(ObjectId::User(99))?,
            0,
            "the message's own place is not read"
        );
        Ok(())
    }

    #[test]
    fn summaries_count_what_others_wrote() -> InfraResult<()> {
        let folder = tempfile::tempdir()?;
        let history = History::open(folder.path())?;
        let one = ObjectId::User(1);
        let copies = vec![
            copy(1, 1, 20, 2, 2, "text"),
            copy(1, 2, 21, 1, 2, "text"),
            copy(1, 3, 22, 2, 2, "image"),
            copy(1, 4, 23, 2, 2, "reaction"),
            copy(1, 5, 24, 3, 3, "text"),
        ];
        history.write(&copies, Existing::Refuse)?;
        let newest = history.newest_per_sender(one, 0, 5, None)?;
        let senders: Vec<(i64, u64, u64)> = newest
            .iter()
            .map(|found| (found.sender, found.id, found.seq))
            .collect();
        assert_eq!(senders, vec![(1, 21, 2), (2, 22, 3), (3, 24, 5)]);
        let others = history.newest_per_sender(one, 1, 4, Some(1))?;
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].id, 22);
        assert!(history.newest_per_sender(one, 4, 4, None)?.is_empty());

        let latest = history.latest_with_peer(one, 2, &["reaction"])?;
        assert_eq!(latest.map(|found| found.id), Some(22));
        assert_eq!(history.count_unread(one, 2, 0, 1, &["reaction"], 100)?, 2);
        assert_eq!(history.count_unread(one, 2, 0, 1, &["reaction"], 1)?, 1);
        assert_eq!(history.count_unread(one, 2, 3, 1, &["reaction"], 100)?, 0);
        Ok(())
    }

    #[test]
    fn a_taken_place_refuses_an_append_whole_and_is_skipped_by_a_store() -> InfraResult<()> {
        let folder = tempfile::tempdir()?;
        let history = History::open(folder.path())?;
        let one = ObjectId::User(1);
        history.write(&exchange(30, 1, 2, (1, 1)), Existing::Refuse)?;
        let clash = [copy(1, 2, 31, 1, 2, "text"), copy(1, 1, 32, 1, 2, "text")];
        assert!(matches!(
            history.write(&clash, Existing::Refuse),
            Err(InfraError::Conflict(_))
        ));
        assert_eq!(history.end(one)?, 1, "nothing of a refused write is stored");
        assert!(history.copies(31)?.is_empty());
        let twice = [copy(1, 2, 31, 1, 2, "text"), copy(1, 2, 31, 1, 2, "text")];
        assert!(history.write(&twice, Existing::Refuse).is_err());

        assert_eq!(history.write(&clash, Existing::Skip)?, 1);
        assert_eq!(history.end(one)?, 2);
        assert_eq!(
            history.copies(30)?[0].body,
            "body 30",
            "the stored copy stands"
        );
        Ok(())
    }

    #[test]
    fn a_rewrite_changes_only_what_it_matches_and_survives_reopening() -> InfraResult<()> {
        let folder = tempfile::tempdir()?;
        {
            let history = History::open(folder.path())?;
            history.write(&exchange(40, 1, 2, (1, 1)), Existing::Refuse)?;
            history.write(&[copy(1, 2, 41, 1, 2, "image")], Existing::Refuse)?;
            let edit = |copy: &mut Message| {
                let text = copy.kind == "text";
                if text {
                    copy.body = "edited".to_owned();
                }
                text
            };
            assert_eq!(history.rewrite(40, edit)?, 2);
            assert_eq!(history.rewrite(41, edit)?, 0);
            assert_eq!(history.rewrite(99, edit)?, 0);
        }
        let history = History::open(folder.path())?;
        let copies = history.copies(40)?;
        assert_eq!(copies.len(), 2);
        assert!(copies.iter().all(|copy| copy.body == "edited"));
        assert_eq!(history.copies(41)?[0].body, "body 41");
        assert_eq!(history.end(ObjectId::User(1))?, 2);
        assert_eq!(history.copies_by_cid(1, "cid-40", 0)?.len(), 2);
        Ok(())
    }
}
