//! Release management: channels, branches, update history, rollouts,
//! republish and delete. Members call them under `/api/projects/{id}/...`
//! with a session token; release pipelines call the same operations under
//! `/api/updates/{project}/...` with the project's API key.

use application::{Caller, ChannelChange, HistoryRequest, NewChannel, Patch, RepublishRequest};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::schema::{
    BranchBody, BundlePatchesBody, ChangeChannelRequest, ChannelBody, CreateChannelRequest,
    RepublishRequest as RepublishBody, RolloutRequest, UpdateDetailBody, UpdatePageBody,
    UpdatePatchesBody, UpdateSummaryBody,
};
use crate::security::{ApiKeyAuth, UserAuth};
use application::Services;

#[derive(Default)]
pub struct ReleasesApi;

/// The same operations for release pipelines, with the project's API key.
#[derive(Default)]
pub struct PipelineReleasesApi;

#[derive(ApiResponse)]
enum ChannelCreated {
    /// The channel's mapping.
    #[oai(status = 201)]
    Created(Json<ChannelBody>),
}

#[derive(ApiResponse)]
enum Republished {
    /// The new update.
    #[oai(status = 201)]
    Created(Json<UpdateSummaryBody>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

error_responses!(ReadError {
    /// An invalid filter, limit or cursor.
    BadRequest = 400,
    /// Missing or invalid credentials.
    Unauthorized = 401,
    /// Not a member (or no such project), or a key of another project.
    Forbidden = 403,
    /// No such update in this project.
    NotFound = 404,
});

error_responses!(WriteError {
    /// A field breaks the rules; the message names it.
    BadRequest = 400,
    /// Missing or invalid credentials.
    Unauthorized = 401,
    /// Not a member (or no such project), not an owner where one is needed,
    /// or a key of another project.
    Forbidden = 403,
    /// No such update or channel in this project.
    NotFound = 404,
    /// The channel already exists, or storage changed under a republish.
    Conflict = 409,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
});

fn history_request(
    branch: Query<Option<String>>,
    runtime_version: Query<Option<String>>,
    platform: Query<Option<String>>,
    cursor: Query<Option<String>>,
    limit: Query<Option<u64>>,
) -> HistoryRequest {
    HistoryRequest {
        branch: branch.0,
        runtime_version: runtime_version.0,
        platform: platform.0,
        cursor: cursor.0,
        limit: limit.0,
    }
}

fn new_channel(body: CreateChannelRequest) -> NewChannel {
    NewChannel {
        name: body.name,
        branch: body.branch,
        rollout_branch: body.rollout_branch,
        rollout_percentage: body.rollout_percentage,
    }
}

fn patch<T>(value: MaybeUndefined<T>) -> Patch<T> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(value) => Patch::Set(value),
    }
}

fn channel_change(body: ChangeChannelRequest) -> ChannelChange {
    ChannelChange {
        branch: body.branch,
        rollout_branch: patch(body.rollout_branch),
        rollout_percentage: patch(body.rollout_percentage),
    }
}

fn republish_request(body: RepublishBody) -> RepublishRequest {
    RepublishRequest {
        branch: body.branch,
        message: body.message,
        rollout_percentage: body.rollout_percentage,
    }
}

/// The operations, shared by both APIs: only the caller differs. Each
/// parses the ids of its path (`p`, the project; `update`, a publish) first.
mod ops {
    // This file's items (the inline module's parent is this file).
    use crate::api::releases::*;

    pub async fn list_channels(
        s: &Services,
        c: &Caller,
        p: &str,
    ) -> Result<Json<Vec<ChannelBody>>, ReadError> {
        let p = &ids::project_for(c, p)?;
        let channels = s.releases.list_channels(c, p).await?;
        Ok(Json(channels.iter().map(ChannelBody::from).collect()))
    }

    pub async fn create_channel(
        s: &Services,
        c: &Caller,
        p: &str,
        body: CreateChannelRequest,
    ) -> Result<ChannelCreated, WriteError> {
        let p = &ids::project_for(c, p)?;
        let channel = s.releases.create_channel(c, p, &new_channel(body)).await?;
        Ok(ChannelCreated::Created(Json((&channel).into())))
    }

    pub async fn change_channel(
        s: &Services,
        c: &Caller,
        p: &str,
        name: &str,
        body: ChangeChannelRequest,
    ) -> Result<Json<ChannelBody>, WriteError> {
        let p = &ids::project_for(c, p)?;
        let channel = s
            .releases
            .change_channel(c, p, name, &channel_change(body))
            .await?;
        Ok(Json((&channel).into()))
    }

    pub async fn delete_channel(
        s: &Services,
        c: &Caller,
        p: &str,
        name: &str,
    ) -> Result<Deleted, WriteError> {
        let p = &ids::project_for(c, p)?;
        s.releases.delete_channel(c, p, name).await?;
        Ok(Deleted::NoContent)
    }

    pub async fn branches(
        s: &Services,
        c: &Caller,
        p: &str,
    ) -> Result<Json<Vec<BranchBody>>, ReadError> {
        let p = &ids::project_for(c, p)?;
        let branches = s.releases.branches(c, p).await?;
        Ok(Json(branches.iter().map(BranchBody::from).collect()))
    }

    pub async fn history(
        s: &Services,
        c: &Caller,
        p: &str,
        request: HistoryRequest,
    ) -> Result<Json<UpdatePageBody>, ReadError> {
        let p = &ids::project_for(c, p)?;
        Ok(Json(s.releases.history(c, p, &request).await?.into()))
    }

    pub async fn get(
        s: &Services,
        c: &Caller,
        p: &str,
        update: &str,
    ) -> Result<Json<UpdateDetailBody>, ReadError> {
        let p = &ids::project_for(c, p)?;
        let update = &ids::update(update)?;
        Ok(Json((&s.releases.get(c, p, update).await?).into()))
    }

    pub async fn patches(
        s: &Services,
        c: &Caller,
        p: &str,
        update: &str,
    ) -> Result<Json<UpdatePatchesBody>, ReadError> {
        let p = &ids::project_for(c, p)?;
        let update = &ids::update(update)?;
        let platforms = s.patches.of_publish(c, p, update).await?;
        Ok(Json(UpdatePatchesBody {
            enabled: s.patches.policy().enabled(),
            platforms: platforms.iter().map(BundlePatchesBody::from).collect(),
        }))
    }

    pub async fn set_rollout(
        s: &Services,
        c: &Caller,
        p: &str,
        update: &str,
        body: RolloutRequest,
    ) -> Result<Json<UpdateSummaryBody>, WriteError> {
        let p = &ids::project_for(c, p)?;
        let update = &ids::update(update)?;
        let group = s
            .releases
            .set_rollout(c, p, update, body.rollout_percentage)
            .await?;
        Ok(Json((&group).into()))
    }

    pub async fn republish(
        s: &Services,
        c: &Caller,
        p: &str,
        update: &str,
        body: RepublishBody,
    ) -> Result<Republished, WriteError> {
        let p = &ids::project_for(c, p)?;
        let update = &ids::update(update)?;
        let request = republish_request(body);
        let published = s.publish.republish(c, p, update, &request).await?;
        let group = application::UpdateGroup::group(published.updates)
            .pop()
            .ok_or_else(|| application::AppError::internal("republish stored nothing"))?;
        Ok(Republished::Created(Json((&group).into())))
    }

    pub async fn delete(
        s: &Services,
        c: &Caller,
        p: &str,
        update: &str,
    ) -> Result<Deleted, WriteError> {
        let p = &ids::project_for(c, p)?;
        let update = &ids::update(update)?;
        s.releases.delete(c, p, update).await?;
        Ok(Deleted::NoContent)
    }
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Releases")]
impl ReleasesApi {
    /// List a project's channels (members)
    #[oai(path = "/projects/:id/channels", method = "get")]
    async fn list_channels(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<Vec<ChannelBody>>, ReadError> {
        ops::list_channels(&services, &Caller::User(auth.0), &id).await
    }

    /// Create a channel → branch mapping (members)
    #[oai(path = "/projects/:id/channels", method = "post")]
    async fn create_channel(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<CreateChannelRequest>,
    ) -> Result<ChannelCreated, WriteError> {
        ops::create_channel(&services, &Caller::User(auth.0), &id, body.0).await
    }

    /// Repoint a channel, or split it between two branches (members)
    ///
    /// Absent fields stay as they are. A channel that has no mapping yet
    /// (it serves the branch of its own name) gets one.
    #[oai(path = "/projects/:id/channels/:name", method = "patch")]
    async fn change_channel(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        name: Path<String>,
        body: Json<ChangeChannelRequest>,
    ) -> Result<Json<ChannelBody>, WriteError> {
        ops::change_channel(&services, &Caller::User(auth.0), &id, &name, body.0).await
    }

    /// Remove a channel's mapping: it serves the branch of its own name again (members)
    #[oai(path = "/projects/:id/channels/:name", method = "delete")]
    async fn delete_channel(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        name: Path<String>,
    ) -> Result<Deleted, WriteError> {
        ops::delete_channel(&services, &Caller::User(auth.0), &id, &name).await
    }

    /// Branches with their latest update per runtime version and platform (members)
    #[oai(path = "/projects/:id/branches", method = "get")]
    async fn branches(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<Vec<BranchBody>>, ReadError> {
        ops::branches(&services, &Caller::User(auth.0), &id).await
    }

    /// Update history, newest first, cursor-paginated (members)
    #[oai(path = "/projects/:id/updates", method = "get")]
    #[expect(
        clippy::too_many_arguments,
        reason = "a poem-openapi operation takes each parameter as an argument"
    )]
    async fn history(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        branch: Query<Option<String>>,
        #[oai(name = "runtimeVersion")] runtime_version: Query<Option<String>>,
        platform: Query<Option<String>>,
        cursor: Query<Option<String>>,
        /// 1 to 100; default 20.
        limit: Query<Option<u64>>,
    ) -> Result<Json<UpdatePageBody>, ReadError> {
        let request = history_request(branch, runtime_version, platform, cursor, limit);
        ops::history(&services, &Caller::User(auth.0), &id, request).await
    }

    /// One update with its files (members)
    #[oai(path = "/projects/:id/updates/:updateId", method = "get")]
    async fn get(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Json<UpdateDetailBody>, ReadError> {
        ops::get(&services, &Caller::User(auth.0), &id, &update_id).await
    }

    /// The bundle patches of an update: per platform, the patches to its launch bundle (members)
    #[oai(path = "/projects/:id/updates/:updateId/patches", method = "get")]
    async fn patches(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Json<UpdatePatchesBody>, ReadError> {
        ops::patches(&services, &Caller::User(auth.0), &id, &update_id).await
    }

    /// Change an update's rollout percentage: 100 completes it, 0 halts it (members)
    #[oai(path = "/projects/:id/updates/:updateId", method = "patch")]
    async fn set_rollout(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
        body: Json<RolloutRequest>,
    ) -> Result<Json<UpdateSummaryBody>, WriteError> {
        ops::set_rollout(&services, &Caller::User(auth.0), &id, &update_id, body.0).await
    }

    /// Republish an update as the latest of a branch: rollback to it, or promotion (members)
    #[oai(path = "/projects/:id/updates/:updateId/republish", method = "post")]
    async fn republish(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
        body: Json<RepublishBody>,
    ) -> Result<Republished, WriteError> {
        ops::republish(&services, &Caller::User(auth.0), &id, &update_id, body.0).await
    }

    /// Delete an update: the one before it is served again (owners)
    #[oai(path = "/projects/:id/updates/:updateId", method = "delete")]
    async fn delete(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Deleted, WriteError> {
        ops::delete(&services, &Caller::User(auth.0), &id, &update_id).await
    }
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Releases")]
impl PipelineReleasesApi {
    /// List the project's channels (API key)
    #[oai(path = "/updates/:project/channels", method = "get")]
    async fn key_list_channels(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
    ) -> Result<Json<Vec<ChannelBody>>, ReadError> {
        ops::list_channels(&services, &Caller::Key(auth.0), &project).await
    }

    /// Create a channel → branch mapping (API key)
    #[oai(path = "/updates/:project/channels", method = "post")]
    async fn key_create_channel(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        body: Json<CreateChannelRequest>,
    ) -> Result<ChannelCreated, WriteError> {
        ops::create_channel(&services, &Caller::Key(auth.0), &project, body.0).await
    }

    /// Repoint a channel, or split it between two branches (API key)
    #[oai(path = "/updates/:project/channels/:name", method = "patch")]
    async fn key_change_channel(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        name: Path<String>,
        body: Json<ChangeChannelRequest>,
    ) -> Result<Json<ChannelBody>, WriteError> {
        ops::change_channel(&services, &Caller::Key(auth.0), &project, &name, body.0).await
    }

    /// Remove a channel's mapping (API key)
    #[oai(path = "/updates/:project/channels/:name", method = "delete")]
    async fn key_delete_channel(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        name: Path<String>,
    ) -> Result<Deleted, WriteError> {
        ops::delete_channel(&services, &Caller::Key(auth.0), &project, &name).await
    }

    /// Branches with their latest update per runtime version and platform (API key)
    #[oai(path = "/updates/:project/branches", method = "get")]
    async fn key_branches(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
    ) -> Result<Json<Vec<BranchBody>>, ReadError> {
        ops::branches(&services, &Caller::Key(auth.0), &project).await
    }

    /// Update history, newest first, cursor-paginated (API key)
    #[oai(path = "/updates/:project/updates", method = "get")]
    #[expect(
        clippy::too_many_arguments,
        reason = "a poem-openapi operation takes each parameter as an argument"
    )]
    async fn key_history(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        branch: Query<Option<String>>,
        #[oai(name = "runtimeVersion")] runtime_version: Query<Option<String>>,
        platform: Query<Option<String>>,
        cursor: Query<Option<String>>,
        /// 1 to 100; default 20.
        limit: Query<Option<u64>>,
    ) -> Result<Json<UpdatePageBody>, ReadError> {
        let request = history_request(branch, runtime_version, platform, cursor, limit);
        ops::history(&services, &Caller::Key(auth.0), &project, request).await
    }

    /// One update with its files (API key)
    #[oai(path = "/updates/:project/updates/:updateId", method = "get")]
    async fn key_get(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Json<UpdateDetailBody>, ReadError> {
        ops::get(&services, &Caller::Key(auth.0), &project, &update_id).await
    }

    /// The bundle patches of an update (API key)
    #[oai(path = "/updates/:project/updates/:updateId/patches", method = "get")]
    async fn key_patches(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Json<UpdatePatchesBody>, ReadError> {
        ops::patches(&services, &Caller::Key(auth.0), &project, &update_id).await
    }

    /// Change an update's rollout percentage (API key)
    #[oai(path = "/updates/:project/updates/:updateId", method = "patch")]
    async fn key_set_rollout(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
        body: Json<RolloutRequest>,
    ) -> Result<Json<UpdateSummaryBody>, WriteError> {
        ops::set_rollout(
            &services,
            &Caller::Key(auth.0),
            &project,
            &update_id,
            body.0,
        )
        .await
    }

    /// Republish an update as the latest of a branch (API key)
    #[oai(
        path = "/updates/:project/updates/:updateId/republish",
        method = "post"
    )]
    async fn key_republish(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
        body: Json<RepublishBody>,
    ) -> Result<Republished, WriteError> {
        ops::republish(
            &services,
            &Caller::Key(auth.0),
            &project,
            &update_id,
            body.0,
        )
        .await
    }

    /// Delete an update (API key)
    #[oai(path = "/updates/:project/updates/:updateId", method = "delete")]
    async fn key_delete(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Deleted, WriteError> {
        ops::delete(&services, &Caller::Key(auth.0), &project, &update_id).await
    }
}
