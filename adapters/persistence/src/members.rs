//! The membership store. Role changes and removals run in a transaction that
//! holds the project's row lock, so the last-owner rule holds under
//! concurrency.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::member::{MemberProfile, Membership, Role, ensure_an_owner_remains};
use domain::ports::{MemberStore, StoreError, StoreResult};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use crate::SqlStore;
use crate::entity::{member, user};
use crate::errors::store_error;
use crate::projects::{lock_project, membership_row};

pub(crate) fn to_membership(row: member::Model) -> StoreResult<Membership> {
    let role = Role::parse(&row.role)
        .map_err(|_| StoreError::backend(format!("unknown role {:?} in the database", row.role)))?;
    Ok(Membership {
        id: row.id,
        project_id: domain::id::ProjectId::from_trusted(row.project_id),
        user_id: domain::id::UserId::from_trusted(row.user_id),
        role,
        created_at: row.created_at,
    })
}

/// The locked membership row of a user, with the project's current owner count.
pub(crate) async fn locked_membership(
    txn: &DatabaseTransaction,
    project_id: &str,
    user_id: &str,
) -> StoreResult<Option<(member::Model, u64)>> {
    if !lock_project(txn, project_id).await.map_err(store_error)? {
        return Ok(None);
    }
    let Some(row) = member::Entity::find()
        .filter(member::Column::ProjectId.eq(project_id))
        .filter(member::Column::UserId.eq(user_id))
        .one(txn)
        .await
        .map_err(store_error)?
    else {
        return Ok(None);
    };
    let owners = member::Entity::find()
        .filter(member::Column::ProjectId.eq(project_id))
        .filter(member::Column::Role.eq(Role::Owner.as_str()))
        .count(txn)
        .await
        .map_err(store_error)?;
    Ok(Some((row, owners)))
}

#[async_trait]
impl MemberStore for SqlStore {
    async fn find(&self, project_id: &str, user_id: &str) -> StoreResult<Option<Membership>> {
        member::Entity::find()
            .filter(member::Column::ProjectId.eq(project_id))
            .filter(member::Column::UserId.eq(user_id))
            .one(&self.db)
            .await
            .map_err(store_error)?
            .map(to_membership)
            .transpose()
    }

    async fn insert(&self, membership: &Membership) -> StoreResult<()> {
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
        txn.commit().await.map_err(store_error)
    }

    async fn list(&self, project_id: &str) -> StoreResult<Vec<MemberProfile>> {
        let rows = member::Entity::find()
            .filter(member::Column::ProjectId.eq(project_id))
            .order_by_asc(member::Column::CreatedAt)
            .order_by_asc(member::Column::Id)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        let user_ids: Vec<String> = rows.iter().map(|row| row.user_id.clone()).collect();
        let users: HashMap<String, user::Model> = user::Entity::find()
            .filter(user::Column::Id.is_in(user_ids))
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|row| (row.id.clone(), row))
            .collect();
        rows.into_iter()
            .filter_map(|row| {
                let profile = users.get(&row.user_id)?;
                let (username, email) = (profile.username.clone(), profile.email.clone());
                Some(to_membership(row).map(|membership| MemberProfile {
                    membership,
                    username,
                    email,
                }))
            })
            .collect()
    }

    async fn change_role(
        &self,
        project_id: &str,
        user_id: &str,
        role: Role,
    ) -> StoreResult<Option<Membership>> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let Some((row, owners)) = locked_membership(&txn, project_id, user_id).await? else {
            return Ok(None);
        };
        let mut membership = to_membership(row)?;
        ensure_an_owner_remains(membership.role, Some(role), owners)?;
        member::Entity::update_many()
            .col_expr(member::Column::Role, Expr::value(role.as_str()))
            .filter(member::Column::Id.eq(membership.id.clone()))
            .exec(&txn)
            .await
            .map_err(store_error)?;
        txn.commit().await.map_err(store_error)?;
        membership.role = role;
        Ok(Some(membership))
    }

    async fn remove(&self, project_id: &str, user_id: &str) -> StoreResult<bool> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let Some((row, owners)) = locked_membership(&txn, project_id, user_id).await? else {
            return Ok(false);
        };
        let membership = to_membership(row)?;
        ensure_an_owner_remains(membership.role, None, owners)?;
        member::Entity::delete_by_id(membership.id)
            .exec(&txn)
            .await
            .map_err(store_error)?;
        txn.commit().await.map_err(store_error)?;
        Ok(true)
    }
}
