//! One suite per port, written against the trait only, so every adapter — embedded now,
//! cluster later — runs the same checks. Each suite uses random ids and keys and touches only
//! what it creates, so it can run repeatedly against a shared, persistent backend.

pub mod blobs;
pub mod log;
pub mod registry;
pub mod sessions;
pub mod store;
pub mod test_servers;

/// A random positive id, unlikely to collide with anything already stored.
pub fn random_id() -> i64 {
    i64::from(rand::random::<u32>()) + 1_000_000
}
