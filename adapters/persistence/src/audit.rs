//! The audit store: an append-only log per project, paged by event id.

use async_trait::async_trait;
use domain::audit::{Actor, ActorKind, AuditEvent};
use domain::ports::{AuditStore, StoreError, StoreResult};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::SqlStore;
use crate::entity::audit_event;
use crate::errors::store_error;

fn to_event(row: audit_event::Model) -> StoreResult<AuditEvent> {
    let kind = ActorKind::parse(&row.actor_type).ok_or_else(|| {
        StoreError::backend(format!(
            "invalid actor type {:?} in the audit log",
            row.actor_type
        ))
    })?;
    Ok(AuditEvent {
        id: row.id,
        project_id: row.project_id,
        actor: Actor {
            kind,
            id: row.actor_id,
            name: row.actor_name,
        },
        action: row.action,
        details: row.details,
        created_at: row.created_at,
    })
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        let row = audit_event::ActiveModel {
            id: Set(event.id.clone()),
            project_id: Set(event.project_id.clone()),
            actor_type: Set(event.actor.kind.as_str().to_owned()),
            actor_id: Set(event.actor.id.clone()),
            actor_name: Set(event.actor.name.clone()),
            action: Set(event.action.clone()),
            details: Set(event.details.clone()),
            created_at: Set(event.created_at),
        };
        audit_event::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list(
        &self,
        project_id: &str,
        before: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<AuditEvent>> {
        let mut select =
            audit_event::Entity::find().filter(audit_event::Column::ProjectId.eq(project_id));
        if let Some(before) = before {
            select = select.filter(audit_event::Column::Id.lt(before));
        }
        select
            .order_by_desc(audit_event::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(to_event)
            .collect()
    }
}
