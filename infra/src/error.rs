//! The one error type every port returns.

/// A port operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// A unique key already exists (username, friend request, ...).
    #[error("already exists: {0}")]
    Conflict(String),
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend could not be reached or refused; retrying later may work.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Past capacity: the work was refused, not queued; the caller may retry after a while.
    #[error("overloaded: {what}; retry in {} ms", retry_after.as_millis())]
    Overloaded {
        /// What is full.
        what: String,
        /// How long to wait before retrying.
        retry_after: std::time::Duration,
    },
    /// A stored value could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The embedded history store failed.
    #[error("history store: {0}")]
    History(#[from] fjall::Error),
    /// A file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// An adapter was configured wrongly (a bad URL, say).
    #[error("configuration: {0}")]
    Config(String),
    /// The clock stepped back further than the id generator will wait out.
    #[error("the clock stepped back {0} ms; refusing to mint ids")]
    ClockStepBack(u64),
}

/// Shorthand for port results.
pub type InfraResult<T> = Result<T, InfraError>;

impl InfraError {
    /// The client-facing code for this failure; details of backend faults stay in the logs.
    pub fn code(&self) -> natter_proto::ErrorCode {
        use natter_proto::ErrorCode;
        match self {
            InfraError::Conflict(_) => ErrorCode::Conflict,
            InfraError::NotFound(_) => ErrorCode::NotFound,
            InfraError::Unavailable(_) | InfraError::Io(_) | InfraError::Overloaded { .. } => {
                ErrorCode::Unavailable
            }
            InfraError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ErrorCode::Unavailable
            }
            // A disk that fails or is full: the write may succeed later.
            InfraError::History(fjall::Error::Io(_)) => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        }
    }

    /// A gRPC status for this failure, logged here so callers need not.
    pub fn into_status(self) -> tonic::Status {
        if let InfraError::Overloaded { retry_after, .. } = &self {
            // Expected past capacity, and counted where it happens: not an error to log.
            tracing::debug!(error = %self, "refused: overloaded");
            let status = natter_proto::ErrorCode::Unavailable.status(format!(
                "the server is at capacity; retry in {} ms",
                retry_after.as_millis()
            ));
            return natter_proto::error::with_retry_after(status, *retry_after);
        }
        let code = self.code();
        tracing::error!(error = %self, %code, "port operation failed");
        code.status(code.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use natter_proto::ErrorCode;

    #[test]
    fn a_failing_disk_is_unavailable_and_a_broken_store_internal() {
        let disk = InfraError::History(fjall::Error::Io(std::io::Error::other("disk full")));
        assert_eq!(disk.code(), ErrorCode::Unavailable);
        let poisoned = InfraError::History(fjall::Error::Poisoned);
        assert_eq!(poisoned.code(), ErrorCode::Internal);
        assert_eq!(
            InfraError::Corrupt("a key".into()).code(),
            ErrorCode::Internal
        );
    }
}
