//! Members: who belongs to a project and with which role.

use std::sync::Arc;

use chrono::Utc;
use domain::id::{ProjectId, UserId};
use domain::member::{MemberProfile, Membership, Role};
use domain::ports::{MemberStore, UserStore};
use domain::user::{Email, User, Username};

use serde_json::json;

use crate::access::{Need, OWNER_FOR_MEMBERS, authorize, user_actor};
use crate::audit::AuditLog;
use crate::error::{AppError, AppResult, missing_parameters, not_found};
use crate::ids::new_id;

/// How an owner names the user to add: by id, or by username or email so
/// that a colleague can be added without knowing their id. The text is the
/// client's, parsed by [`MemberService::add`] with the request's other
/// fields, so one that cannot be of its kind is answered like a stranger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRef {
    UserId(String),
    Username(String),
    Email(String),
}

impl MemberRef {
    /// The first of the given identifiers that is not empty.
    pub fn from_fields(
        user_id: Option<String>,
        username: Option<String>,
        email: Option<String>,
    ) -> AppResult<Self> {
        let non_empty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        non_empty(user_id)
            .map(Self::UserId)
            .or_else(|| non_empty(username).map(Self::Username))
            .or_else(|| non_empty(email).map(Self::Email))
            .ok_or_else(missing_parameters)
    }
}

pub struct MemberService {
    members: Arc<dyn MemberStore>,
    users: Arc<dyn UserStore>,
    audit: AuditLog,
}

impl MemberService {
    pub fn new(members: Arc<dyn MemberStore>, users: Arc<dyn UserStore>, audit: AuditLog) -> Self {
        Self {
            members,
            users,
            audit,
        }
    }

    /// Adds a user to the project (owners only).
    pub async fn add(
        &self,
        actor: &User,
        project_id: &ProjectId,
        who: MemberRef,
        role: &str,
    ) -> AppResult<Membership> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_MEMBERS).await?;
        let role = Role::parse(role)?;
        let user = self
            .find_user(&who)
            .await?
            .ok_or_else(|| AppError::NotFound("User not found.".to_owned()))?;
        let membership = Membership {
            id: new_id(),
            project_id: project_id.clone(),
            user_id: user.id.clone(),
            role,
            created_at: Utc::now(),
        };
        self.members.insert(&membership).await?;
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "member.add",
                json!({ "userId": membership.user_id.as_str(), "username": user.username, "role": role.as_str() }),
            )
            .await;
        Ok(membership)
    }

    /// The user a reference names. A value that cannot be of its kind (an id
    /// that is no UUID, a username with '@', an email without) names nobody.
    async fn find_user(&self, who: &MemberRef) -> AppResult<Option<User>> {
        let user = match who {
            MemberRef::UserId(id) => match UserId::parse(id.trim()) {
                Ok(id) => self.users.find_by_id(id.as_str()).await?,
                Err(_) => None,
            },
            MemberRef::Username(name) if Username::parse(name).is_ok() => self
                .users
                .find_by_login(name.trim())
                .await?
                .into_iter()
                .next(),
            MemberRef::Email(email) if Email::parse(email).is_ok() => self
                .users
                .find_by_login(email.trim())
                .await?
                .into_iter()
                .next(),
            _ => None,
        };
        Ok(user)
    }

    /// The project's members with their usernames and emails (any member).
    pub async fn list(
        &self,
        actor: &User,
        project_id: &ProjectId,
    ) -> AppResult<Vec<MemberProfile>> {
        authorize(self.members.as_ref(), actor, project_id, Need::Read).await?;
        Ok(self.members.list(project_id.as_str()).await?)
    }

    /// Changes a member's role (owners only); the last owner stays an owner.
    pub async fn change_role(
        &self,
        actor: &User,
        project_id: &ProjectId,
        user_id: &UserId,
        role: &str,
    ) -> AppResult<Membership> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_MEMBERS).await?;
        let role = Role::parse(role)?;
        let membership = self
            .members
            .change_role(project_id.as_str(), user_id.as_str(), role)
            .await?
            .ok_or_else(not_found::member)?;
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "member.role",
                json!({ "userId": user_id.as_str(), "role": role.as_str() }),
            )
            .await;
        Ok(membership)
    }

    /// Removes a member (owners only). Owners cannot remove themselves, so a
    /// project is never left without anyone to manage it.
    pub async fn remove(
        &self,
        actor: &User,
        project_id: &ProjectId,
        user_id: &UserId,
    ) -> AppResult<()> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_MEMBERS).await?;
        if *user_id == *actor.id {
            return Err(AppError::Invalid("Cannot remove yourself.".to_owned()));
        }
        if !self
            .members
            .remove(project_id.as_str(), user_id.as_str())
            .await?
        {
            return Err(not_found::member());
        }
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "member.remove",
                json!({ "userId": user_id.as_str() }),
            )
            .await;
        Ok(())
    }
}
