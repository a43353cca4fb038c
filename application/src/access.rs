//! Authorization: who may do what to a project.
//!
//! A caller who is not a member gets the same answer whether or not the
//! project exists, so project ids cannot be probed.

use domain::member::{Membership, Role};
use domain::ports::MemberStore;

use domain::id::is_valid_id;

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

/// The caller's membership of the project if it grants `need`.
pub async fn authorize(
    members: &dyn MemberStore,
    user_id: &str,
    project_id: &str,
    need: Need,
) -> AppResult<Membership> {
    if !is_valid_id(project_id) {
        return Err(permission_denied());
    }
    let membership = members
        .find(project_id, user_id)
        .await?
        .ok_or_else(permission_denied)?;
    match need {
        Need::Owner(refusal) if membership.role != Role::Owner => {
            Err(AppError::Forbidden(refusal.to_owned()))
        }
        _ => Ok(membership),
    }
}
