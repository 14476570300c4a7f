//! A bucket: one CityHash32 shard of this node's users, with its own lock, routines and limiter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use crate::config::ConnectConfig;
use crate::connection::Connection;
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
        let mut routines = Vec::with_capacity(config.routines_per_bucket.max(1));
        for _ in 0..config.routines_per_bucket.max(1) {
            let (sender, receiver) = mpsc::channel(config.routine_queue.max(1));
            routines.push(sender);
            tokio::spawn(run_routine(index, receiver, Arc::clone(&limiter)));
        }
        Arc::new(Bucket {
            connections: RwLock::new(HashMap::new()),
            routines,
            next_routine: AtomicUsize::new(0),
            limiter,
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

    /// Remove a connection; the user's other connections stay.
    pub fn remove(&self, connection: &Connection) {
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

    /// Every connection in this bucket.
    pub fn all_connections(&self) -> Vec<Arc<Connection>> {
        self.connections
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .flatten()
            .cloned()
            .collect()
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
        let (first, _, _) = Connection::new(1, 7, 4, 10, 10);
        let (second, _, _) = Connection::new(2, 7, 4, 10, 10);
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
}
