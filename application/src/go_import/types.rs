//! What an import is made of: where it reads, where it writes, how it
//! reports progress, and why it fails.

use std::sync::Arc;

use domain::audit::{Actor, ActorKind};
use domain::blob::BlobStore;
use domain::go_server::ports::{GoDatabaseSource, GoSourceError, GoUpdateTree, ImportStore};
use domain::ports::{StoreError, UpdateStore};

use crate::audit::AuditLog;

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
pub(super) fn importer() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: "import-go".to_owned(),
        name: "import-go".to_owned(),
    }
}

/// One import run.
pub struct GoImport {
    pub(super) source: ImportSource,
    pub(super) target: ImportTarget,
    pub(super) mode: Mode,
    pub(super) progress: Arc<dyn ImportProgress>,
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

    pub(super) fn writes(&self) -> bool {
        self.mode == Mode::Import
    }
}
