//! The publish use case: who may publish, reading the form, committing it
//! and emptying staging whatever happens; and which files a publishing
//! client need not upload.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::api_key::ApiKey;
use domain::blob::BlobStore;
use domain::id::ProjectId;
use domain::ports::{MemberStore, UpdateStore};

use super::form::{Form, MAX_HASHES_PER_QUERY, UploadParts, parse_sha256_hex, read_form};
use super::header::Published;
use super::store::PublishStore;
use crate::access::{Caller, Need, authorize_caller};
use crate::audit::AuditLog;
use crate::bundle_diffing::PatchService;
use crate::error::{AppError, AppResult};
use crate::retention::Retention;

pub struct PublishService {
    pub(super) store: PublishStore,
    pub(super) members: Arc<dyn MemberStore>,
    max_upload_bytes: u64,
}

impl PublishService {
    pub fn new(
        updates: Arc<dyn UpdateStore>,
        blobs: Arc<dyn BlobStore>,
        members: Arc<dyn MemberStore>,
        audit: AuditLog,
        max_upload_bytes: u64,
        retention: Retention,
    ) -> Self {
        Self {
            store: PublishStore {
                updates,
                blobs,
                audit,
                retention,
                patches: None,
                best_compression: None,
            },
            members,
            max_upload_bytes,
        }
    }

    /// Recompresses each newly stored launch bundle's copies at the best
    /// levels in the background, one bundle at a time (off: the copies
    /// made at publish stay).
    pub fn with_best_compression(mut self, enabled: bool) -> Self {
        self.store.best_compression = enabled.then(|| Arc::new(tokio::sync::Semaphore::new(1)));
        self
    }

    /// Has every publish want patches to its launch bundles (see
    /// [`PatchService`]).
    pub fn with_patches(mut self, patches: Arc<PatchService>) -> Self {
        self.store.patches = Some(patches);
        self
    }

    /// The upload limit, for the HTTP layer's early `Content-Length` check.
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes
    }

    /// Publishes an export for the key's project.
    pub async fn publish(
        &self,
        key: &ApiKey,
        project_id: &ProjectId,
        parts: &mut dyn UploadParts,
    ) -> AppResult<Published> {
        let caller = Caller::Key(key.clone());
        let actor =
            authorize_caller(self.members.as_ref(), &caller, project_id, Need::Read).await?;
        let mut form = Form::default();
        let blobs = self.store.blobs.as_ref();
        let read = read_form(blobs, self.max_upload_bytes, parts, &mut form).await;
        let result = match read {
            Ok(()) => self.store.commit(project_id, &form, actor).await,
            Err(error) => Err(error),
        };
        for staged in form.files.values() {
            blobs.discard(staged).await;
        }
        let published = result?;
        tracing::info!(
            %project_id,
            publish_id = %published.publish_id,
            platforms = published.updates.len(),
            "update published"
        );
        Ok(published)
    }

    /// Which of these files (SHA-256 hex) the project does not have yet: a
    /// publishing client uploads only those and names the others by hash.
    pub async fn missing_files(
        &self,
        key: &ApiKey,
        project_id: &ProjectId,
        sha256_hexes: &[String],
    ) -> AppResult<Vec<String>> {
        authorize_caller(
            self.members.as_ref(),
            &Caller::Key(key.clone()),
            project_id,
            Need::Read,
        )
        .await?;
        if sha256_hexes.len() > MAX_HASHES_PER_QUERY {
            return Err(AppError::Invalid(format!(
                "at most {MAX_HASHES_PER_QUERY} hashes per request."
            )));
        }
        let wanted: BTreeSet<String> = sha256_hexes
            .iter()
            .map(|raw| parse_sha256_hex(raw))
            .collect::<AppResult<_>>()?;
        let wanted: Vec<String> = wanted.into_iter().collect();
        let known = self.store.updates.known_files(project_id, &wanted).await?;
        // What no update references is missing; what one does may still
        // have been deleted from storage by hand or by a crash.
        let (referenced, mut missing): (Vec<String>, Vec<String>) = wanted
            .into_iter()
            .partition(|sha256_hex| known.contains_key(sha256_hex));
        missing.extend(
            self.store
                .absent_blobs(project_id.as_str(), referenced)
                .await?,
        );
        missing.sort();
        Ok(missing)
    }
}
