//! A message's trace across processes: which messages are traced, the spans they get, and the
//! W3C `traceparent` that carries the trace over gRPC (metadata) and the log (record headers).
//!
//! Only sampled messages get spans. The decision is made once, where a message enters (a
//! client's `send`, a REST call), and every later hop creates spans only inside a traced span
//! or when handed a `traceparent`. So with tracing off no span is ever created (one atomic
//! load per hop), and at a 1% ratio 99 messages in 100 cost one random number. Errors are the
//! exception: one answered to a client outside a sampled trace gets a trace of its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::Context;
use opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use tracing::Span;
use tracing::instrument::{Instrument, Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::v1::Message;

/// The `tracing` target of every span exported as part of a message's trace; the exporter's
/// layer takes these spans and no others.
pub const TARGET: &str = "natter.trace";
/// The header (gRPC metadata, Kafka record header) that carries a trace to the next hop.
pub const TRACEPARENT: &str = "traceparent";

static ENABLED: AtomicBool = AtomicBool::new(false);
/// The sampling ratio, as the bits of an f64.
static RATIO: AtomicU64 = AtomicU64::new(0);

/// Turns tracing on with `ratio` of new traces sampled (0 to 1); called once the exporter is
/// installed.
pub fn enable(ratio: f64) {
    RATIO.store(ratio.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    ENABLED.store(true, Ordering::Release);
}

/// Whether an exporter is installed.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Whether a new trace starts here: tracing is on and this one falls within the ratio.
pub fn sample_root() -> bool {
    if !enabled() {
        return false;
    }
    let ratio = f64::from_bits(RATIO.load(Ordering::Relaxed));
    ratio >= 1.0 || (ratio > 0.0 && rand::random::<f64>() < ratio)
}

/// Whether the current span is part of a sampled message's trace.
pub fn active() -> bool {
    enabled()
        && Span::current()
            .metadata()
            .is_some_and(|metadata| metadata.target() == TARGET)
}

/// A span of the current sampled trace, or a disabled span when there is none.
#[macro_export]
macro_rules! trace_child {
    ($name:literal $(, $($fields:tt)*)?) => {
        if $crate::trace_context::active() {
            ::tracing::info_span!(target: "natter.trace", $name $(, $($fields)*)?)
        } else {
            ::tracing::Span::none()
        }
    };
}

/// The first span of a new trace when this one is sampled, else a disabled span.
#[macro_export]
macro_rules! trace_root {
    ($name:literal $(, $($fields:tt)*)?) => {
        if $crate::trace_context::sample_root() {
            ::tracing::info_span!(target: "natter.trace", parent: None, $name $(, $($fields)*)?)
        } else {
            ::tracing::Span::none()
        }
    };
}

/// A span continuing the trace a `traceparent` names (from a log record, a pushed message),
/// or a disabled span when it names none.
#[macro_export]
macro_rules! trace_continued {
    ($traceparent:expr, $name:literal $(, $($fields:tt)*)?) => {{
        let traceparent: &str = $traceparent;
        if $crate::trace_context::enabled() && !traceparent.is_empty() {
            let span =
                ::tracing::info_span!(target: "natter.trace", parent: None, $name $(, $($fields)*)?);
            $crate::trace_context::set_parent(&span, traceparent);
            span
        } else {
            ::tracing::Span::none()
        }
    }};
}

/// Makes `span` a child of the span `traceparent` names; a malformed one leaves it a root.
pub fn set_parent(span: &Span, traceparent: &str) {
    if let Some(parent) = parse(traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
    }
}

/// The span of work on a batch of messages: `start` makes it for the first traced message
/// (continuing that message's trace), and the traces of the batch's other traced messages are
/// linked to it. A disabled span when no message of the batch is traced.
pub fn batch_span<'batch>(
    batch: impl IntoIterator<Item = &'batch Message>,
    start: impl FnOnce(&'batch Message) -> Span,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let mut traced = batch
        .into_iter()
        .filter(|message| !message.trace_parent.is_empty());
    let Some(first) = traced.next() else {
        return Span::none();
    };
    let span = start(first);
    for message in traced {
        if let Some(linked) = parse(&message.trace_parent) {
            span.add_link(linked);
        }
    }
    span
}

/// The current span's `traceparent` when it is part of a sampled trace, else empty.
pub fn current() -> String {
    if !active() {
        return String::new();
    }
    let context = Span::current().context();
    let span = context.span();
    format(span.span_context())
}

/// Writes a span context as a W3C `traceparent`; empty for an invalid one.
fn format(context: &SpanContext) -> String {
    if !context.is_valid() {
        return String::new();
    }
    format!(
        "00-{:032x}-{:016x}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Reads a W3C `traceparent` (version 00); None when it is malformed or names no span.
pub fn parse(traceparent: &str) -> Option<SpanContext> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16)
        .ok()
        .filter(|_| flags.len() == 2)?;
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Error traces started outside a sampled trace, at most this many a second per process: a
/// storm of refusals (`rate_limited` under overload, say) must not become a storm of traces.
pub const ERROR_TRACES_PER_SECOND: u64 = 100;

/// The second (since the epoch) the error-trace count is for, and the count.
static ERROR_SECOND: AtomicU64 = AtomicU64::new(0);
static ERROR_COUNT: AtomicU64 = AtomicU64::new(0);

/// Whether one more error may start a trace of its own this second.
fn error_trace_allowed() -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let second = ERROR_SECOND.load(Ordering::Relaxed);
    if second != now
        && ERROR_SECOND
            .compare_exchange(second, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        ERROR_COUNT.store(0, Ordering::Relaxed);
    }
    ERROR_COUNT.fetch_add(1, Ordering::Relaxed) < ERROR_TRACES_PER_SECOND
}

/// Marks the current traced span failed with a stable error `code`; outside a sampled trace
/// (and with tracing on) the error gets a trace of its own, up to
/// [`ERROR_TRACES_PER_SECOND`], so errors are traced whatever the ratio.
pub fn record_error(code: &str, detail: &str) {
    if !enabled() {
        return;
    }
    if active() {
        Span::current().set_status(Status::error(format!("{code}: {detail}")));
        tracing::info!(target: "natter.trace", code, detail, "error");
        return;
    }
    if !error_trace_allowed() {
        metrics::counter!("natter_error_traces_dropped_total").increment(1);
        return;
    }
    let span = tracing::info_span!(target: "natter.trace", parent: None, "error", code);
    span.set_status(Status::error(format!("{code}: {detail}")));
    span.in_scope(|| tracing::info!(target: "natter.trace", code, detail, "error"));
}

/// Puts the current trace into a gRPC call's metadata, when there is one.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    let traceparent = current();
    if !traceparent.is_empty()
        && let Ok(value) = traceparent.parse()
    {
        metadata.insert(TRACEPARENT, value);
    }
}

/// The span of serving `method` (`Logic/Send`) for a caller whose trace `traceparent` names;
/// disabled when it names none. Also for each item of a gathered call, whose own trace the
/// call's metadata cannot carry.
pub fn server_span(traceparent: &str, method: &str) -> Span {
    crate::trace_continued!(
        traceparent,
        "rpc",
        otel.name = method,
        otel.kind = "server",
        rpc.method = method
    )
}

/// A tower layer for gRPC servers: a call that carries a `traceparent` is served inside a
/// span continuing that trace; any other call pays one header lookup.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerLayer;

impl<S> tower::Layer<S> for ServerLayer {
    type Service = TracedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TracedService(inner)
    }
}

/// A gRPC service whose traced calls run inside their span (see [`ServerLayer`]).
#[derive(Clone, Debug)]
pub struct TracedService<S>(S);

impl<S, Body> tower::Service<http::Request<Body>> for TracedService<S>
where
    S: tower::Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let span = if enabled() {
            let traceparent = request
                .headers()
                .get(TRACEPARENT)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            // "/natter.v1.Logic/Send" is shown as "Logic/Send".
            let method = request.uri().path().rsplit('.').next().unwrap_or_default();
            server_span(traceparent, method)
        } else {
            Span::none()
        };
        self.0.call(request).instrument(span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_reads_back_as_it_was_written() {
        let written = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = parse(written).expect("a valid traceparent");
        assert_eq!(format(&context), written);
        assert!(context.is_sampled());
    }

    #[test]
    fn malformed_traceparents_name_no_span() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn error_traces_are_bounded_per_second() {
        let allowed = (0..ERROR_TRACES_PER_SECOND * 3)
            .filter(|_| error_trace_allowed())
            .count() as u64;
        // A second boundary within the loop allows at most one more second's worth.
        assert!(
            (ERROR_TRACES_PER_SECOND..=2 * ERROR_TRACES_PER_SECOND).contains(&allowed),
            "{allowed} error traces allowed"
        );
    }

    #[test]
    fn with_tracing_off_nothing_is_sampled_or_carried() {
        // Tests in this crate never enable tracing.
        assert!(!sample_root());
        assert!(!active());
        assert_eq!(current(), "");
        assert!(crate::trace_root!("never").is_none());
        assert!(
            crate::trace_continued!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "never"
            )
            .is_none()
        );
    }
}
