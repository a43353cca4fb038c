//! The tags that group the REST API's operations in the OpenAPI document.

use poem_openapi::Tags;

#[derive(Tags)]
pub(super) enum ApiTags {
    /// Accounts and session tokens.
    Auth,
    /// Projects: the tenant boundary.
    Projects,
    /// Who belongs to a project, and with which role.
    Members,
    /// API keys that release pipelines publish with.
    Keys,
    /// Publishing and serving updates (the Expo Updates protocol).
    Updates,
    /// Branches, channels, rollouts, history, republish and delete.
    Releases,
}
