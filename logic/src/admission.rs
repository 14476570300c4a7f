//! How many sends logic works on at once: past the bound a send is refused at once with a
//! retry hint, instead of joining a queue that only grows while the server is saturated.

use std::sync::Arc;
use std::time::Duration;

use natter_proto::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// What a refused sender is told to wait before retrying.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// The bound on sends in progress.
#[derive(Clone, Debug)]
pub struct SendAdmission {
    slots: Arc<Semaphore>,
}

impl SendAdmission {
    /// Admits at most `limit` sends at a time (at least one).
    pub fn new(limit: usize) -> Self {
        SendAdmission {
            slots: Arc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// A slot for one send, held until it is answered; `unavailable` with a retry hint when
    /// every slot is taken.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            metrics::counter!("natter_sends_refused_total", "reason" => "in_flight").increment(1);
            let status = ErrorCode::Unavailable.status(format!(
                "the server is at capacity; retry in {} ms",
                RETRY_AFTER.as_millis()
            ));
            natter_proto::error::with_retry_after(status, RETRY_AFTER)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_a_send_is_refused_with_a_hint() {
        let admission = SendAdmission::new(2);
        let first = admission.admit().expect("a free slot");
        let _second = admission.admit().expect("a free slot");
        let refused = admission.admit().expect_err("no slot left");
        assert_eq!(ErrorCode::of_status(&refused), ErrorCode::Unavailable);
        assert_eq!(
            natter_proto::error::retry_after(&refused),
            Some(RETRY_AFTER)
        );
        drop(first);
        let _third = admission.admit().expect("a slot came free");
    }
}
