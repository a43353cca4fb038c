//! `/api/projects/{id}/keys`: create, list, rename and revoke API keys; and
//! `/api/keys/current`, which tells a pipeline whether its key works.

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::schema::{CreateKeyRequest, CreatedKeyBody, KeyBody, RenameKeyRequest};
use crate::security::{ApiKeyAuth, UserAuth};
use application::Services;

#[derive(Default)]
pub struct ApiKeysApi;

#[derive(ApiResponse)]
enum KeyCreated {
    /// The key and its secret, which is never shown again.
    #[oai(status = 201)]
    Created(Json<CreatedKeyBody>),
}

#[derive(ApiResponse)]
enum KeyChanged {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

error_responses!(CreateKeyError {
    /// A name that breaks the rules.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
});

error_responses!(ListKeysError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
});

error_responses!(RenameKeyError {
    /// Missing or empty name.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// No key with that id in this project.
    NotFound = 404,
});

error_responses!(RevokeKeyError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// No key with that id in this project.
    NotFound = 404,
});

error_responses!(CurrentKeyError {
    /// Missing, unknown or revoked API key.
    Unauthorized = 401,
});

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Keys")]
impl ApiKeysApi {
    /// Create an API key (owners)
    #[oai(path = "/projects/:id/keys", method = "post")]
    async fn create(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<CreateKeyRequest>,
    ) -> Result<KeyCreated, CreateKeyError> {
        let created = services
            .api_keys
            .create(&auth.0, &ids::project(&id)?, body.name.as_deref())
            .await?;
        Ok(KeyCreated::Created(Json(CreatedKeyBody {
            key: created.key.into(),
            secret: created.secret,
        })))
    }

    /// The project's API keys, without secrets (owners)
    #[oai(path = "/projects/:id/keys", method = "get")]
    async fn list(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<Vec<KeyBody>>, ListKeysError> {
        let keys = services.api_keys.list(&auth.0, &ids::project(&id)?).await?;
        Ok(Json(keys.into_iter().map(Into::into).collect()))
    }

    /// Rename an API key (owners)
    #[oai(path = "/projects/:id/keys/:keyId", method = "patch")]
    async fn rename(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "keyId")] key_id: Path<String>,
        body: Json<RenameKeyRequest>,
    ) -> Result<KeyChanged, RenameKeyError> {
        let (project, key) = (ids::project(&id)?, ids::api_key(&key_id)?);
        services
            .api_keys
            .rename(&auth.0, &project, &key, &body.name)
            .await?;
        Ok(KeyChanged::NoContent)
    }

    /// Revoke an API key; it stops working at once (owners)
    #[oai(path = "/projects/:id/keys/:keyId", method = "delete")]
    async fn revoke(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "keyId")] key_id: Path<String>,
    ) -> Result<KeyChanged, RevokeKeyError> {
        let (project, key) = (ids::project(&id)?, ids::api_key(&key_id)?);
        services.api_keys.revoke(&auth.0, &project, &key).await?;
        Ok(KeyChanged::NoContent)
    }

    /// The API key presented, so a pipeline can check its secret before publishing
    #[oai(path = "/keys/current", method = "get")]
    async fn current(&self, auth: ApiKeyAuth) -> Result<Json<KeyBody>, CurrentKeyError> {
        Ok(Json(auth.0.into()))
    }
}
