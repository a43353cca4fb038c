//! Importing a Go expo-updates-server: its users, projects, members and API
//! keys from its database, and its update tree, into this server's stores,
//! so that apps in the field, CI jobs and people see no change.
//!
//! Safe to repeat: the import ledger (see [`ImportStore`]) records each
//! source row and directory with what it became, so a second run (the
//! final sync after the Go server stops) imports only what is new, and
//! removes what an earlier run brought that the Go server has since
//! removed. Each row and each update directory is one transaction with its
//! ledger entries: killed at any point, a rerun finishes the job and the
//! result equals an uninterrupted run (the ids of imported updates are
//! derived from their source, never drawn at random).
//!
//! A dry run reads everything (every file is read and checked), writes
//! nothing, and reports what a real run would do.

mod control_plane;
mod report;
mod updates;

use std::sync::Arc;

use domain::audit::{Actor, ActorKind};
use domain::blob::BlobStore;
use domain::go_server::GoTree;
use domain::go_server::plan::plan_control_plane;
use domain::go_server::ports::{GoDatabaseSource, GoSourceError, GoUpdateTree, ImportStore};
use domain::ports::{StoreError, UpdateStore};

use crate::audit::AuditLog;

pub use report::{Counts, Entry, ImportReport, Removed, Source};

/// Why an import could not run (or stopped): one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The Go server's data cannot be read.
    #[error("source: {0}")]
    Source(#[from] GoSourceError),
    /// This server's database or storage failed.
    #[error("target: {0}")]
    Target(String),
}

impl From<StoreError> for ImportError {
    fn from(error: StoreError) -> Self {
        Self::Target(error.to_string())
    }
}

impl From<domain::blob::BlobError> for ImportError {
    fn from(error: domain::blob::BlobError) -> Self {
        Self::Target(error.to_string())
    }
}

/// Where an import tells how far it got: a progress bar on a terminal,
/// plain lines otherwise.
pub trait ImportProgress: Send + Sync {
    /// The update files about to be read, in all.
    fn begin_files(&self, files: u64, bytes: u64);
    /// One file read (and copied, unless it was there already).
    fn file_done(&self, bytes: u64);
    /// A step worth a line of its own (an update directory imported).
    fn step(&self, line: &str);
    fn finish(&self);
}

/// Progress reported to nobody (tests).
pub struct NoProgress;

impl ImportProgress for NoProgress {
    fn begin_files(&self, _: u64, _: u64) {}
    fn file_done(&self, _: u64) {}
    fn step(&self, _: &str) {}
    fn finish(&self) {}
}

/// Whether an import writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Import,
    /// Reads and checks everything, writes nothing.
    DryRun,
}

/// This server's side of an import.
pub struct ImportTarget {
    pub store: Arc<dyn ImportStore>,
    pub updates: Arc<dyn UpdateStore>,
    /// `None` in a dry run: nothing is written to storage.
    pub blobs: Option<Arc<dyn BlobStore>>,
    pub audit: Option<AuditLog>,
    /// The largest file copied (`MAX_UPLOAD_BYTES`).
    pub max_file_bytes: u64,
}

/// The Go server's side of an import.
pub struct ImportSource {
    pub database: Arc<dyn GoDatabaseSource>,
    pub database_description: String,
    pub tree: Arc<dyn GoUpdateTree>,
}

/// The actor imported updates are published by and import events are
/// recorded under.
fn importer() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: "import-go".to_owned(),
        name: "import-go".to_owned(),
    }
}

/// One import run.
pub struct GoImport {
    source: ImportSource,
    target: ImportTarget,
    mode: Mode,
    progress: Arc<dyn ImportProgress>,
}

impl GoImport {
    pub fn new(
        source: ImportSource,
        target: ImportTarget,
        mode: Mode,
        progress: Arc<dyn ImportProgress>,
    ) -> Self {
        Self {
            source,
            target,
            mode,
            progress,
        }
    }

    /// Runs the import: the database first (updates need their projects),
    /// then the update tree.
    pub async fn run(&self) -> Result<ImportReport, ImportError> {
        let mut report = ImportReport {
            dry_run: self.mode == Mode::DryRun,
            source: Source {
                database: self.source.database_description.clone(),
                updates: self.source.tree.description(),
            },
            ..ImportReport::default()
        };
        let database = self.source.database.read_all().await?;
        let listing = self.source.tree.list().await?;
        if listing.is_empty() {
            report.warn(
                self.source.tree.description(),
                "holds no files: no updates to import (was the Go server's storage S3? then pass --s3-bucket and its credentials)",
            );
        }
        let tree = GoTree::classify(&listing);
        let plan = plan_control_plane(&database);
        let ledger = self.target.store.ledger().await?;
        let mut run = control_plane::Run::new(self, &ledger, &mut report);
        let projects = run.import(plan).await?;
        updates::Run::new(self, &ledger, &projects, &mut report)
            .import(&tree)
            .await?;
        self.progress.finish();
        Ok(report)
    }

    fn writes(&self) -> bool {
        self.mode == Mode::Import
    }
}
