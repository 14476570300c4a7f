//! The cluster adapters: the same ports on shared servers, for natter run as separate processes.

mod redis_sessions;

pub use redis_sessions::RedisSessions;
