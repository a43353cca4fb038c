//! Request and response bodies, with the old server's camelCase field names.
//! Request fields default to empty so that a missing field is answered with
//! the application's "Missing parameters." rather than a parser message.

use chrono::{DateTime, SecondsFormat, Utc};
use domain::api_key::ApiKey;
use domain::member::{MemberProfile, Membership};
use domain::project::Project;
use domain::user::User;
use poem_openapi::Object;

mod releases;
pub use releases::*;

/// Timestamps as the old server wrote them: RFC 3339, UTC, whole seconds.
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Object)]
pub struct RegisterRequest {
    /// 1 to 64 characters, without '@' or whitespace.
    #[oai(default)]
    pub username: String,
    #[oai(default)]
    pub email: String,
    /// At least 8 characters.
    #[oai(default)]
    pub password: String,
}

#[derive(Object)]
pub struct LoginRequest {
    /// A username or an email address, compared case-insensitively.
    #[oai(default)]
    pub login: String,
    #[oai(default)]
    pub password: String,
}

/// A user's public profile.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UserBody {
    pub id: String,
    pub username: String,
    pub email: String,
    pub created_at: String,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id.into_string(),
            username: user.username,
            email: user.email,
            created_at: timestamp(user.created_at),
        }
    }
}

/// A user with a session token (JWT, valid 72 hours).
#[derive(Object)]
pub struct SessionBody {
    pub user: UserBody,
    pub token: String,
}

#[derive(Debug, Object)]
pub struct CreateProjectRequest {
    #[oai(default)]
    pub name: String,
    /// Unique; lowercase letters, digits and '-'.
    #[oai(default)]
    pub slug: String,
}

/// Fields to change; those left out stay as they are.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateProjectRequest {
    pub name: Option<String>,
    pub slug: Option<String>,
    /// Serve devices still running their build's embedded update a patch
    /// against its uploaded bundle (`/embedded-bundles`). Android clients
    /// before expo-updates 57.0.23 discard such a patch and download the
    /// full file, so leave it off while many of them are in the field.
    pub patch_from_embedded: Option<bool>,
}

#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ProjectBody {
    /// The id apps use in their update URL: `/api/updates/{id}/manifest`.
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: String,
    /// Whether devices running their build's embedded update get patches
    /// against its uploaded bundle (off unless an owner turns it on).
    pub patch_from_embedded: bool,
}

impl From<Project> for ProjectBody {
    fn from(project: Project) -> Self {
        Self {
            id: project.id.into_string(),
            name: project.name,
            slug: project.slug,
            created_at: timestamp(project.created_at),
            patch_from_embedded: project.patch_from_embedded,
        }
    }
}

/// Names the user to add by id, username or email (the first given wins).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AddMemberRequest {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// `owner` or `member`.
    #[oai(default)]
    pub role: String,
}

#[derive(Debug, Object)]
pub struct ChangeRoleRequest {
    /// `owner` or `member`.
    #[oai(default)]
    pub role: String,
}

/// A membership of a project.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct MembershipBody {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: String,
}

impl From<Membership> for MembershipBody {
    fn from(membership: Membership) -> Self {
        Self {
            id: membership.id,
            project_id: membership.project_id.into_string(),
            user_id: membership.user_id.into_string(),
            role: membership.role.as_str().to_owned(),
            created_at: timestamp(membership.created_at),
        }
    }
}

/// A membership with the member's username and email.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct MemberBody {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub role: String,
    pub created_at: String,
}

impl From<MemberProfile> for MemberBody {
    fn from(profile: MemberProfile) -> Self {
        let membership = MembershipBody::from(profile.membership);
        Self {
            id: membership.id,
            project_id: membership.project_id,
            user_id: membership.user_id,
            username: profile.username,
            email: profile.email,
            role: membership.role,
            created_at: membership.created_at,
        }
    }
}

#[derive(Debug, Object)]
pub struct CreateKeyRequest {
    /// Optional; defaults to the first free `key-N`.
    pub name: Option<String>,
}

#[derive(Debug, Object)]
pub struct RenameKeyRequest {
    #[oai(default)]
    pub name: String,
}

/// An API key as listed: never its secret.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct KeyBody {
    pub id: String,
    pub project_id: String,
    /// The user who created it; null once that account is gone.
    pub created_by: Option<String>,
    pub name: String,
    /// 8 characters of the secret (after `eus_` for new keys), to tell keys apart.
    pub key_prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<ApiKey> for KeyBody {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id.into_string(),
            project_id: key.project_id.into_string(),
            created_by: key.created_by.map(domain::id::UserId::into_string),
            name: key.name,
            key_prefix: key.key_prefix,
            created_at: timestamp(key.created_at),
            last_used_at: key.last_used_at.map(timestamp),
        }
    }
}

/// A new key with its secret. The secret is shown only in this response.
#[derive(Object)]
pub struct CreatedKeyBody {
    pub key: KeyBody,
    pub secret: String,
}
