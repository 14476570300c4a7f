//! The memory that image decodes may hold at once. A small compressed file can decode to a
//! large bitmap (an 8000×5000 PNG of zeros is 117 KB on the wire and 120 MB decoded), so the
//! count of uploads in flight says nothing about memory; each decode reserves what its header
//! says it will allocate, and waits (briefly) for room instead of allocating past the budget.

use std::sync::Arc;
use std::time::Duration;

use natter_proto::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::Problem;

/// The unit of the budget: reservations are rounded up to whole mebibytes.
const MIB: u64 = 1024 * 1024;

/// Room the resize and the encoder take beside the decoded bitmap (the filter's intermediate
/// rows and the thumbnail), as a share of the bitmap plus a floor.
fn overhead(bitmap_bytes: u64) -> u64 {
    bitmap_bytes / 4 + 8 * MIB
}

/// Decode memory shared by the API's uploads.
#[derive(Debug)]
pub struct DecodeBudget {
    mebibytes: Arc<Semaphore>,
    total_mebibytes: u32,
    wait: Duration,
}

/// Memory held for one decode; dropping it gives the memory back.
#[derive(Debug)]
pub struct DecodeReservation(#[allow(dead_code)] OwnedSemaphorePermit);

impl DecodeBudget {
    /// A budget of `bytes` in all; a decode waits up to `wait` for room.
    pub fn new(bytes: u64, wait: Duration) -> Arc<Self> {
        let total_mebibytes = (bytes / MIB).clamp(1, u64::from(u32::MAX >> 3)) as u32;
        Arc::new(DecodeBudget {
            mebibytes: Arc::new(Semaphore::new(total_mebibytes as usize)),
            total_mebibytes,
            wait,
        })
    }

    /// Room for decoding a bitmap of `bitmap_bytes`: refused as too large when it could never
    /// fit, or as unavailable (with a retry hint) when no room came free in time.
    pub async fn reserve(&self, bitmap_bytes: u64) -> Result<DecodeReservation, Problem> {
        let needed = (bitmap_bytes + overhead(bitmap_bytes)).div_ceil(MIB);
        if needed > u64::from(self.total_mebibytes) {
            metrics::counter!("natter_image_decodes_refused_total", "reason" => "too_large")
                .increment(1);
            return Err(Problem::new(
                ErrorCode::ImageTooLarge,
                format!(
                    "decoding this image takes {needed} MiB; the server decodes at most {} MiB \
                     at once",
                    self.total_mebibytes
                ),
            ));
        }
        let acquire = Arc::clone(&self.mebibytes).acquire_many_owned(needed as u32);
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(DecodeReservation(permit)),
            // The semaphore is never closed; a closed one means the server is stopping.
            Ok(Err(_)) | Err(_) => {
                metrics::counter!("natter_image_decodes_refused_total", "reason" => "busy")
                    .increment(1);
                let mut problem = Problem::new(
                    ErrorCode::Unavailable,
                    "the server is decoding as many images as it can; retry shortly",
                );
                problem.retry_after = Some(Duration::from_secs(1));
                Err(problem)
            }
        }
    }

    /// Mebibytes not reserved now.
    pub fn available_mebibytes(&self) -> usize {
        self.mebibytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn decodes_share_the_budget_and_one_that_can_never_fit_is_refused_at_once() {
        let budget = DecodeBudget::new(100 * MIB, Duration::from_millis(50));
        let first = budget.reserve(60 * MIB).await.expect("fits");
        let busy = budget
            .reserve(60 * MIB)
            .await
            .expect_err("no room while the first holds it");
        assert_eq!(busy.code, ErrorCode::Unavailable);
        assert!(busy.retry_after.is_some());
        drop(first);
        assert_eq!(budget.available_mebibytes(), 100, "the room came back");
        let _second = budget.reserve(60 * MIB).await.expect("fits once freed");
        let never = budget
            .reserve(500 * MIB)
            .await
            .expect_err("over the whole budget");
        assert_eq!(never.code, ErrorCode::ImageTooLarge);
    }

    #[tokio::test]
    async fn a_decode_waiting_for_room_gets_it_when_another_finishes() {
        let budget = DecodeBudget::new(100 * MIB, Duration::from_secs(5));
        let first = budget.reserve(60 * MIB).await.expect("fits");
        let waiting = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.reserve(60 * MIB).await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.expect("task").is_ok());
    }
}
