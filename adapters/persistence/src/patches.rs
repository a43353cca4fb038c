//! The patch store: wanted patches and the claims on computing them. A
//! claim is one statement that picks the oldest free pending row and marks
//! it, so two instances never hold the same patch: PostgreSQL skips rows
//! another transaction has locked (`FOR UPDATE SKIP LOCKED`), SQLite runs
//! one writer at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::id::ProjectId;
use domain::patch::{MAX_PATCH_ATTEMPTS, PatchClaim, PatchKey, PatchRecord, PatchState};
use domain::ports::{PatchStore, StoreError, StoreResult};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait,
    QueryFilter, QueryOrder, Statement, TransactionTrait, Value,
};

use crate::SqlStore;
use crate::entity::patch;
use crate::errors::store_error;
use crate::in_list::IN_LIST_CHUNK;
use crate::projects::existing_projects;

const CLAIM_POSTGRES: &str = "UPDATE patches \
    SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1, updated_at = $3 \
    WHERE (project_id, base_sha256, target_sha256) = ( \
        SELECT project_id, base_sha256, target_sha256 FROM patches \
        WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $3) \
        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
    RETURNING project_id, base_sha256, target_sha256, attempts";

const CLAIM_SQLITE: &str = "UPDATE patches \
    SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1, updated_at = $3 \
    WHERE rowid = ( \
        SELECT rowid FROM patches \
        WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $3) \
        ORDER BY created_at LIMIT 1) \
    RETURNING project_id, base_sha256, target_sha256, attempts";

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(format!("patches: bad {what}"))
}

fn to_record(row: patch::Model) -> StoreResult<PatchRecord> {
    let size = || {
        row.size
            .and_then(|size| u64::try_from(size).ok())
            .ok_or_else(|| corrupt("size"))
    };
    let state = match row.state.as_str() {
        "pending" => PatchState::Pending,
        "ready" => PatchState::Ready { size: size()? },
        "not_worth_it" => PatchState::NotWorthIt { size: size()? },
        "failed" => PatchState::Failed {
            error: row.error.clone().unwrap_or_default(),
        },
        _ => return Err(corrupt("state")),
    };
    Ok(PatchRecord {
        key: PatchKey {
            project_id: ProjectId::from_trusted(row.project_id),
            base_sha256: row.base_sha256,
            target_sha256: row.target_sha256,
        },
        state,
        attempts: u32::try_from(row.attempts).unwrap_or(0),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Inserts the patches as pending, leaving any already known as they are
/// but for failed ones, which are pending again (see `PatchStore::want`).
/// Their projects must exist.
pub(crate) async fn insert_wanted(
    db: &impl ConnectionTrait,
    patches: &[PatchKey],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let rows: Vec<patch::ActiveModel> = patches
        .iter()
        .map(|key| patch::ActiveModel {
            project_id: Set(key.project_id.to_string()),
            base_sha256: Set(key.base_sha256.clone()),
            target_sha256: Set(key.target_sha256.clone()),
            state: Set(PatchState::Pending.as_str().to_owned()),
            size: Set(None),
            error: Set(None),
            attempts: Set(0),
            claimed_by: Set(None),
            claimed_until: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    patch::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                patch::Column::ProjectId,
                patch::Column::BaseSha256,
                patch::Column::TargetSha256,
            ])
            .update_columns([
                patch::Column::State,
                patch::Column::Size,
                patch::Column::Error,
                patch::Column::Attempts,
                patch::Column::ClaimedBy,
                patch::Column::ClaimedUntil,
                patch::Column::UpdatedAt,
            ])
            .action_and_where(
                Expr::col((patch::Entity, patch::Column::State)).eq(PatchState::Failed {
                    error: String::new(),
                }
                .as_str()),
            )
            .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Deletes the project's patches to these bundles.
pub(crate) async fn forget_patches_to(
    db: &impl ConnectionTrait,
    project_id: &str,
    target_sha256s: &[String],
) -> StoreResult<()> {
    for chunk in target_sha256s.chunks(IN_LIST_CHUNK) {
        patch::Entity::delete_many()
            .filter(patch::Column::ProjectId.eq(project_id))
            .filter(patch::Column::TargetSha256.is_in(chunk.iter().cloned()))
            .exec(db)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

#[async_trait]
impl PatchStore for SqlStore {
    async fn want(&self, patches: &[PatchKey], now: DateTime<Utc>) -> StoreResult<()> {
        if patches.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await.map_err(store_error)?;
        let existing =
            existing_projects(&txn, patches.iter().map(|p| p.project_id.as_str())).await?;
        let wanted: Vec<PatchKey> = patches
            .iter()
            .filter(|key| existing.contains(key.project_id.as_str()))
            .cloned()
            .collect();
        insert_wanted(&txn, &wanted, now).await?;
        txn.commit().await.map_err(store_error)
    }

    async fn claim(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<PatchClaim>> {
        // Work that was claimed too often without finishing (it fails, or
        // it kills its instance) is given up on rather than retried forever.
        patch::Entity::update_many()
            .col_expr(patch::Column::State, "failed".into())
            .col_expr(
                patch::Column::Error,
                format!("not finished after {MAX_PATCH_ATTEMPTS} attempts").into(),
            )
            .col_expr(patch::Column::UpdatedAt, now.into())
            .filter(patch::Column::State.eq("pending"))
            .filter(patch::Column::Attempts.gte(i32::try_from(MAX_PATCH_ATTEMPTS).unwrap_or(3)))
            .filter(
                Condition::any()
                    .add(patch::Column::ClaimedUntil.is_null())
                    .add(patch::Column::ClaimedUntil.lt(now)),
            )
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => CLAIM_POSTGRES,
            _ => CLAIM_SQLITE,
        };
        let values: [Value; 3] = [instance.into(), until.into(), now.into()];
        let statement = Statement::from_sql_and_values(backend, sql, values);
        let Some(row) = self
            .db
            .query_one_raw(statement)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        let text = |index: usize| row.try_get_by_index::<String>(index).map_err(store_error);
        Ok(Some(PatchClaim {
            key: PatchKey {
                project_id: ProjectId::from_trusted(text(0)?),
                base_sha256: text(1)?,
                target_sha256: text(2)?,
            },
            attempt: u32::try_from(row.try_get_by_index::<i32>(3).map_err(store_error)?)
                .unwrap_or(0),
            claimed_by: instance.to_owned(),
            claimed_until: until,
        }))
    }

    async fn finish(
        &self,
        claim: &PatchClaim,
        state: &PatchState,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (size, error) = match state {
            PatchState::Pending => (None, None),
            PatchState::Ready { size } | PatchState::NotWorthIt { size } => {
                (Some(i64::try_from(*size).unwrap_or(i64::MAX)), None)
            }
            PatchState::Failed { error } => (None, Some(error.clone())),
        };
        let key = &claim.key;
        let result = patch::Entity::update_many()
            .col_expr(patch::Column::State, state.as_str().into())
            .col_expr(patch::Column::Size, size.into())
            .col_expr(patch::Column::Error, error.into())
            .col_expr(patch::Column::ClaimedBy, Option::<String>::None.into())
            .col_expr(
                patch::Column::ClaimedUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(patch::Column::UpdatedAt, now.into())
            .filter(patch::Column::ProjectId.eq(key.project_id.as_str()))
            .filter(patch::Column::BaseSha256.eq(key.base_sha256.as_str()))
            .filter(patch::Column::TargetSha256.eq(key.target_sha256.as_str()))
            .filter(patch::Column::ClaimedBy.eq(claim.claimed_by.as_str()))
            .filter(patch::Column::Attempts.eq(i32::try_from(claim.attempt).unwrap_or(i32::MAX)))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        let finished = result.rows_affected == 1;
        // A ready patch changes what a device is sent for its bundle.
        if finished && matches!(state, PatchState::Ready { .. }) {
            self.announce_change();
        }
        Ok(finished)
    }

    async fn patches_to(
        &self,
        project_id: &ProjectId,
        target_sha256: &str,
    ) -> StoreResult<Vec<PatchRecord>> {
        patch::Entity::find()
            .filter(patch::Column::ProjectId.eq(project_id.as_str()))
            .filter(patch::Column::TargetSha256.eq(target_sha256))
            .order_by_asc(patch::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(to_record)
            .collect()
    }
}
