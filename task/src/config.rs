//! Task's timings and sizes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of the task layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskConfig {
    /// How long a push's lock lives; an unreleased lock after this means the push failed
    /// and the batch is pushed again. Milliseconds.
    pub lock_ttl_ms: u64,
    /// Most messages pushed in one batch.
    pub batch_max: usize,
    /// Pause after a failed log or store operation before trying again. Milliseconds.
    pub retry_ms: u64,
}

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            lock_ttl_ms: 30_000,
            batch_max: 128,
            retry_ms: 1_000,
        }
    }
}

impl TaskConfig {
    /// The lock lifetime.
    pub fn lock_ttl(&self) -> Duration {
        Duration::from_millis(self.lock_ttl_ms)
    }

    /// The pause after a failure.
    pub fn retry_pause(&self) -> Duration {
        Duration::from_millis(self.retry_ms)
    }
}
