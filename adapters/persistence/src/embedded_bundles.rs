//! The embedded bundles of a project: read by publishes (as patch bases)
//! and by serving (a device's running update may be one), written under
//! the project's reference lock so storage collection sees them.

use domain::embedded::{EmbeddedBundle, EmbeddedUpdateId};
use domain::id::ProjectId;
use domain::ports::{StoreError, StoreResult};
use domain::update::{Platform, RuntimeVersion};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::embedded_bundle;
use crate::errors::store_error;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::backend(format!("invalid {what} {value:?} of an embedded bundle"))
}

fn to_bundle(row: embedded_bundle::Model) -> StoreResult<EmbeddedBundle> {
    Ok(EmbeddedBundle {
        platform: Platform::parse(&row.platform)
            .ok_or_else(|| corrupt("platform", &row.platform))?,
        size: u64::try_from(row.size).map_err(|_| corrupt("size", &row.size.to_string()))?,
        project_id: ProjectId::from_trusted(row.project_id),
        update_id: EmbeddedUpdateId::from_trusted(row.update_id),
        runtime_version: RuntimeVersion::from_trusted(row.runtime_version),
        sha256_hex: row.sha256_hex,
        uploaded_at: row.uploaded_at,
        uploaded_by: row.uploaded_by,
    })
}

/// Newest upload first.
pub(crate) async fn list(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
) -> StoreResult<Vec<EmbeddedBundle>> {
    embedded_bundle::Entity::find()
        .filter(embedded_bundle::Column::ProjectId.eq(project_id.as_str()))
        .order_by_desc(embedded_bundle::Column::UploadedAt)
        .order_by_desc(embedded_bundle::Column::UpdateId)
        .all(db)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(to_bundle)
        .collect()
}

pub(crate) async fn bundle_of(
    db: &impl ConnectionTrait,
    project_id: &ProjectId,
    runtime_version: &RuntimeVersion,
    platform: Platform,
    update_id: &str,
) -> StoreResult<Option<String>> {
    embedded_bundle::Entity::find()
        .select_only()
        .column(embedded_bundle::Column::Sha256Hex)
        .filter(embedded_bundle::Column::ProjectId.eq(project_id.as_str()))
        .filter(embedded_bundle::Column::UpdateId.eq(update_id))
        .filter(embedded_bundle::Column::RuntimeVersion.eq(runtime_version.as_str()))
        .filter(embedded_bundle::Column::Platform.eq(platform.as_str()))
        .into_tuple()
        .one(db)
        .await
        .map_err(store_error)
}

/// The SHA-256 (hex) of every embedded bundle of the project.
pub(crate) async fn hashes(
    db: &impl ConnectionTrait,
    project_id: &str,
) -> StoreResult<Vec<String>> {
    embedded_bundle::Entity::find()
        .select_only()
        .column(embedded_bundle::Column::Sha256Hex)
        .distinct()
        .filter(embedded_bundle::Column::ProjectId.eq(project_id))
        .into_tuple()
        .all(db)
        .await
        .map_err(store_error)
}

/// Inserts or, for an update id already uploaded, replaces.
pub(crate) async fn put(db: &impl ConnectionTrait, bundle: &EmbeddedBundle) -> StoreResult<()> {
    let size = i64::try_from(bundle.size)
        .map_err(|_| StoreError::backend("an embedded bundle too large to record"))?;
    let row = embedded_bundle::ActiveModel {
        project_id: Set(bundle.project_id.to_string()),
        update_id: Set(bundle.update_id.to_string()),
        runtime_version: Set(bundle.runtime_version.as_str().to_owned()),
        platform: Set(bundle.platform.as_str().to_owned()),
        sha256_hex: Set(bundle.sha256_hex.clone()),
        size: Set(size),
        uploaded_at: Set(bundle.uploaded_at),
        uploaded_by: Set(bundle.uploaded_by.clone()),
    };
    embedded_bundle::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                embedded_bundle::Column::ProjectId,
                embedded_bundle::Column::UpdateId,
            ])
            .update_columns([
                embedded_bundle::Column::RuntimeVersion,
                embedded_bundle::Column::Platform,
                embedded_bundle::Column::Sha256Hex,
                embedded_bundle::Column::Size,
                embedded_bundle::Column::UploadedAt,
                embedded_bundle::Column::UploadedBy,
            ])
            .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map_err(store_error)?;
    Ok(())
}

pub(crate) async fn delete(
    db: &impl ConnectionTrait,
    project_id: &str,
    update_id: &EmbeddedUpdateId,
) -> StoreResult<bool> {
    let result = embedded_bundle::Entity::delete_many()
        .filter(embedded_bundle::Column::ProjectId.eq(project_id))
        .filter(embedded_bundle::Column::UpdateId.eq(update_id.as_str()))
        .exec(db)
        .await
        .map_err(store_error)?;
    Ok(result.rows_affected > 0)
}
