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
    /// Longest wait between two checks of a push's lock, while task waits for the connect node
    /// to release it (the wait starts at 0.5 ms and doubles). Unset: the deployment's default,
    /// [`EMBEDDED_RELEASE_POLL_MAX_MS`] where locks are in memory and a check is free,
    /// [`CLUSTER_RELEASE_POLL_MAX_MS`] where each check is a trip to Redis. Milliseconds.
    pub release_poll_max_ms: Option<u64>,
}

/// The embedded deployment's longest wait between lock checks: a check is a memory read, and
/// every millisecond of it is a millisecond of delivery latency.
pub const EMBEDDED_RELEASE_POLL_MAX_MS: u64 = 2;
/// The cluster's: a check is a Redis round trip, and a dead connect node leaves pushes waiting
/// for the whole lock life.
pub const CLUSTER_RELEASE_POLL_MAX_MS: u64 = 50;

impl Default for TaskConfig {
    fn default() -> Self {
        TaskConfig {
            lock_ttl_ms: 30_000,
            batch_max: 128,
            retry_ms: 1_000,
            release_poll_max_ms: None,
        }
    }
}

impl TaskConfig {
    /// The lock lifetime.
    pub fn lock_ttl(&self) -> Duration {
        Duration::from_millis(self.lock_ttl_ms)
    }

    /// The longest wait between lock checks, given the deployment's default.
    pub fn release_poll_max(&self, default_ms: u64) -> Duration {
        Duration::from_millis(self.release_poll_max_ms.unwrap_or(default_ms).max(1))
    }

    /// The pause after a failure.
    pub fn retry_pause(&self) -> Duration {
        Duration::from_millis(self.retry_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_lock_poll_is_the_deployments_unless_configured() {
        let mut config = TaskConfig::default();
        assert_eq!(
            config.release_poll_max(EMBEDDED_RELEASE_POLL_MAX_MS),
            Duration::from_millis(2)
        );
        assert_eq!(
            config.release_poll_max(CLUSTER_RELEASE_POLL_MAX_MS),
            Duration::from_millis(50)
        );
        config.release_poll_max_ms = Some(7);
        assert_eq!(
            config.release_poll_max(CLUSTER_RELEASE_POLL_MAX_MS),
            Duration::from_millis(7)
        );
        // Zero would poll without pausing.
        config.release_poll_max_ms = Some(0);
        assert_eq!(config.release_poll_max(2), Duration::from_millis(1));
    }
}
