//! Tracing output (text, or JSON lines that name their trace), the OpenTelemetry exporter of
//! sampled messages' traces, and the process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use natter_proto::trace_context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, TraceConfig};
use crate::json_log::JsonLines;
use crate::traced_only::TracedOnly;

/// Who this process is, for its log lines and its spans.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The OpenTelemetry service: `natter` (embedded) or `natter-<layer>`.
    pub service: String,
    /// The configured node name.
    pub node: String,
}

/// The tracer provider, kept to flush what is buffered at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Start tracing output (text, or JSON lines); `RUST_LOG` overrides the configured filter.
/// With an OTLP endpoint configured, sampled messages' spans are exported there too. Call
/// inside the runtime that is to carry the exports.
pub fn init_tracing(config: &LogConfig, trace: &TraceConfig, identity: &Identity) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let output = if config.json {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLines::new(&identity.node))
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let mut layers = vec![output];
    match trace_exporter(trace, identity) {
        Ok(exporter) => layers.extend(exporter),
        Err(error) => eprintln!("natter: traces are not exported: {error}"),
    }
    // A second initialisation (tests start several systems) is harmless and ignored.
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init()
        .is_ok();
    if installed && PROVIDER.get().is_some() {
        trace_context::enable(trace.ratio);
        tracing::info!(
            endpoint = trace.otlp_endpoint,
            ratio = trace.ratio,
            "exporting sampled traces"
        );
    }
}

/// The subscriber every output layer sits on: the registry behind the one filter.
type Filtered = tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>;

type TraceLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// The layer exporting the spans of sampled messages (and nothing else), when configured.
fn trace_exporter(trace: &TraceConfig, identity: &Identity) -> anyhow::Result<Option<TraceLayer>> {
    if trace.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    // The exporter's channel and its batches live on the runtime this is called in.
    tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("no async runtime to carry the exports"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(trace.otlp_endpoint.clone())
        .with_timeout(std::time::Duration::from_secs(5))
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(identity.service.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.instance.id",
            identity.node.clone(),
        ))
        .build();
    // Every span reaching the provider belongs to a trace natter decided to sample
    // (trace_context), so the provider keeps them all.
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build(),
        )
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOn)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("natter");
    let _ = PROVIDER.set(provider);
    let layer = TracedOnly(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Every span has the same target, and busy/idle times cost a clock read on every
            // poll (a profile at 100% sampling showed enter and exit at 3% of the CPU).
            .with_threads(false)
            .with_location(false)
            .with_target(false)
            .with_tracked_inactivity(false),
    )
    .boxed();
    Ok(Some(layer))
}

/// Flushes the spans not exported yet (at exit).
pub fn flush_traces() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::debug!(%error, "flushing traces at exit failed");
    }
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
            "natter_pushes_spared_total",
            "Push batches task did not send: each was for the one connection that sent it and wants no echo.",
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
    describe_gauge!(
        "natter_log_lag_records",
        "Records of a log partition (label partition) not known delivered yet, per task process owning it."
    );
    // Listed from the first scrape: the series of real partitions carry a `partition` label.
    metrics::gauge!("natter_log_lag_records").set(0.0);
    for (name, help) in [
        (
            "natter_history_disk_bytes",
            "Disk the embedded history store takes (its sorted runs and journal).",
        ),
        (
            "natter_history_journal_bytes",
            "Of it, the journal: writes not yet flushed to sorted runs.",
        ),
        (
            "natter_history_flushes_waiting",
            "In-memory tables of the history store waiting to be flushed; writes wait at four.",
        ),
    ] {
        describe_gauge!(name, help);
    }
    describe_counter!(
        "natter_errors_total",
        "Errors answered to clients (labels layer and code: the stable error code)."
    );
    describe_counter!(
        "natter_error_traces_dropped_total",
        "Errors outside a sampled trace that got no trace of their own: over the per-second bound."
    );
    metrics::counter!("natter_error_traces_dropped_total").increment(0);
    metrics::counter!("natter_errors_total", "layer" => "api", "code" => "internal").increment(0);
    let histograms = [
        (
            "natter_push_latency_seconds",
            "From logic accepting a message to its frame being queued to a connection.",
        ),
        (
            "natter_log_append_seconds",
            "One append to the Kafka-protocol log, acknowledged by every replica.",
        ),
        (
            "natter_log_read_seconds",
            "One read from the Kafka-protocol log.",
        ),
    ];
    for (name, help) in histograms {
        describe_histogram!(name, Unit::Seconds, help);
        // A histogram that was only described is not rendered at all.
        let _ = metrics::histogram!(name);
    }
}
