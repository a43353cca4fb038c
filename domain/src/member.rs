//! Memberships: who may see and manage a project, and the rule that a project
//! never loses its last owner.

use chrono::{DateTime, Utc};

use crate::id::{ProjectId, UserId};
use crate::validation::ValidationError;

/// What a member may do. Owners manage the project, its members and its keys;
/// members may read the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "owner" => Ok(Self::Owner),
            "member" => Ok(Self::Member),
            _ => Err(ValidationError::new(
                "role must be \"owner\" or \"member\".",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }
}

/// One user's membership of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: String,
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A membership with the member's public profile, as a member list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProfile {
    pub membership: Membership,
    pub username: String,
    pub email: String,
}

/// Refused because the change would leave the project without an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("A project must keep at least one owner.")]
pub struct LastOwnerError;

/// Checks that changing a member whose role is `current` to `next` (`None`
/// for removal) leaves at least one owner, given how many owners the project
/// has now. Adapters call this inside the transaction that makes the change,
/// so two concurrent demotions cannot both pass.
pub fn ensure_an_owner_remains(
    current: Role,
    next: Option<Role>,
    owners_now: u64,
) -> Result<(), LastOwnerError> {
    let loses_an_owner = current == Role::Owner && next != Some(Role::Owner);
    if loses_an_owner && owners_now <= 1 {
        return Err(LastOwnerError);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_parses_only_owner_and_member() {
        assert_eq!(Role::parse("owner"), Ok(Role::Owner));
        assert_eq!(Role::parse("member"), Ok(Role::Member));
        for bad in ["", "admin", "Owner", " owner"] {
            assert!(Role::parse(bad).is_err());
        }
    }

    #[test]
    fn the_last_owner_cannot_be_demoted_or_removed() {
        assert_eq!(
            ensure_an_owner_remains(Role::Owner, Some(Role::Member), 1),
            Err(LastOwnerError)
        );
        assert_eq!(
            ensure_an_owner_remains(Role::Owner, None, 1),
            Err(LastOwnerError)
        );
        assert!(ensure_an_owner_remains(Role::Owner, Some(Role::Member), 2).is_ok());
        assert!(ensure_an_owner_remains(Role::Owner, Some(Role::Owner), 1).is_ok());
        assert!(ensure_an_owner_remains(Role::Member, None, 1).is_ok());
    }
}
