//! The Go server's `ota.db`, read without ever being written: opened
//! read-only, so SQLite replays what its WAL holds (rows written since the
//! last checkpoint live only there) without touching the files.
//!
//! When the Go server was stopped cleanly there is no `-wal` to replay and
//! the file is opened as immutable (a plain read-only open would create
//! `-wal` and `-shm` beside it). With a `-wal`, a read-only open needs the
//! `-shm` to exist or be creatable; when SQLite still cannot open it in
//! place (a read-only mount), the files are copied to a temporary directory
//! and the copy is read.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::go_server::ports::{GoDatabaseSource, GoSourceError};
use domain::go_server::{GoApiKey, GoDatabase, GoMembership, GoProject, GoUser};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, QueryResult, SqlxSqliteConnector,
    Statement,
};

/// The tables the Go server creates (bun, singular names).
const GO_TABLES: [&str; 4] = ["user", "project", "project_user", "key"];

/// Tables only this server creates: a file holding one of them is ours.
const OUR_TABLES: [&str; 3] = ["seaql_migrations", "users", "projects"];

/// What a SQLite file holds, judged by its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteKind {
    /// The Go server's tables and none of ours.
    GoServer,
    /// The Go server's tables and ours: a Go database an earlier version of
    /// this server was started on (it added its tables beside them).
    GoServerWithOurs,
    /// This server's schema (perhaps beside others).
    Ours,
    /// No tables at all.
    Empty,
    /// Something else.
    Other,
}

/// The Go server's database file, `<GO_DATA_DIR>/ota.db`.
#[derive(Debug, Clone)]
pub struct GoDatabaseFile {
    path: PathBuf,
}

impl GoDatabaseFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

fn unusable(path: &Path, why: impl std::fmt::Display) -> GoSourceError {
    GoSourceError::Unusable(format!("{}: {why}", path.display()))
}

async fn open(path: &Path, immutable: bool) -> Result<DatabaseConnection, DbErr> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(immutable)
        .create_if_missing(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|error| DbErr::Conn(sea_orm::RuntimeErr::Internal(error.to_string())))?;
    let db = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
    // Opening is lazy: the first read is what fails on a locked-down file.
    tables(&db).await?;
    Ok(db)
}

/// How to read a file SQLite cannot open read-only in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// Read a copy in a temporary directory (the import: the WAL's rows
    /// count).
    Copy,
    /// Read the main file as immutable, the WAL aside (the start-up check,
    /// which must not copy a database of any size; tables are created long
    /// before the WAL is last checkpointed).
    Immutable,
}

/// Opens a SQLite file read-only (see the module header); the temporary
/// directory, when a copy was needed, lives as long as the connection.
async fn open_read_only(
    path: &Path,
    fallback: Fallback,
) -> Result<(DatabaseConnection, Option<tempfile::TempDir>), GoSourceError> {
    if !path.is_file() {
        return Err(unusable(path, "no such file"));
    }
    let wal = sidecar(path, "-wal");
    if !wal.exists() {
        // Nothing to replay: immutable is exact, needs no -shm, creates nothing.
        return open(path, true)
            .await
            .map(|db| (db, None))
            .map_err(|error| unusable(path, format!("cannot be opened read-only ({error})")));
    }
    if let Ok(db) = open(path, false).await {
        return Ok((db, None));
    }
    if fallback == Fallback::Immutable {
        return open(path, true)
            .await
            .map(|db| (db, None))
            .map_err(|error| unusable(path, format!("cannot be opened read-only ({error})")));
    }
    let copy = tempfile::tempdir().map_err(|error| unusable(path, error))?;
    let copied = copy.path().join("ota.db");
    for (from, to) in [
        (path.to_path_buf(), copied.clone()),
        (wal, sidecar(&copied, "-wal")),
    ] {
        std::fs::copy(&from, &to).map_err(|error| unusable(&from, error))?;
    }
    // Writable copy: SQLite replays the WAL into its own fresh -shm.
    let options = SqliteConnectOptions::new()
        .filename(&copied)
        .create_if_missing(false);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|error| unusable(path, error))?;
    let db = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
    tables(&db).await.map_err(|error| unusable(path, error))?;
    tracing::info!(path = %path.display(), "read a copy of the Go database (it could not be opened in place)");
    Ok((db, Some(copy)))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

async fn tables(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DatabaseBackend::Sqlite,
            "SELECT name FROM sqlite_master WHERE type = 'table'",
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

fn kind_of(tables: &[String]) -> SqliteKind {
    let has = |name: &str| tables.iter().any(|table| table == name);
    let go = GO_TABLES.iter().all(|table| has(table));
    let ours = OUR_TABLES.iter().any(|table| has(table));
    if go && ours {
        SqliteKind::GoServerWithOurs
    } else if ours {
        SqliteKind::Ours
    } else if go {
        SqliteKind::GoServer
    } else if tables.is_empty() {
        SqliteKind::Empty
    } else {
        SqliteKind::Other
    }
}

/// What the SQLite file at `path` holds, read without writing to it;
/// `None` when there is no such file.
pub async fn sqlite_kind(path: &Path) -> Result<Option<SqliteKind>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let (db, _copy) = open_read_only(path, Fallback::Immutable)
        .await
        .map_err(|error| error.to_string())?;
    let tables = tables(&db).await.map_err(|error| error.to_string())?;
    db.close().await.ok();
    Ok(Some(kind_of(&tables)))
}

fn text(row: &QueryResult, column: &str) -> Result<String, DbErr> {
    Ok(row
        .try_get::<Option<String>>("", column)?
        .unwrap_or_default())
}

fn optional_text(row: &QueryResult, column: &str) -> Result<Option<String>, DbErr> {
    row.try_get::<Option<String>>("", column)
}

/// Every column as text, whatever affinity a value was stored with.
async fn select(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&str],
) -> Result<Vec<QueryResult>, DbErr> {
    let list: Vec<String> = columns
        .iter()
        .map(|column| format!("CAST(\"{column}\" AS TEXT) AS \"{column}\""))
        .collect();
    db.query_all_raw(Statement::from_string(
        DatabaseBackend::Sqlite,
        format!(
            "SELECT rowid AS \"rowid\", {} FROM \"{table}\" ORDER BY rowid",
            list.join(", ")
        ),
    ))
    .await
}

async fn read_rows(db: &DatabaseConnection) -> Result<GoDatabase, DbErr> {
    let users = select(
        db,
        "user",
        &["id", "username", "email", "password_hash", "created_at"],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(GoUser {
            id: text(row, "id")?,
            username: text(row, "username")?,
            email: text(row, "email")?,
            password_hash: text(row, "password_hash")?,
            created_at: optional_text(row, "created_at")?,
        })
    })
    .collect::<Result<_, DbErr>>()?;
    let projects = select(db, "project", &["id", "name", "slug", "created_at"])
        .await?
        .iter()
        .map(|row| {
            Ok(GoProject {
                id: text(row, "id")?,
                name: text(row, "name")?,
                slug: text(row, "slug")?,
                created_at: optional_text(row, "created_at")?,
            })
        })
        .collect::<Result<_, DbErr>>()?;
    let memberships = select(
        db,
        "project_user",
        &["id", "project_id", "user_id", "role", "created_at"],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(GoMembership {
            id: text(row, "id")?,
            project_id: text(row, "project_id")?,
            user_id: text(row, "user_id")?,
            role: text(row, "role")?,
            created_at: optional_text(row, "created_at")?,
            rowid: row.try_get::<i64>("", "rowid")?,
        })
    })
    .collect::<Result<_, DbErr>>()?;
    let keys = select(
        db,
        "key",
        &[
            "id",
            "project_id",
            "created_by",
            "name",
            "key_hash",
            "key_prefix",
            "created_at",
        ],
    )
    .await?
    .iter()
    .map(|row| {
        Ok(GoApiKey {
            id: text(row, "id")?,
            project_id: text(row, "project_id")?,
            created_by: text(row, "created_by")?,
            name: text(row, "name")?,
            key_hash: text(row, "key_hash")?,
            key_prefix: text(row, "key_prefix")?,
            created_at: optional_text(row, "created_at")?,
        })
    })
    .collect::<Result<_, DbErr>>()?;
    Ok(GoDatabase {
        users,
        projects,
        memberships,
        keys,
    })
}

#[async_trait]
impl GoDatabaseSource for GoDatabaseFile {
    async fn read_all(&self) -> Result<GoDatabase, GoSourceError> {
        let (db, _copy) = open_read_only(&self.path, Fallback::Copy).await?;
        let tables = tables(&db)
            .await
            .map_err(|error| unusable(&self.path, error))?;
        match kind_of(&tables) {
            // This server's tables beside the Go ones are ignored: only the
            // Go server's four tables are read.
            SqliteKind::GoServer | SqliteKind::GoServerWithOurs => {}
            SqliteKind::Ours => {
                return Err(unusable(
                    &self.path,
                    "this is an expo-updates-server (Rust) database, not the Go server's",
                ));
            }
            SqliteKind::Empty | SqliteKind::Other => {
                return Err(unusable(
                    &self.path,
                    format!(
                        "not a Go expo-updates-server database (it needs the tables {})",
                        GO_TABLES.join(", ")
                    ),
                ));
            }
        }
        let rows = read_rows(&db)
            .await
            .map_err(|error| unusable(&self.path, format!("cannot read its rows: {error}")));
        db.close().await.ok();
        rows
    }
}
