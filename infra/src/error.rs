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
    /// A stored value could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
            InfraError::Unavailable(_) | InfraError::Io(_) => ErrorCode::Unavailable,
            InfraError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)) => {
                ErrorCode::Unavailable
            }
            _ => ErrorCode::Internal,
        }
    }

    /// A gRPC status for this failure, logged here so callers need not.
    pub fn into_status(self) -> tonic::Status {
        let code = self.code();
        tracing::error!(error = %self, %code, "port operation failed");
        code.status(code.as_str())
    }
}
