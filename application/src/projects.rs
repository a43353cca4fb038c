//! Projects: create, list, read, rename and delete.

use std::sync::Arc;

use chrono::Utc;
use domain::id::ProjectId;
use domain::member::{Membership, Role};
use domain::ports::{MemberStore, ProjectStore};
use domain::project::{Project, ProjectName, Slug};
use domain::user::User;

use serde_json::json;

use crate::access::{Need, OWNER_FOR_PROJECT, authorize, user_actor};
use crate::audit::AuditLog;
use crate::error::{AppResult, missing_parameters, permission_denied};
use crate::ids::new_id;

/// The fields a project update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub patch_from_embedded: Option<bool>,
}

pub struct ProjectService {
    projects: Arc<dyn ProjectStore>,
    members: Arc<dyn MemberStore>,
    audit: AuditLog,
}

impl ProjectService {
    pub fn new(
        projects: Arc<dyn ProjectStore>,
        members: Arc<dyn MemberStore>,
        audit: AuditLog,
    ) -> Self {
        Self {
            projects,
            members,
            audit,
        }
    }

    /// Creates a project owned by the caller.
    pub async fn create(&self, actor: &User, name: &str, slug: &str) -> AppResult<Project> {
        if name.is_empty() || slug.is_empty() {
            return Err(missing_parameters());
        }
        let now = Utc::now();
        let project_id = ProjectId::from_trusted(new_id());
        let project = Project {
            id: project_id.clone(),
            name: ProjectName::parse(name)?.into_inner(),
            slug: Slug::parse(slug)?.into_inner(),
            created_at: now,
            patch_from_embedded: false,
        };
        let owner = Membership {
            id: new_id(),
            project_id: project.id.clone(),
            user_id: actor.id.clone(),
            role: Role::Owner,
            created_at: now,
        };
        self.projects.create_with_owner(&project, &owner).await?;
        tracing::info!(project_id = %project.id, user_id = %actor.id, "project created");
        self.audit
            .record(
                &user_actor(actor),
                &project_id,
                "project.create",
                json!({ "name": project.name, "slug": project.slug }),
            )
            .await;
        Ok(project)
    }

    /// The caller's projects, newest first.
    pub async fn list(&self, actor: &User) -> AppResult<Vec<Project>> {
        Ok(self.projects.list_for_user(&actor.id).await?)
    }

    pub async fn get(&self, actor: &User, project_id: &ProjectId) -> AppResult<Project> {
        authorize(self.members.as_ref(), actor, project_id, Need::Read).await?;
        self.load(project_id).await
    }

    /// Renames a project or changes its slug (owners only).
    pub async fn update(
        &self,
        actor: &User,
        project_id: &ProjectId,
        changes: ProjectChanges,
    ) -> AppResult<Project> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_PROJECT).await?;
        let mut project = self.load(project_id).await?;
        if let Some(name) = changes.name {
            project.name = ProjectName::parse(&name)?.into_inner();
        }
        if let Some(slug) = changes.slug {
            project.slug = Slug::parse(&slug)?.into_inner();
        }
        if let Some(on) = changes.patch_from_embedded {
            project.patch_from_embedded = on;
        }
        self.projects.update(&project).await?;
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "project.update",
                json!({
                    "name": project.name,
                    "slug": project.slug,
                    "patchFromEmbedded": project.patch_from_embedded,
                }),
            )
            .await;
        Ok(project)
    }

    /// Deletes a project with its members and keys (owners only).
    pub async fn delete(&self, actor: &User, project_id: &ProjectId) -> AppResult<()> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_PROJECT).await?;
        self.projects.delete(project_id.as_str()).await?;
        tracing::info!(%project_id, user_id = %actor.id, "project deleted");
        Ok(())
    }

    /// Loads a project the caller is known to be a member of. Membership rows
    /// cascade with their project, so a miss here means it was deleted
    /// between the two reads: answer as for any project the caller can't see.
    async fn load(&self, project_id: &ProjectId) -> AppResult<Project> {
        self.projects
            .find(project_id.as_str())
            .await?
            .ok_or_else(permission_denied)
    }
}
