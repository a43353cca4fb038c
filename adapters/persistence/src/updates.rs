//! The update store: a publish's updates and their files, written in one
//! transaction under the project's reference lock, read back by indexed
//! queries on (project, branch, runtime version, platform, id).

use std::collections::{BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::audit::{Actor, ActorKind};
use domain::embedded::{EmbeddedBundle, EmbeddedUpdateId};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::patch::PatchKey;
use domain::ports::{
    HistoryQuery, KnownFile, ReferenceLock, StoreError, StoreResult, UpdateStore, UpdateStream,
};
use domain::release::{BranchName, RolloutCandidate, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, TransactionTrait,
};

use crate::entity::{update, update_asset};
use crate::errors::store_error;
use crate::in_list::IN_LIST_CHUNK;
use crate::patches::{forget_patches_to, insert_wanted};
use crate::projects::lock_project;
use crate::{SqlStore, embedded_bundles};

/// The most partial rollouts stacked on a branch that are considered.
const MAX_CANDIDATES: u64 = 200;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::backend(format!("invalid {what} {value:?} in the database"))
}

fn to_asset(row: update_asset::Model) -> UpdateAsset {
    UpdateAsset {
        path: row.path,
        sha256_hex: row.sha256_hex,
        hash: row.hash,
        key: row.key,
        content_type: row.content_type,
        file_extension: row.file_extension,
        size: u64::try_from(row.size).unwrap_or_default(),
        is_launch_asset: row.is_launch_asset,
    }
}

fn rollout(value: i32) -> StoreResult<RolloutPercentage> {
    RolloutPercentage::parse(i64::from(value))
        .map_err(|_| corrupt("rollout percentage", &value.to_string()))
}

/// The domain value of a row; `assets` are loaded separately when needed.
fn to_update(row: update::Model, assets: Vec<UpdateAsset>) -> StoreResult<Update> {
    let published_by = match (
        row.published_by_type.as_deref().and_then(ActorKind::parse),
        row.published_by_id,
    ) {
        (Some(kind), Some(id)) => Some(Actor {
            kind,
            id,
            name: row.published_by_name.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(Update {
        platform: Platform::parse(&row.platform)
            .ok_or_else(|| corrupt("platform", &row.platform))?,
        kind: UpdateKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
        branch: BranchName::parse(&row.branch).map_err(|_| corrupt("branch", &row.branch))?,
        rollout: rollout(row.rollout_percentage)?,
        id: UpdateId::from_trusted(row.id),
        publish_id: PublishId::from_trusted(row.publish_id),
        project_id: ProjectId::from_trusted(row.project_id),
        runtime_version: RuntimeVersion::from_trusted(row.runtime_version),
        message: row.message,
        published_by,
        republished_from: row.republished_from.map(PublishId::from_trusted),
        manifest_id: row.manifest_id,
        expo_config: row.expo_config,
        assets,
        created_at: row.created_at,
    })
}

/// Loads an update row's assets and assembles the domain value.
async fn with_assets(db: &impl ConnectionTrait, row: update::Model) -> StoreResult<Update> {
    let assets = update_asset::Entity::find()
        .filter(update_asset::Column::UpdateId.eq(row.id.clone()))
        .order_by_asc(update_asset::Column::Position)
        .all(db)
        .await
        .map_err(store_error)?;
    to_update(row, assets.into_iter().map(to_asset).collect())
}

fn asset_row(update_id: &str, position: usize, asset: &UpdateAsset) -> update_asset::ActiveModel {
    update_asset::ActiveModel {
        update_id: Set(update_id.to_owned()),
        position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
        is_launch_asset: Set(asset.is_launch_asset),
        path: Set(asset.path.clone()),
        sha256_hex: Set(asset.sha256_hex.clone()),
        hash: Set(asset.hash.clone()),
        key: Set(asset.key.clone()),
        content_type: Set(asset.content_type.clone()),
        file_extension: Set(asset.file_extension.clone()),
        size: Set(i64::try_from(asset.size).unwrap_or(i64::MAX)),
    }
}

fn update_row(item: &Update) -> update::ActiveModel {
    let actor = item.published_by.as_ref();
    update::ActiveModel {
        id: Set(item.id.to_string()),
        publish_id: Set(item.publish_id.to_string()),
        project_id: Set(item.project_id.to_string()),
        runtime_version: Set(item.runtime_version.to_string()),
        platform: Set(item.platform.as_str().to_owned()),
        kind: Set(item.kind.as_str().to_owned()),
        manifest_id: Set(item.manifest_id.clone()),
        expo_config: Set(item.expo_config.clone()),
        created_at: Set(item.created_at),
        branch: Set(item.branch.as_str().to_owned()),
        message: Set(item.message.clone()),
        rollout_percentage: Set(i32::from(item.rollout.value())),
        published_by_type: Set(actor.map(|a| a.kind.as_str().to_owned())),
        published_by_id: Set(actor.map(|a| a.id.clone())),
        published_by_name: Set(actor.map(|a| a.name.clone())),
        republished_from: Set(item.republished_from.as_ref().map(PublishId::to_string)),
    }
}

pub(crate) async fn insert_rows(txn: &DatabaseTransaction, updates: &[Update]) -> StoreResult<()> {
    for item in updates {
        update::Entity::insert(update_row(item))
            .exec_without_returning(txn)
            .await
            .map_err(store_error)?;
        if !item.assets.is_empty() {
            let rows = item
                .assets
                .iter()
                .enumerate()
                .map(|(position, asset)| asset_row(item.id.as_str(), position, asset));
            update_asset::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await
                .map_err(store_error)?;
        }
    }
    Ok(())
}

/// The updates of one (project, branch, runtime version, platform).
fn stream_of(
    project_id: &str,
    branch: &BranchName,
    runtime_version: &str,
    platform: Platform,
) -> Select<update::Entity> {
    update::Entity::find()
        .filter(update::Column::ProjectId.eq(project_id))
        .filter(update::Column::Branch.eq(branch.as_str()))
        .filter(update::Column::RuntimeVersion.eq(runtime_version))
        .filter(update::Column::Platform.eq(platform.as_str()))
}

/// Newest first: the newest partial rollouts and the newest complete update
/// beneath them (a device outside every partial rollout gets that one).
async fn candidates_in(
    db: &impl ConnectionTrait,
    project_id: &str,
    branch: &BranchName,
    runtime_version: &str,
    platform: Platform,
) -> StoreResult<Vec<RolloutCandidate>> {
    let newest_complete: Option<String> = stream_of(project_id, branch, runtime_version, platform)
        .select_only()
        .column(update::Column::Id)
        .filter(update::Column::RolloutPercentage.gte(100))
        .order_by_desc(update::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await
        .map_err(store_error)?;
    let mut query = stream_of(project_id, branch, runtime_version, platform)
        .select_only()
        .column(update::Column::Id)
        .column(update::Column::PublishId)
        .column(update::Column::RolloutPercentage)
        .order_by_desc(update::Column::Id)
        .limit(MAX_CANDIDATES);
    if let Some(floor) = newest_complete {
        query = query.filter(update::Column::Id.gte(floor));
    }
    let rows: Vec<(String, String, i32)> = query.into_tuple().all(db).await.map_err(store_error)?;
    rows.into_iter()
        .map(|(id, publish_id, percentage)| {
            Ok(RolloutCandidate {
                id: UpdateId::from_trusted(id),
                publish_id: PublishId::from_trusted(publish_id),
                rollout: rollout(percentage)?,
            })
        })
        .collect()
}

async fn delete_ids(db: &impl ConnectionTrait, ids: &[String]) -> StoreResult<()> {
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        update::Entity::delete_many()
            .filter(update::Column::Id.is_in(chunk.iter().cloned()))
            .exec(db)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

/// A transaction holding the project's row lock (see `lock_project`).
struct SqlReferenceLock {
    txn: DatabaseTransaction,
    project_id: String,
    /// For announcing the change once committed.
    store: SqlStore,
    /// Whether anything was inserted, so committing changes what is served.
    changed: bool,
}

#[async_trait]
impl ReferenceLock for SqlReferenceLock {
    async fn referenced_blobs(&mut self) -> StoreResult<HashSet<String>> {
        let of_project = update::Entity::find()
            .select_only()
            .column(update::Column::Id)
            .filter(update::Column::ProjectId.eq(self.project_id.clone()))
            .into_query();
        let hashes: Vec<String> = update_asset::Entity::find()
            .select_only()
            .column(update_asset::Column::Sha256Hex)
            .distinct()
            .filter(update_asset::Column::UpdateId.in_subquery(of_project))
            .into_tuple()
            .all(&self.txn)
            .await
            .map_err(store_error)?;
        let embedded = embedded_bundles::hashes(&self.txn, &self.project_id).await?;
        Ok(hashes.into_iter().chain(embedded).collect())
    }

    async fn insert_publish(&mut self, updates: &[Update]) -> StoreResult<()> {
        insert_rows(&self.txn, updates).await?;
        self.changed |= !updates.is_empty();
        Ok(())
    }

    async fn want_patches(&mut self, patches: &[PatchKey], now: DateTime<Utc>) -> StoreResult<()> {
        insert_wanted(&self.txn, patches, now).await
    }

    async fn forget_patches_to(&mut self, target_sha256s: &[String]) -> StoreResult<()> {
        forget_patches_to(&self.txn, &self.project_id, target_sha256s).await
    }

    async fn put_embedded_bundle(&mut self, bundle: &EmbeddedBundle) -> StoreResult<()> {
        embedded_bundles::put(&self.txn, bundle).await?;
        self.changed = true;
        Ok(())
    }

    async fn delete_embedded_bundle(&mut self, update_id: &EmbeddedUpdateId) -> StoreResult<bool> {
        let deleted = embedded_bundles::delete(&self.txn, &self.project_id, update_id).await?;
        self.changed |= deleted;
        Ok(deleted)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.store
            .commit_served_change(self.txn, self.changed)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl UpdateStore for SqlStore {
    async fn lock_references(&self, project_id: &ProjectId) -> StoreResult<Box<dyn ReferenceLock>> {
        let project_id = project_id.as_str();
        let txn = self.db.begin().await.map_err(store_error)?;
        if !lock_project(&txn, project_id).await.map_err(store_error)? {
            return Err(StoreError::ProjectGone);
        }
        Ok(Box::new(SqlReferenceLock {
            txn,
            project_id: project_id.to_owned(),
            store: self.clone(),
            changed: false,
        }))
    }

    async fn candidates(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
    ) -> StoreResult<Vec<RolloutCandidate>> {
        let project_id = project_id.as_str();
        let runtime_version = runtime_version.as_str();
        candidates_in(&self.db, project_id, branch, runtime_version, platform).await
    }

    async fn find(
        &self,
        project_id: &ProjectId,
        update_id: &UpdateId,
    ) -> StoreResult<Option<Update>> {
        let project_id = project_id.as_str();
        let update_id = update_id.as_str();
        let row = update::Entity::find_by_id(update_id.to_owned())
            .filter(update::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(store_error)?;
        match row {
            Some(row) => with_assets(&self.db, row).await.map(Some),
            None => Ok(None),
        }
    }

    async fn find_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<Vec<Update>> {
        let project_id = project_id.as_str();
        let publish_id = publish_id.as_str();
        let rows = update::Entity::find()
            .filter(update::Column::ProjectId.eq(project_id))
            .filter(update::Column::PublishId.eq(publish_id))
            .order_by_asc(update::Column::Platform)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        let mut updates = Vec::with_capacity(rows.len());
        for row in rows {
            updates.push(with_assets(&self.db, row).await?);
        }
        Ok(updates)
    }

    async fn history(
        &self,
        project_id: &ProjectId,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<Update>> {
        let project_id = project_id.as_str();
        let mut select = update::Entity::find().filter(update::Column::ProjectId.eq(project_id));
        if let Some(branch) = &query.branch {
            select = select.filter(update::Column::Branch.eq(branch.as_str()));
        }
        if let Some(runtime_version) = &query.runtime_version {
            select = select.filter(update::Column::RuntimeVersion.eq(runtime_version.as_str()));
        }
        if let Some(platform) = query.platform {
            select = select.filter(update::Column::Platform.eq(platform.as_str()));
        }
        if let Some(before) = &query.before_publish {
            select = select.filter(update::Column::PublishId.lt(before.as_str()));
        }
        let rows = select
            .order_by_desc(update::Column::PublishId)
            .order_by_asc(update::Column::Platform)
            .limit(query.limit_rows)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        rows.into_iter()
            .map(|row| to_update(row, Vec::new()))
            .collect()
    }

    async fn branch_heads(&self, project_id: &ProjectId) -> StoreResult<Vec<Update>> {
        let project_id = project_id.as_str();
        let newest: Vec<String> = update::Entity::find()
            .select_only()
            .expr(Func::max(Expr::col(update::Column::Id)))
            .filter(update::Column::ProjectId.eq(project_id))
            .group_by(update::Column::Branch)
            .group_by(update::Column::RuntimeVersion)
            .group_by(update::Column::Platform)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        let mut heads = Vec::with_capacity(newest.len());
        for chunk in newest.chunks(IN_LIST_CHUNK) {
            let rows = update::Entity::find()
                .filter(update::Column::Id.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await
                .map_err(store_error)?;
            for row in rows {
                heads.push(to_update(row, Vec::new())?);
            }
        }
        heads.sort_by(|a, b| {
            (a.branch.as_str(), b.id.as_str(), a.platform).cmp(&(
                b.branch.as_str(),
                a.id.as_str(),
                b.platform,
            ))
        });
        Ok(heads)
    }

    async fn set_rollout(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
        rollout: RolloutPercentage,
    ) -> StoreResult<bool> {
        let project_id = project_id.as_str();
        let publish_id = publish_id.as_str();
        let txn = self.db.begin().await.map_err(store_error)?;
        let result = update::Entity::update_many()
            .col_expr(
                update::Column::RolloutPercentage,
                Expr::value(i32::from(rollout.value())),
            )
            .filter(update::Column::ProjectId.eq(project_id))
            .filter(update::Column::PublishId.eq(publish_id))
            .exec(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, result.rows_affected > 0)
            .await
    }

    async fn delete_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<bool> {
        let project_id = project_id.as_str();
        let publish_id = publish_id.as_str();
        let txn = self.db.begin().await.map_err(store_error)?;
        let result = update::Entity::delete_many()
            .filter(update::Column::ProjectId.eq(project_id))
            .filter(update::Column::PublishId.eq(publish_id))
            .exec(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, result.rows_affected > 0)
            .await
    }

    async fn prune(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        keep: u64,
    ) -> StoreResult<Vec<UpdateId>> {
        let project_id = project_id.as_str();
        let runtime_version = runtime_version.as_str();
        let txn = self.db.begin().await.map_err(store_error)?;
        // Write first: on SQLite a transaction that reads and then writes
        // fails outright if another writer committed in between; taking the
        // project lock up front makes it wait its turn instead.
        if !lock_project(&txn, project_id).await.map_err(store_error)? {
            return Ok(Vec::new());
        }
        let servable: HashSet<String> =
            candidates_in(&txn, project_id, branch, runtime_version, platform)
                .await?
                .into_iter()
                .map(|candidate| candidate.id.into_string())
                .collect();
        let ids: Vec<String> = stream_of(project_id, branch, runtime_version, platform)
            .select_only()
            .column(update::Column::Id)
            .order_by_desc(update::Column::Id)
            .into_tuple()
            .all(&txn)
            .await
            .map_err(store_error)?;
        // Skipped here rather than with OFFSET, which SQLite accepts only
        // after a LIMIT.
        let doomed: Vec<String> = ids
            .into_iter()
            .skip(usize::try_from(keep).unwrap_or(usize::MAX))
            .filter(|id| !servable.contains(id))
            .collect();
        delete_ids(&txn, &doomed).await?;
        self.commit_served_change(txn, !doomed.is_empty()).await?;
        Ok(doomed.into_iter().map(UpdateId::from_trusted).collect())
    }

    async fn runtime_versions(
        &self,
        project_id: &ProjectId,
        platform: Platform,
    ) -> StoreResult<Vec<RuntimeVersion>> {
        let project_id = project_id.as_str();
        let rows: Vec<(String, String)> = update::Entity::find()
            .select_only()
            .column(update::Column::RuntimeVersion)
            .column(update::Column::Id)
            .filter(update::Column::ProjectId.eq(project_id))
            .filter(update::Column::Platform.eq(platform.as_str()))
            .order_by_desc(update::Column::Id)
            .limit(1000)
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        let mut seen = BTreeSet::new();
        Ok(rows
            .into_iter()
            .filter_map(|(version, _)| seen.insert(version.clone()).then_some(version))
            .map(RuntimeVersion::from_trusted)
            .collect())
    }

    async fn streams(&self) -> StoreResult<Vec<UpdateStream>> {
        let rows: Vec<(String, String, String, String)> = update::Entity::find()
            .select_only()
            .column(update::Column::ProjectId)
            .column(update::Column::Branch)
            .column(update::Column::RuntimeVersion)
            .column(update::Column::Platform)
            .distinct()
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        rows.into_iter()
            .map(|(project_id, branch, runtime_version, platform)| {
                Ok(UpdateStream {
                    branch: BranchName::parse(&branch).map_err(|_| corrupt("branch", &branch))?,
                    platform: Platform::parse(&platform)
                        .ok_or_else(|| corrupt("platform", &platform))?,
                    project_id: ProjectId::from_trusted(project_id),
                    runtime_version: RuntimeVersion::from_trusted(runtime_version),
                })
            })
            .collect()
    }

    async fn launch_bundle_of(
        &self,
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        manifest_id: &str,
    ) -> StoreResult<Option<String>> {
        let of_stream = update::Entity::find()
            .select_only()
            .column(update::Column::Id)
            .filter(update::Column::ProjectId.eq(project_id.as_str()))
            .filter(update::Column::RuntimeVersion.eq(runtime_version.as_str()))
            .filter(update::Column::Platform.eq(platform.as_str()))
            .filter(update::Column::ManifestId.eq(manifest_id))
            .into_query();
        update_asset::Entity::find()
            .select_only()
            .column(update_asset::Column::Sha256Hex)
            .filter(update_asset::Column::IsLaunchAsset.eq(true))
            .filter(update_asset::Column::UpdateId.in_subquery(of_stream))
            .into_tuple()
            .one(&self.db)
            .await
            .map_err(store_error)
    }

    async fn embedded_bundles(&self, project_id: &ProjectId) -> StoreResult<Vec<EmbeddedBundle>> {
        embedded_bundles::list(&self.db, project_id).await
    }

    async fn embedded_bundle_of(
        &self,
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        update_id: &str,
    ) -> StoreResult<Option<String>> {
        embedded_bundles::bundle_of(&self.db, project_id, runtime_version, platform, update_id)
            .await
    }

    async fn known_files(
        &self,
        project_id: &ProjectId,
        sha256_hexes: &[String],
    ) -> StoreResult<HashMap<String, KnownFile>> {
        let project_id = project_id.as_str();
        let mut known = HashMap::new();
        for chunk in sha256_hexes.chunks(IN_LIST_CHUNK) {
            let of_project = update::Entity::find()
                .select_only()
                .column(update::Column::Id)
                .filter(update::Column::ProjectId.eq(project_id))
                .into_query();
            let rows: Vec<(String, String, i64)> = update_asset::Entity::find()
                .select_only()
                .column(update_asset::Column::Sha256Hex)
                .column(update_asset::Column::Key)
                .column(update_asset::Column::Size)
                .distinct()
                .filter(update_asset::Column::Sha256Hex.is_in(chunk.iter().cloned()))
                .filter(update_asset::Column::UpdateId.in_subquery(of_project))
                .into_tuple()
                .all(&self.db)
                .await
                .map_err(store_error)?;
            for (sha256_hex, md5_hex, size) in rows {
                let size = u64::try_from(size).unwrap_or_default();
                known.insert(sha256_hex, KnownFile { md5_hex, size });
            }
        }
        Ok(known)
    }
}
