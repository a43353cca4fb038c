//! The audit log: recording every change to a project, and reading it back.

use std::sync::Arc;

use chrono::Utc;
use domain::audit::{Actor, AuditEvent};
use domain::id::{AuditEventId, InvalidId, ProjectId};
use domain::ports::{AuditStore, MemberStore};
use domain::user::User;
use serde_json::Value;

use crate::access::{Need, authorize};
use crate::error::{AppError, AppResult};
use crate::ids::new_id;

/// The most events one page of the log holds.
pub const MAX_AUDIT_PAGE: u64 = 200;

/// Records changes. Shared by every service that changes a project.
#[derive(Clone)]
pub struct AuditLog {
    store: Arc<dyn AuditStore>,
}

impl AuditLog {
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        Self { store }
    }

    /// Records a change that has been made. The change stands even if the
    /// log cannot be written (it is not undone); the failure goes to the
    /// operator's log with everything the event would have said.
    pub async fn record(
        &self,
        actor: &Actor,
        project_id: &ProjectId,
        action: &str,
        details: Value,
    ) {
        let event = AuditEvent {
            id: new_id(),
            project_id: project_id.to_string(),
            actor: actor.clone(),
            action: action.to_owned(),
            details: details.to_string(),
            created_at: Utc::now(),
        };
        if let Err(error) = self.store.record(&event).await {
            tracing::error!(
                %error,
                %project_id,
                action,
                actor_id = %actor.id,
                details = %event.details,
                "recording an audit event failed"
            );
        }
    }
}

/// One page of the log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Pass as `cursor` to get the next (older) page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Reading the log: owners only, since it names every member and key.
pub struct AuditService {
    members: Arc<dyn MemberStore>,
    store: Arc<dyn AuditStore>,
}

impl AuditService {
    pub fn new(members: Arc<dyn MemberStore>, store: Arc<dyn AuditStore>) -> Self {
        Self { members, store }
    }

    pub async fn list(
        &self,
        actor: &User,
        project_id: &ProjectId,
        cursor: Option<&str>,
        limit: Option<u64>,
    ) -> AppResult<AuditPage> {
        authorize(
            self.members.as_ref(),
            actor,
            project_id,
            Need::Owner("Only owner can read the audit log."),
        )
        .await?;
        let limit = page_limit(limit, MAX_AUDIT_PAGE)?;
        let cursor = valid_cursor(cursor, AuditEventId::parse)?;
        let mut events = self
            .store
            .list(
                project_id.as_str(),
                cursor.as_ref().map(AuditEventId::as_str),
                limit + 1,
            )
            .await?;
        let next_cursor = if events.len() as u64 > limit {
            events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            events.last().map(|event| event.id.clone())
        } else {
            None
        };
        Ok(AuditPage {
            events,
            next_cursor,
        })
    }
}

/// A page size: 1 to `max`, 20 when left out.
pub(crate) fn page_limit(limit: Option<u64>, max: u64) -> AppResult<u64> {
    match limit {
        None => Ok(20.min(max)),
        Some(limit) if (1..=max).contains(&limit) => Ok(limit),
        Some(_) => Err(AppError::Invalid(format!("limit must be from 1 to {max}."))),
    }
}

/// A cursor is an id this server handed out (`parse` says of which kind);
/// anything else is refused before it reaches a query. Parsed here, with
/// the page's other parameters, so a bad limit and a bad cursor are
/// answered in the order they always were.
pub(crate) fn valid_cursor<Id>(
    cursor: Option<&str>,
    parse: fn(&str) -> Result<Id, InvalidId>,
) -> AppResult<Option<Id>> {
    cursor
        .map(|cursor| {
            parse(cursor).map_err(|_| {
                AppError::Invalid("cursor is not one this server returned.".to_owned())
            })
        })
        .transpose()
}
