//! Publishes that upload nothing: a rollback to the update embedded in the
//! binary, and a republish of an earlier update's content.

use std::collections::{BTreeSet, HashMap};

use domain::id::{ProjectId, PublishId};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateKind, parse_message};

use super::form::optional_branch;
use super::header::{PublishHeader, Published};
use super::service::PublishService;
use super::store::find_publish;
use crate::access::{Caller, Need, authorize_caller};
use crate::error::{AppError, AppResult};

/// A request to roll devices back to the update embedded in their binary.
#[derive(Debug, Clone, Default)]
pub struct RollbackRequest {
    pub runtime_version: String,
    /// `None`: every platform.
    pub platforms: Option<Vec<String>>,
    /// `None`: the default branch.
    pub branch: Option<String>,
    pub message: Option<String>,
}

/// How to republish an earlier update; everything is optional.
#[derive(Debug, Clone, Default)]
pub struct RepublishRequest {
    /// `None`: the branch of the update republished.
    pub branch: Option<String>,
    pub message: Option<String>,
    /// `None`: 100 %.
    pub rollout_percentage: Option<i64>,
}

impl PublishService {
    /// Makes a rollback the latest for the runtime version on each platform
    /// of a branch; the next publish rolls forward again. Any member may do
    /// it: undoing a bad update must not wait for whoever holds the key.
    pub async fn rollback(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        request: &RollbackRequest,
    ) -> AppResult<Published> {
        let actor = authorize_caller(self.members.as_ref(), caller, project_id, Need::Read).await?;
        if request.runtime_version.is_empty() {
            return Err(AppError::Invalid("No runtimeVersion provided.".to_owned()));
        }
        let runtime_version = RuntimeVersion::parse(&request.runtime_version)?;
        let branch = optional_branch(request.branch.as_deref())?;
        let message = request.message.as_deref().map(parse_message).transpose()?;
        let platforms: Vec<Platform> = match &request.platforms {
            None => vec![Platform::Ios, Platform::Android],
            Some(names) if names.is_empty() => {
                return Err(AppError::Invalid("platforms must not be empty.".to_owned()));
            }
            Some(names) => names
                .iter()
                .map(|name| {
                    Platform::parse(name).ok_or_else(|| {
                        AppError::Invalid(format!(
                            "unsupported platform {name:?} (expected ios or android)."
                        ))
                    })
                })
                .collect::<AppResult<BTreeSet<_>>>()?
                .into_iter()
                .collect(),
        };
        let header = PublishHeader::new(
            project_id,
            &runtime_version,
            branch,
            message,
            RolloutPercentage::FULL,
            actor,
        );
        let updates: Vec<Update> = platforms
            .into_iter()
            .map(|platform| header.update(platform, UpdateKind::Rollback, None, Vec::new()))
            .collect();
        let published = self
            .store
            .store(header, updates, "update.rollback", &HashMap::new())
            .await?;
        tracing::info!(%project_id, publish_id = %published.publish_id, "rolled back to the embedded update");
        Ok(published)
    }

    /// Republishes an earlier update: a new update with the same content
    /// becomes the latest on its branch (or another one). Rolling back to an
    /// earlier update and promoting staging to production are both this.
    pub async fn republish(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        source_id: &PublishId,
        request: &RepublishRequest,
    ) -> AppResult<Published> {
        let actor = authorize_caller(self.members.as_ref(), caller, project_id, Need::Read).await?;
        let source = find_publish(self.store.updates.as_ref(), project_id, source_id).await?;
        let branch = match request.branch.as_deref() {
            Some(raw) => BranchName::parse(raw)?,
            None => source[0].branch.clone(),
        };
        let message = match request.message.as_deref() {
            Some(raw) => Some(parse_message(raw)?),
            None => Some(format!("Republish of {source_id}")),
        };
        let rollout = request
            .rollout_percentage
            .map(RolloutPercentage::parse_for_publish)
            .transpose()?
            .unwrap_or(RolloutPercentage::FULL);
        let mut header = PublishHeader::new(
            project_id,
            &source[0].runtime_version,
            branch,
            message,
            rollout,
            actor,
        );
        header.republished_from = Some(source_id.clone());
        let updates = source
            .into_iter()
            .map(|old| header.update(old.platform, old.kind, old.expo_config, old.assets))
            .collect();
        self.store
            .store(header, updates, "update.republish", &HashMap::new())
            .await
    }
}
