//! The signing-key store. Every change alters how answers are signed, so it
//! is announced like any other change to what devices are served.

use async_trait::async_trait;
use domain::ports::{SigningKeyStore, StoreError, StoreResult};
use domain::signing_key::{SigningKey, SigningKeyId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::signing_key;
use crate::errors::{backend, store_error};

fn to_domain(row: signing_key::Model) -> StoreResult<SigningKey> {
    Ok(SigningKey {
        key_id: SigningKeyId::parse(&row.key_id).map_err(|_| {
            StoreError::backend(format!("stored key id {:?} is invalid", row.key_id))
        })?,
        id: row.id,
        project_id: row.project_id,
        certificate_pem: row.certificate,
        sealed_private_key: row.sealed_private_key,
        created_at: row.created_at,
        created_by: row.created_by,
    })
}

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn insert(&self, key: &SigningKey) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let row = signing_key::ActiveModel {
            id: Set(key.id.clone()),
            project_id: Set(key.project_id.clone()),
            key_id: Set(key.key_id.as_str().to_owned()),
            certificate: Set(key.certificate_pem.clone()),
            sealed_private_key: Set(key.sealed_private_key.clone()),
            created_at: Set(key.created_at),
            created_by: Set(key.created_by.clone()),
        };
        signing_key::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, true).await.map(|_| ())
    }

    async fn list(&self, project_id: &str) -> StoreResult<Vec<SigningKey>> {
        signing_key::Entity::find()
            .filter(signing_key::Column::ProjectId.eq(project_id))
            .order_by_desc(signing_key::Column::CreatedAt)
            .order_by_desc(signing_key::Column::Id)
            .all(&self.db)
            .await
            .map_err(backend)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn delete(&self, project_id: &str, key_id: &SigningKeyId) -> StoreResult<bool> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let result = signing_key::Entity::delete_many()
            .filter(signing_key::Column::ProjectId.eq(project_id))
            .filter(signing_key::Column::KeyId.eq(key_id.as_str()))
            .exec(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, result.rows_affected > 0)
            .await
    }
}
