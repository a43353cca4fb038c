//! `/api/updates/{project}`: what release pipelines and Expo apps call.

use application::{
    AppError, AppResult, Caller, FormText, PartKind, RollbackRequest, UploadPart, UploadParts,
};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use poem::web::Data;
use poem::{Request, RequestBody};
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, Object, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::ids;
use crate::rate_limit::publish as rate_limited_publish;
use crate::security::{ApiKeyAuth, UserAuth};
use application::Services;

#[derive(Default)]
pub struct UpdatesApi;

/// The answer to a publish, with the old server's field names.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct PublishedBody {
    /// Shared by the platforms published together.
    pub update_id: String,
    pub message: String,
    /// The branch the update was published to.
    pub branch: String,
    pub platforms: Vec<String>,
    /// The share of devices it is served to.
    pub rollout_percentage: u8,
}

impl PublishedBody {
    fn new(published: application::Published, message: &str) -> Self {
        let first = published.updates.first();
        Self {
            update_id: published.publish_id.to_string(),
            message: message.to_owned(),
            branch: first
                .map(|u| u.branch.as_str().to_owned())
                .unwrap_or_default(),
            platforms: published
                .updates
                .iter()
                .map(|u| u.platform.as_str().to_owned())
                .collect(),
            rollout_percentage: first.map_or(100, |u| u.rollout.value()),
        }
    }
}

error_responses!(PublishError {
    /// A field is missing or invalid; the message names the culprit.
    BadRequest = 400,
    /// Missing, unknown or revoked API key.
    Unauthorized = 401,
    /// The key belongs to another project.
    Forbidden = 403,
    /// A file named by hash was removed from storage meanwhile; upload it.
    Conflict = 409,
    /// The upload is larger than `MAX_UPLOAD_BYTES`.
    PayloadTooLarge = 413,
    /// Too many publishes to this project (`RATE_LIMIT_PUBLISH_PER_MINUTE`);
    /// `Retry-After` says when to try again.
    TooManyRequests = 429,
});

/// Files a publishing client has, by SHA-256.
#[derive(Debug, Object)]
pub struct FileHashesBody {
    /// Lowercase hex SHA-256 of each file (at most 10,000).
    pub sha256: Vec<String>,
}

/// The files the project does not have yet.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct MissingFilesBody {
    /// Upload these; name the others in the publish form as
    /// `sha256:<path>` = `<hash>`.
    pub missing: Vec<String>,
    /// The most file bytes one publish may upload (`MAX_UPLOAD_BYTES`), so
    /// a client can say so before sending a body the server would refuse.
    pub max_upload_bytes: u64,
}

error_responses!(MissingFilesError {
    /// A value is not a SHA-256 in hex, or there are too many.
    BadRequest = 400,
    /// Missing, unknown or revoked API key.
    Unauthorized = 401,
    /// The key belongs to another project.
    Forbidden = 403,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
});

/// What to roll back.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct RollbackBody {
    #[oai(default)]
    pub runtime_version: String,
    /// `ios` and/or `android`; all platforms when left out.
    pub platforms: Option<Vec<String>>,
    /// Default `main`.
    pub branch: Option<String>,
    pub message: Option<String>,
}

impl From<RollbackBody> for RollbackRequest {
    fn from(body: RollbackBody) -> Self {
        Self {
            runtime_version: body.runtime_version,
            platforms: body.platforms,
            branch: body.branch,
            message: body.message,
        }
    }
}

error_responses!(RollbackError {
    /// No or invalid runtimeVersion, or an unknown platform.
    BadRequest = 400,
    /// Missing or invalid credentials.
    Unauthorized = 401,
    /// The key belongs to another project, or the user is not a member.
    Forbidden = 403,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
});

fn rolled_back(published: application::Published) -> Json<PublishedBody> {
    Json(PublishedBody::new(
        published,
        "Rolled back to the embedded update",
    ))
}

/// The publish form, streamed part by part (never buffered whole).
pub struct PublishForm(multer::Multipart<'static>);

/// The most header bytes one part of the publish form may carry; real
/// clients send a `Content-Disposition` and a `Content-Type` (~200 bytes).
const MAX_PART_HEADER_BYTES: usize = 8 * 1024;

impl<'a> ApiExtractor<'a> for PublishForm {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(_registry: &mut Registry) {}

    fn request_meta() -> Option<MetaRequest> {
        let text = || MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")));
        let file =
            || MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "binary")));
        let schema = MetaSchema {
            description: Some(
                "The output of `npx expo export`: `runtimeVersion`, `metadata.json`, \
                 `expoConfig.json` (optional), optional `branch`, `message` and \
                 `rolloutPercentage`, and for each path listed in metadata.json either a \
                 file field named by that path, or (for a file the project already has, \
                 see `assets/missing`) a text field `sha256:<path>` holding its hex \
                 SHA-256. Unlisted fields are ignored.",
            ),
            required: vec!["runtimeVersion", "metadata.json"],
            properties: vec![
                ("runtimeVersion", text()),
                ("branch", text()),
                ("message", text()),
                ("rolloutPercentage", text()),
                ("metadata.json", file()),
                ("expoConfig.json", file()),
            ],
            additional_properties: Some(Box::new(file())),
            ..MetaSchema::new("object")
        };
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "multipart/form-data",
                schema: MetaSchemaRef::Inline(Box::new(schema)),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let content_type = request
            .headers()
            .get(poem::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let is_form = content_type
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"));
        let refused = |message: String| {
            poem::Error::from_string(message, poem::http::StatusCode::BAD_REQUEST)
        };
        if !is_form {
            return Err(refused(
                "The publish body must be multipart/form-data.".to_owned(),
            ));
        }
        let boundary = multer::parse_boundary(content_type)
            .map_err(|error| refused(format!("Malformed multipart content type: {error}")))?;
        let stream = tokio_util::io::ReaderStream::new(body.take()?.into_async_read());
        Ok(Self(multer::Multipart::new(stream, boundary)))
    }
}

#[async_trait]
impl UploadParts for PublishForm {
    async fn next_part(&mut self) -> AppResult<Option<UploadPart>> {
        let field = self
            .0
            .next_field()
            .await
            .map_err(|error| AppError::Invalid(format!("Malformed multipart body: {error}")))?;
        let Some(field) = field else {
            return Ok(None);
        };
        let header_bytes: usize = field
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if header_bytes > MAX_PART_HEADER_BYTES {
            return Err(AppError::Invalid(format!(
                "A part of the form has more than {MAX_PART_HEADER_BYTES} bytes of headers."
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let kind = part_kind(&name, field.file_name().is_some());
        Ok(Some(UploadPart {
            name,
            kind,
            body: field.map_err(std::io::Error::other).boxed(),
        }))
    }
}

/// The prefix of a form field that names a file by hash instead of uploading
/// it: `sha256:<path>` = `<hex SHA-256>`.
const REFERENCE_FIELD_PREFIX: &str = "sha256:";

/// What a part of the publish form is, by its name (and whether it carried
/// a file name): the form's field names are this adapter's to know.
fn part_kind(name: &str, is_file: bool) -> PartKind {
    match name {
        "runtimeVersion" => PartKind::Text(FormText::RuntimeVersion),
        "branch" => PartKind::Text(FormText::Branch),
        "message" => PartKind::Text(FormText::Message),
        "rolloutPercentage" => PartKind::Text(FormText::RolloutPercentage),
        "metadata.json" => PartKind::Metadata,
        "expoConfig.json" => PartKind::ExpoConfig,
        _ => match name.strip_prefix(REFERENCE_FIELD_PREFIX) {
            Some(path) => PartKind::Reference(path.to_owned()),
            None if is_file => PartKind::File(name.to_owned()),
            None => PartKind::Ignored,
        },
    }
}

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Updates")]
impl UpdatesApi {
    /// Publish an `npx expo export` (API key)
    #[oai(
        path = "/updates/:project/publish",
        method = "post",
        transform = "rate_limited_publish"
    )]
    async fn publish(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        mut form: PublishForm,
    ) -> Result<Json<PublishedBody>, PublishError> {
        let publish = services.publish.clone();
        let (key, project) = (auth.0, ids::project_for_key(&project)?);
        // Run the publish as its own task: if the client goes away, the
        // request is dropped but the task still sees the broken body and
        // deletes what it staged, instead of being cancelled half-way.
        let task = tokio::spawn(async move { publish.publish(&key, &project, &mut form).await });
        let published = task
            .await
            .map_err(|error| AppError::fault("the publish task failed", error))??;
        Ok(Json(PublishedBody::new(
            published,
            "Update published successfully",
        )))
    }

    /// Which files the project does not have yet (API key)
    ///
    /// A publishing client asks before uploading, then uploads only these.
    #[oai(path = "/updates/:project/assets/missing", method = "post")]
    async fn missing_files(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        body: Json<FileHashesBody>,
    ) -> Result<Json<MissingFilesBody>, MissingFilesError> {
        let missing = services
            .publish
            .missing_files(&auth.0, &ids::project_for_key(&project)?, &body.sha256)
            .await?;
        Ok(Json(MissingFilesBody {
            missing,
            max_upload_bytes: services.publish.max_upload_bytes(),
        }))
    }

    /// Roll devices back to the update embedded in the app (API key)
    #[oai(path = "/updates/:project/rollback", method = "post")]
    async fn rollback_with_key(
        &self,
        services: Data<&Services>,
        auth: ApiKeyAuth,
        project: Path<String>,
        body: Json<RollbackBody>,
    ) -> Result<Json<PublishedBody>, RollbackError> {
        let request = RollbackRequest::from(body.0);
        let caller = Caller::Key(auth.0);
        let project = ids::project_for(&caller, &project)?;
        let published = services
            .publish
            .rollback(&caller, &project, &request)
            .await?;
        Ok(rolled_back(published))
    }

    /// Roll devices back to the update embedded in the app (members)
    #[oai(path = "/projects/:id/rollback", method = "post")]
    async fn rollback_as_member(
        &self,
        services: Data<&Services>,
        auth: UserAuth,
        id: Path<String>,
        body: Json<RollbackBody>,
    ) -> Result<Json<PublishedBody>, RollbackError> {
        let request = RollbackRequest::from(body.0);
        let caller = Caller::User(auth.0);
        let project = ids::project_for(&caller, &id)?;
        let published = services
            .publish
            .rollback(&caller, &project, &request)
            .await?;
        Ok(rolled_back(published))
    }
}
