//! Computing one claimed patch: both bundles read whole, diffed off the
//! async workers, verified by applying the patch, and stored before the
//! claim is finished, so a patch marked ready is always there to serve.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use domain::blob::{BlobError, ByteStream, StagedBlob};
use domain::patch::{PatchKey, PatchState};
use domain::ports::StoreError;
use domain::update::{ContentEncoding, asset_blob_key};

use super::service::PatchService;
use crate::blob_bytes::read_whole;
use crate::bsdiff::make_patch;
use crate::error::{AppError, AppResult};

/// The largest bundle diffed (base or target). A diff holds both bundles,
/// the base's suffix array and the patch at once: several times the
/// bundle (see the benchmark's figures), so this bounds a job's memory.
pub const MAX_DIFF_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// How long a claim holds: far longer than the largest diff takes, so a
/// live worker keeps its claim; a crashed one's work is taken up again
/// after it.
const CLAIM_LEASE: Duration = Duration::from_secs(15 * 60);

impl PatchService {
    /// Claims the oldest wanted patch and computes it. `Ok(false)` when
    /// there was none to claim. A storage or database failure is an error
    /// and leaves the claim to lapse, so the work is tried again later (at
    /// most [`MAX_PATCH_ATTEMPTS`](domain::patch::MAX_PATCH_ATTEMPTS) times).
    pub async fn work_one(&self) -> AppResult<bool> {
        let now = chrono::Utc::now();
        let lease = chrono::Duration::from_std(CLAIM_LEASE)
            .map_err(|error| AppError::Internal(error.to_string()))?;
        let Some(claim) = self
            .patches
            .claim(&self.instance_id, now, now + lease)
            .await?
        else {
            return Ok(false);
        };
        let job = &claim.key;
        let state = self.compute(job).await?;
        if !self
            .patches
            .finish(&claim, &state, chrono::Utc::now())
            .await?
        {
            tracing::warn!(
                project = %job.project_id,
                base = job.base_sha256,
                target = job.target_sha256,
                "a patch took longer than its claim; another instance's result stands"
            );
            return Ok(true);
        }
        let counter = match &state {
            PatchState::Ready { .. } => &self.counts.ready,
            PatchState::NotWorthIt { .. } => &self.counts.not_worth_it,
            PatchState::Failed { .. } | PatchState::Pending => &self.counts.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        match &state {
            PatchState::Failed { error } => tracing::warn!(
                project = %job.project_id,
                base = job.base_sha256,
                target = job.target_sha256,
                error,
                "no patch: giving up on it"
            ),
            _ => tracing::info!(
                project = %job.project_id,
                base = job.base_sha256,
                target = job.target_sha256,
                state = state.as_str(),
                "patch computed"
            ),
        }
        Ok(true)
    }

    /// The outcome of one patch; an error only for a failure worth trying
    /// again (storage, or the diff task dying).
    async fn compute(&self, job: &PatchKey) -> AppResult<PatchState> {
        let project = job.project_id.as_str();
        let target_key = asset_blob_key(project, &job.target_sha256);
        let base_key = asset_blob_key(project, &job.base_sha256);
        for (key, what) in [(&target_key, "target"), (&base_key, "base")] {
            match self.blobs.size(key).await.map_err(AppError::from)? {
                None => {
                    return Ok(failed(format!("the {what} bundle is no longer stored")));
                }
                Some(size) if size > MAX_DIFF_INPUT_BYTES => {
                    return Ok(failed(format!(
                        "the {what} bundle is {size} bytes; bundles over {} MiB are not diffed",
                        MAX_DIFF_INPUT_BYTES / 1024 / 1024
                    )));
                }
                Some(_) => {}
            }
        }
        let (target, base) = match (
            read_whole(self.blobs.as_ref(), &target_key).await,
            read_whole(self.blobs.as_ref(), &base_key).await,
        ) {
            (Ok(target), Ok(base)) => (target, base),
            (Err(BlobError::NotFound(_)), _) | (_, Err(BlobError::NotFound(_))) => {
                return Ok(failed("a bundle is no longer stored".to_owned()));
            }
            (Err(error), _) | (_, Err(error)) => return Err(error.into()),
        };
        let full = self.smallest_copy(&target_key, target.len() as u64).await?;
        let target_sha256 = job.target_sha256.clone();
        let diffed =
            tokio::task::spawn_blocking(move || make_patch(&base, &target, &target_sha256))
                .await
                .map_err(|error| AppError::Internal(format!("the diff task failed: {error}")))?;
        let patch = match diffed {
            Ok(patch) => patch,
            Err(error) => return Ok(failed(error.to_string())),
        };
        let size = patch.len() as u64;
        if !self.policy.worth_keeping(size, full) {
            return Ok(PatchState::NotWorthIt { size });
        }
        self.store(job, patch).await
    }

    /// Stores a verified patch beside its target, under the project's
    /// reference lock: storage collection deletes only under the same lock,
    /// so the patch is never left behind by a target collected meanwhile.
    /// Staged first, so the lock is held for one copy, not for the upload.
    async fn store(&self, job: &PatchKey, patch: Vec<u8>) -> AppResult<PatchState> {
        let size = patch.len() as u64;
        let body: ByteStream = Box::pin(futures_util::stream::once(async move {
            Ok::<_, std::io::Error>(Bytes::from(patch))
        }));
        let staged = self.blobs.stage(body, size).await?;
        let stored = self.store_staged(job, &staged).await;
        self.blobs.discard(&staged).await;
        stored.map(|kept| match kept {
            true => PatchState::Ready { size },
            false => failed("the target bundle was collected meanwhile".to_owned()),
        })
    }

    /// `Ok(false)` when the target (or its project) is gone.
    async fn store_staged(&self, job: &PatchKey, staged: &StagedBlob) -> AppResult<bool> {
        let lock = match self.updates.lock_references(&job.project_id).await {
            Ok(lock) => lock,
            Err(StoreError::ProjectGone) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        let target = asset_blob_key(job.project_id.as_str(), &job.target_sha256);
        if !self.blobs.exists(&target).await? {
            return Ok(false);
        }
        self.blobs.promote(staged, &job.blob_key()).await?;
        lock.commit().await?;
        Ok(true)
    }

    /// The fewest bytes a client could otherwise download the bundle in:
    /// its smallest stored compressed copy, or the file itself.
    pub(super) async fn smallest_copy(&self, key: &str, size: u64) -> AppResult<u64> {
        let mut smallest = size;
        for encoding in ContentEncoding::ALL {
            if let Some(copy) = self.blobs.size(&encoding.blob_key(key)).await? {
                smallest = smallest.min(copy);
            }
        }
        Ok(smallest)
    }
}

fn failed(error: String) -> PatchState {
    PatchState::Failed { error }
}
