//! Fresh test databases on both backends, for every crate's test suite.
//!
//! SQLite databases are files in a fresh temporary folder. PostgreSQL
//! databases are created on the server named by `DIALCRM_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and dropped after the
//! test. In CI (`CI=true`) an unreachable server fails the test; elsewhere
//! the PostgreSQL half skips with a loud message.
//!
//! [`nats`] starts a NATS server of a test's own, for the shared event bus.

pub mod nats;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use sqlx::{Connection, Executor, PgConnection};

use crate::Store;

/// The default admin URL of the PostgreSQL server tests use.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A migrated, empty database that lives for one test.
pub struct TestDb {
    /// The URL the service would be given for this database.
    pub url: String,
    /// A store connected to it.
    pub store: Store,
    dir: Option<PathBuf>,
    postgres: Option<(String, String)>,
}

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A SQLite file.
    Sqlite,
    /// A database on the PostgreSQL server.
    Postgres,
}

impl TestDb {
    /// Creates a database on the given backend; `None` only when PostgreSQL
    /// is unreachable outside CI.
    pub async fn new(backend: TestBackend) -> Option<TestDb> {
        match backend {
            TestBackend::Sqlite => Some(Self::sqlite().await),
            TestBackend::Postgres => Self::postgres().await,
        }
    }

    /// Creates a migrated SQLite database in a fresh temporary folder.
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("dialcrm-test-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).expect("the temporary folder is writable");
        let url = format!("sqlite://{}", dir.join("dialcrm.db").display());
        let store = Store::connect(&url).await.expect("SQLite opens");
        store.migrate().await.expect("migrations apply on SQLite");
        TestDb {
            url,
            store,
            dir: Some(dir),
            postgres: None,
        }
    }

    /// Creates a migrated database on the PostgreSQL test server.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("DIALCRM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true but PostgreSQL at {admin_url} is unreachable: {e}");
                }
                eprintln!(
                    "\n!!!!! SKIPPING the PostgreSQL half of this test: {admin_url} is \
                     unreachable ({e}). CI runs it for real. !!!!!\n"
                );
                return None;
            }
        };
        drop_stale(&mut admin).await;
        let name = format!("dialcrm_t_{}", unique_suffix());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("the test role may create databases");
        let url = replace_db_name(&admin_url, &name);
        let store = Store::connect(&url)
            .await
            .expect("the new database accepts connections");
        store
            .migrate()
            .await
            .expect("migrations apply on PostgreSQL");
        Some(TestDb {
            url,
            store,
            dir: None,
            postgres: Some((admin_url, name)),
        })
    }

    /// Returns which backend this database is on.
    pub fn backend(&self) -> TestBackend {
        if self.postgres.is_some() {
            TestBackend::Postgres
        } else {
            TestBackend::Sqlite
        }
    }

    /// Returns the temporary folder of a SQLite database.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }

    /// Closes the store and removes the database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = &self.postgres {
            if let Ok(mut admin) = PgConnection::connect(admin_url).await {
                let _ = admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Returns a name part that sorts by creation time and never repeats.
fn unique_suffix() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}_{:08x}", rand::rngs::OsRng.next_u32())
}

/// Drops test databases left by runs that failed more than an hour ago.
async fn drop_stale(admin: &mut PgConnection) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'dialcrm\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > 3600 {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Returns `chars` CJK characters that no compression shortens, three bytes each in UTF-8:
/// text that reaches a length limit or an index's size limit as written.
pub fn incompressible_text(chars: u32) -> String {
    (0..chars)
        .map(|i| char::from_u32(0x4e00 + (i * 7919) % 20000).unwrap_or('x'))
        .collect()
}

/// Runs one store test on a fresh database of the backend, then removes it.
pub async fn run<F, Fut>(backend: TestBackend, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: std::future::Future<Output = TestDb>,
{
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    test(db).await.finish().await;
}

/// Declares each named `async fn(TestDb) -> TestDb` as two tests, one on
/// SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                $crate::testing::run($crate::testing::TestBackend::Sqlite, super::$name).await
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                $crate::testing::run($crate::testing::TestBackend::Postgres, super::$name).await
            })*
        }
    };
}
