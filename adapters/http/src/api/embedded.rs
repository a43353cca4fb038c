//! Embedded bundles: the launch bundle built into an app binary, uploaded
//! so devices still running it get patches. Owners call these under
//! `/api/projects/{id}/embedded-bundles`, build pipelines under
//! `/api/updates/{project}/embedded-bundles` with the project's API key.

use application::{Caller, EmbeddedUpload, Services};
use domain::embedded::EmbeddedBundle;
use futures_util::TryStreamExt;
use poem::Body;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::security::{ApiKeyAuth, UserAuth};

#[derive(Default)]
pub struct EmbeddedApi;

/// An uploaded embedded bundle.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct EmbeddedBundleBody {
    /// The embedded update's id: the `id` of the build's `app.manifest`,
    /// which devices running it send as `Expo-Current-Update-ID`.
    pub update_id: String,
    pub runtime_version: String,
    pub platform: String,
    /// Lowercase hex SHA-256 of the bundle.
    pub sha256: String,
    pub size: u64,
    pub uploaded_at: String,
    pub uploaded_by: String,
}

impl From<EmbeddedBundle> for EmbeddedBundleBody {
    fn from(bundle: EmbeddedBundle) -> Self {
        Self {
            update_id: bundle.update_id.to_string(),
            runtime_version: bundle.runtime_version.as_str().to_owned(),
            platform: bundle.platform.as_str().to_owned(),
            sha256: bundle.sha256_hex,
            size: bundle.size,
            uploaded_at: crate::schema::timestamp(bundle.uploaded_at),
            uploaded_by: bundle.uploaded_by,
        }
    }
}

#[derive(ApiResponse)]
enum Uploaded {
    /// Stored; patches from it to the newest updates of its runtime
    /// version and platform are computed in the background.
    #[oai(status = 201)]
    Created(Json<EmbeddedBundleBody>),
}

#[derive(ApiResponse)]
enum Deleted {
    /// Forgotten: devices running it get full files again.
    #[oai(status = 204)]
    NoContent,
}

error_responses!(UploadError {
    /// A missing or invalid field, or an empty bundle.
    BadRequest = 400,
    /// Missing or invalid credentials.
    Unauthorized = 401,
    /// Not an owner (or no such project), or a key of another project.
    Forbidden = 403,
    /// The bundle is larger than diffing takes (64 MiB) or `MAX_UPLOAD_BYTES`.
    PayloadTooLarge = 413,
});

error_responses!(ReadError {
    /// Missing or invalid credentials.
    Unauthorized = 401,
    /// Not a member (or no such project), or a key of another project.
    Forbidden = 403,
});

error_responses!(DeleteError {
    /// Missing or invalid credentials.
    Unauthorized = 401,
    /// Not an owner (or no such project), or a key of another project.
    Forbidden = 403,
    /// No embedded bundle of that update id.
    NotFound = 404,
});

/// The upload's fields, named as in the query string. One left out is
/// empty, and refused by the service with a message that names it.
struct UploadQuery {
    update_id: String,
    runtime_version: String,
    platform: String,
}

impl UploadQuery {
    fn new(
        update_id: Query<Option<String>>,
        runtime_version: Query<Option<String>>,
        platform: Query<Option<String>>,
    ) -> Self {
        Self {
            update_id: update_id.0.unwrap_or_default(),
            runtime_version: runtime_version.0.unwrap_or_default(),
            platform: platform.0.unwrap_or_default(),
        }
    }
}

/// Shared by the owners' and the pipelines' routes.
mod ops {
    // This file's items (the inline module's parent is this file).
    use crate::api::embedded::*;

    pub async fn upload(
        s: &Services,
        c: &Caller,
        p: &str,
        query: UploadQuery,
        body: Body,
    ) -> Result<Uploaded, UploadError> {
        let p = &ids::project_for(c, p)?;
        let upload = EmbeddedUpload {
            update_id: query.update_id,
            runtime_version: query.runtime_version,
            platform: query.platform,
            bundle: Box::pin(body.into_bytes_stream().map_err(std::io::Error::other)),
        };
        let bundle = s.patches.upload_embedded(c, p, upload).await?;
        Ok(Uploaded::Created(Json(bundle.into())))
    }

    pub async fn list(
        s: &Services,
        c: &Caller,
        p: &str,
    ) -> Result<Json<Vec<EmbeddedBundleBody>>, ReadError> {
        let p = &ids::project_for(c, p)?;
        let bundles = s.patches.embedded_bundles(c, p).await?;
        Ok(Json(bundles.into_iter().map(Into::into).collect()))
    }

    pub async fn delete(
        s: &Services,
        c: &Caller,
        p: &str,
        update_id: &str,
    ) -> Result<Deleted, DeleteError> {
        let p = &ids::project_for(c, p)?;
        s.patches.delete_embedded(c, p, update_id).await?;
        Ok(Deleted::NoContent)
    }
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Updates")]
impl EmbeddedApi {
    /// Upload the launch bundle embedded in a build, so devices still running it get patches (owners)
    ///
    /// The body is the bundle itself (`application/octet-stream`), byte for
    /// byte as embedded in the app binary (the `npx expo export` bundle of
    /// the same build). Patches against it are served once the project's
    /// `patchFromEmbedded` is on.
    #[oai(path = "/projects/:id/embedded-bundles", method = "post")]
    #[expect(
        clippy::too_many_arguments,
        reason = "one parameter per field of the route"
    )]
    async fn upload(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        /// The embedded update's id: the `id` of the build's `app.manifest`.
        #[oai(name = "updateId")]
        update_id: Query<Option<String>>,
        #[oai(name = "runtimeVersion")] runtime_version: Query<Option<String>>,
        /// `android` or `ios`.
        platform: Query<Option<String>>,
        body: Binary<Body>,
    ) -> Result<Uploaded, UploadError> {
        let query = UploadQuery::new(update_id, runtime_version, platform);
        ops::upload(&services, &Caller::User(auth.0), &id, query, body.0).await
    }

    /// List the project's embedded bundles, newest first (members)
    #[oai(path = "/projects/:id/embedded-bundles", method = "get")]
    async fn list(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<Vec<EmbeddedBundleBody>>, ReadError> {
        ops::list(&services, &Caller::User(auth.0), &id).await
    }

    /// Forget an embedded bundle (owners)
    #[oai(path = "/projects/:id/embedded-bundles/:updateId", method = "delete")]
    async fn delete(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Deleted, DeleteError> {
        ops::delete(&services, &Caller::User(auth.0), &id, &update_id).await
    }

    /// Upload the launch bundle embedded in a build (API key)
    #[oai(path = "/updates/:project/embedded-bundles", method = "post")]
    #[expect(
        clippy::too_many_arguments,
        reason = "one parameter per field of the route"
    )]
    async fn key_upload(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        /// The embedded update's id: the `id` of the build's `app.manifest`.
        #[oai(name = "updateId")]
        update_id: Query<Option<String>>,
        #[oai(name = "runtimeVersion")] runtime_version: Query<Option<String>>,
        /// `android` or `ios`.
        platform: Query<Option<String>>,
        body: Binary<Body>,
    ) -> Result<Uploaded, UploadError> {
        let query = UploadQuery::new(update_id, runtime_version, platform);
        ops::upload(&services, &Caller::Key(auth.0), &project, query, body.0).await
    }

    /// List the project's embedded bundles (API key)
    #[oai(path = "/updates/:project/embedded-bundles", method = "get")]
    async fn key_list(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
    ) -> Result<Json<Vec<EmbeddedBundleBody>>, ReadError> {
        ops::list(&services, &Caller::Key(auth.0), &project).await
    }

    /// Forget an embedded bundle (API key)
    #[oai(
        path = "/updates/:project/embedded-bundles/:updateId",
        method = "delete"
    )]
    async fn key_delete(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        #[oai(name = "updateId")] update_id: Path<String>,
    ) -> Result<Deleted, DeleteError> {
        ops::delete(&services, &Caller::Key(auth.0), &project, &update_id).await
    }
}
