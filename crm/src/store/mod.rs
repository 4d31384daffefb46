//! The single storage API, over SQLite or PostgreSQL.
//!
//! Queries are written once in SQL both engines accept (`$1` placeholders,
//! `RETURNING`, `ON CONFLICT`) and run on whichever pool the URL chose; the
//! few that differ say so where they are. Times are bound from Rust, never
//! taken from the database clock, so both backends store the same values.

mod accounts;
pub mod aggregate;
mod assignments;
mod audit;
pub mod audit_search;
pub mod callbacks;
mod calls;
pub mod campaign_settings;
mod campaigns;
pub mod compliance;
mod contact_edit;
pub mod contact_search;
mod contacts;
pub mod desks;
pub mod duplicates;
pub mod erasure;
mod fields;
mod import;
mod import_batch;
pub mod leads;
mod lists;
pub mod login_failures;
pub mod merge;
pub mod nodes;
mod numbers;
mod passwords;
pub mod phones;
pub mod queues;
pub mod reports;
mod retention;
mod rows;
pub mod scripts;
mod seats;
mod sessions;
pub mod softphone;
pub mod suppression;
pub mod timeline;
mod unmerge;
mod users;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::StoreError;

pub use contact_edit::Saved;
pub use contact_search::{SearchPage, SearchScope};
pub(crate) use import_batch::{BatchFailure, ImportTarget, MAX_BATCH_ROWS};
pub use login_failures::{FailureKey, LoginFailures, LoginSecret};
pub use retention::PurgeReport;
pub use sessions::NewSession;
pub use unmerge::Unmerged;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file in WAL mode: the embedded default.
    Sqlite,
    /// A PostgreSQL server, shared by several nodes.
    Postgres,
}

/// The CRM's storage, shared by every part of the service.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same generic body on whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Store {
    /// Connects to the database the URL names; its scheme picks the backend.
    ///
    /// A SQLite file is created if absent and opened in WAL mode with a busy
    /// timeout, so readers never block the writer, and with `secure_delete`
    /// on, so deleted rows are overwritten rather than left in free space.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        match Self::backend_of(url)? {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(StoreError::Connect)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    // Zeroes deleted content, so erased values leave no trace in free pages.
                    .pragma("secure_delete", "on");
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                let pool = SqlitePoolOptions::new()
                    // An in-memory database lives in one connection only.
                    .max_connections(if in_memory { 1 } else { 8 })
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Store {
                    pool: Pool::Sqlite(pool),
                })
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(StoreError::Connect)?;
                Ok(Store {
                    pool: Pool::Postgres(pool),
                })
            }
        }
    }

    /// Returns the backend a URL's scheme selects.
    pub fn backend_of(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
        }
    }

    /// Returns which engine this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending migration, each in its own transaction.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Pool::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Returns the versions of the migrations this build has and the
    /// database has not applied yet.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let (known, table): (Vec<i64>, &str) = match &self.pool {
            Pool::Sqlite(_) => (
                SQLITE_MIGRATIONS.iter().map(|m| m.version).collect(),
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            ),
            Pool::Postgres(_) => (
                POSTGRES_MIGRATIONS.iter().map(|m| m.version).collect(),
                "SELECT table_name::TEXT FROM information_schema.tables \
                 WHERE table_name = '_sqlx_migrations'",
            ),
        };
        let exists: Option<String> = on_pool!(self, |pool| sqlx::query_scalar(table)
            .fetch_optional(pool)
            .await?);
        if exists.is_none() {
            return Ok(known);
        }
        let applied: Vec<i64> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT version FROM _sqlx_migrations WHERE success"
        )
        .fetch_all(pool)
        .await?);
        Ok(known.into_iter().filter(|v| !applied.contains(v)).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Writes a consistent copy of a SQLite database to `path` while the
    /// service keeps running (`VACUUM INTO`); the copy is a database file
    /// that `sqlite://PATH` opens as it is. `path` must not exist yet.
    /// PostgreSQL is backed up with its own tools (`pg_dump`).
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(StoreError::Refused(
                "a PostgreSQL database is backed up with pg_dump, not by dialcrm".into(),
            ));
        };
        if path.exists() {
            return Err(StoreError::Refused(format!(
                "{} exists already; name a new file",
                path.display()
            )));
        }
        let target = path.to_str().ok_or_else(|| {
            StoreError::Invalid(format!("{} is not a UTF-8 path", path.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }

    /// Returns the SQLite pool, for tests that inspect the file directly.
    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(p) => Some(p),
            Pool::Postgres(_) => None,
        }
    }

    /// Returns the PostgreSQL pool, for the dialler's row leases.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }
}
