//! Token buckets on `governor`: one per bucket for pushes, one per connection for inbound frames.

use std::num::NonZeroU32;

use governor::clock::MonotonicClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// A direct limiter on the monotonic clock: a zero-sized clock keeps a per-connection limiter
/// to one atomic word and the quota.
pub type Limiter =
    RateLimiter<NotKeyed, InMemoryState, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// A limiter allowing `rate` per second with bursts of `burst` (both at least 1).
pub fn limiter(rate: u32, burst: u32) -> Limiter {
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct_with_clock(Quota::per_second(rate).allow_burst(burst), MonotonicClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_burst_through_then_refuses() {
        let limiter = limiter(1, 3);
        assert!((0..3).all(|_| limiter.check().is_ok()));
        assert!(limiter.check().is_err());
    }
}
