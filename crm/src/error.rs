//! Errors of the storage layer.

/// Errors the [`crate::Store`] returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no backend dialcrm supports.
    #[error("unsupported database URL scheme {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// Applying the migrations failed; the failed migration was rolled back.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The requested row does not exist in the caller's account.
    #[error("not found")]
    NotFound,
    /// A row with the same unique key already exists.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The row changed since the version the caller read; nothing was written.
    #[error("{0}")]
    Stale(String),
    /// The value given is not acceptable (for example an unknown role).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The row exists but its state forbids the change asked for.
    #[error("{0}")]
    Refused(String),
    /// The account's licence seats are all taken by logged-in agents.
    #[error("licence seat limit reached: the account has {seats} agent seats and all are in use")]
    SeatLimit {
        /// How many agent seats the account has.
        seats: i64,
    },
    /// Hashing a password failed.
    #[error("password hashing failed")]
    Password,
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_owned())
            }
            _ => StoreError::Database(e),
        }
    }
}
