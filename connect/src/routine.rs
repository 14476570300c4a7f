//! A bucket's routine worker: takes push jobs in order, passes the limiter, queues the frames.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use natter_infra::now_millis;
use natter_proto::v1::PushLock;
use tokio::sync::{mpsc, watch};

use crate::bucket::Bucket;
use crate::connection::{Connection, Outgoing};
use crate::limiter::Limiter;
use crate::lock_releases::LockReleases;

/// Releases a push's lock once every bucket it was split over has queued its frames.
pub struct Completion {
    remaining: AtomicUsize,
    lock: PushLock,
    releases: LockReleases,
    /// Fault injection: keep the lock, as a node that lost the push would.
    hold: bool,
    /// Set once the lock is released by this completion, so the push's answer can say so and
    /// spare the pusher watching the lock.
    released: watch::Sender<bool>,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("remaining", &self.remaining)
            .field("lock", &self.lock.key)
            .finish_non_exhaustive()
    }
}

impl Completion {
    /// A completion waiting for `parts` buckets.
    pub fn new(parts: usize, lock: PushLock, releases: LockReleases, hold: bool) -> Arc<Self> {
        Arc::new(Completion {
            remaining: AtomicUsize::new(parts),
            lock,
            releases,
            hold,
            released: watch::Sender::new(false),
        })
    }

    /// Whether the lock is released within `patience` (every share queued, the release
    /// answered); false also when it was lost or is held on purpose.
    pub async fn released_within(&self, patience: Duration) -> bool {
        let mut released = self.released.subscribe();
        matches!(
            tokio::time::timeout(patience, released.wait_for(|done| *done)).await,
            Ok(Ok(_))
        )
    }

    /// One bucket is done; the last one releases the lock.
    pub async fn part_done(self: &Arc<Self>) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 || self.hold {
            return;
        }
        if self.releases.is_remote() {
            // The routine goes on to its next job while Redis answers; the release goes with
            // the others finished meanwhile.
            tokio::spawn(Arc::clone(self).release());
        } else {
            Arc::clone(self).release().await;
        }
    }

    /// Releases the lock and tells whoever waits for the push's answer.
    async fn release(self: Arc<Self>) {
        match self.releases.release(&self.lock).await {
            Ok(true) => {
                self.released.send_replace(true);
            }
            // Expired before we finished: task pushes again and the connections drop the repeat.
            Ok(false) => {
                tracing::debug!(key = %self.lock.key, "push lock had expired before release")
            }
            Err(error) => {
                tracing::warn!(%error, key = %self.lock.key, "releasing a push lock failed")
            }
        }
    }
}

/// Whom a push job is for, within its bucket.
#[derive(Debug)]
pub enum Recipients {
    /// These connections (the devices of the users pushed to).
    Connections(Vec<Arc<Connection>>),
    /// The online connections of a group: the routine walks the bucket's list for it.
    Group(i64),
    /// Every connection in the bucket (a system broadcast).
    Everyone,
}

/// One bucket's share of a push.
#[derive(Debug)]
pub struct PushJob {
    /// Whom the frames go to.
    pub recipients: Recipients,
    /// The frames, serialised once for every recipient.
    pub messages: Arc<[Outgoing]>,
    /// Told when this share is queued, if the push was made under a lock.
    pub completion: Option<Arc<Completion>>,
}

/// Run one routine until its bucket is dropped.
pub async fn run_routine(
    index: usize,
    bucket: Weak<Bucket>,
    mut jobs: mpsc::Receiver<PushJob>,
    limiter: Arc<Limiter>,
) {
    let bucket_label = index.to_string();
    while let Some(job) = jobs.recv().await {
        if limiter.check().is_err() {
            metrics::counter!("natter_bucket_limiter_waits_total", "bucket" => bucket_label.clone())
                .increment(1);
            limiter.until_ready().await;
        }
        let mut queued = 0u64;
        let mut push = |connection: &Arc<Connection>| {
            queued += connection.push(&job.messages) as u64;
        };
        match &job.recipients {
            Recipients::Connections(connections) => connections.iter().for_each(&mut push),
            Recipients::Group(group) => {
                if let Some(bucket) = bucket.upgrade() {
                    bucket.for_each_in_group(*group, &mut push);
                }
            }
            Recipients::Everyone => {
                if let Some(bucket) = bucket.upgrade() {
                    bucket.for_each_connection(&mut push);
                }
            }
        }
        if queued > 0 {
            metrics::counter!("natter_frames_pushed_total").increment(queued);
            let now = now_millis();
            for message in job.messages.iter() {
                let latency = (now - message.ts).max(0) as f64 / 1000.0;
                metrics::histogram!("natter_push_latency_seconds").record(latency);
            }
        }
        if let Some(completion) = &job.completion {
            completion.part_done().await;
        }
    }
}
