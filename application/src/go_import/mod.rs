//! Importing a Go expo-updates-server: its users, projects, members and API
//! keys from its database, and its update tree, into this server's stores,
//! so that apps in the field, CI jobs and people see no change.
//!
//! Safe to repeat: the import ledger (see [`ImportStore`](domain::go_server::ports::ImportStore)) records each
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
mod types;
mod updates;

use domain::go_server::GoTree;
use domain::go_server::plan::plan_control_plane;

pub use report::{Counts, Entry, ImportReport, Removed, Source};
pub use types::{
    GoImport, ImportError, ImportProgress, ImportSource, ImportTarget, Mode, NoProgress,
};

impl GoImport {
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
}
