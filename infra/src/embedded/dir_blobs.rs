//! `Blobs` in a local directory: one file per key, written atomically.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use crate::blobs::Blobs;
use crate::error::{InfraError, InfraResult};

/// Blobs as files under one directory.
#[derive(Clone, Debug)]
pub struct DirBlobs {
    root: PathBuf,
}

impl DirBlobs {
    /// Blobs under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirBlobs { root: root.into() }
    }

    /// The file for a key; keys are restricted so none can leave the directory.
    fn path(&self, key: &str) -> InfraResult<PathBuf> {
        let valid = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !valid {
            return Err(InfraError::NotFound(format!("blob key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

#[async_trait]
impl Blobs for DirBlobs {
    async fn put(&self, key: &str, bytes: Bytes) -> InfraResult<()> {
        let path = self.path(key)?;
        tokio::fs::create_dir_all(&self.root).await?;
        // Write beside and rename, so a reader never sees half a file.
        let partial = self.root.join(format!(".{key}.partial"));
        tokio::fs::write(&partial, &bytes).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> InfraResult<Option<Bytes>> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn delete(&self, key: &str) -> InfraResult<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
