//! The `Blobs` port: uploaded bytes by key.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::InfraResult;

/// Bytes by key (uploaded images, thumbnails).
#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Store `bytes` under `key`, replacing what was there.
    async fn put(&self, key: &str, bytes: Bytes) -> InfraResult<()>;
    /// The bytes under `key`, if any.
    async fn get(&self, key: &str) -> InfraResult<Option<Bytes>>;
    /// Remove `key`; removing a missing key is not an error.
    async fn delete(&self, key: &str) -> InfraResult<()>;
}
