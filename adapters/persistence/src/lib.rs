//! Persistence adapter: the domain's store ports over SeaORM, on SQLite (the
//! embedded default) or PostgreSQL, chosen by the database URL.

mod api_keys;
mod audit;
mod channels;
mod entity;
mod errors;
mod insights;
mod members;
mod migration;
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

pub use errors::backend_error_count;
use migration::Migrator;
use serve_epoch::LocalEpoch;
pub use serve_epoch::POLL_INTERVAL as SERVE_EPOCH_POLL_INTERVAL;

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
}

impl SqlStore {
    /// Opens the database at `url` (`sqlite://...` or `postgres://...`) and
    /// brings its schema up to date.
    ///
    /// Every SQLite connection gets WAL journaling, a busy timeout and
    /// foreign keys, and the file is created if missing.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        let mut options = ConnectOptions::new(url);
        options
            .sqlx_logging(false)
            .max_connections(16)
            // How long a request waits for a connection before it is answered
            // 503 (the database is down or saturated).
            .connect_timeout(Duration::from_secs(5))
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true)
            });
        let db = Database::connect(options)
            .await
            .map_err(ConnectError::Connect)?;
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
