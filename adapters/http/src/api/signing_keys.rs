//! `/api/projects/{id}/signing-keys`: a project's own code-signing keys.
//! Owners upload or generate them and remove them; members list them.
//! Private keys go in and never come out.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::security::UserAuth;
use application::Services;

#[derive(Default)]
pub struct SigningKeysApi;

/// A signing key, without its private part.
#[derive(Debug, Object)]
pub struct SigningKeyBody {
    /// The `keyid` apps name in `codeSigningMetadata.keyid`.
    #[oai(rename = "keyId")]
    pub key_id: String,
    /// The certificate (PEM) apps embed as `updates.codeSigningCertificate`,
    /// when known.
    pub certificate: Option<String>,
    /// Whether this key signs for devices that name no key id (the newest).
    pub active: bool,
    #[oai(rename = "createdAt")]
    pub created_at: DateTime<Utc>,
    #[oai(rename = "createdBy")]
    pub created_by: Option<String>,
}

// No `Debug`: it holds a private key.
/// An existing key to add.
#[derive(Object)]
pub struct UploadSigningKeyRequest {
    #[oai(rename = "keyId")]
    pub key_id: String,
    /// PEM RSA private key, PKCS#1 or PKCS#8, unencrypted.
    #[oai(rename = "privateKey")]
    pub private_key: String,
    /// The key's certificate (PEM); checked against the key when given.
    pub certificate: Option<String>,
}

/// A key for the server to generate, with a self-signed code-signing
/// certificate.
#[derive(Debug, Object)]
pub struct GenerateSigningKeyRequest {
    #[oai(rename = "keyId")]
    pub key_id: String,
    /// The certificate's common name; `expo-updates-server` when absent.
    #[oai(rename = "commonName")]
    pub common_name: Option<String>,
    /// 1 to 100; 10 when absent.
    #[oai(rename = "validityYears")]
    pub validity_years: Option<u32>,
}

#[derive(ApiResponse)]
enum SigningKeyAdded {
    /// The key, without its private part.
    #[oai(status = 201)]
    Created(Json<SigningKeyBody>),
}

#[derive(ApiResponse)]
enum SigningKeyRemoved {
    /// Done: devices naming this key id get a 400 from now on.
    #[oai(status = 204)]
    NoContent,
}

error_responses!(AddSigningKeyError {
    /// A key id, PEM or certificate that cannot be used; the message says why.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// The project already has a key with this key id, or holds as many
    /// keys as it may; or the server cannot store project keys: set
    /// `SIGNING_KEY_ENCRYPTION_KEY` on it (and restart) to add them.
    Conflict = 409,
});

error_responses!(ListSigningKeysError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project).
    Forbidden = 403,
});

error_responses!(RemoveSigningKeyError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
    /// Not a member (or no such project), or not an owner.
    Forbidden = 403,
    /// No key with that key id in this project.
    NotFound = 404,
});

fn body(key: domain::signing_key::SigningKey, active: bool) -> SigningKeyBody {
    SigningKeyBody {
        key_id: key.key_id.as_str().to_owned(),
        certificate: key.certificate_pem,
        active,
        created_at: key.created_at,
        created_by: key.created_by,
    }
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Keys")]
impl SigningKeysApi {
    /// Add an existing code-signing key to the project (owners)
    #[oai(path = "/projects/:id/signing-keys", method = "post")]
    async fn upload(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<UploadSigningKeyRequest>,
    ) -> Result<SigningKeyAdded, AddSigningKeyError> {
        let Json(request) = body;
        let new_key = application::NewSigningKey::Upload {
            key_id: request.key_id,
            private_key_pem: request.private_key,
            certificate_pem: request.certificate,
        };
        let key = services
            .signing_keys
            .add(&auth.0, &ids::project(&id)?, new_key)
            .await?;
        Ok(SigningKeyAdded::Created(Json(self::body(key, true))))
    }

    /// Generate a code-signing key and certificate for the project (owners)
    ///
    /// The answer holds the certificate to put in the app
    /// (`updates.codeSigningCertificate`); the private key stays on the
    /// server.
    #[oai(path = "/projects/:id/signing-keys/generate", method = "post")]
    async fn generate(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<GenerateSigningKeyRequest>,
    ) -> Result<SigningKeyAdded, AddSigningKeyError> {
        let Json(request) = body;
        let new_key = application::NewSigningKey::Generate {
            key_id: request.key_id,
            common_name: request.common_name,
            validity_years: request.validity_years,
        };
        let key = services
            .signing_keys
            .add(&auth.0, &ids::project(&id)?, new_key)
            .await?;
        Ok(SigningKeyAdded::Created(Json(self::body(key, true))))
    }

    /// The project's code-signing keys, newest first (members)
    #[oai(path = "/projects/:id/signing-keys", method = "get")]
    async fn list(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
    ) -> Result<Json<Vec<SigningKeyBody>>, ListSigningKeysError> {
        let keys = services
            .signing_keys
            .list(&auth.0, &ids::project(&id)?)
            .await?;
        Ok(Json(
            keys.into_iter()
                .enumerate()
                .map(|(index, key)| self::body(key, index == 0))
                .collect(),
        ))
    }

    /// Remove a code-signing key (owners)
    #[oai(path = "/projects/:id/signing-keys/:keyId", method = "delete")]
    async fn remove(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        #[oai(name = "keyId")] key_id: Path<String>,
    ) -> Result<SigningKeyRemoved, RemoveSigningKeyError> {
        let (project, key) = (ids::project(&id)?, ids::signing_key(&key_id)?);
        services
            .signing_keys
            .remove(&auth.0, &project, &key)
            .await?;
        Ok(SigningKeyRemoved::NoContent)
    }
}
