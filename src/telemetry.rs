//! Tracing output and the process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Start tracing output (text, or JSON lines); `RUST_LOG` overrides the configured filter.
pub fn init_tracing(config: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests start several systems) is harmless and ignored.
    let _ = if config.json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// The process's metrics recorder, installed on first use.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency_buckets = [
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0, 60.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency_buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (a library user's): keep a private one so
            // /metrics still answers, with whatever this process records through it.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        };
        start_upkeep(handle.clone());
        handle
    })
}

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds histogram samples into their buckets every few seconds on a thread of its own. The
/// recorder keeps every sample recorded since the last fold; with nobody scraping `/metrics`
/// that grew by every send's timings, without bound (hundreds of MiB over a soak).
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("natter-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "starting the metrics upkeep thread failed; histograms are folded only when scraped");
    }
}

/// The Prometheus text exposition of every metric.
pub fn render_metrics() -> String {
    let handle = metrics();
    handle.run_upkeep();
    handle.render()
}

/// Every metric natter records, with its help text; registered at start so `/metrics` lists
/// each one from the first scrape, zero or not.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    metrics();
    let counters = [
        (
            "natter_messages_accepted_total",
            "Messages logic accepted and logged.",
        ),
        (
            "natter_pushes_total",
            "Push batches task sent to connect nodes.",
        ),
        (
            "natter_redeliveries_total",
            "Pushes repeated because their lock was not released in time.",
        ),
        (
            "natter_task_delivered_messages_total",
            "Messages task delivered (confirmed by connect).",
        ),
        (
            "natter_frames_pushed_total",
            "Message frames queued to connections.",
        ),
        (
            "natter_frames_received_total",
            "Text frames received from clients.",
        ),
        ("natter_connections_total", "Connections opened."),
        (
            "natter_connections_closed_slow_total",
            "Connections closed because their queue filled.",
        ),
        ("natter_users_registered_total", "Accounts registered."),
        (
            "natter_send_claims_taken_over_total",
            "Sends an earlier run of this logic process left half done, taken over on retry.",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, help);
        metrics::counter!(name).increment(0);
    }
    describe_gauge!("natter_connections_open", "WebSocket connections open now.");
    metrics::gauge!("natter_connections_open").increment(0.0);
    describe_histogram!(
        "natter_push_latency_seconds",
        Unit::Seconds,
        "From logic accepting a message to its frame being queued to a connection."
    );
    describe_histogram!(
        "natter_log_append_seconds",
        Unit::Seconds,
        "One append to the Kafka-protocol log, acknowledged by every replica."
    );
    describe_histogram!(
        "natter_log_read_seconds",
        Unit::Seconds,
        "One read from the Kafka-protocol log."
    );
}
