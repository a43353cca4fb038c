//! Storage garbage collection: deleting asset blobs no update references
//! any more (after deletes, retention, or a deleted project).
//!
//! A blob is deleted only while the project's reference lock is held, and a
//! publish checks that its blobs exist under that same lock before it
//! commits (re-promoting any that went missing), so collection never removes
//! a blob that a publish in progress is about to reference, on any instance.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::blob::{BlobInfo, BlobStore};
use domain::id::ProjectId;
use domain::ports::{MemberStore, StoreError, UpdateStore};
use domain::update::{asset_blob_prefix, blob_key_sha256, is_compressed_copy};
use domain::user::User;
use serde_json::json;

use crate::access::{Need, authorize, user_actor};
use crate::audit::AuditLog;
use crate::error::{AppError, AppResult};

/// Where every project's blobs live.
const PROJECTS_PREFIX: &str = "projects";

/// What one collection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Files, not counting their compressed copies (which go with them and
    /// count in `freed_bytes`).
    pub deleted_blobs: u64,
    pub freed_bytes: u64,
    pub kept_blobs: u64,
}

impl GcReport {
    fn add(&mut self, other: Self) {
        self.deleted_blobs += other.deleted_blobs;
        self.freed_bytes += other.freed_bytes;
        self.kept_blobs += other.kept_blobs;
    }
}

/// How many of `blobs` are files rather than compressed copies of one.
fn files<B: std::borrow::Borrow<BlobInfo>>(blobs: &[B]) -> u64 {
    blobs
        .iter()
        .filter(|blob| !is_compressed_copy(&blob.borrow().key))
        .count() as u64
}

pub struct GarbageCollector {
    members: Arc<dyn MemberStore>,
    updates: Arc<dyn UpdateStore>,
    blobs: Arc<dyn BlobStore>,
    audit: AuditLog,
    /// Blobs younger than this are left alone: they are most likely part of
    /// a publish under way, which would otherwise have to re-promote them.
    grace: Duration,
}

impl GarbageCollector {
    pub fn new(
        members: Arc<dyn MemberStore>,
        updates: Arc<dyn UpdateStore>,
        blobs: Arc<dyn BlobStore>,
        audit: AuditLog,
        grace: Duration,
    ) -> Self {
        Self {
            members,
            updates,
            blobs,
            audit,
            grace,
        }
    }

    /// Collects one project's storage, on an owner's request.
    pub async fn collect_project(
        &self,
        actor: &User,
        project_id: &ProjectId,
    ) -> AppResult<GcReport> {
        authorize(
            self.members.as_ref(),
            actor,
            project_id,
            Need::Owner("Only owner can clean up project storage."),
        )
        .await?;
        let blobs = self.list(&asset_blob_prefix(project_id.as_str())).await?;
        let report = self.collect(project_id, blobs).await?;
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "storage.gc",
                json!({
                    "deletedBlobs": report.deleted_blobs,
                    "freedBytes": report.freed_bytes,
                    "keptBlobs": report.kept_blobs,
                }),
            )
            .await;
        Ok(report)
    }

    /// Collects every project's storage, including what deleted projects
    /// left behind: the background task.
    pub async fn collect_all(&self) -> AppResult<GcReport> {
        let mut by_project: BTreeMap<ProjectId, Vec<BlobInfo>> = BTreeMap::new();
        for blob in self.list(PROJECTS_PREFIX).await? {
            let mut segments = blob.key.split('/');
            if let (Some(PROJECTS_PREFIX), Some(project), Some("assets")) =
                (segments.next(), segments.next(), segments.next())
            {
                // Written under ids the server issued.
                by_project
                    .entry(ProjectId::from_trusted(project.to_owned()))
                    .or_default()
                    .push(blob);
            }
        }
        let mut total = GcReport::default();
        for (project_id, blobs) in by_project {
            match self.collect(&project_id, blobs).await {
                Ok(report) => total.add(report),
                // One project's failure does not stop the others' clean-up.
                Err(error) => tracing::warn!(%error, %project_id, "storage collection failed"),
            }
        }
        Ok(total)
    }

    async fn list(&self, prefix: &str) -> AppResult<Vec<BlobInfo>> {
        self.blobs.list(prefix).await.map_err(AppError::from)
    }

    async fn collect(&self, project_id: &ProjectId, blobs: Vec<BlobInfo>) -> AppResult<GcReport> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.grace).unwrap_or_else(|_| chrono::Duration::zero());
        let (old, young): (Vec<BlobInfo>, Vec<BlobInfo>) = blobs
            .into_iter()
            .partition(|blob| blob.last_modified <= cutoff);
        let mut report = GcReport {
            kept_blobs: files(&young),
            ..GcReport::default()
        };
        if old.is_empty() {
            return Ok(report);
        }
        match self.updates.lock_references(project_id).await {
            Ok(mut lock) => {
                let referenced = lock.referenced_blobs().await?;
                let collected = self
                    .delete_unreferenced(&old, &referenced, &mut report)
                    .await?;
                // Their patches went with them.
                lock.forget_patches_to(&collected).await?;
                lock.commit().await?;
            }
            // The project is gone: nothing can reference its blobs again.
            Err(StoreError::ProjectGone) => {
                self.delete_unreferenced(&old, &HashSet::new(), &mut report)
                    .await?;
            }
            Err(error) => return Err(error.into()),
        }
        Ok(report)
    }

    /// Deletes the blobs of `old` that no update references, with their
    /// copies and patches; returns the content hashes of the files deleted.
    async fn delete_unreferenced(
        &self,
        old: &[BlobInfo],
        referenced: &HashSet<String>,
        report: &mut GcReport,
    ) -> AppResult<Vec<String>> {
        let (doomed, kept): (Vec<&BlobInfo>, Vec<&BlobInfo>) = old.iter().partition(|blob| {
            // A compressed copy goes with the file it copies.
            !referenced.contains(blob_key_sha256(&blob.key))
        });
        report.kept_blobs += files(&kept);
        if doomed.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = doomed.iter().map(|blob| blob.key.clone()).collect();
        self.blobs
            .delete_many(&keys)
            .await
            .map_err(AppError::from)?;
        report.deleted_blobs += files(&doomed);
        report.freed_bytes += doomed.iter().map(|blob| blob.size).sum::<u64>();
        tracing::info!(
            deleted = doomed.len(),
            "storage collection deleted unreferenced blobs"
        );
        Ok(doomed
            .iter()
            .filter(|blob| !is_compressed_copy(&blob.key))
            .map(|blob| blob_key_sha256(&blob.key).to_owned())
            .collect())
    }
}
