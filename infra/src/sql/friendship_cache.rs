//! Who is friends with whom, remembered so that a one-to-one send does not pay a query to
//! learn what rarely changes: by a store that is the only writer of its database (the embedded
//! deployment), or by one told of every change by the database (`friendship_notices`), which
//! trusts its memory only while it is being told.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// Pairs remembered at most; past this the cache starts over rather than grow without bound.
const MAX_PAIRS: usize = 500_000;

/// Whether two users are friends, by (smaller id, larger id).
#[derive(Debug)]
pub(crate) struct FriendshipCache {
    inner: Mutex<Inner>,
}

impl Default for FriendshipCache {
    fn default() -> Self {
        FriendshipCache::trusting(true)
    }
}

#[derive(Debug)]
struct Inner {
    pairs: HashMap<(i64, i64), bool>,
    /// Bumped by every change, so an answer read from the database before a change is not
    /// remembered after it.
    generation: u64,
    /// Whether every change is known here; while not, nothing remembered is answered.
    trusted: bool,
}

fn pair(a: i64, b: i64) -> (i64, i64) {
    (a.min(b), a.max(b))
}

impl FriendshipCache {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered answer, or the generation to hand to [`Self::remember`] after asking
    /// the database.
    pub(crate) fn get(&self, a: i64, b: i64) -> Result<bool, u64> {
        let inner = self.inner();
        if !inner.trusted {
            return Err(inner.generation);
        }
        inner
            .pairs
            .get(&pair(a, b))
            .copied()
            .ok_or(inner.generation)
    }

    fn trusting(trusted: bool) -> Self {
        FriendshipCache {
            inner: Mutex::new(Inner {
                pairs: HashMap::new(),
                generation: 0,
                trusted,
            }),
        }
    }

    /// A cache that answers nothing until [`Self::start_over`].
    pub(crate) fn untrusted() -> Self {
        FriendshipCache::trusting(false)
    }

    /// Changes may be going unseen (the notices stopped): answer nothing from memory.
    pub(crate) fn distrust(&self) {
        self.forget_all(false);
    }

    /// Every change from now on is seen: forget everything, and remember again.
    pub(crate) fn start_over(&self) {
        self.forget_all(true);
    }

    /// Forgets every pair, and every answer being read, then trusts the memory or not.
    fn forget_all(&self, trusted: bool) {
        let mut inner = self.inner();
        inner.trusted = trusted;
        inner.generation += 1;
        inner.pairs.clear();
    }

    /// The generation now, to hand to [`Self::remember`] for answers about to be read.
    pub(crate) fn generation(&self) -> u64 {
        self.inner().generation
    }

    /// Remembers an answer read at `generation`, unless something changed since.
    pub(crate) fn remember(&self, a: i64, b: i64, friends: bool, generation: u64) {
        let mut inner = self.inner();
        if inner.generation != generation {
            return;
        }
        if inner.pairs.len() >= MAX_PAIRS {
            inner.pairs.clear();
        }
        inner.pairs.insert(pair(a, b), friends);
    }

    /// Forgets a pair whose friendship changed (or is about to).
    pub(crate) fn forget(&self, a: i64, b: i64) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.pairs.remove(&pair(a, b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_read_before_a_change_is_not_remembered() {
        let cache = FriendshipCache::default();
        let generation = cache.get(1, 2).expect_err("nothing remembered");
        cache.forget(2, 1);
        cache.remember(1, 2, false, generation);
        assert!(cache.get(1, 2).is_err(), "a stale answer is dropped");
        let generation = cache.get(2, 1).expect_err("still nothing");
        cache.remember(2, 1, true, generation);
        assert_eq!(cache.get(1, 2), Ok(true), "either order names one pair");
        // A friend list read before a change is not remembered either.
        let generation = cache.generation();
        cache.forget(3, 4);
        cache.remember(3, 5, true, generation);
        assert!(cache.get(3, 5).is_err(), "read before a change: dropped");
    }

    #[test]
    fn an_untrusted_cache_answers_nothing_until_it_starts_over() {
        let cache = FriendshipCache::untrusted();
        let generation = cache.get(1, 2).expect_err("nothing answered");
        cache.remember(1, 2, true, generation);
        assert!(cache.get(1, 2).is_err(), "remembered, but not trusted");
        cache.start_over();
        assert!(
            cache.get(1, 2).is_err(),
            "starting over forgets what was read before"
        );
        let generation = cache.get(1, 2).expect_err("nothing yet");
        cache.remember(1, 2, true, generation);
        assert_eq!(cache.get(1, 2), Ok(true));
        let generation = cache.generation();
        cache.distrust();
        assert!(cache.get(1, 2).is_err(), "distrusted: nothing answered");
        cache.start_over();
        cache.remember(1, 2, false, generation);
        assert!(
            cache.get(1, 2).is_err(),
            "an answer read before the gap is dropped"
        );
    }
}
