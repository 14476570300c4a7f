//! Logic's limits and timings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of the logic layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogicConfig {
    /// Longest text message, in characters.
    pub max_text_chars: usize,
    /// How long a (sender, cid) pair is remembered for de-duplication, in seconds.
    pub dedup_seconds: u64,
    /// Most messages one sync page returns.
    pub sync_page_max: u32,
}

impl Default for LogicConfig {
    fn default() -> Self {
        LogicConfig {
            max_text_chars: 4000,
            dedup_seconds: 24 * 3600,
            sync_page_max: 500,
        }
    }
}

impl LogicConfig {
    /// The de-duplication window.
    pub fn dedup_ttl(&self) -> Duration {
        Duration::from_secs(self.dedup_seconds)
    }
}
