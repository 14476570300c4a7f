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
    /// Shows a bar over the next `seconds`, with the deliveries so far, until they pass.
    pub async fn watch(&self, seconds: u64) {
        let bar = crate::setup::progress_bar(seconds, "seconds");
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
        ticker.tick().await;
        for _ in 0..seconds {
            ticker.tick().await;
            bar.inc(1);
            bar.set_message(format!(
                "{} delivered",
                self.delivered.load(Ordering::Relaxed)
            ));
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
