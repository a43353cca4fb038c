//! The channel store: explicit channel → branch mappings. Each write is one
//! statement, so a repoint is atomic: a device is served either the old
//! mapping or the new one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{ChannelStore, StoreError, StoreResult};
use domain::release::{BranchName, BranchSplit, Channel, ChannelName, RolloutPercentage};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::channel;
use crate::errors::store_error;

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("invalid {what} of a channel in the database"))
}

fn to_channel(row: channel::Model) -> StoreResult<Channel> {
    let split = match (row.rollout_branch, row.rollout_percentage) {
        (Some(branch), Some(percentage)) => Some(BranchSplit {
            branch: BranchName::parse(&branch).map_err(|_| corrupt("rollout branch"))?,
            percentage: RolloutPercentage::parse(i64::from(percentage))
                .map_err(|_| corrupt("rollout percentage"))?,
        }),
        _ => None,
    };
    Ok(Channel {
        name: ChannelName::parse(&row.name).map_err(|_| corrupt("name"))?,
        branch: BranchName::parse(&row.branch).map_err(|_| corrupt("branch"))?,
        project_id: row.project_id,
        split,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn to_row(channel: &Channel) -> channel::ActiveModel {
    let split = channel.split.as_ref();
    channel::ActiveModel {
        project_id: Set(channel.project_id.clone()),
        name: Set(channel.name.as_str().to_owned()),
        branch: Set(channel.branch.as_str().to_owned()),
        rollout_branch: Set(split.map(|s| s.branch.as_str().to_owned())),
        rollout_percentage: Set(split.map(|s| i32::from(s.percentage.value()))),
        created_at: Set(channel.created_at),
        updated_at: Set(channel.updated_at),
    }
}

#[async_trait]
impl ChannelStore for SqlStore {
    async fn list(&self, project_id: &str) -> StoreResult<Vec<Channel>> {
        channel::Entity::find()
            .filter(channel::Column::ProjectId.eq(project_id))
            .order_by_asc(channel::Column::Name)
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(to_channel)
            .collect()
    }

    async fn find(&self, project_id: &str, name: &ChannelName) -> StoreResult<Option<Channel>> {
        channel::Entity::find_by_id((project_id.to_owned(), name.as_str().to_owned()))
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(to_channel)
            .transpose()
    }

    async fn insert(&self, channel: &Channel) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        // A taken name is `Conflict(Channel)`, as `store_error` names it.
        channel::Entity::insert(to_row(channel))
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, true).await.map(|_| ())
    }

    async fn save_if_unchanged(
        &self,
        channel: &Channel,
        expected: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let Some(expected) = expected else {
            return match self.insert(channel).await {
                Ok(()) => Ok(true),
                Err(StoreError::Conflict(_)) => Ok(false),
                Err(error) => Err(error),
            };
        };
        let split = channel.split.as_ref();
        let txn = self.db.begin().await.map_err(store_error)?;
        let result = channel::Entity::update_many()
            .col_expr(
                channel::Column::Branch,
                Expr::value(channel.branch.as_str()),
            )
            .col_expr(
                channel::Column::RolloutBranch,
                Expr::value(split.map(|s| s.branch.as_str().to_owned())),
            )
            .col_expr(
                channel::Column::RolloutPercentage,
                Expr::value(split.map(|s| i32::from(s.percentage.value()))),
            )
            .col_expr(channel::Column::UpdatedAt, Expr::value(channel.updated_at))
            .filter(channel::Column::ProjectId.eq(channel.project_id.as_str()))
            .filter(channel::Column::Name.eq(channel.name.as_str()))
            .filter(channel::Column::UpdatedAt.eq(expected))
            .exec(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, result.rows_affected > 0)
            .await
    }

    async fn delete(&self, project_id: &str, name: &ChannelName) -> StoreResult<bool> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let result =
            channel::Entity::delete_by_id((project_id.to_owned(), name.as_str().to_owned()))
                .exec(&txn)
                .await
                .map_err(store_error)?;
        self.commit_served_change(txn, result.rows_affected > 0)
            .await
    }
}
