//! Positions that only ever grow (a log's end, a user's read cursor), remembered in memory so
//! that reading them costs no query: exactly by the only writer of their database, or as a
//! floor (reached at least) by a process sharing it.
//!
//! Because they only grow, a value read from the database may be merged in at any time: the
//! larger of the two is right, however reads and writes interleave.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// Entries remembered at most; past this the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 500_000;

/// Growing positions by key.
#[derive(Debug)]
pub struct PositionCache<K> {
    positions: Mutex<HashMap<K, u64>>,
}

impl<K> Default for PositionCache<K> {
    fn default() -> Self {
        PositionCache {
            positions: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> PositionCache<K> {
    fn positions(&self) -> MutexGuard<'_, HashMap<K, u64>> {
        self.positions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered position, if any.
    pub fn get(&self, key: &K) -> Option<u64> {
        self.positions().get(key).copied()
    }

    /// Merges in a position known to be reached; returns the remembered one (the larger).
    pub fn raise(&self, key: K, position: u64) -> u64 {
        let mut positions = self.positions();
        if positions.len() >= MAX_ENTRIES {
            positions.clear();
        }
        let remembered = positions.entry(key).or_insert(position);
        *remembered = (*remembered).max(position);
        *remembered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_only_grow_whatever_order_they_arrive_in() {
        let cache = PositionCache::default();
        assert_eq!(cache.get(&"user:1"), None);
        assert_eq!(cache.raise("user:1", 5), 5);
        // A read that started before the raise to 5 must not move it back.
        assert_eq!(cache.raise("user:1", 3), 5);
        assert_eq!(cache.raise("user:1", 9), 9);
        assert_eq!(cache.get(&"user:1"), Some(9));
        assert_eq!(cache.get(&"user:2"), None);
    }
}
