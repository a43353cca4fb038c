//! `/api/projects`: create, list, read, change and delete projects.

use application::ProjectChanges;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::schema::{CreateProjectRequest, ProjectBody, UpdateProjectRequest};
use crate::security::UserAuth;
use application::Services;

#[derive(Default)]
pub struct ProjectsApi;

#[derive(ApiResponse)]
enum ProjectCreated {
    /// The project, owned by the caller.
    #[oai(status = 201)]
    Created(Json<ProjectBody>),
}

#[derive(ApiResponse)]
enum ProjectDeleted {
    /// The project, its members and its keys are gone.
    #[oai(status = 204)]
    NoContent,
}

error_responses!(CreateProjectError {
    /// Missing name or slug, or a slug outside `[a-z0-9-]`.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// The slug is taken.
    Conflict = 409,
});

error_responses!(ListProjectsError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
});

error_responses!(ProjectAccessError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project: the answer is the same), or not an owner.
    Forbidden = 403,
});

error_responses!(UpdateProjectError {
    /// A name or slug that breaks the rules.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// The slug is taken.
    Conflict = 409,
});

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Projects")]
impl ProjectsApi {
    /// Create a project
    #[oai(path = "/projects", method = "post")]
    async fn create(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        body: Json<CreateProjectRequest>,
    ) -> Result<ProjectCreated, CreateProjectError> {
        let project = services
            .projects
            .create(&auth.0, &body.name, &body.slug)
            .await?;
        Ok(ProjectCreated::Created(Json(project.into())))
    }

    /// The caller's projects, newest first
    #[oai(path = "/projects", method = "get")]
    async fn list(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
    ) -> Result<Json<Vec<ProjectBody>>, ListProjectsError> {
        let projects = services.projects.list(&auth.0).await?;
        Ok(Json(projects.into_iter().map(Into::into).collect()))
    }

    /// A project (members)
    #[oai(path = "/projects/:id", method = "get")]
    async fn get(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<ProjectBody>, ProjectAccessError> {
        let project = services.projects.get(&auth.0, &ids::project(&id)?).await?;
        Ok(Json(project.into()))
    }

    /// Rename a project or change its slug (owners)
    #[oai(path = "/projects/:id", method = "patch")]
    async fn update(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<UpdateProjectRequest>,
    ) -> Result<Json<ProjectBody>, UpdateProjectError> {
        let Json(body) = body;
        let changes = ProjectChanges {
            name: body.name,
            slug: body.slug,
            patch_from_embedded: body.patch_from_embedded,
        };
        let project = services
            .projects
            .update(&auth.0, &ids::project(&id)?, changes)
            .await?;
        Ok(Json(project.into()))
    }

    /// Delete a project with its members and keys (owners)
    #[oai(path = "/projects/:id", method = "delete")]
    async fn delete(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<ProjectDeleted, ProjectAccessError> {
        services
            .projects
            .delete(&auth.0, &ids::project(&id)?)
            .await?;
        Ok(ProjectDeleted::NoContent)
    }
}
