//! The layer in front of the OpenTelemetry exporter: it passes on the spans of sampled
//! messages' traces (target `natter.trace`) and nothing else, so the exporter never sees the
//! other crates' spans.
//!
//! A per-layer filter would say the same, but with the logs' filter beside it some spans of the
//! trace went unseen by the exporter (their parents then missing); this layer leaves what is
//! enabled to the one global filter and only chooses what it forwards.

use std::any::TypeId;

use natter_proto::trace_context::TARGET;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Forwards only traced spans (and events) to the layer it wraps.
#[derive(Debug)]
pub struct TracedOnly<L>(pub L);

fn traced(metadata: &Metadata<'_>) -> bool {
    metadata.target() == TARGET
}

/// Whether the span `id` is one of a trace's.
fn traced_span<S>(id: &Id, context: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    context.metadata(id).is_some_and(traced)
}

impl<S, L> Layer<S> for TracedOnly<L>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    L: Layer<S>,
{
    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if traced(attributes.metadata()) {
            self.0.on_new_span(attributes, id, context);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        if traced_span(id, &context) {
            self.0.on_record(id, values, context);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, context: Context<'_, S>) {
        if traced_span(id, &context) && traced_span(follows, &context) {
            self.0.on_follows_from(id, follows, context);
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        if traced(event.metadata()) {
            self.0.on_event(event, context);
        }
    }

    fn on_enter(&self, id: &Id, context: Context<'_, S>) {
        if traced_span(id, &context) {
            self.0.on_enter(id, context);
        }
    }

    fn on_exit(&self, id: &Id, context: Context<'_, S>) {
        if traced_span(id, &context) {
            self.0.on_exit(id, context);
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        if traced_span(&id, &context) {
            self.0.on_close(id, context);
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, context: Context<'_, S>) {
        if traced_span(old, &context) {
            self.0.on_id_change(old, new, context);
        }
    }

    // SAFETY: forwards to the wrapped layer's own answer, which upholds the contract; a
    // pointer to this wrapper is returned only for this wrapper's own type id.
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(std::ptr::from_ref(self).cast());
        }
        // SAFETY: the same call, on the wrapped layer.
        unsafe { self.0.downcast_raw(id) }
    }
}
