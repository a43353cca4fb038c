//! The insight store: each instance adds to its own rows; readers merge
//! every instance's rows.

use async_trait::async_trait;
use chrono::NaiveDate;
use domain::insights::{DeviceSketch, InsightCounts};
use domain::ports::{InsightStore, StoreError, StoreResult};
use domain::update::Platform;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use crate::SqlStore;
use crate::entity::update_insight;
use crate::errors::store_error;
use crate::projects::existing_projects;

const DAY_FORMAT: &str = "%Y-%m-%d";

fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_domain(row: update_insight::Model) -> StoreResult<InsightCounts> {
    let corrupt = |what: &str| StoreError::backend(format!("update_insights: bad {what}"));
    Ok(InsightCounts {
        platform: Platform::parse(&row.platform).ok_or_else(|| corrupt("platform"))?,
        day: NaiveDate::parse_from_str(&row.day, DAY_FORMAT).map_err(|_| corrupt("day"))?,
        project_id: row.project_id,
        publish_id: row.publish_id,
        checks: u64::try_from(row.checks).unwrap_or(0),
        launch_downloads: u64::try_from(row.launch_downloads).unwrap_or(0),
        patch_downloads: u64::try_from(row.patch_downloads).unwrap_or(0),
        bytes_sent: u64::try_from(row.bytes_sent).unwrap_or(0),
        bytes_saved: u64::try_from(row.bytes_saved).unwrap_or(0),
        failure_reports: u64::try_from(row.failure_reports).unwrap_or(0),
        devices: DeviceSketch::from_bytes(&row.devices),
        failed_devices: DeviceSketch::from_bytes(&row.failed_devices),
    })
}

#[async_trait]
impl InsightStore for SqlStore {
    async fn add(&self, instance_id: &str, counts: &[InsightCounts]) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        // Counts of projects deleted meanwhile go with them; checked first,
        // because a failed insert would abort the whole batch.
        let existing =
            existing_projects(&txn, counts.iter().map(|c| c.project_id.as_str())).await?;
        for counts in counts.iter().filter(|c| existing.contains(&c.project_id)) {
            let key = (
                instance_id.to_owned(),
                counts.publish_id.clone(),
                counts.platform.as_str().to_owned(),
                counts.day.format(DAY_FORMAT).to_string(),
            );
            let existing = update_insight::Entity::find_by_id(key.clone())
                .one(&txn)
                .await
                .map_err(store_error)?;
            let mut total = counts.clone();
            let exists = existing.is_some();
            if let Some(row) = existing {
                total.absorb(&to_domain(row)?);
            }
            let row = update_insight::ActiveModel {
                instance_id: Set(key.0),
                publish_id: Set(key.1),
                platform: Set(key.2),
                day: Set(key.3),
                project_id: Set(total.project_id.clone()),
                checks: Set(count(total.checks)),
                launch_downloads: Set(count(total.launch_downloads)),
                patch_downloads: Set(count(total.patch_downloads)),
                bytes_sent: Set(count(total.bytes_sent)),
                bytes_saved: Set(count(total.bytes_saved)),
                failure_reports: Set(count(total.failure_reports)),
                devices: Set(total.devices.to_bytes()),
                failed_devices: Set(total.failed_devices.to_bytes()),
            };
            let written = if exists {
                update_insight::Entity::update(row)
                    .exec(&txn)
                    .await
                    .map(|_| ())
            } else {
                update_insight::Entity::insert(row)
                    .exec_without_returning(&txn)
                    .await
                    .map(|_| ())
            };
            written.map_err(store_error)?;
        }
        txn.commit().await.map_err(store_error)
    }

    async fn for_publish(
        &self,
        project_id: &str,
        publish_id: &str,
    ) -> StoreResult<Vec<InsightCounts>> {
        update_insight::Entity::find()
            .filter(update_insight::Column::ProjectId.eq(project_id))
            .filter(update_insight::Column::PublishId.eq(publish_id))
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }
}
