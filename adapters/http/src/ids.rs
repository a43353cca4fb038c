//! Ids in request paths, parsed once where a request enters (the API's
//! operations and the dashboard's pages), so the services only ever see
//! text that can name a record.
//!
//! An id that does not parse names nothing, and is answered exactly as the
//! services answer an id they do not find: a project as one the caller may
//! not see (403, so project ids cannot be probed), anything else as 404 in
//! the words of the service that would have looked it up.

use application::access::{not_callers_project, not_the_keys_project};
use application::error::{not_found, permission_denied};
use application::{AppError, Caller};
use domain::id::{ApiKeyId, ProjectId, PublishId, UserId};
use domain::signing_key::SigningKeyId;

/// A project a signed-in user names.
pub(crate) fn project(raw: &str) -> Result<ProjectId, AppError> {
    ProjectId::parse(raw).map_err(|_| permission_denied())
}

/// A project a user or an API key names: an API key is told the project
/// is not its own, as for any other project.
pub(crate) fn project_for(caller: &Caller, raw: &str) -> Result<ProjectId, AppError> {
    ProjectId::parse(raw).map_err(|_| not_callers_project(caller))
}

/// A project an API key names (publishing, which only keys do).
pub(crate) fn project_for_key(raw: &str) -> Result<ProjectId, AppError> {
    ProjectId::parse(raw).map_err(|_| not_the_keys_project())
}

/// A publish (`updateId` in the API).
pub(crate) fn update(raw: &str) -> Result<PublishId, AppError> {
    PublishId::parse(raw).map_err(|_| not_found::update(raw))
}

/// A project's API key (its record id, not its secret).
pub(crate) fn api_key(raw: &str) -> Result<ApiKeyId, AppError> {
    ApiKeyId::parse(raw).map_err(|_| not_found::api_key())
}

/// A member of a project, by user id.
pub(crate) fn member(raw: &str) -> Result<UserId, AppError> {
    UserId::parse(raw).map_err(|_| not_found::member())
}

/// A project's code-signing key, by the key id devices name.
pub(crate) fn signing_key(raw: &str) -> Result<SigningKeyId, AppError> {
    SigningKeyId::parse(raw).map_err(|_| not_found::signing_key())
}
