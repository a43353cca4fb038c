//! The project store, and the row lock that serialises changes to one
//! project's memberships and keys.

use async_trait::async_trait;
use domain::id::ProjectId;
use domain::member::Membership;
use domain::ports::{ProjectStore, StoreError, StoreResult};
use domain::project::Project;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::{member, project};
use crate::errors::store_error;

/// Which of these projects still exist: rows written for a project deleted
/// meanwhile are dropped before a batch insert, which its foreign key would
/// otherwise fail whole.
pub(crate) async fn existing_projects<'a>(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = &'a str>,
) -> StoreResult<std::collections::HashSet<String>> {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(project::Entity::find()
        .filter(project::Column::Id.is_in(ids))
        .all(db)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(|project| project.id)
        .collect())
}

impl From<project::Model> for Project {
    fn from(row: project::Model) -> Self {
        Project {
            id: ProjectId::from_trusted(row.id),
            name: row.name,
            slug: row.slug,
            created_at: row.created_at,
            patch_from_embedded: row.patch_from_embedded,
        }
    }
}

/// Takes the write lock on a project's row for the rest of the transaction
/// (a row lock on PostgreSQL, the database write lock on SQLite, taken up
/// front so the transaction never has to upgrade a read lock). Returns
/// whether the project exists.
pub(crate) async fn lock_project(
    txn: &impl ConnectionTrait,
    project_id: &str,
) -> Result<bool, DbErr> {
    let result = project::Entity::update_many()
        .col_expr(project::Column::Name, Expr::col(project::Column::Name))
        .filter(project::Column::Id.eq(project_id))
        .exec(txn)
        .await?;
    Ok(result.rows_affected > 0)
}

pub(crate) fn membership_row(membership: &Membership) -> member::ActiveModel {
    member::ActiveModel {
        id: Set(membership.id.clone()),
        project_id: Set(membership.project_id.to_string()),
        user_id: Set(membership.user_id.to_string()),
        role: Set(membership.role.as_str().to_owned()),
        created_at: Set(membership.created_at),
    }
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn create_with_owner(
        &self,
        new_project: &Project,
        owner: &Membership,
    ) -> StoreResult<()> {
        let txn = self.db.begin().await.map_err(store_error)?;
        let row = project::ActiveModel {
            id: Set(new_project.id.to_string()),
            name: Set(new_project.name.clone()),
            slug: Set(new_project.slug.clone()),
            created_at: Set(new_project.created_at),
            patch_from_embedded: Set(new_project.patch_from_embedded),
        };
        project::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        member::Entity::insert(membership_row(owner))
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        txn.commit().await.map_err(store_error)
    }

    async fn find(&self, id: &str) -> StoreResult<Option<Project>> {
        let row = project::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(store_error)?;
        Ok(row.map(Project::from))
    }

    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Project>> {
        let memberships = member::Entity::find()
            .select_only()
            .column(member::Column::ProjectId)
            .filter(member::Column::UserId.eq(user_id))
            .into_query();
        let rows = project::Entity::find()
            .filter(project::Column::Id.in_subquery(memberships))
            .order_by_desc(project::Column::CreatedAt)
            .order_by_desc(project::Column::Id)
            .all(&self.db)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(Project::from).collect())
    }

    async fn update(&self, changed: &Project) -> StoreResult<()> {
        let result = project::Entity::update_many()
            .col_expr(project::Column::Name, Expr::value(changed.name.clone()))
            .col_expr(project::Column::Slug, Expr::value(changed.slug.clone()))
            .col_expr(
                project::Column::PatchFromEmbedded,
                Expr::value(changed.patch_from_embedded),
            )
            .filter(project::Column::Id.eq(changed.id.as_str()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        if result.rows_affected == 0 {
            return Err(StoreError::ProjectGone);
        }
        // `patch_from_embedded` changes which downloads get a patch.
        self.announce_change();
        Ok(())
    }

    async fn delete(&self, id: &str) -> StoreResult<()> {
        // Memberships, keys, updates and channels go with it (ON DELETE
        // CASCADE).
        let txn = self.db.begin().await.map_err(store_error)?;
        let result = project::Entity::delete_by_id(id.to_owned())
            .exec(&txn)
            .await
            .map_err(store_error)?;
        self.commit_served_change(txn, result.rows_affected > 0)
            .await?;
        Ok(())
    }
}
