//! Every error answered to a client (an error frame, a problem response): counted by its
//! stable code on `/metrics`, and traced even when its message was not sampled.

use crate::ErrorCode;
use crate::trace_context;

/// Records that `code` was answered to a client by `layer` (`api` or `connect`).
pub fn answered(layer: &'static str, code: ErrorCode, detail: &str) {
    metrics::counter!("natter_errors_total", "layer" => layer, "code" => code.as_str())
        .increment(1);
    trace_context::record_error(code.as_str(), detail);
}
