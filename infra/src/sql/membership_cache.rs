//! Each user's groups, remembered by a store that is the only writer of its database (the
//! embedded deployment), so that connecting, syncing and sending to a group do not each pay a
//! query for a list that rarely changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Users remembered at most; past this the cache starts over rather than grow without bound.
const MAX_USERS: usize = 200_000;

/// Group ids by user, ascending.
#[derive(Debug, Default)]
pub(crate) struct MembershipCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<i64, Arc<[i64]>>,
    /// Bumped by every change, so a list read from the database before a change is not
    /// remembered after it.
    generation: u64,
}

impl MembershipCache {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered groups of a user, or the generation to hand to [`Self::remember`]
    /// after reading them from the database.
    pub(crate) fn get(&self, user: i64) -> Result<Arc<[i64]>, u64> {
        let inner = self.inner();
        inner.users.get(&user).cloned().ok_or(inner.generation)
    }

    /// Remembers a user's groups as read at `generation`, unless something changed since.
    pub(crate) fn remember(&self, user: i64, groups: &[i64], generation: u64) {
        let mut inner = self.inner();
        if inner.generation != generation {
            return;
        }
        if inner.users.len() >= MAX_USERS {
            inner.users.clear();
        }
        inner.users.insert(user, Arc::from(groups));
    }

    /// A user's membership changed: forget their list.
    pub(crate) fn forget(&self, user: i64) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.users.remove(&user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_read_before_a_change_is_not_remembered_after_it() {
        let cache = MembershipCache::default();
        let generation = cache.get(7).unwrap_err();
        cache.forget(7);
        cache.remember(7, &[1, 2], generation);
        assert!(cache.get(7).is_err(), "stale list remembered");
        let generation = cache.get(7).unwrap_err();
        cache.remember(7, &[1, 2], generation);
        assert_eq!(&*cache.get(7).unwrap(), &[1, 2]);
        cache.forget(7);
        assert!(cache.get(7).is_err());
    }
}
