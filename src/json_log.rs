//! JSON log lines that a log collector can join to traces: each names the node that wrote it,
//! the fields of the spans it happened in (the object, the message id), and, inside a sampled
//! message's trace, the trace and span ids Jaeger shows.

use std::fmt;

use natter_proto::trace_context;
use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats each event as one JSON object on a line of its own.
#[derive(Clone, Debug)]
pub struct JsonLines {
    node: String,
}

impl JsonLines {
    /// Lines that say they come from `node`.
    pub fn new(node: &str) -> Self {
        JsonLines {
            node: node.to_owned(),
        }
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Read before any span's extensions are borrowed below: building the context may
        // need to write them.
        let ids = trace_ids();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp()));
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert("target".into(), event.metadata().target().into());
        line.insert("node".into(), Value::String(self.node.clone()));
        if let Some((trace_id, span_id)) = ids {
            line.insert("trace_id".into(), Value::String(trace_id));
            line.insert("span_id".into(), Value::String(span_id));
        }
        // The fields of the enclosing spans, outermost first, so the innermost value wins.
        if let Some(scope) = context.event_scope() {
            let mut spans = Vec::new();
            for span in scope.from_root() {
                spans.push(span.name());
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(fields);
                }
            }
            if !spans.is_empty() {
                line.insert("spans".into(), spans.join(":").into());
            }
        }
        event.record(&mut EventFields(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The current trace and span ids (hex) when the current span is part of a sampled trace.
fn trace_ids() -> Option<(String, String)> {
    if !trace_context::active() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| {
        (
            format!("{:032x}", ids.trace_id()),
            format!("{:016x}", ids.span_id()),
        )
    })
}

/// The time now as RFC 3339 in UTC, to the microsecond.
fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Collects an event's fields into the line; `message` is the event's text.
struct EventFields<'line>(&'line mut Map<String, Value>);

impl Visit for EventFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_is_one_json_object_naming_its_node_and_span_fields() {
        use tracing_subscriber::layer::SubscriberExt;
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = std::sync::Arc::clone(&written);
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines::new("connect-1"))
            .with_writer(move || Sink(std::sync::Arc::clone(&sink)));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("deliver", object = "user:7", message_id = 42u64);
            let _entered = span.enter();
            tracing::warn!(attempt = 2, "push to connect failed");
        });
        let text = String::from_utf8(written.lock().expect("log buffer").clone()).expect("utf-8");
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["node"], "connect-1");
        assert_eq!(line["object"], "user:7");
        assert_eq!(line["message_id"], 42);
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["message"], "push to connect failed");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["spans"], "deliver");
        assert!(
            line.get("trace_id").is_none(),
            "no trace outside a sampled one"
        );
    }

    /// A writer into a shared buffer.
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
