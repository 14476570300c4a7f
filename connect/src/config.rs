//! The connect layer's sizes, rates and timings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Configuration of one connect node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectConfig {
    /// Buckets per node: more buckets, less contention on each bucket's lock.
    pub buckets: usize,
    /// Routine workers per bucket.
    pub routines_per_bucket: usize,
    /// Push jobs each routine may have queued before pushers wait.
    pub routine_queue: usize,
    /// Pushes per second each bucket's limiter lets through.
    pub push_rate: u32,
    /// Pushes a bucket's limiter lets through at once after a quiet spell.
    pub push_burst: u32,
    /// Frames a connection may have queued; a client that lets it fill is disconnected.
    pub outbound_queue: usize,
    /// Largest text frame a client may send, in bytes; larger ones get `frame_too_large`.
    pub max_frame_bytes: usize,
    /// Larger than this the socket itself refuses the frame and closes (1009), in bytes.
    pub hard_max_frame_bytes: usize,
    /// The socket's read buffer, in bytes. Every connection holds one for its whole life, so
    /// it is small; a larger frame grows it for that frame only.
    pub read_buffer_bytes: usize,
    /// The socket's write buffer target, in bytes.
    pub write_buffer_bytes: usize,
    /// The kernel's send buffer per connection, in bytes (`SO_SNDBUF`; 0 keeps the system's
    /// autotuning). A cap bounds kernel memory per connection and makes a client that stops
    /// reading show up as a slow consumer sooner.
    pub send_buffer_bytes: usize,
    /// Interval between server pings, in milliseconds.
    pub heartbeat_interval_ms: u64,
    /// A connection silent for this long is closed, in milliseconds.
    pub heartbeat_timeout_ms: u64,
    /// Frames per second a client may send.
    pub inbound_rate: u32,
    /// Frames a client may send at once.
    pub inbound_burst: u32,
    /// Frames refused for rate in a row before the connection is closed for abuse.
    pub inbound_strikes: u32,
    /// How often the node asks whether the sessions store lost its memory (Redis restarted
    /// without persistence), in which case it registers its connections again, in
    /// milliseconds.
    pub session_check_interval_ms: u64,
    /// Fault injection for tests: never release push locks, as a node that lost the push would.
    pub hold_push_locks: bool,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        ConnectConfig {
            buckets: 32,
            routines_per_bucket: 2,
            routine_queue: 1024,
            push_rate: 200_000,
            push_burst: 20_000,
            outbound_queue: 512,
            max_frame_bytes: 64 * 1024,
            hard_max_frame_bytes: 1024 * 1024,
            read_buffer_bytes: 512,
            write_buffer_bytes: 4096,
            send_buffer_bytes: 0,
            heartbeat_interval_ms: 25_000,
            heartbeat_timeout_ms: 75_000,
            inbound_rate: 50,
            inbound_burst: 100,
            inbound_strikes: 20,
            session_check_interval_ms: 2_000,
            hold_push_locks: false,
        }
    }
}

impl ConnectConfig {
    /// The ping interval.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms.max(1))
    }

    /// How often the sessions store's memory is checked.
    pub fn session_check_interval(&self) -> Duration {
        Duration::from_millis(self.session_check_interval_ms.max(1))
    }

    /// The silence after which a connection is closed.
    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms.max(1))
    }
}
