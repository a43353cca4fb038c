//! The API-key store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::api_key::{ApiKey, KeyName, NewApiKey, first_free_default_name};
use domain::ports::{ApiKeyStore, StoreError, StoreResult};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::SqlStore;
use crate::entity::api_key;
use crate::errors::store_error;
use crate::projects::lock_project;

impl From<api_key::Model> for ApiKey {
    fn from(row: api_key::Model) -> Self {
        ApiKey {
            id: domain::id::ApiKeyId::from_trusted(row.id),
            project_id: domain::id::ProjectId::from_trusted(row.project_id),
            created_by: row.created_by.map(domain::id::UserId::from_trusted),
            name: row.name,
            key_hash: row.key_hash,
            key_prefix: row.key_prefix,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert(&self, new_key: &NewApiKey) -> StoreResult<ApiKey> {
        // The project lock makes "pick the first free default name, insert"
        // atomic against another key being created at the same moment.
        let txn = self.db.begin().await.map_err(store_error)?;
        if !lock_project(&txn, &new_key.project_id)
            .await
            .map_err(store_error)?
        {
            return Err(StoreError::ProjectGone);
        }
        let name = match &new_key.name {
            Some(name) => name.as_str().to_owned(),
            None => {
                let taken: Vec<String> = api_key::Entity::find()
                    .select_only()
                    .column(api_key::Column::Name)
                    .filter(api_key::Column::ProjectId.eq(new_key.project_id.as_str()))
                    .into_tuple()
                    .all(&txn)
                    .await
                    .map_err(store_error)?;
                first_free_default_name(taken.iter().map(String::as_str))
            }
        };
        let row = api_key::Model {
            id: new_key.id.to_string(),
            project_id: new_key.project_id.to_string(),
            created_by: Some(new_key.created_by.to_string()),
            name,
            key_hash: new_key.key_hash.clone(),
            key_prefix: new_key.key_prefix.clone(),
            created_at: new_key.created_at,
            last_used_at: None,
        };
        let active = api_key::ActiveModel {
            id: Set(row.id.clone()),
            project_id: Set(row.project_id.clone()),
            created_by: Set(row.created_by.clone()),
            name: Set(row.name.clone()),
            key_hash: Set(row.key_hash.clone()),
            key_prefix: Set(row.key_prefix.clone()),
            created_at: Set(row.created_at),
            last_used_at: Set(None),
        };
        api_key::Entity::insert(active)
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        txn.commit().await.map_err(store_error)?;
        Ok(row.into())
    }

    async fn list(&self, project_id: &str) -> StoreResult<Vec<ApiKey>> {
        let rows = api_key::Entity::find()
            .filter(api_key::Column::ProjectId.eq(project_id))
            .order_by_desc(api_key::Column::CreatedAt)
            .order_by_desc(api_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn rename(&self, project_id: &str, key_id: &str, name: &KeyName) -> StoreResult<bool> {
        let result = api_key::Entity::update_many()
            .col_expr(api_key::Column::Name, Expr::value(name.as_str()))
            .filter(api_key::Column::Id.eq(key_id))
            .filter(api_key::Column::ProjectId.eq(project_id))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected > 0)
    }

    async fn delete(&self, project_id: &str, key_id: &str) -> StoreResult<bool> {
        let result = api_key::Entity::delete_many()
            .filter(api_key::Column::Id.eq(key_id))
            .filter(api_key::Column::ProjectId.eq(project_id))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(result.rows_affected > 0)
    }

    async fn find_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>> {
        let row = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(key_hash))
            .one(&self.db)
            .await
            .map_err(store_error)?;
        Ok(row.map(ApiKey::from))
    }

    async fn record_use(&self, key_id: &str, at: DateTime<Utc>) -> StoreResult<()> {
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(Some(at)))
            .filter(api_key::Column::Id.eq(key_id))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
