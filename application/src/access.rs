//! Authorization: who may do what to a project.
//!
//! A caller who is not a member gets the same answer whether or not the
//! project exists, so project ids cannot be probed.

use domain::api_key::ApiKey;
use domain::audit::{Actor, ActorKind};
use domain::id::ProjectId;
use domain::member::{Membership, Role};
use domain::ports::MemberStore;
use domain::user::User;

use crate::error::{AppError, AppResult, permission_denied};

/// What an operation needs of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any member may read.
    Read,
    /// Only an owner; the text is the refusal given to a plain member.
    Owner(&'static str),
}

pub const OWNER_FOR_PROJECT: Need = Need::Owner("Only owner can manage the project.");
pub const OWNER_FOR_MEMBERS: Need = Need::Owner("Only owner can manage project members.");
pub const OWNER_FOR_KEYS: Need = Need::Owner("Only owner can manage project keys.");

/// The user's membership of the project if it grants `need`.
pub async fn authorize(
    members: &dyn MemberStore,
    user: &User,
    project_id: &ProjectId,
    need: Need,
) -> AppResult<Membership> {
    let membership = members
        .find(project_id.as_str(), &user.id)
        .await?
        .ok_or_else(permission_denied)?;
    match need {
        Need::Owner(refusal) if membership.role != Role::Owner => {
            Err(AppError::Forbidden(refusal.to_owned()))
        }
        _ => Ok(membership),
    }
}

/// Who is calling a release operation: a signed-in member, or the project's
/// API key (release pipelines).
#[derive(Debug, Clone)]
pub enum Caller {
    User(User),
    Key(ApiKey),
}

/// Authorizes a caller for a project and names it for the audit log.
///
/// A member needs `need`; an API key acts for its own project only, with
/// what a release pipeline needs (publishing and steering updates), which
/// its owner granted by creating it.
pub async fn authorize_caller(
    members: &dyn MemberStore,
    caller: &Caller,
    project_id: &ProjectId,
    need: Need,
) -> AppResult<Actor> {
    match caller {
        Caller::User(user) => {
            authorize(members, user, project_id, need).await?;
            Ok(user_actor(user))
        }
        Caller::Key(key) if *project_id == *key.project_id => Ok(Actor {
            kind: ActorKind::ApiKey,
            id: key.id.to_string(),
            name: key.name.clone(),
        }),
        Caller::Key(_) => Err(not_callers_project(caller)),
    }
}

/// The refusal of a project that is not the caller's: for a user, the one
/// for any project they are not a member of (so project ids cannot be
/// probed); for an API key, that it is another project's. A driving adapter
/// answers a project id it cannot parse with this, exactly as the services
/// answer an id that names no project of the caller's.
pub fn not_callers_project(caller: &Caller) -> AppError {
    match caller {
        Caller::User(_) => permission_denied(),
        Caller::Key(_) => not_the_keys_project(),
    }
}

/// The refusal of an API key for a project other than its own.
pub fn not_the_keys_project() -> AppError {
    AppError::Forbidden("API key does not belong to this project.".to_owned())
}

/// A user as the audit log names them.
pub fn user_actor(user: &User) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: user.id.to_string(),
        name: user.username.clone(),
    }
}
