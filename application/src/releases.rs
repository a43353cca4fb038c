//! Steering releases after publishing: channels, branches, update history,
//! rollout percentages and deletion.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::audit::Actor;
use domain::id::{ProjectId, PublishId};
use domain::ports::{ChannelStore, HistoryQuery, MemberStore, UpdateStore, UpdateStream};
use domain::release::{BranchName, BranchSplit, Channel, ChannelName, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateKind};
use serde_json::json;

use crate::access::{Caller, Need, authorize_caller};
use crate::audit::{AuditLog, page_limit, valid_cursor};
use crate::error::{AppError, AppResult, not_found};
use crate::publish::find_publish;
use crate::retention::Retention;

/// The most publishes one history page holds.
pub const MAX_HISTORY_PAGE: u64 = 100;

/// A change to one field of a partial update (`PATCH`): leave it, clear it,
/// or set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

/// A new channel, as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct NewChannel {
    pub name: String,
    pub branch: String,
    pub rollout_branch: Option<String>,
    pub rollout_percentage: Option<i64>,
}

/// A partial change to a channel's mapping.
#[derive(Debug, Clone, Default)]
pub struct ChannelChange {
    pub branch: Option<String>,
    pub rollout_branch: Patch<String>,
    pub rollout_percentage: Patch<i64>,
}

/// One publish as history shows it: what its platforms share.
#[derive(Debug, Clone)]
pub struct UpdateGroup {
    pub publish_id: PublishId,
    pub branch: BranchName,
    pub runtime_version: RuntimeVersion,
    pub platforms: Vec<Platform>,
    pub kind: UpdateKind,
    pub message: Option<String>,
    pub rollout: RolloutPercentage,
    pub published_by: Option<Actor>,
    pub republished_from: Option<PublishId>,
    pub created_at: DateTime<Utc>,
    /// One per platform; with assets only where the caller asked for them.
    pub updates: Vec<Update>,
}

impl UpdateGroup {
    /// Groups rows (sorted by publish) into publishes, keeping their order.
    pub fn group(rows: Vec<Update>) -> Vec<Self> {
        let mut groups: Vec<Self> = Vec::new();
        for row in rows {
            match groups.last_mut() {
                Some(group) if group.publish_id == row.publish_id => {
                    group.platforms.push(row.platform);
                    group.updates.push(row);
                }
                _ => groups.push(Self {
                    publish_id: row.publish_id.clone(),
                    branch: row.branch.clone(),
                    runtime_version: row.runtime_version.clone(),
                    platforms: vec![row.platform],
                    kind: row.kind,
                    message: row.message.clone(),
                    rollout: row.rollout,
                    published_by: row.published_by.clone(),
                    republished_from: row.republished_from.clone(),
                    created_at: row.created_at,
                    updates: vec![row],
                }),
            }
        }
        groups
    }
}

/// What a history page is filtered by, as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct HistoryRequest {
    pub branch: Option<String>,
    pub runtime_version: Option<String>,
    pub platform: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub updates: Vec<UpdateGroup>,
    /// Pass as `cursor` for the next (older) page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// A branch with its newest update per runtime version and platform.
#[derive(Debug, Clone)]
pub struct BranchSummary {
    pub name: String,
    pub latest: Vec<Update>,
}

pub struct ReleaseService {
    members: Arc<dyn MemberStore>,
    updates: Arc<dyn UpdateStore>,
    channels: Arc<dyn ChannelStore>,
    audit: AuditLog,
    retention: Retention,
}

impl ReleaseService {
    pub fn new(
        members: Arc<dyn MemberStore>,
        updates: Arc<dyn UpdateStore>,
        channels: Arc<dyn ChannelStore>,
        audit: AuditLog,
        retention: Retention,
    ) -> Self {
        Self {
            members,
            updates,
            channels,
            audit,
            retention,
        }
    }

    async fn authorize(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        need: Need,
    ) -> AppResult<Actor> {
        authorize_caller(self.members.as_ref(), caller, project_id, need).await
    }

    pub async fn list_channels(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
    ) -> AppResult<Vec<Channel>> {
        self.authorize(caller, project_id, Need::Read).await?;
        Ok(self.channels.list(project_id.as_str()).await?)
    }

    /// Creates an explicit mapping; `Conflict` when the channel has one.
    pub async fn create_channel(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        new: &NewChannel,
    ) -> AppResult<Channel> {
        let actor = self.authorize(caller, project_id, Need::Read).await?;
        let now = Utc::now();
        let split = match (&new.rollout_branch, new.rollout_percentage) {
            (None, None) => None,
            (Some(branch), Some(percentage)) => Some(BranchSplit {
                branch: BranchName::parse(branch)?,
                percentage: RolloutPercentage::parse(percentage)?,
            }),
            _ => return Err(split_needs_both()),
        };
        let channel = Channel {
            project_id: project_id.to_string(),
            name: ChannelName::parse(&new.name)?,
            branch: BranchName::parse(&new.branch)?,
            split,
            created_at: now,
            updated_at: now,
        };
        channel.validate()?;
        self.channels
            .insert(&channel)
            .await
            .map_err(|error| match error {
                domain::ports::StoreError::Conflict(_) => AppError::Conflict(format!(
                    "Channel {} already exists; change it with PATCH.",
                    channel.name.as_str()
                )),
                other => other.into(),
            })?;
        self.record_channel(&actor, project_id, "channel.create", &channel)
            .await;
        Ok(channel)
    }

    /// Repoints a channel, atomically. A channel without an explicit mapping
    /// (which serves the branch of its own name) gets one.
    pub async fn change_channel(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        name: &str,
        change: &ChannelChange,
    ) -> AppResult<Channel> {
        let actor = self.authorize(caller, project_id, Need::Read).await?;
        let name = ChannelName::parse(name)?;
        // Optimistic: re-read and re-apply if another change landed between
        // our read and our write.
        for _ in 0..MAX_CHANNEL_ATTEMPTS {
            let current = self.channels.find(project_id.as_str(), &name).await?;
            let expected = current.as_ref().map(|channel| channel.updated_at);
            let channel = apply_change(project_id, &name, current, change)?;
            if self.channels.save_if_unchanged(&channel, expected).await? {
                self.record_channel(&actor, project_id, "channel.update", &channel)
                    .await;
                return Ok(channel);
            }
        }
        Err(AppError::Conflict(format!(
            "Channel {} is being changed by someone else; try again.",
            name.as_str()
        )))
    }

    /// Removes an explicit mapping: the channel serves the branch of its own
    /// name again.
    pub async fn delete_channel(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        name: &str,
    ) -> AppResult<()> {
        let actor = self.authorize(caller, project_id, Need::Read).await?;
        let not_found = || AppError::NotFound(format!("Channel {name} has no mapping."));
        let name = ChannelName::parse(name).map_err(|_| not_found())?;
        if !self.channels.delete(project_id.as_str(), &name).await? {
            return Err(not_found());
        }
        self.audit
            .record(
                &actor,
                project_id,
                "channel.delete",
                json!({ "channel": name.as_str() }),
            )
            .await;
        Ok(())
    }

    async fn record_channel(
        &self,
        actor: &Actor,
        project_id: &ProjectId,
        action: &str,
        channel: &Channel,
    ) {
        let split = channel.split.as_ref();
        self.audit
            .record(
                actor,
                project_id,
                action,
                json!({
                    "channel": channel.name.as_str(),
                    "branch": channel.branch.as_str(),
                    "rolloutBranch": split.map(|s| s.branch.as_str()),
                    "rolloutPercentage": split.map(|s| s.percentage.value()),
                }),
            )
            .await;
    }

    /// Every branch with its newest update per runtime version and platform.
    pub async fn branches(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
    ) -> AppResult<Vec<BranchSummary>> {
        self.authorize(caller, project_id, Need::Read).await?;
        let mut branches: Vec<BranchSummary> = Vec::new();
        for head in self.updates.branch_heads(project_id).await? {
            match branches.last_mut() {
                Some(branch) if branch.name == head.branch.as_str() => branch.latest.push(head),
                _ => branches.push(BranchSummary {
                    name: head.branch.as_str().to_owned(),
                    latest: vec![head],
                }),
            }
        }
        Ok(branches)
    }

    /// A page of the history, newest publish first.
    pub async fn history(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        request: &HistoryRequest,
    ) -> AppResult<HistoryPage> {
        self.authorize(caller, project_id, Need::Read).await?;
        let limit = page_limit(request.limit, MAX_HISTORY_PAGE)?;
        let query = HistoryQuery {
            branch: request
                .branch
                .as_deref()
                .map(BranchName::parse)
                .transpose()?,
            runtime_version: request
                .runtime_version
                .as_deref()
                .map(RuntimeVersion::parse)
                .transpose()?,
            platform: request
                .platform
                .as_deref()
                .map(|raw| {
                    Platform::parse(raw).ok_or_else(|| {
                        AppError::Invalid(format!(
                            "unsupported platform {raw:?} (expected ios or android)."
                        ))
                    })
                })
                .transpose()?,
            before_publish: valid_cursor(request.cursor.as_deref(), PublishId::parse)?,
            // A publish has at most one row per platform: one row more than
            // two per publish tells whether another page follows.
            limit_rows: limit * 2 + 1,
        };
        let mut groups = UpdateGroup::group(self.updates.history(project_id, &query).await?);
        let next_cursor = if groups.len() as u64 > limit {
            groups.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            groups.last().map(|group| group.publish_id.to_string())
        } else {
            None
        };
        Ok(HistoryPage {
            updates: groups,
            next_cursor,
        })
    }

    /// One publish with its assets.
    pub async fn get(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> AppResult<UpdateGroup> {
        self.authorize(caller, project_id, Need::Read).await?;
        let updates = find_publish(self.updates.as_ref(), project_id, publish_id).await?;
        UpdateGroup::group(updates)
            .pop()
            .ok_or_else(|| not_found::update(publish_id))
    }

    /// Changes a publish's rollout: 100 completes it, 0 halts it.
    pub async fn set_rollout(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        publish_id: &PublishId,
        percentage: i64,
    ) -> AppResult<UpdateGroup> {
        let actor = self.authorize(caller, project_id, Need::Read).await?;
        let rollout = RolloutPercentage::parse(percentage)?;
        let before = find_publish(self.updates.as_ref(), project_id, publish_id).await?;
        if !self
            .updates
            .set_rollout(project_id, publish_id, rollout)
            .await?
        {
            return Err(not_found::update(publish_id));
        }
        self.audit
            .record(
                &actor,
                project_id,
                "update.rollout",
                json!({
                    "updateId": publish_id.as_str(),
                    "from": before[0].rollout.value(),
                    "to": rollout.value(),
                }),
            )
            .await;
        if rollout.is_complete() {
            // A completed rollout makes the updates beneath it unservable.
            let streams: Vec<UpdateStream> = before.iter().map(UpdateStream::of).collect();
            self.retention.apply(&actor, project_id, &streams).await;
        }
        let mut group = UpdateGroup::group(before)
            .pop()
            .ok_or_else(|| not_found::update(publish_id))?;
        group.rollout = rollout;
        for update in &mut group.updates {
            update.rollout = rollout;
        }
        Ok(group)
    }

    /// Deletes a publish (owners, or the project's key): it is no longer
    /// served, and the one before it is the latest again.
    pub async fn delete(
        &self,
        caller: &Caller,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> AppResult<()> {
        let actor = self
            .authorize(
                caller,
                project_id,
                Need::Owner("Only owner can delete updates."),
            )
            .await?;
        let before = find_publish(self.updates.as_ref(), project_id, publish_id).await?;
        if !self.updates.delete_publish(project_id, publish_id).await? {
            return Err(not_found::update(publish_id));
        }
        let first = &before[0];
        self.audit
            .record(
                &actor,
                project_id,
                "update.delete",
                json!({
                    "updateId": publish_id.as_str(),
                    "branch": first.branch.as_str(),
                    "runtimeVersion": first.runtime_version.as_str(),
                    "platforms": before.iter().map(|u| u.platform.as_str()).collect::<Vec<_>>(),
                }),
            )
            .await;
        Ok(())
    }
}

/// How often a channel change is retried when others keep changing it.
const MAX_CHANNEL_ATTEMPTS: usize = 5;

/// A channel's mapping after a change; a channel without an explicit
/// mapping starts from the branch of its own name.
fn apply_change(
    project_id: &ProjectId,
    name: &ChannelName,
    current: Option<Channel>,
    change: &ChannelChange,
) -> AppResult<Channel> {
    let now = Utc::now();
    let mut channel = current.unwrap_or_else(|| Channel {
        project_id: project_id.to_string(),
        branch: name.same_name_branch(),
        name: name.clone(),
        split: None,
        created_at: now,
        updated_at: now,
    });
    if let Some(branch) = &change.branch {
        channel.branch = BranchName::parse(branch)?;
    }
    channel.split = match (
        &change.rollout_branch,
        &change.rollout_percentage,
        channel.split,
    ) {
        (Patch::Clear, Patch::Clear | Patch::Keep, _) => None,
        (Patch::Set(branch), Patch::Set(percentage), _) => Some(BranchSplit {
            branch: BranchName::parse(branch)?,
            percentage: RolloutPercentage::parse(*percentage)?,
        }),
        (Patch::Set(branch), Patch::Keep, Some(split)) => Some(BranchSplit {
            branch: BranchName::parse(branch)?,
            percentage: split.percentage,
        }),
        (Patch::Keep, Patch::Set(percentage), Some(split)) => Some(BranchSplit {
            branch: split.branch,
            percentage: RolloutPercentage::parse(*percentage)?,
        }),
        (Patch::Keep, Patch::Keep, split) => split,
        _ => return Err(split_needs_both()),
    };
    channel.updated_at = now;
    channel.validate()?;
    Ok(channel)
}

fn split_needs_both() -> AppError {
    AppError::Invalid(
        "rolloutBranch and rolloutPercentage go together: set both, or clear rolloutBranch."
            .to_owned(),
    )
}
