//! What the history store answers: ranges of an object's copies (the log's reads, history
//! pages), a conversation's copies through the peer index, a message's copies through the id
//! index, a retried send's through the cid index, and the few summaries built on those.

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};

use natter_proto::ObjectId;
use natter_proto::v1::Message;

use super::keys::{self, OBJECT_LEN};
use super::{History, decode};
use crate::error::{InfraError, InfraResult};
use crate::store::{AUTHORED_KINDS, SenderNewest};

/// A key the store wrote that does not read back as one.
fn malformed(key: &[u8]) -> InfraError {
    InfraError::Corrupt(format!(
        "a history key of {} bytes reads as nothing",
        key.len()
    ))
}

/// An entry of `object` in the `messages` keyspace, decoded with its place.
fn copy_of(object: ObjectId, found: fjall::Guard) -> InfraResult<Message> {
    let (key, payload) = found.into_inner()?;
    let (_, seq) = keys::place_of(&key).ok_or_else(|| malformed(&key))?;
    decode(object, seq, &payload)
}

impl History {
    /// The seq of an object's newest copy (0 when it has none).
    pub fn end(&self, object: ObjectId) -> InfraResult<u64> {
        let Some(newest) = self.messages.prefix(keys::object_key(object)).next_back() else {
            return Ok(0);
        };
        let key = newest.key()?;
        keys::place_of(&key)
            .map(|(_, seq)| seq)
            .ok_or_else(|| malformed(&key))
    }

    /// Every object with at least one copy, in key order.
    pub fn objects(&self) -> InfraResult<Vec<ObjectId>> {
        let mut objects = Vec::new();
        let mut next = self.messages.iter().next();
        while let Some(found) = next {
            let key = found.key()?;
            let object = keys::object_of(&key).ok_or_else(|| malformed(&key))?;
            objects.push(object);
            let past = keys::place(object, u64::MAX);
            next = self.messages.range((Excluded(past), Unbounded)).next();
        }
        Ok(objects)
    }

    /// Up to `max` copies of `object` after seq `after`, oldest first.
    pub fn after(&self, object: ObjectId, after: u64, max: usize) -> InfraResult<Vec<Message>> {
        let Some(first) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        let range = keys::place(object, first)..=keys::place(object, u64::MAX);
        self.messages
            .range(range)
            .take(max)
            .map(|found| copy_of(object, found))
            .collect()
    }

    /// Up to `limit` copies of `object` with seq below `before`, newest first.
    pub fn before(&self, object: ObjectId, before: u64, limit: usize) -> InfraResult<Vec<Message>> {
        let range = keys::place(object, 0)..keys::place(object, before);
        self.messages
            .range(range)
            .rev()
            .take(limit)
            .map(|found| copy_of(object, found))
            .collect()
    }

    /// The copies of `object` whose peer is `peer` with seq in `(after, upto]`, newest first,
    /// through the peer index.
    fn with_peer(
        &self,
        object: ObjectId,
        peer: i64,
        after: u64,
        upto: u64,
    ) -> impl Iterator<Item = InfraResult<Message>> + '_ {
        let range = (
            Excluded(keys::peer_key(object, peer, after)),
            Included(keys::peer_key(object, peer, upto)),
        );
        self.by_peer.range(range).rev().filter_map(move |found| {
            let read = || -> InfraResult<Option<Message>> {
                let key = found.key()?;
                let (_, seq) = keys::peer_and_seq_of(&key).ok_or_else(|| malformed(&key))?;
                self.copy_at(object, seq)
            };
            // An index entry always has its copy (they are written together); a missing one
            // is skipped rather than failing a history page.
            read().transpose()
        })
    }

    /// Up to `limit` copies of `object` exchanged with `peer` with seq below `before`, newest
    /// first.
    pub fn with_peer_before(
        &self,
        object: ObjectId,
        peer: i64,
        before: u64,
        limit: usize,
    ) -> InfraResult<Vec<Message>> {
        let Some(upto) = before.checked_sub(1) else {
            return Ok(Vec::new());
        };
        // `after` is exclusive, so seq 0 (never used) is the lowest bound there is.
        self.with_peer(object, peer, 0, upto).take(limit).collect()
    }

    /// The newest copy of `object` with `peer` whose kind is not one of `skipping`.
    pub fn latest_with_peer(
        &self,
        object: ObjectId,
        peer: i64,
        skipping: &[&str],
    ) -> InfraResult<Option<Message>> {
        for copy in self.with_peer(object, peer, 0, u64::MAX) {
            let copy = copy?;
            if !skipping.contains(&copy.kind.as_str()) {
                return Ok(Some(copy));
            }
        }
        Ok(None)
    }

    /// How many copies of `object` with `peer` after seq `after` were written by someone other
    /// than `reader` and are of none of the kinds `skipping`, counted up to `cap`.
    pub fn count_unread(
        &self,
        object: ObjectId,
        peer: i64,
        after: u64,
        reader: i64,
        skipping: &[&str],
        cap: u64,
    ) -> InfraResult<u64> {
        let mut count = 0;
        for copy in self.with_peer(object, peer, after, u64::MAX) {
            let copy = copy?;
            if copy.sender != reader && !skipping.contains(&copy.kind.as_str()) {
                count += 1;
                if count >= cap {
                    break;
                }
            }
        }
        Ok(count)
    }

    /// The id of the newest text or image `sender` wrote in `object` with `peer` at or below
    /// seq `upto`.
    pub fn newest_from(
        &self,
        object: ObjectId,
        peer: i64,
        sender: i64,
        upto: u64,
    ) -> InfraResult<Option<u64>> {
        for copy in self.with_peer(object, peer, 0, upto) {
            let copy = copy?;
            if copy.sender == sender && AUTHORED_KINDS.contains(&copy.kind.as_str()) {
                return Ok(Some(copy.id));
            }
        }
        Ok(None)
    }

    /// The peers `object`'s copies name, 0 (none) aside, in order.
    pub fn peers(&self, object: ObjectId) -> InfraResult<Vec<i64>> {
        let mut peers = Vec::new();
        let end = Included(keys::peer_key(object, i64::MAX, u64::MAX));
        let mut next = self
            .by_peer
            .range((Included(keys::peer_key(object, i64::MIN, 0)), end))
            .next();
        while let Some(found) = next {
            let key = found.key()?;
            let (peer, _) = keys::peer_and_seq_of(&key).ok_or_else(|| malformed(&key))?;
            if peer != 0 {
                peers.push(peer);
            }
            let past = Excluded(keys::peer_key(object, peer, u64::MAX));
            next = self.by_peer.range((past, end)).next();
        }
        Ok(peers)
    }

    /// Every stored copy of message `id`, ordered by their object's name.
    pub fn copies(&self, id: u64) -> InfraResult<Vec<Message>> {
        let mut copies = Vec::new();
        for found in self.by_id.prefix(id.to_be_bytes()) {
            let key = found.key()?;
            let (object, seq) = keys::trailing_place(&key).ok_or_else(|| malformed(&key))?;
            copies.extend(self.copy_at(object, seq)?);
        }
        copies.sort_by(|one, other| one.object.cmp(&other.object));
        Ok(copies)
    }

    /// Every stored copy `sender` sent with client id `cid` at or after `since` (ms), ordered by
    /// their object's name.
    pub fn copies_by_cid(&self, sender: i64, cid: &str, since: i64) -> InfraResult<Vec<Message>> {
        let mut copies = Vec::new();
        for found in self.by_cid.prefix(keys::cid_prefix(sender, cid)) {
            let key = found.key()?;
            let (object, seq) = keys::trailing_place(&key).ok_or_else(|| malformed(&key))?;
            copies.extend(
                self.copy_at(object, seq)?
                    .filter(|copy| copy.ts >= since && copy.cid == cid),
            );
        }
        copies.sort_by(|one, other| one.object.cmp(&other.object));
        Ok(copies)
    }

    /// The time (ms) of the newest stored message with an id below `id`.
    pub fn newest_time_before(&self, id: u64) -> InfraResult<Option<i64>> {
        let below = ..keys::id_key(id, ObjectId::Group(i64::MIN), 0);
        for found in self.by_id.range(below).rev() {
            let key = found.key()?;
            let (object, seq) = keys::trailing_place(&key).ok_or_else(|| malformed(&key))?;
            if let Some(copy) = self.copy_at(object, seq)? {
                return Ok(Some(copy.ts));
            }
        }
        Ok(None)
    }

    /// The newest text or image of each sender (0, and `excluding` if given, aside) among
    /// `object`'s seqs in `(after, upto]`, by sender.
    pub fn newest_per_sender(
        &self,
        object: ObjectId,
        after: u64,
        upto: u64,
        excluding: Option<i64>,
    ) -> InfraResult<Vec<SenderNewest>> {
        if upto <= after {
            return Ok(Vec::new());
        }
        let mut newest = BTreeMap::new();
        let range = (
            Excluded(keys::place(object, after)),
            Included(keys::place(object, upto)),
        );
        for found in self.messages.range(range) {
            let copy = copy_of(object, found)?;
            if copy.sender != 0
                && Some(copy.sender) != excluding
                && AUTHORED_KINDS.contains(&copy.kind.as_str())
            {
                newest.insert(copy.sender, (copy.id, copy.seq));
            }
        }
        Ok(newest
            .into_iter()
            .map(|(sender, (id, seq))| SenderNewest { sender, id, seq })
            .collect())
    }

    /// The seq of message `id`'s copy in an object other than `object` (a one-to-one message's
    /// other inbox), if one is stored.
    pub fn other_copy_seq(&self, id: u64, object: ObjectId) -> InfraResult<Option<u64>> {
        let own = keys::object_key(object);
        for found in self.by_id.prefix(id.to_be_bytes()) {
            let key = found.key()?;
            if key.get(8..8 + OBJECT_LEN) != Some(&own[..]) {
                let (_, seq) = keys::trailing_place(&key).ok_or_else(|| malformed(&key))?;
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }
}
