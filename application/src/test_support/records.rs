//! Users, projects, memberships, the audit log and insight rows in memory,
//! answering as the SQL adapter does (orders, refusals), plus seeding
//! helpers for tests.

use async_trait::async_trait;
use chrono::Utc;
use domain::audit::AuditEvent;
use domain::id::ProjectId;
use domain::insights::InsightCounts;
use domain::member::{MemberProfile, Membership, Role, ensure_an_owner_remains};
use domain::ports::{
    AuditStore, Constraint, InsightStore, MemberStore, ProjectStore, StoreError, StoreResult,
    UserStore,
};
use domain::project::Project;
use domain::user::{User, login_key};

use super::ids::{ordered_id, test_user};
use super::store::{InMemoryStore, State};

impl InMemoryStore {
    /// Stores a new user named `username` (email `<username>@example.com`).
    pub fn add_user(&self, username: &str) -> User {
        let user = test_user(username);
        self.state().users.push(user.clone());
        user
    }

    /// Stores a new project owned by `owner`.
    pub fn add_project(&self, owner: &User) -> Project {
        let id = ordered_id();
        let project = Project {
            name: format!("Project {id}"),
            slug: format!("project-{id}"),
            id: ProjectId::from_trusted(id),
            created_at: Utc::now(),
            patch_from_embedded: false,
        };
        let mut state = self.state();
        state.projects.push(project.clone());
        state
            .members
            .push(membership(&project.id, &owner.id, Role::Owner));
        project
    }

    /// Makes `user` a member of the project with `role`.
    pub fn add_member(&self, project_id: &str, user: &User, role: Role) -> Membership {
        let membership = membership(project_id, &user.id, role);
        self.state().members.push(membership.clone());
        membership
    }
}

fn membership(project_id: &str, user_id: &str, role: Role) -> Membership {
    Membership {
        id: ordered_id(),
        project_id: ProjectId::from_trusted(project_id.to_owned()),
        user_id: domain::id::UserId::from_trusted(user_id.to_owned()),
        role,
        created_at: Utc::now(),
    }
}

impl State {
    pub(super) fn has_project(&self, project_id: &str) -> bool {
        self.projects.iter().any(|project| project.id == project_id)
    }

    fn slug_taken(&self, slug: &str, by_other_than: &str) -> bool {
        self.projects
            .iter()
            .any(|project| project.slug == slug && project.id != by_other_than)
    }

    fn owners(&self, project_id: &str) -> u64 {
        self.members
            .iter()
            .filter(|m| m.project_id == project_id && m.role == Role::Owner)
            .count() as u64
    }
}

#[async_trait]
impl UserStore for InMemoryStore {
    /// Usernames and emails are unique case-insensitively, as the SQL
    /// adapter's `*_key` columns make them.
    async fn insert(&self, user: &User) -> StoreResult<()> {
        let mut state = self.state();
        let (name, email) = (login_key(&user.username), login_key(&user.email));
        if state.users.iter().any(|u| login_key(&u.username) == name) {
            return Err(StoreError::Conflict(Constraint::Username));
        }
        if state.users.iter().any(|u| login_key(&u.email) == email) {
            return Err(StoreError::Conflict(Constraint::Email));
        }
        state.users.push(user.clone());
        Ok(())
    }

    async fn insert_first(&self, user: &User) -> StoreResult<bool> {
        let mut state = self.state();
        if !state.users.is_empty() {
            return Ok(false);
        }
        state.users.push(user.clone());
        Ok(true)
    }

    async fn find_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        Ok(self.state().users.iter().find(|u| u.id == id).cloned())
    }

    /// Exact email, email in any case, exact username, username in any
    /// case; then oldest first.
    async fn find_by_login(&self, login: &str) -> StoreResult<Vec<User>> {
        let key = login_key(login);
        let rank = |user: &User| {
            if user.email == login {
                Some(0)
            } else if login_key(&user.email) == key {
                Some(1)
            } else if user.username == login {
                Some(2)
            } else if login_key(&user.username) == key {
                Some(3)
            } else {
                None
            }
        };
        let mut found: Vec<(u8, User)> = self
            .state()
            .users
            .iter()
            .filter_map(|user| rank(user).map(|rank| (rank, user.clone())))
            .collect();
        found.sort_by(|(ra, a), (rb, b)| (ra, a.created_at, &a.id).cmp(&(rb, b.created_at, &b.id)));
        Ok(found.into_iter().map(|(_, user)| user).collect())
    }

    async fn count(&self) -> StoreResult<u64> {
        Ok(self.state().users.len() as u64)
    }
}

#[async_trait]
impl ProjectStore for InMemoryStore {
    async fn create_with_owner(&self, project: &Project, owner: &Membership) -> StoreResult<()> {
        let mut state = self.state();
        if state.slug_taken(&project.slug, "") {
            return Err(StoreError::Conflict(Constraint::Slug));
        }
        state.projects.push(project.clone());
        state.members.push(owner.clone());
        Ok(())
    }

    async fn find(&self, id: &str) -> StoreResult<Option<Project>> {
        Ok(self.state().projects.iter().find(|p| p.id == id).cloned())
    }

    /// Newest first (by creation time, then id).
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Project>> {
        let state = self.state();
        let mut projects: Vec<Project> = state
            .projects
            .iter()
            .filter(|p| {
                state
                    .members
                    .iter()
                    .any(|m| m.project_id == *p.id && m.user_id == user_id)
            })
            .cloned()
            .collect();
        projects.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(projects)
    }

    async fn update(&self, changed: &Project) -> StoreResult<()> {
        let mut state = self.state();
        if state.slug_taken(&changed.slug, &changed.id) {
            return Err(StoreError::Conflict(Constraint::Slug));
        }
        let project = state
            .projects
            .iter_mut()
            .find(|p| p.id == changed.id)
            .ok_or(StoreError::ProjectGone)?;
        project.name.clone_from(&changed.name);
        project.slug.clone_from(&changed.slug);
        project.patch_from_embedded = changed.patch_from_embedded;
        drop(state);
        self.served_change(true);
        Ok(())
    }

    /// Memberships, updates, channels, audit events, insight rows and
    /// signing keys go with it (`ON DELETE CASCADE`); moves the serve epoch if it existed.
    async fn delete(&self, id: &str) -> StoreResult<()> {
        let mut state = self.state();
        let existed = state.has_project(id);
        state.projects.retain(|p| p.id != id);
        state.members.retain(|m| m.project_id != id);
        state.updates.retain(|u| u.project_id != id);
        state.channels.retain(|c| c.project_id != id);
        state.audit.retain(|e| e.project_id != id);
        state.insights.retain(|(_, c)| c.project_id != id);
        state.signing_keys.retain(|k| k.project_id != id);
        state
            .patches
            .retain(|p| p.record.key.project_id.as_str() != id);
        self.served_change(existed);
        Ok(())
    }
}

#[async_trait]
impl MemberStore for InMemoryStore {
    async fn find(&self, project_id: &str, user_id: &str) -> StoreResult<Option<Membership>> {
        Ok(self
            .state()
            .members
            .iter()
            .find(|m| m.project_id == project_id && m.user_id == user_id)
            .cloned())
    }

    async fn insert(&self, membership: &Membership) -> StoreResult<()> {
        let mut state = self.state();
        if !state.has_project(&membership.project_id) {
            return Err(StoreError::ProjectGone);
        }
        let taken = state
            .members
            .iter()
            .any(|m| m.project_id == membership.project_id && m.user_id == membership.user_id);
        if taken {
            return Err(StoreError::Conflict(Constraint::Membership));
        }
        state.members.push(membership.clone());
        Ok(())
    }

    /// Oldest membership first; members whose user is unknown are left out.
    async fn list(&self, project_id: &str) -> StoreResult<Vec<MemberProfile>> {
        let state = self.state();
        let mut members: Vec<&Membership> = state
            .members
            .iter()
            .filter(|m| m.project_id == project_id)
            .collect();
        members.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(members
            .into_iter()
            .filter_map(|membership| {
                let user = state.users.iter().find(|u| u.id == membership.user_id)?;
                Some(MemberProfile {
                    membership: membership.clone(),
                    username: user.username.clone(),
                    email: user.email.clone(),
                })
            })
            .collect())
    }

    async fn change_role(
        &self,
        project_id: &str,
        user_id: &str,
        role: Role,
    ) -> StoreResult<Option<Membership>> {
        let mut state = self.state();
        let owners = state.owners(project_id);
        let Some(membership) = state
            .members
            .iter_mut()
            .find(|m| m.project_id == project_id && m.user_id == user_id)
        else {
            return Ok(None);
        };
        ensure_an_owner_remains(membership.role, Some(role), owners)?;
        membership.role = role;
        Ok(Some(membership.clone()))
    }

    async fn remove(&self, project_id: &str, user_id: &str) -> StoreResult<bool> {
        let mut state = self.state();
        let owners = state.owners(project_id);
        let Some(index) = state
            .members
            .iter()
            .position(|m| m.project_id == project_id && m.user_id == user_id)
        else {
            return Ok(false);
        };
        ensure_an_owner_remains(state.members[index].role, None, owners)?;
        state.members.remove(index);
        Ok(true)
    }
}

#[async_trait]
impl AuditStore for InMemoryStore {
    /// `ProjectGone` for a project that no longer exists (a foreign key).
    async fn record(&self, event: &AuditEvent) -> StoreResult<()> {
        let mut state = self.state();
        if !state.has_project(&event.project_id) {
            return Err(StoreError::ProjectGone);
        }
        state.audit.push(event.clone());
        Ok(())
    }

    /// Newest first by id, older than `before`, at most `limit`.
    async fn list(
        &self,
        project_id: &str,
        before: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<AuditEvent>> {
        let mut events: Vec<AuditEvent> = self
            .state()
            .audit
            .iter()
            .filter(|e| e.project_id == project_id)
            .filter(|e| before.is_none_or(|before| e.id.as_str() < before))
            .cloned()
            .collect();
        events.sort_by(|a, b| b.id.cmp(&a.id));
        events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(events)
    }
}

#[async_trait]
impl InsightStore for InMemoryStore {
    /// Adds to this instance's row per (publish, platform, day); counts of
    /// projects that no longer exist are dropped.
    async fn add(&self, instance_id: &str, counts: &[InsightCounts]) -> StoreResult<()> {
        let mut state = self.state();
        for counts in counts {
            if !state.has_project(&counts.project_id) {
                continue;
            }
            let row = state.insights.iter_mut().find(|(instance, row)| {
                instance == instance_id
                    && row.publish_id == counts.publish_id
                    && row.platform == counts.platform
                    && row.day == counts.day
            });
            match row {
                Some((_, row)) => row.absorb(counts),
                None => state
                    .insights
                    .push((instance_id.to_owned(), counts.clone())),
            }
        }
        Ok(())
    }

    async fn for_publish(
        &self,
        project_id: &str,
        publish_id: &str,
    ) -> StoreResult<Vec<InsightCounts>> {
        Ok(self
            .state()
            .insights
            .iter()
            .filter(|(_, row)| row.project_id == project_id && row.publish_id == publish_id)
            .map(|(_, row)| row.clone())
            .collect())
    }
}
