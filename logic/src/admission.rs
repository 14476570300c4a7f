//! How many sends logic works on at once: past the bound a send is refused at once with a
//! retry hint, instead of joining a queue that only grows while the server is saturated.
//!
//! The bound adapts to how long sends take. A fixed bound alone keeps the queue finite but
//! not short: at the ceiling every admitted send waits behind the whole bound (1,024 sends at
//! 10,000 a second is 100 ms each), and since a connection answers its frames one at a time,
//! a client sending faster than that builds a backlog in its own socket that grows for as long
//! as the overload lasts. So, as CoDel does for packets, each interval the shortest time a send
//! took is compared with a target: a standing queue (even the quickest send was slow) lowers
//! the bound by a quarter, a short one raises it by an eighth, up to the configured most. At
//! the ceiling the bound settles near throughput × target, and sends beyond it are refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natter_proto::ErrorCode;
use tonic::Status;

/// What a refused sender is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// How often the bound is reconsidered.
const INTERVAL: Duration = Duration::from_millis(100);

/// The bound never falls below this: a few sends always go, so the bound can learn again.
const LEAST: usize = 16;

/// The adaptive bound on sends in progress.
#[derive(Clone, Debug)]
pub struct SendAdmission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    in_flight: AtomicUsize,
    /// The current bound, between [`LEAST`] and `most`.
    bound: AtomicUsize,
    most: usize,
    target: Duration,
    window: Mutex<Window>,
}

/// The interval being observed.
#[derive(Debug)]
struct Window {
    started: Instant,
    /// The quickest send finished in it.
    quickest: Option<Duration>,
}

/// One admitted send; dropping it (once the send is answered) frees its place and records
/// how long it took.
#[derive(Debug)]
pub struct SendPermit {
    inner: Arc<Inner>,
    admitted: Instant,
}

impl Drop for SendPermit {
    fn drop(&mut self) {
        self.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.inner.finished(self.admitted.elapsed());
    }
}

impl Inner {
    /// Records one send's time, and at the end of an interval moves the bound.
    fn finished(&self, took: Duration) {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        window.quickest = Some(window.quickest.map_or(took, |quickest| quickest.min(took)));
        if window.started.elapsed() < INTERVAL {
            return;
        }
        let bound = self.bound.load(Ordering::Acquire);
        let moved = match window.quickest {
            Some(quickest) if quickest > self.target => (bound - bound / 4).max(LEAST),
            _ => (bound + bound / 8 + 1).min(self.most),
        };
        self.bound.store(moved, Ordering::Release);
        metrics::gauge!("natter_send_admission_bound").set(moved as f64);
        *window = Window {
            started: Instant::now(),
            quickest: None,
        };
    }
}

impl SendAdmission {
    /// Admits at most `most` sends at a time (at least one), fewer while sends take longer
    /// than `target`.
    pub fn new(most: usize, target: Duration) -> Self {
        let most = most.max(1);
        SendAdmission {
            inner: Arc::new(Inner {
                in_flight: AtomicUsize::new(0),
                bound: AtomicUsize::new(most),
                most,
                target,
                window: Mutex::new(Window {
                    started: Instant::now(),
                    quickest: None,
                }),
            }),
        }
    }

    /// The current bound.
    pub fn bound(&self) -> usize {
        self.inner.bound.load(Ordering::Acquire)
    }

    /// A place for one send, held until it is answered; `unavailable` with a retry hint when
    /// every place is taken.
    pub fn admit(&self) -> Result<SendPermit, Status> {
        let bound = self.bound();
        let taken =
            self.inner
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_flight| {
                    (in_flight < bound).then_some(in_flight + 1)
                });
        match taken {
            Ok(_) => Ok(SendPermit {
                inner: Arc::clone(&self.inner),
                admitted: Instant::now(),
            }),
            Err(_) => {
                metrics::counter!("natter_sends_refused_total", "reason" => "in_flight")
                    .increment(1);
                let status = ErrorCode::Unavailable.status(format!(
                    "the server is at capacity; retry in {} ms",
                    RETRY_AFTER.as_millis()
                ));
                Err(natter_proto::error::with_retry_after(status, RETRY_AFTER))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_a_send_is_refused_with_a_hint() {
        let admission = SendAdmission::new(2, Duration::from_secs(1));
        let first = admission.admit().expect("a free place");
        let _second = admission.admit().expect("a free place");
        let refused = admission.admit().expect_err("no place left");
        assert_eq!(ErrorCode::of_status(&refused), ErrorCode::Unavailable);
        assert_eq!(
            natter_proto::error::retry_after(&refused),
            Some(RETRY_AFTER)
        );
        drop(first);
        let _third = admission.admit().expect("a place came free");
    }

    /// Finishes one send that took `took` after the current interval has ended.
    fn finish_interval(admission: &SendAdmission, took: Duration) {
        let mut permit = admission.admit().expect("a free place");
        admission.inner.window.lock().unwrap().started = Instant::now() - INTERVAL;
        permit.admitted = Instant::now() - took;
        drop(permit);
    }

    #[test]
    fn slow_sends_lower_the_bound_and_quick_ones_raise_it_again() {
        let admission = SendAdmission::new(1024, Duration::from_millis(20));
        finish_interval(&admission, Duration::from_millis(100));
        assert_eq!(admission.bound(), 768, "a standing queue: a quarter off");
        for _ in 0..40 {
            finish_interval(&admission, Duration::from_millis(100));
        }
        assert_eq!(admission.bound(), LEAST, "never below the least");
        let admitted: Vec<_> = (0..LEAST).map(|_| admission.admit().unwrap()).collect();
        assert!(admission.admit().is_err(), "the lowered bound refuses");
        drop(admitted);
        for _ in 0..60 {
            finish_interval(&admission, Duration::from_millis(1));
        }
        assert_eq!(
            admission.bound(),
            1024,
            "quick sends raise it back to the most"
        );
    }
}
