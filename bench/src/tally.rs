//! What receivers count: deliveries, duplicates, errors, and end-to-end latency read from the
//! send time every body carries (`t=<µs since the epoch> n=<number>`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use natter_proto::frame::MessageFrame;
use tokio::sync::Mutex;

/// Shared by every sender and receiver of a run.
pub struct Tally {
    /// Send frames written.
    pub sent: AtomicU64,
    /// `sent` answers read.
    pub acknowledged: AtomicU64,
    /// Error frames and broken connections.
    pub errors: AtomicU64,
    /// Distinct messages received from others.
    pub delivered: AtomicU64,
    /// Messages received more than once.
    pub duplicates: AtomicU64,
    /// Send-to-receive latency in microseconds.
    pub latency_us: Mutex<Histogram<u64>>,
    /// The run's latencies as they were when [`Tally::watch`] last kept a second: the next
    /// second's are those recorded since.
    kept_us: Mutex<Histogram<u64>>,
    /// Each past second's latencies, in order.
    pub by_second: Mutex<Vec<SecondLatency>>,
}

/// The deliveries received in one second of a run, and their latency.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SecondLatency {
    /// Seconds since the run began (1 is the first).
    pub second: u64,
    /// Deliveries received in it.
    pub deliveries: u64,
    /// Their median latency, ms.
    pub p50: f64,
    /// Their 99th percentile, ms.
    pub p99: f64,
}

impl Tally {
    /// An empty tally; latencies from 1 µs to 60 s at 3 significant digits.
    pub fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            sent: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            kept_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
            by_second: Mutex::new(Vec::new()),
        })
    }

    /// Counts a message a receiver read: its own sends are skipped, repeats counted as
    /// duplicates, and the latency recorded from the body's send time.
    pub async fn received(&self, me: &str, message: &MessageFrame, seen: &mut HashSet<String>) {
        if message.from == me {
            return;
        }
        self.delivery(&message.id, &message.body, seen).await;
    }

    /// Counts a delivery of message `id` (a message or a notice) with its body.
    pub async fn delivery(&self, id: &str, body: &str, seen: &mut HashSet<String>) {
        if !seen.insert(id.to_string()) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(sent_at) = body
            .strip_prefix("t=")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|micros| micros.parse::<u64>().ok())
        {
            let latency = now_micros().saturating_sub(sent_at).max(1);
            let _ = self.latency_us.lock().await.record(latency);
        }
    }
}

impl Tally {
    /// Shows a bar over the next `seconds`, with the deliveries so far and the last second's
    /// p99, until they pass; keeps each second's latency in [`Tally::by_second`].
    pub async fn watch(&self, seconds: u64) {
        let bar = crate::setup::progress_bar(seconds, "seconds");
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        ticker.tick().await;
        for second in 1..=seconds {
            ticker.tick().await;
            // A second's latencies are the run's so far less those already kept.
            let now = self.latency_us.lock().await.clone();
            let mut this_second = now.clone();
            let mut kept = self.kept_us.lock().await;
            if this_second.subtract(&*kept).is_err() {
                // Counts only grow, so this cannot happen; an empty second is the safe answer.
                this_second.reset();
            }
            *kept = now;
            drop(kept);
            let at = |quantile: f64| this_second.value_at_quantile(quantile) as f64 / 1000.0;
            let last = SecondLatency {
                second,
                deliveries: this_second.len(),
                p50: at(0.5),
                p99: at(0.99),
            };
            bar.inc(1);
            bar.set_message(format!(
                "{} delivered, p99 {:.1} ms in the last second",
                self.delivered.load(Ordering::Relaxed),
                last.p99
            ));
            self.by_second.lock().await.push(last);
        }
        bar.finish();
    }
}

/// Microseconds since the Unix epoch (what bodies carry).
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_micros() as u64)
        .unwrap_or(0)
}

/// A body carrying its send time.
pub fn timed_body(number: u64) -> String {
    format!("t={} n={number}", now_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_second_keeps_only_its_own_deliveries() {
        let tally = Tally::new().expect("tally");
        let mut seen = HashSet::new();
        for number in 0..3 {
            tally
                .delivery(&format!("m{number}"), &timed_body(number), &mut seen)
                .await;
        }
        tally.watch(1).await;
        tally.delivery("m9", &timed_body(9), &mut seen).await;
        tally.delivery("m9", &timed_body(9), &mut seen).await;
        tally.watch(1).await;
        let seconds: Vec<(u64, u64)> = tally
            .by_second
            .lock()
            .await
            .iter()
            .map(|second| (second.second, second.deliveries))
            .collect();
        assert_eq!(seconds, [(1, 3), (1, 1)], "a repeat is not a delivery");
        assert_eq!(
            tally.latency_us.lock().await.len(),
            4,
            "the whole run keeps all"
        );
    }
}
