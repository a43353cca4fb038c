//! The import store: rows carried over from the Go server, each written in
//! one transaction with its entries in the import ledger (`legacy_imports`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::Utc;
use domain::api_key::ApiKey;
use domain::go_server::ports::{ImportLock, ImportStore, LoginLookup};
use domain::member::{Membership, ensure_an_owner_remains};
use domain::ports::{StoreError, StoreResult};
use domain::project::Project;
use domain::update::Update;
use domain::user::{User, login_key};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::{api_key, legacy_import, member, project, update, user};
use crate::errors::store_error;
use crate::members::{locked_membership, to_membership};
use crate::projects::{lock_project, membership_row};
use crate::updates::insert_rows;

/// The lookup key of a name another account already has in another case:
/// with a space, which no username or email can contain, so no login ever
/// folds to it and the account is found by its exact spelling instead.
fn exact_only_key(name: &str, user_id: &str) -> String {
    format!("{} {user_id}", login_key(name))
}

async fn record(txn: &DatabaseTransaction, sources: &[String], target_id: &str) -> StoreResult<()> {
    if sources.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = sources.iter().map(|source| legacy_import::ActiveModel {
        source: Set(source.clone()),
        target_id: Set(target_id.to_owned()),
        imported_at: Set(now),
    });
    legacy_import::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await
        .map_err(store_error)?;
    Ok(())
}

async fn forget(txn: &DatabaseTransaction, sources: &[String]) -> StoreResult<()> {
    legacy_import::Entity::delete_many()
        .filter(legacy_import::Column::Source.is_in(sources.iter().cloned()))
        .exec(txn)
        .await
        .map_err(store_error)?;
    Ok(())
}

async fn column_set<E, C>(db: &impl ConnectionTrait, column: C) -> StoreResult<HashSet<String>>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let values: Vec<String> = E::find()
        .select_only()
        .column(column)
        .into_tuple()
        .all(db)
        .await
        .map_err(store_error)?;
    Ok(values.into_iter().collect())
}

/// The project's reference lock, held for one update directory's import.
struct SqlImportLock {
    txn: DatabaseTransaction,
    store: SqlStore,
}

#[async_trait]
impl ImportLock for SqlImportLock {
    async fn insert_updates(&mut self, updates: &[Update], sources: &[String]) -> StoreResult<()> {
        insert_rows(&self.txn, updates).await?;
        for (update, source) in updates.iter().zip(sources) {
            record(&self.txn, std::slice::from_ref(source), update.id.as_str()).await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.store
            .commit_served_change(self.txn, true)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl ImportStore for SqlStore {
    async fn ledger(&self) -> StoreResult<HashMap<String, String>> {
        let rows = legacy_import::Entity::find()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.source, row.target_id))
            .collect())
    }

    async fn taken_username_keys(&self) -> StoreResult<HashSet<String>> {
        column_set::<user::Entity, _>(&self.db, user::Column::UsernameKey).await
    }

    async fn taken_email_keys(&self) -> StoreResult<HashSet<String>> {
        column_set::<user::Entity, _>(&self.db, user::Column::EmailKey).await
    }

    async fn taken_slugs(&self) -> StoreResult<HashSet<String>> {
        column_set::<project::Entity, _>(&self.db, project::Column::Slug).await
    }

    async fn taken_key_hashes(&self) -> StoreResult<HashSet<String>> {
        column_set::<api_key::Entity, _>(&self.db, api_key::Column::KeyHash).await
    }

    async fn memberships(&self) -> StoreResult<HashMap<(String, String), Membership>> {
        let rows = member::Entity::find()
            .all(&self.db)
            .await
            .map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                let membership = to_membership(row)?;
                Ok((
                    (
                        membership.project_id.to_string(),
                        membership.user_id.to_string(),
                    ),
                    membership,
                ))
            })
            .collect()
    }

    async fn insert_user(
        &self,
        new_user: &User,
        lookup: LoginLookup,
        source: &str,
    ) -> StoreResult<()> {
        let key = |name: &str, folded: bool| match folded {
            true => login_key(name),
            false => exact_only_key(name, &new_user.id),
        };
        let row = user::ActiveModel {
            id: Set(new_user.id.to_string()),
            username: Set(new_user.username.clone()),
            username_key: Set(key(&new_user.username, lookup.username_folded)),
            email: Set(new_user.email.clone()),
            email_key: Set(key(&new_user.email, lookup.email_folded)),
            password_hash: Set(new_user.password_hash.clone()),
            created_at: Set(new_user.created_at),
        };
        let txn = self.db.begin().await.map_err(store_error)?;
        user::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        record(&txn, &[source.to_owned()], &new_user.id).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn insert_project(&self, new_project: &Project, source: &str) -> StoreResult<()> {
        let row = project::ActiveModel {
            id: Set(new_project.id.to_string()),
            name: Set(new_project.name.clone()),
            slug: Set(new_project.slug.clone()),
            created_at: Set(new_project.created_at),
            patch_from_embedded: Set(new_project.patch_from_embedded),
        };
        let txn = self.db.begin().await.map_err(store_error)?;
        project::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        record(&txn, &[source.to_owned()], &new_project.id).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn insert_membership(
        &self,
        membership: &Membership,
        sources: &[String],
    ) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        if !lock_project(&txn, &membership.project_id)
            .await
            .map_err(store_error)?
        {
            return Err(StoreError::ProjectGone);
        }
        member::Entity::insert(membership_row(membership))
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        record(&txn, sources, &membership.id).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn insert_key(&self, key: &ApiKey, source: &str) -> StoreResult<()> {
        let row = api_key::ActiveModel {
            id: Set(key.id.to_string()),
            project_id: Set(key.project_id.to_string()),
            created_by: Set(key.created_by.as_ref().map(ToString::to_string)),
            name: Set(key.name.clone()),
            key_hash: Set(key.key_hash.clone()),
            key_prefix: Set(key.key_prefix.clone()),
            created_at: Set(key.created_at),
            last_used_at: Set(None),
        };
        let txn = self.db.begin().await.map_err(store_error)?;
        api_key::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        record(&txn, &[source.to_owned()], &key.id).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn update_membership(
        &self,
        membership: &Membership,
        sources: &[String],
    ) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let Some((row, owners)) =
            locked_membership(&txn, &membership.project_id, &membership.user_id).await?
        else {
            return Err(StoreError::ProjectGone);
        };
        let current = to_membership(row)?;
        ensure_an_owner_remains(current.role, Some(membership.role), owners)?;
        member::Entity::update_many()
            .col_expr(
                member::Column::Role,
                sea_orm::sea_query::Expr::value(membership.role.as_str()),
            )
            .filter(member::Column::Id.eq(current.id.clone()))
            .exec(&txn)
            .await
            .map_err(store_error)?;
        record(&txn, sources, &current.id).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn lock_for_import(&self, project_id: &str) -> StoreResult<Box<dyn ImportLock>> {
        let txn = self.db.begin().await.map_err(store_error)?;
        if !lock_project(&txn, project_id).await.map_err(store_error)? {
            return Err(StoreError::ProjectGone);
        }
        Ok(Box::new(SqlImportLock {
            txn,
            store: self.clone(),
        }))
    }

    async fn remove_key(&self, key_id: &str, sources: &[String]) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        api_key::Entity::delete_by_id(key_id.to_owned())
            .exec(&txn)
            .await
            .map_err(store_error)?;
        forget(&txn, sources).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn remove_membership(&self, membership_id: &str, sources: &[String]) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let row = member::Entity::find_by_id(membership_id.to_owned())
            .one(&txn)
            .await
            .map_err(store_error)?;
        if let Some(row) = row
            && let Some((locked, owners)) =
                locked_membership(&txn, &row.project_id, &row.user_id).await?
        {
            let membership = to_membership(locked)?;
            ensure_an_owner_remains(membership.role, None, owners)?;
            member::Entity::delete_by_id(membership.id)
                .exec(&txn)
                .await
                .map_err(store_error)?;
        }
        forget(&txn, sources).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn remove_update(&self, update_id: &str, sources: &[String]) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let deleted = update::Entity::delete_by_id(update_id.to_owned())
            .exec(&txn)
            .await
            .map_err(store_error)?;
        forget(&txn, sources).await?;
        self.commit_served_change(txn, deleted.rows_affected > 0)
            .await
            .map(|_| ())
    }
}
