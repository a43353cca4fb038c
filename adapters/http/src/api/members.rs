//! `/api/projects/{id}/users`: add, list, change and remove members.

use application::MemberRef;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::schema::{AddMemberRequest, ChangeRoleRequest, MemberBody, MembershipBody};
use crate::security::UserAuth;
use application::Services;

#[derive(Default)]
pub struct MembersApi;

#[derive(ApiResponse)]
enum MemberAdded {
    /// The new membership.
    #[oai(status = 201)]
    Created(Json<MembershipBody>),
}

#[derive(ApiResponse)]
enum MemberRemoved {
    /// The user is no longer a member.
    #[oai(status = 204)]
    NoContent,
}

error_responses!(ListMembersError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project: the answer is the same).
    Forbidden = 403,
});

error_responses!(ChangeMemberError {
    /// No user named, or a role other than `owner` or `member`.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// No such user, or the user is not a member.
    NotFound = 404,
    /// Already a member, or the change would leave the project without an owner.
    Conflict = 409,
});

error_responses!(RemoveMemberError {
    /// Owners cannot remove themselves.
    BadRequest = 400,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// The user is not a member.
    NotFound = 404,
    /// The change would leave the project without an owner.
    Conflict = 409,
});

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Members")]
impl MembersApi {
    /// Add a member by user id, username or email (owners)
    #[oai(path = "/projects/:id/users", method = "post")]
    async fn add(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<AddMemberRequest>,
    ) -> Result<MemberAdded, ChangeMemberError> {
        let Json(body) = body;
        let who = MemberRef::from_fields(body.user_id, body.username, body.email)?;
        let project = ids::project(&id)?;
        let membership = services
            .members
            .add(&auth.0, &project, who, &body.role)
            .await?;
        Ok(MemberAdded::Created(Json(membership.into())))
    }

    /// The project's members with usernames and emails (members)
    #[oai(path = "/projects/:id/users", method = "get")]
    async fn list(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<Vec<MemberBody>>, ListMembersError> {
        let members = services.members.list(&auth.0, &ids::project(&id)?).await?;
        Ok(Json(members.into_iter().map(Into::into).collect()))
    }

    /// Change a member's role (owners)
    #[oai(path = "/projects/:id/users/:userId", method = "patch")]
    async fn change_role(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "userId")] user_id: Path<String>,
        body: Json<ChangeRoleRequest>,
    ) -> Result<Json<MembershipBody>, ChangeMemberError> {
        let (project, user) = (ids::project(&id)?, ids::member(&user_id)?);
        let membership = services
            .members
            .change_role(&auth.0, &project, &user, &body.role)
            .await?;
        Ok(Json(membership.into()))
    }

    /// Remove a member (owners)
    #[oai(path = "/projects/:id/users/:userId", method = "delete")]
    async fn remove(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "userId")] user_id: Path<String>,
    ) -> Result<MemberRemoved, RemoveMemberError> {
        let (project, user) = (ids::project(&id)?, ids::member(&user_id)?);
        services.members.remove(&auth.0, &project, &user).await?;
        Ok(MemberRemoved::NoContent)
    }
}
