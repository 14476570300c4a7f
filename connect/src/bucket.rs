//! A bucket: one CityHash32 shard of this node's users, with its own lock, routines and limiter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::config::ConnectConfig;
use crate::connection::Connection;
use crate::group_list::{GroupList, ListHandle};
use crate::limiter::{Limiter, limiter};
use crate::routine::{PushJob, run_routine};

/// The bucket a user belongs to: CityHash32 of the decimal user id, modulo the bucket count.
pub fn bucket_index(user_id: i64, buckets: usize) -> usize {
    let hash: u32 = cityhasher::hash(user_id.to_string().as_bytes());
    hash as usize % buckets.max(1)
}

/// One shard of the node's users.
#[derive(Debug)]
pub struct Bucket {
    /// Every connection of each user in this bucket (a user may have several devices).
    connections: RwLock<HashMap<i64, Vec<Arc<Connection>>>>,
    /// Each group's online connections in this bucket. Lock order: this, then a
    /// connection's own group handles.
    groups: RwLock<HashMap<i64, GroupList<Arc<Connection>>>>,
    /// Queues of this bucket's routine workers.
    routines: Vec<mpsc::Sender<PushJob>>,
    /// Which routine gets the next job (round-robin).
    next_routine: AtomicUsize,
    /// Every push through this bucket waits for a token here.
    pub limiter: Arc<Limiter>,
}

impl Bucket {
    /// A bucket with its routine workers running (needs a tokio runtime).
    pub fn new(index: usize, config: &ConnectConfig) -> Arc<Bucket> {
        let limiter = Arc::new(limiter(config.push_rate, config.push_burst));
        // The routines hold the bucket weakly: they walk its lists, and stop with it.
        Arc::new_cyclic(|bucket| {
            let mut routines = Vec::with_capacity(config.routines_per_bucket.max(1));
            for _ in 0..config.routines_per_bucket.max(1) {
                let (sender, receiver) = mpsc::channel(config.routine_queue.max(1));
                routines.push(sender);
                let routine = run_routine(index, bucket.clone(), receiver, Arc::clone(&limiter));
                tokio::spawn(routine);
            }
            Bucket {
                connections: RwLock::new(HashMap::new()),
                groups: RwLock::new(HashMap::new()),
                routines,
                next_routine: AtomicUsize::new(0),
                limiter,
            }
        })
    }

    /// Add a connection of its user.
    pub fn add(&self, connection: Arc<Connection>) {
        self.connections
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(connection.user_id)
            .or_default()
            .push(connection);
    }

    /// Put a connection in a group's list (a no-op if it is there already).
    pub fn join_group(&self, group: i64, connection: &Arc<Connection>) {
        let mut groups = self
            .groups
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut handles = connection.group_handles();
        if handles.contains_key(&group) {
            return;
        }
        let handle = groups
            .entry(group)
            .or_default()
            .push_back(Arc::clone(connection));
        handles.insert(group, handle);
    }

    /// Take a connection out of a group's list.
    pub fn leave_group(&self, group: i64, connection: &Connection) {
        let mut groups = self
            .groups
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(handle) = connection.group_handles().remove(&group) {
            Self::unlink(&mut groups, group, handle);
        }
    }

    fn unlink(
        groups: &mut HashMap<i64, GroupList<Arc<Connection>>>,
        group: i64,
        handle: ListHandle,
    ) {
        if let Some(list) = groups.get_mut(&group) {
            list.remove(handle);
            if list.is_empty() {
                groups.remove(&group);
            }
        }
    }

    /// Calls `visit` with each online connection of `group` in this bucket, under the read
    /// lock and without copying the list.
    pub fn for_each_in_group(&self, group: i64, mut visit: impl FnMut(&Arc<Connection>)) {
        let groups = self
            .groups
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(list) = groups.get(&group) {
            list.iter().for_each(&mut visit);
        }
    }

    /// Online connections of `group` in this bucket.
    pub fn group_connection_count(&self, group: i64) -> usize {
        self.groups
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&group)
            .map_or(0, GroupList::len)
    }

    /// Remove a connection from its user's list and from every group it was in; the user's
    /// other connections stay.
    pub fn remove(&self, connection: &Connection) {
        {
            let mut groups = self
                .groups
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for (group, handle) in connection.group_handles().drain() {
                Self::unlink(&mut groups, group, handle);
            }
        }
        let mut connections = self
            .connections
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(list) = connections.get_mut(&connection.user_id) {
            list.retain(|held| held.id != connection.id);
            if list.is_empty() {
                connections.remove(&connection.user_id);
            }
        }
    }

    /// The connections of a user in this bucket.
    pub fn user_connections(&self, user_id: i64) -> Vec<Arc<Connection>> {
        self.connections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&user_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Calls `visit` with every connection in this bucket, under the read lock.
    pub fn for_each_connection(&self, mut visit: impl FnMut(&Arc<Connection>)) {
        let connections = self
            .connections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        connections.values().flatten().for_each(&mut visit);
    }

    /// Whether `connection` is still in this bucket (it has not ended).
    pub fn holds(&self, connection: &Connection) -> bool {
        self.connections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&connection.user_id)
            .is_some_and(|list| list.iter().any(|held| held.id == connection.id))
    }

    /// Number of connections in this bucket.
    pub fn connection_count(&self) -> usize {
        self.connections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Hand a job to the next routine, waiting while its queue is full (back-pressure to the
    /// pusher, never to other buckets); false if the routines are gone.
    pub async fn dispatch(&self, job: PushJob) -> bool {
        let turn = self.next_routine.fetch_add(1, Ordering::Relaxed) % self.routines.len();
        self.routines[turn].send(job).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cityhash32_matches_the_reference_and_is_stable() {
        // CityHash32("") from Google's reference implementation.
        assert_eq!(cityhasher::hash::<u32>(b""), 0xdc56d17a);
        assert_eq!(bucket_index(42, 64), bucket_index(42, 64));
        assert!(bucket_index(42, 64) < 64);
    }

    #[test]
    fn sequential_ids_spread_evenly_over_buckets() {
        const BUCKETS: usize = 64;
        const USERS: i64 = 1_000_000;
        let mut counts = [0u32; BUCKETS];
        for user in 1..=USERS {
            counts[bucket_index(user, BUCKETS)] += 1;
        }
        let even = USERS as f64 / BUCKETS as f64;
        for (bucket, count) in counts.iter().enumerate() {
            let off = (f64::from(*count) - even).abs() / even;
            assert!(
                off <= 0.05,
                "bucket {bucket} holds {count}, {:.1}% off even",
                off * 100.0
            );
        }
    }

    #[tokio::test]
    async fn a_user_keeps_every_connection_until_each_is_removed() {
        let bucket = Bucket::new(0, &ConnectConfig::default());
        let first = Connection::new(1, 7, 4, 10, 10);
        let second = Connection::new(2, 7, 4, 10, 10);
        bucket.add(Arc::clone(&first));
        bucket.add(Arc::clone(&second));
        assert_eq!(bucket.user_connections(7).len(), 2);
        bucket.remove(&first);
        let left = bucket.user_connections(7);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, 2);
        bucket.remove(&second);
        assert_eq!(bucket.connection_count(), 0);
    }

    #[tokio::test]
    async fn group_lists_follow_joins_leaves_and_disconnects() {
        let bucket = Bucket::new(0, &ConnectConfig::default());
        let phone = Connection::new(1, 7, 4, 10, 10);
        let laptop = Connection::new(2, 7, 4, 10, 10);
        let other = Connection::new(3, 8, 4, 10, 10);
        for connection in [&phone, &laptop, &other] {
            bucket.add(Arc::clone(connection));
        }
        for connection in [&phone, &laptop, &other] {
            bucket.join_group(100, connection);
        }
        bucket.join_group(100, &phone);
        bucket.join_group(200, &phone);
        let members = |group: i64| {
            let mut ids = Vec::new();
            bucket.for_each_in_group(group, |connection| ids.push(connection.id));
            ids
        };
        assert_eq!(members(100), [1, 2, 3], "joining twice adds nothing");
        assert_eq!(members(200), [1]);
        bucket.leave_group(100, &laptop);
        assert_eq!(members(100), [1, 3]);
        // A disconnect leaves every group at once.
        bucket.remove(&phone);
        assert_eq!(members(100), [3]);
        assert_eq!(members(200), Vec::<u64>::new());
        assert_eq!(bucket.group_connection_count(200), 0);
        bucket.leave_group(100, &laptop);
        assert_eq!(
            bucket.group_connection_count(100),
            1,
            "leaving twice is a no-op"
        );
    }
}
