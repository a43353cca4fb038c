//! Persistence adapter: the domain's store ports over SeaORM, on SQLite (the
//! embedded default) or PostgreSQL, chosen by the database URL.

mod api_keys;
mod audit;
mod channels;
mod embedded_bundles;
mod entity;
mod epoch_counter;
mod errors;
mod go_database;
mod in_list;
mod insights;
mod legacy_import;
mod members;
mod migration;
mod patches;
mod projects;
mod serve_epoch;
mod signing_keys;
mod updates;
mod users;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr,
    TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use epoch_counter::LocalEpoch;
pub use epoch_counter::POLL_INTERVAL as SERVE_EPOCH_POLL_INTERVAL;
pub use errors::backend_error_count;
pub use go_database::{GoDatabaseFile, SqliteKind, sqlite_kind};
use migration::Migrator;

/// How long a SQLite connection waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An arbitrary constant naming the PostgreSQL advisory lock that serialises
/// migrations when several instances start at once.
const MIGRATION_LOCK_ID: i64 = 0x0065_7573_5f6d_6967;

/// The SeaORM-backed store. One value implements every store port; clone it
/// freely (the connection pool is shared).
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: DatabaseConnection,
    /// Advanced after every committed change to what devices are served.
    epoch: Arc<LocalEpoch>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot open the database: {0}")]
    Connect(DbErr),
    #[error("cannot migrate the database schema: {0}")]
    Migrate(DbErr),
    /// The SQLite file is the Go server's: this server never adds its
    /// tables to it.
    #[error(
        "{0} is the Go expo-updates-server's database; this server does not write to it. Import it into a new data directory with `expo-updates-server import-go --data-dir <the Go server's DATA_DIR>` (README: \"Switching from the Go server\")"
    )]
    GoDatabase(String),
    /// The schema is older than this binary and may not be migrated now.
    #[error("the database schema is older than this binary; start the server once to migrate it")]
    Outdated,
}

/// The file a `sqlite:` URL names, unless it is an in-memory database.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" || rest.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Refuses a SQLite file that holds the Go server's tables and none of
/// ours, before anything could write to it.
async fn refuse_go_database(url: &str) -> Result<(), ConnectError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    match sqlite_kind(&path).await {
        Ok(Some(SqliteKind::GoServer)) => Err(ConnectError::GoDatabase(path.display().to_string())),
        // Unreadable: the normal open reports it.
        _ => Ok(()),
    }
}

impl SqlStore {
    /// Opens the database at `url` (`sqlite://...` or `postgres://...`) and
    /// brings its schema up to date.
    ///
    /// Every SQLite connection gets WAL journaling, a busy timeout and
    /// foreign keys, and the file is created if missing.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        refuse_go_database(url).await?;
        let db = open_pool(url, true).await?;
        migrate(&db).await.map_err(ConnectError::Migrate)?;
        let store = Self {
            db,
            epoch: Arc::default(),
        };
        // An instance that crashed between a commit and its announcement
        // announces it now (see `announce_change`).
        store.announce_start().await;
        Ok(store)
    }

    /// Opens the database at `url` to read it only: nothing is created or
    /// migrated (a dry run). A database that does not exist yet, or has no
    /// tables, reads as an empty one (a migrated in-memory SQLite);
    /// `Outdated` when its schema lags this binary's.
    pub async fn connect_to_read(url: &str) -> Result<Self, ConnectError> {
        refuse_go_database(url).await?;
        let missing_file = sqlite_path(url).is_some_and(|path| !path.exists());
        let db = match missing_file {
            true => None,
            false => Some(open_pool(url, false).await?),
        };
        let db = match db {
            Some(db) => match applied_migrations(&db).await {
                Some(applied) if applied == Migrator::migrations().len() => Some(db),
                Some(_) => return Err(ConnectError::Outdated),
                None => None,
            },
            None => None,
        };
        let db = match db {
            Some(db) => db,
            None => {
                let empty = open_pool("sqlite::memory:", true).await?;
                migrate(&empty).await.map_err(ConnectError::Migrate)?;
                empty
            }
        };
        Ok(Self {
            db,
            epoch: Arc::default(),
        })
    }
}

/// How many migrations the database has applied; `None` when it has no
/// migration table (a new database).
async fn applied_migrations(db: &DatabaseConnection) -> Option<usize> {
    let statement = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) FROM seaql_migrations",
    );
    let row = db.query_one_raw(statement).await.ok()??;
    row.try_get_by_index::<i64>(0)
        .ok()
        .and_then(|count| usize::try_from(count).ok())
}

/// A connection pool; `writable: false` opens SQLite read-only.
async fn open_pool(url: &str, writable: bool) -> Result<DatabaseConnection, ConnectError> {
    let mut options = ConnectOptions::new(url);
    if url.contains(":memory:") {
        // Each connection to `:memory:` is a database of its own: keep one.
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else {
        options.max_connections(16);
    }
    {
        options
            .sqlx_logging(false)
            // How long a request waits for a connection before it is answered
            // 503 (the database is down or saturated).
            .connect_timeout(Duration::from_secs(5))
            .map_sqlx_sqlite_opts(move |sqlite| match writable {
                true => sqlite
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true),
                false => sqlite
                    .read_only(true)
                    .create_if_missing(false)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT),
            });
        Database::connect(options)
            .await
            .map_err(ConnectError::Connect)
    }
}

impl SqlStore {
    /// Which SQL dialect the store speaks, for start-up logs.
    pub fn backend_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DatabaseBackend::Postgres => "postgres",
            DatabaseBackend::Sqlite => "sqlite",
            _ => "other",
        }
    }

    /// Closes the pool, letting SQLite checkpoint its WAL.
    pub async fn close(self) {
        if let Err(error) = self.db.close().await {
            tracing::warn!(%error, "closing the database pool failed");
        }
    }
}

/// Applies pending migrations. On PostgreSQL an advisory lock held for the
/// transaction makes concurrent start-ups take turns.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"
    ))
    .await?;
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

#[async_trait::async_trait]
impl domain::ports::HealthProbe for SqlStore {
    async fn ping(&self) -> domain::ports::StoreResult<()> {
        self.db.ping().await.map_err(errors::backend)
    }
}
