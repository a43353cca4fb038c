//! Bodies of the release-management routes: channels, branches, update
//! history, rollouts, the audit log and storage collection.

use application::bundle_diffing::BundlePatches;
use application::{AuditPage, BranchSummary, GcReport, HistoryPage, UpdateGroup};
use chrono::{DateTime, SecondsFormat, Utc};
use domain::audit::{Actor, AuditEvent};
use domain::patch::{PatchRecord, PatchState};
use domain::release::Channel;
use domain::update::{Update, UpdateAsset};
use poem_openapi::Object;
use poem_openapi::types::MaybeUndefined;

/// Release timestamps carry milliseconds: updates a second apart must sort.
fn millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Who did something.
#[derive(Debug, Object)]
pub struct ActorBody {
    /// `user`, `apiKey`, or `system` (background retention).
    #[oai(rename = "type")]
    pub kind: String,
    /// The user's or the key's id.
    pub id: String,
    /// The username, or the key's name, at the time.
    pub name: String,
}

impl From<&Actor> for ActorBody {
    fn from(actor: &Actor) -> Self {
        Self {
            kind: actor.kind.as_str().to_owned(),
            id: actor.id.clone(),
            name: actor.name.clone(),
        }
    }
}

/// One publish: what its platforms share.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateSummaryBody {
    /// The update id (the `updateId` a publish answers with), shared by its
    /// platforms.
    pub id: String,
    pub branch: String,
    pub runtime_version: String,
    pub platforms: Vec<String>,
    /// `update` or `rollback` (to the embedded update).
    pub kind: String,
    pub message: Option<String>,
    /// The share of devices served this update (0 to 100).
    pub rollout_percentage: u8,
    pub created_at: String,
    /// Absent for updates published before this was recorded.
    pub published_by: Option<ActorBody>,
    /// The update this one republished.
    pub republished_from: Option<String>,
}

impl From<&UpdateGroup> for UpdateSummaryBody {
    fn from(group: &UpdateGroup) -> Self {
        Self {
            id: group.publish_id.to_string(),
            branch: group.branch.as_str().to_owned(),
            runtime_version: group.runtime_version.to_string(),
            platforms: group
                .platforms
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            kind: group.kind.as_str().to_owned(),
            message: group.message.clone(),
            rollout_percentage: group.rollout.value(),
            created_at: millis(group.created_at),
            published_by: group.published_by.as_ref().map(ActorBody::from),
            republished_from: group.republished_from.as_ref().map(ToString::to_string),
        }
    }
}

/// One file of an update.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AssetBody {
    pub path: String,
    /// Base64url SHA-256, as in the manifest.
    pub hash: String,
    /// Hex MD5, the manifest's `key`.
    pub key: String,
    pub content_type: String,
    pub file_extension: Option<String>,
    pub size: u64,
    pub is_launch_asset: bool,
}

impl From<&UpdateAsset> for AssetBody {
    fn from(asset: &UpdateAsset) -> Self {
        Self {
            path: asset.path.clone(),
            hash: asset.hash.clone(),
            key: asset.key.clone(),
            content_type: asset.content_type.clone(),
            file_extension: asset.file_extension.clone(),
            size: asset.size,
            is_launch_asset: asset.is_launch_asset,
        }
    }
}

/// One platform's part of a publish.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PlatformUpdateBody {
    pub platform: String,
    /// The manifest `id` devices see (and send back as
    /// `expo-current-update-id`).
    pub manifest_id: String,
    pub assets: Vec<AssetBody>,
}

impl From<&Update> for PlatformUpdateBody {
    fn from(update: &Update) -> Self {
        Self {
            platform: update.platform.as_str().to_owned(),
            manifest_id: update.manifest_id.clone(),
            assets: update.assets.iter().map(AssetBody::from).collect(),
        }
    }
}

/// A publish with its files.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateDetailBody {
    #[oai(flatten)]
    pub summary: UpdateSummaryBody,
    pub platform_updates: Vec<PlatformUpdateBody>,
}

impl From<&UpdateGroup> for UpdateDetailBody {
    fn from(group: &UpdateGroup) -> Self {
        Self {
            summary: group.into(),
            platform_updates: group.updates.iter().map(PlatformUpdateBody::from).collect(),
        }
    }
}

/// A page of history, newest first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdatePageBody {
    pub updates: Vec<UpdateSummaryBody>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl From<HistoryPage> for UpdatePageBody {
    fn from(page: HistoryPage) -> Self {
        Self {
            updates: page.updates.iter().map(UpdateSummaryBody::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// A new rollout percentage.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RolloutRequest {
    /// 0 (halt: nobody gets it) to 100 (complete).
    pub rollout_percentage: i64,
}

/// How to republish; every field is optional.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RepublishRequest {
    /// Default: the branch of the update republished.
    pub branch: Option<String>,
    pub message: Option<String>,
    /// 1 to 100; default 100.
    pub rollout_percentage: Option<i64>,
}

/// A channel's mapping.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ChannelBody {
    pub name: String,
    /// The branch the channel serves.
    pub branch: String,
    /// A second branch served to `rolloutPercentage` % of devices.
    pub rollout_branch: Option<String>,
    pub rollout_percentage: Option<u8>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Channel> for ChannelBody {
    fn from(channel: &Channel) -> Self {
        let split = channel.split.as_ref();
        Self {
            name: channel.name.as_str().to_owned(),
            branch: channel.branch.as_str().to_owned(),
            rollout_branch: split.map(|s| s.branch.as_str().to_owned()),
            rollout_percentage: split.map(|s| s.percentage.value()),
            created_at: millis(channel.created_at),
            updated_at: millis(channel.updated_at),
        }
    }
}

/// A new channel.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateChannelRequest {
    pub name: String,
    pub branch: String,
    /// Set together with `rolloutPercentage` to split traffic.
    pub rollout_branch: Option<String>,
    pub rollout_percentage: Option<i64>,
}

/// A change to a channel; absent fields stay as they are, `null` clears.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ChangeChannelRequest {
    pub branch: Option<String>,
    /// `null` ends a branch rollout.
    pub rollout_branch: MaybeUndefined<String>,
    pub rollout_percentage: MaybeUndefined<i64>,
}

/// The newest update of a branch for one runtime version and platform.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct BranchHeadBody {
    pub update_id: String,
    pub runtime_version: String,
    pub platform: String,
    pub kind: String,
    pub message: Option<String>,
    pub rollout_percentage: u8,
    pub created_at: String,
}

/// A branch with its newest updates.
#[derive(Debug, Object)]
pub struct BranchBody {
    pub name: String,
    /// One per runtime version and platform, newest first.
    pub latest: Vec<BranchHeadBody>,
}

impl From<&BranchSummary> for BranchBody {
    fn from(branch: &BranchSummary) -> Self {
        Self {
            name: branch.name.clone(),
            latest: branch
                .latest
                .iter()
                .map(|head| BranchHeadBody {
                    update_id: head.publish_id.to_string(),
                    runtime_version: head.runtime_version.to_string(),
                    platform: head.platform.as_str().to_owned(),
                    kind: head.kind.as_str().to_owned(),
                    message: head.message.clone(),
                    rollout_percentage: head.rollout.value(),
                    created_at: millis(head.created_at),
                })
                .collect(),
        }
    }
}

/// One recorded change.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditEventBody {
    pub id: String,
    /// e.g. `update.publish`, `update.rollout`, `channel.update`,
    /// `member.add`, `key.revoke`.
    pub action: String,
    pub actor: ActorBody,
    /// The ids and values involved.
    pub details: serde_json::Value,
    pub created_at: String,
}

impl From<&AuditEvent> for AuditEventBody {
    fn from(event: &AuditEvent) -> Self {
        Self {
            id: event.id.clone(),
            action: event.action.clone(),
            actor: (&event.actor).into(),
            details: serde_json::from_str(&event.details).unwrap_or(serde_json::Value::Null),
            created_at: millis(event.created_at),
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditPageBody {
    pub events: Vec<AuditEventBody>,
    pub next_cursor: Option<String>,
}

impl From<AuditPage> for AuditPageBody {
    fn from(page: AuditPage) -> Self {
        Self {
            events: page.events.iter().map(AuditEventBody::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// What a storage collection did.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct GcReportBody {
    pub deleted_blobs: u64,
    pub freed_bytes: u64,
    /// Referenced blobs, and unreferenced ones too young to collect.
    pub kept_blobs: u64,
}

impl From<GcReport> for GcReportBody {
    fn from(report: GcReport) -> Self {
        Self {
            deleted_blobs: report.deleted_blobs,
            freed_bytes: report.freed_bytes,
            kept_blobs: report.kept_blobs,
        }
    }
}

/// The bundle patches of a publish: per platform, the patches to its
/// launch bundle from the bundles devices ran before.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdatePatchesBody {
    /// Whether the server makes patches (`PATCH_BASES` above 0).
    pub enabled: bool,
    pub platforms: Vec<BundlePatchesBody>,
}

/// The patches to one platform's launch bundle.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct BundlePatchesBody {
    pub platform: String,
    /// The platform update's id.
    pub update_id: String,
    /// The launch bundle's SHA-256 (hex).
    pub bundle_sha256: String,
    /// The bytes a device downloads without a patch (the smallest stored
    /// copy of the bundle); absent when the file is no longer stored.
    pub full_size: Option<u64>,
    /// Oldest first.
    pub patches: Vec<PatchBody>,
}

/// One patch to a launch bundle.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PatchBody {
    /// The SHA-256 (hex) of the bundle the patch applies to.
    pub base_bundle_sha256: String,
    /// `pending` (being computed), `ready` (served to devices running the
    /// base), `notWorthIt` (computed, not small enough to serve) or
    /// `failed` (given up on; see `error`).
    pub state: String,
    /// The patch's size in bytes, once computed.
    pub size: Option<u64>,
    pub error: Option<String>,
    /// How often computing it was started.
    pub attempts: u32,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&PatchRecord> for PatchBody {
    fn from(record: &PatchRecord) -> Self {
        let (state, size, error) = match &record.state {
            PatchState::Pending => ("pending", None, None),
            PatchState::Ready { size } => ("ready", Some(*size), None),
            PatchState::NotWorthIt { size } => ("notWorthIt", Some(*size), None),
            PatchState::Failed { error } => ("failed", None, Some(error.clone())),
        };
        Self {
            base_bundle_sha256: record.key.base_sha256.clone(),
            state: state.to_owned(),
            size,
            error,
            attempts: record.attempts,
            created_at: millis(record.created_at),
            updated_at: millis(record.updated_at),
        }
    }
}

impl From<&BundlePatches> for BundlePatchesBody {
    fn from(bundle: &BundlePatches) -> Self {
        Self {
            platform: bundle.platform.as_str().to_owned(),
            update_id: bundle.update_id.to_string(),
            bundle_sha256: bundle.target_sha256.clone(),
            full_size: bundle.full_size,
            patches: bundle.patches.iter().map(PatchBody::from).collect(),
        }
    }
}
