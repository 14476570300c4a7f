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
    /// How long a user must stay without connections before friends hear they went offline,
    /// in milliseconds (a reconnect within it is not news).
    pub presence_grace_ms: u64,
    /// Least time between two `group_online` frames for one group, in milliseconds.
    pub group_online_interval_ms: u64,
    /// How long after sending a sender may recall a message, in seconds.
    pub recall_seconds: u64,
    /// Most sends worked on at once; past it a send is refused with `unavailable` and a
    /// retry hint instead of waiting in a queue.
    pub max_sends_in_flight: usize,
    /// How long a send may take before logic admits fewer at once, in milliseconds: while
    /// even the quickest sends of a tenth of a second take longer, the bound on sends in
    /// flight is lowered, so past the ceiling sends are refused rather than queued. Unset, it
    /// is the deployment's: [`EMBEDDED_SEND_LATENCY_TARGET_MS`] in one process,
    /// [`CLUSTER_SEND_LATENCY_TARGET_MS`] in a cluster.
    pub send_latency_target_ms: Option<u64>,
}

/// The send latency target of the embedded deployment, where a send is a local batch commit.
pub const EMBEDDED_SEND_LATENCY_TARGET_MS: u64 = 20;

/// The send latency target of a cluster, where every send is also a produce to the replicated
/// log and a trip to the partition's numbering, which together take 20–60 ms even well below
/// the ceiling: a lower target would refuse sends the cluster could carry.
pub const CLUSTER_SEND_LATENCY_TARGET_MS: u64 = 100;

impl Default for LogicConfig {
    fn default() -> Self {
        LogicConfig {
            max_text_chars: 4000,
            dedup_seconds: 24 * 3600,
            sync_page_max: 500,
            presence_grace_ms: 3000,
            group_online_interval_ms: 2000,
            recall_seconds: 120,
            max_sends_in_flight: 1024,
            send_latency_target_ms: None,
        }
    }
}

impl LogicConfig {
    /// The presence grace period.
    pub fn presence_grace(&self) -> Duration {
        Duration::from_millis(self.presence_grace_ms)
    }

    /// The least time between two `group_online` frames for a group.
    pub fn group_online_interval(&self) -> Duration {
        Duration::from_millis(self.group_online_interval_ms)
    }

    /// The send latency admission aims for; the embedded deployment's when unset.
    pub fn send_latency_target(&self) -> Duration {
        Duration::from_millis(
            self.send_latency_target_ms
                .unwrap_or(EMBEDDED_SEND_LATENCY_TARGET_MS),
        )
    }

    /// This configuration with the cluster's send latency target, unless one is set.
    pub fn in_cluster(mut self) -> Self {
        self.send_latency_target_ms
            .get_or_insert(CLUSTER_SEND_LATENCY_TARGET_MS);
        self
    }

    /// The de-duplication window.
    pub fn dedup_ttl(&self) -> Duration {
        Duration::from_secs(self.dedup_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_latency_target_is_the_deployments_unless_set() {
        let embedded = LogicConfig::default();
        assert_eq!(embedded.send_latency_target(), Duration::from_millis(20));
        assert_eq!(
            embedded.clone().in_cluster().send_latency_target(),
            Duration::from_millis(CLUSTER_SEND_LATENCY_TARGET_MS)
        );
        let set = LogicConfig {
            send_latency_target_ms: Some(35),
            ..embedded
        };
        assert_eq!(
            set.in_cluster().send_latency_target(),
            Duration::from_millis(35),
            "a configured target holds in a cluster too"
        );
    }
}
