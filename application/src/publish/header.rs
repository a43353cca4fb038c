//! What every update of one publish shares, and what a publish answers.

use chrono::{DateTime, SubsecRound, Utc};
use domain::audit::Actor;
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind};

/// What a successful publish answers.
#[derive(Debug, Clone)]
pub struct Published {
    pub publish_id: PublishId,
    pub updates: Vec<Update>,
}

/// What every update of one publish shares.
pub(super) struct PublishHeader {
    /// With `created_at` and the updates' ids: empty until `store` stamps
    /// them under the project's reference lock.
    pub(super) publish_id: PublishId,
    pub(super) project_id: ProjectId,
    pub(super) runtime_version: RuntimeVersion,
    pub(super) branch: BranchName,
    pub(super) message: Option<String>,
    pub(super) rollout: RolloutPercentage,
    pub(super) published_by: Actor,
    pub(super) republished_from: Option<PublishId>,
    pub(super) created_at: DateTime<Utc>,
}

impl PublishHeader {
    pub(super) fn new(
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        branch: BranchName,
        message: Option<String>,
        rollout: RolloutPercentage,
        published_by: Actor,
    ) -> Self {
        Self {
            // Stamped by `store` under the project's reference lock.
            publish_id: PublishId::from_trusted(String::new()),
            project_id: project_id.clone(),
            runtime_version: runtime_version.clone(),
            branch,
            message,
            rollout,
            published_by,
            republished_from: None,
            created_at: Utc::now().trunc_subsecs(3),
        }
    }

    /// One platform's update of this publish. Its manifest `id` is its own
    /// id: every publish, republish included, is new to devices.
    pub(super) fn update(
        &self,
        platform: Platform,
        kind: UpdateKind,
        expo_config: Option<String>,
        assets: Vec<UpdateAsset>,
    ) -> Update {
        // Ids and `created_at` are stamped by `store` under the lock.
        Update {
            manifest_id: String::new(),
            id: UpdateId::from_trusted(String::new()),
            publish_id: PublishId::from_trusted(String::new()),
            project_id: self.project_id.clone(),
            runtime_version: self.runtime_version.clone(),
            platform,
            kind,
            branch: self.branch.clone(),
            message: self.message.clone(),
            rollout: self.rollout,
            published_by: Some(self.published_by.clone()),
            republished_from: self.republished_from.clone(),
            expo_config,
            assets,
            created_at: self.created_at,
        }
    }
}
