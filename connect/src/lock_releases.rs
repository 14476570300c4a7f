//! The node's releases of push locks, gathered: while a release call to Redis is out, the
//! releases of the pushes finished meanwhile wait and go in the next call, one script for all
//! of them. At 2,000 messages a second a push batch from task carries five or six pushes,
//! each under its own lock, and each release was a Redis trip of its own.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use natter_infra::Sessions;
use natter_infra::error::InfraResult;
use natter_infra::gathered_calls::GatheredCalls;
use natter_proto::v1::PushLock;

/// Release calls out at once: pushes finish in bursts (a gathered push batch at a time), so a
/// second call lets the next burst go while one is answered.
const CALLS_IN_FLIGHT: usize = 2;
/// Locks one call releases at most (one Redis script each).
const MOST_PER_CALL: usize = 256;

/// Releases push locks through the sessions backend, many in a call when it is remote.
#[derive(Clone)]
pub struct LockReleases {
    calls: GatheredCalls<(String, String), bool>,
}

impl LockReleases {
    /// Releases through `sessions`; gathered only when they are in another process.
    pub fn new(sessions: Arc<dyn Sessions>) -> Self {
        let calls = GatheredCalls::new(
            "natter_lock_release_batch_size",
            sessions.is_remote(),
            CALLS_IN_FLIGHT,
            MOST_PER_CALL,
            Arc::new(move |locks: Vec<(String, String)>| {
                let sessions = Arc::clone(&sessions);
                Box::pin(async move { sessions.release_locks(&locks).await })
                    as BoxFuture<'static, _>
            }),
        );
        LockReleases { calls }
    }

    /// Whether a release waits for another process (so a caller should not wait on it).
    pub fn is_remote(&self) -> bool {
        self.calls.gathers()
    }

    /// Releases `lock` if its token still holds it; true if released.
    pub async fn release(&self, lock: &PushLock) -> InfraResult<bool> {
        self.calls.ask((lock.key.clone(), lock.token.clone())).await
    }
}
