//! The update store: a publish's updates and their files, written in one
//! transaction, read back by the indexed "latest" query.

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::ports::{StoreError, StoreResult, UpdateStore};
use domain::update::{Platform, Update, UpdateAsset, UpdateKind};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::{update, update_asset};
use crate::errors::store_error;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("unknown {what} {value:?} in the database"))
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

/// Loads an update row's assets and assembles the domain value.
async fn assemble(db: &DatabaseConnection, row: update::Model) -> StoreResult<Update> {
    let assets = update_asset::Entity::find()
        .filter(update_asset::Column::UpdateId.eq(row.id.clone()))
        .order_by_asc(update_asset::Column::Position)
        .all(db)
        .await
        .map_err(store_error)?;
    Ok(Update {
        platform: Platform::parse(&row.platform)
            .ok_or_else(|| corrupt("platform", &row.platform))?,
        kind: UpdateKind::parse(&row.kind).ok_or_else(|| corrupt("kind", &row.kind))?,
        id: row.id,
        publish_id: row.publish_id,
        project_id: row.project_id,
        runtime_version: row.runtime_version,
        manifest_id: row.manifest_id,
        expo_config: row.expo_config,
        assets: assets.into_iter().map(to_asset).collect(),
        created_at: row.created_at,
    })
}

async fn assemble_found(
    db: &DatabaseConnection,
    row: Option<update::Model>,
) -> StoreResult<Option<Update>> {
    match row {
        Some(row) => assemble(db, row).await.map(Some),
        None => Ok(None),
    }
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

#[async_trait]
impl UpdateStore for SqlStore {
    async fn insert_publish(&self, updates: &[Update]) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        for item in updates {
            let row = update::ActiveModel {
                id: Set(item.id.clone()),
                publish_id: Set(item.publish_id.clone()),
                project_id: Set(item.project_id.clone()),
                runtime_version: Set(item.runtime_version.clone()),
                platform: Set(item.platform.as_str().to_owned()),
                kind: Set(item.kind.as_str().to_owned()),
                manifest_id: Set(item.manifest_id.clone()),
                expo_config: Set(item.expo_config.clone()),
                created_at: Set(item.created_at),
            };
            update::Entity::insert(row)
                .exec_without_returning(&txn)
                .await
                .map_err(store_error)?;
            if !item.assets.is_empty() {
                let rows = item
                    .assets
                    .iter()
                    .enumerate()
                    .map(|(position, asset)| asset_row(&item.id, position, asset));
                update_asset::Entity::insert_many(rows)
                    .exec_without_returning(&txn)
                    .await
                    .map_err(store_error)?;
            }
        }
        txn.commit().await.map_err(store_error)
    }

    async fn latest(
        &self,
        project_id: &str,
        runtime_version: &str,
        platform: Platform,
    ) -> StoreResult<Option<Update>> {
        let row = update::Entity::find()
            .filter(update::Column::ProjectId.eq(project_id))
            .filter(update::Column::RuntimeVersion.eq(runtime_version))
            .filter(update::Column::Platform.eq(platform.as_str()))
            .order_by_desc(update::Column::Id)
            .one(&self.db)
            .await
            .map_err(store_error)?;
        assemble_found(&self.db, row).await
    }

    async fn find(&self, project_id: &str, update_id: &str) -> StoreResult<Option<Update>> {
        let row = update::Entity::find_by_id(update_id.to_owned())
            .filter(update::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(store_error)?;
        assemble_found(&self.db, row).await
    }

    async fn runtime_versions(
        &self,
        project_id: &str,
        platform: Platform,
    ) -> StoreResult<Vec<String>> {
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
            .collect())
    }
}
