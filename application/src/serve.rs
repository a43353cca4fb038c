//! Serving updates: what a device asking for its runtime version and
//! platform is told (a manifest, "no update", or "roll back"), and the
//! files a manifest points at.
//!
//! The manifest and directive bodies are serialised here, once, and signed
//! over exactly those bytes; the HTTP adapter frames them unchanged.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::blob::{BlobError, BlobReader, BlobStore};
use domain::id::is_valid_id;
use domain::ports::{ChannelStore, ManifestSigner, ProjectStore, UpdateStore};
use domain::release::{BranchName, ChannelName, pick_for_device};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind, asset_blob_key};
use serde_json::{Map, Value, json};

use crate::error::{AppError, AppResult};

/// The protocol versions the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    V0,
    V1,
}

/// What a device sent, already read from headers or query parameters.
#[derive(Debug, Clone)]
pub struct ManifestRequest {
    pub project_id: String,
    pub platform: Option<String>,
    pub runtime_version: Option<String>,
    pub protocol: ProtocolVersion,
    pub current_update_id: Option<String>,
    pub embedded_update_id: Option<String>,
    pub expects_signature: bool,
    /// `expo-channel-name`; the `main` channel when absent.
    pub channel: Option<String>,
    /// `EAS-Client-ID`: places the device in or out of rollouts.
    pub client_id: Option<String>,
    /// Whether the response can carry directives (multipart); JSON-only
    /// clients can only be given a manifest.
    pub directives_allowed: bool,
}

/// A manifest or directive body, serialised, with its signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    pub json: String,
    pub signature: Option<String>,
}

/// The answer to a manifest request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestAnswer {
    Manifest(SignedBody),
    /// `noUpdateAvailable` or `rollBackToEmbedded` (protocol 1 only).
    Directive(SignedBody),
}

/// The answer with the branch it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedManifest {
    pub answer: ManifestAnswer,
    /// The `expo-manifest-filters` header: an SFV dictionary naming the
    /// branch, which the manifest's `metadata` matches, so clients keep only
    /// updates of this branch.
    pub manifest_filters: String,
}

/// What a branch has for a device.
enum Resolution {
    Update(Box<Update>),
    /// The branch has updates, but none this device is in the rollout of.
    OutsideRollout,
    /// The branch has no update for this runtime version and platform.
    Nothing,
}

/// Which file an asset request names.
#[derive(Debug, Clone)]
pub enum AssetRequest {
    /// The immutable form manifests use: an update and a file path.
    OfUpdate { update_id: String, path: String },
    /// The old server's form: the latest update for a runtime and platform.
    Latest {
        runtime_version: String,
        platform: String,
        path: String,
    },
}

/// An asset opened for streaming.
pub struct ServedAsset {
    pub content_type: String,
    pub reader: BlobReader,
    /// Whether the URL always names these bytes (long, immutable caching).
    pub immutable: bool,
}

pub struct ServeService {
    projects: Arc<dyn ProjectStore>,
    updates: Arc<dyn UpdateStore>,
    channels: Arc<dyn ChannelStore>,
    blobs: Arc<dyn BlobStore>,
    signer: Option<Arc<dyn ManifestSigner>>,
    public_url: String,
}

impl ServeService {
    pub fn new(
        projects: Arc<dyn ProjectStore>,
        updates: Arc<dyn UpdateStore>,
        channels: Arc<dyn ChannelStore>,
        blobs: Arc<dyn BlobStore>,
        signer: Option<Arc<dyn ManifestSigner>>,
        public_url: String,
    ) -> Self {
        Self {
            projects,
            updates,
            channels,
            blobs,
            signer,
            public_url,
        }
    }

    /// Decides what a device gets.
    pub async fn manifest(&self, request: &ManifestRequest) -> AppResult<ServedManifest> {
        let platform = request
            .platform
            .as_deref()
            .and_then(Platform::parse)
            .ok_or_else(|| {
                AppError::Invalid(
                    "No platform provided. Expected \"ios\" or \"android\".".to_owned(),
                )
            })?;
        let runtime_version = request
            .runtime_version
            .as_deref()
            .filter(|version| !version.is_empty())
            .ok_or_else(|| AppError::Invalid("No runtimeVersion provided.".to_owned()))?;
        // Checked before it reaches a query: PostgreSQL refuses NUL bytes.
        let runtime_version = RuntimeVersion::parse(runtime_version)?;
        let runtime_version = runtime_version.as_str();
        let channel = match request.channel.as_deref() {
            None => ChannelName::default_channel(),
            Some(raw) => ChannelName::parse(raw)
                .map_err(|error| AppError::Invalid(format!("expo-channel-name: {error}")))?,
        };
        if request.expects_signature && self.signer.is_none() {
            return Err(AppError::Invalid(
                "Code signing requested but no key supplied when starting server.".to_owned(),
            ));
        }
        self.require_project(&request.project_id).await?;
        let client_id = request.client_id.as_deref();
        let (branch, resolution) = self
            .resolve(
                &request.project_id,
                &channel,
                client_id,
                runtime_version,
                platform,
            )
            .await?;
        let answer = match resolution {
            Resolution::Nothing => {
                return Err(self
                    .no_update(
                        &request.project_id,
                        runtime_version,
                        platform,
                        &channel,
                        &branch,
                    )
                    .await?);
            }
            Resolution::OutsideRollout => self.nothing_for_this_device(request)?,
            Resolution::Update(update) => self.update_answer(request, &update)?,
        };
        Ok(ServedManifest {
            answer,
            manifest_filters: format!("branch=\"{}\"", branch.as_str()),
        })
    }

    /// The branch a channel sends this device to, and what that branch has
    /// for it.
    async fn resolve(
        &self,
        project_id: &str,
        channel: &ChannelName,
        client_id: Option<&str>,
        runtime_version: &str,
        platform: Platform,
    ) -> AppResult<(BranchName, Resolution)> {
        let branch = match self.channels.find(project_id, channel).await? {
            Some(mapping) => mapping.branch_for(client_id).clone(),
            None => channel.same_name_branch(),
        };
        let candidates = self
            .updates
            .candidates(project_id, &branch, runtime_version, platform)
            .await?;
        let Some(chosen) = pick_for_device(&candidates, client_id) else {
            let resolution = if candidates.is_empty() {
                Resolution::Nothing
            } else {
                Resolution::OutsideRollout
            };
            return Ok((branch, resolution));
        };
        let resolution = match self.updates.find(project_id, &chosen.id).await? {
            Some(update) => Resolution::Update(Box::new(update)),
            // Deleted between the two reads: as if it had never been there.
            None => Resolution::OutsideRollout,
        };
        Ok((branch, resolution))
    }

    fn update_answer(
        &self,
        request: &ManifestRequest,
        update: &Update,
    ) -> AppResult<ManifestAnswer> {
        match update.kind {
            UpdateKind::Rollback => self.rollback_answer(request, update),
            UpdateKind::Update => {
                let already_running =
                    request.current_update_id.as_deref() == Some(update.manifest_id.as_str());
                if request.protocol == ProtocolVersion::V1
                    && request.directives_allowed
                    && already_running
                {
                    return self.directive(json!({ "type": "noUpdateAvailable" }), request);
                }
                let body = self.manifest_json(update);
                Ok(ManifestAnswer::Manifest(
                    self.signed(body.to_string(), request)?,
                ))
            }
        }
    }

    /// A device outside every rollout of a branch with nothing older to
    /// fall back on: "no update" where the protocol can say it.
    fn nothing_for_this_device(&self, request: &ManifestRequest) -> AppResult<ManifestAnswer> {
        if request.protocol == ProtocolVersion::V1 && request.directives_allowed {
            return self.directive(json!({ "type": "noUpdateAvailable" }), request);
        }
        Err(AppError::NotFound(
            "No update for this device yet: the only updates for its runtime version are in a partial rollout that does not include it.".to_owned(),
        ))
    }

    fn rollback_answer(
        &self,
        request: &ManifestRequest,
        rollback: &Update,
    ) -> AppResult<ManifestAnswer> {
        if request.protocol == ProtocolVersion::V0 {
            return Err(AppError::NotFound(
                "The latest update for this runtime version is a rollback, which protocol version 0 cannot express.".to_owned(),
            ));
        }
        if !request.directives_allowed {
            return Err(AppError::NotAcceptable(
                "The latest update for this runtime version is a rollback, which only a multipart/mixed response can carry.".to_owned(),
            ));
        }
        let embedded = request.embedded_update_id.as_deref();
        if embedded.is_some() && embedded == request.current_update_id.as_deref() {
            return self.directive(json!({ "type": "noUpdateAvailable" }), request);
        }
        self.directive(
            json!({
                "type": "rollBackToEmbedded",
                "parameters": { "commitTime": timestamp(rollback.created_at) },
            }),
            request,
        )
    }

    fn directive(&self, body: Value, request: &ManifestRequest) -> AppResult<ManifestAnswer> {
        Ok(ManifestAnswer::Directive(
            self.signed(body.to_string(), request)?,
        ))
    }

    /// Signs exactly these bytes when the client asked for a signature.
    fn signed(&self, json: String, request: &ManifestRequest) -> AppResult<SignedBody> {
        let signature = match (&self.signer, request.expects_signature) {
            (Some(signer), true) => Some(signer.signature_header(json.as_bytes())?),
            _ => None,
        };
        Ok(SignedBody { json, signature })
    }

    fn manifest_json(&self, update: &Update) -> Value {
        let launch = update.launch_asset();
        let assets: Vec<Value> = update
            .assets
            .iter()
            .filter(|asset| !asset.is_launch_asset)
            .map(|asset| self.asset_json(update, asset))
            .collect();
        let mut extra = Map::new();
        if let Some(Ok(config)) = update
            .expo_config
            .as_deref()
            .map(serde_json::from_str::<Value>)
        {
            extra.insert("expoClient".to_owned(), config);
        }
        json!({
            "id": update.manifest_id,
            "createdAt": timestamp(update.created_at),
            "runtimeVersion": update.runtime_version,
            "launchAsset": launch.map(|asset| self.asset_json(update, asset)),
            "assets": assets,
            "metadata": { "branch": update.branch.as_str() },
            "extra": extra,
        })
    }

    fn asset_json(&self, update: &Update, asset: &UpdateAsset) -> Value {
        let mut value = json!({
            "hash": asset.hash,
            "key": asset.key,
            "contentType": asset.content_type,
            "url": self.asset_url(update, asset),
        });
        if let (Some(ext), false) = (&asset.file_extension, asset.is_launch_asset) {
            value["fileExtension"] = json!(ext);
        }
        value
    }

    /// An absolute URL naming the update and the file, so it keeps working
    /// (and keeps its bytes) after newer publishes.
    fn asset_url(&self, update: &Update, asset: &UpdateAsset) -> String {
        format!(
            "{}/api/updates/{}/assets?update={}&asset={}",
            self.public_url,
            percent_encode(&update.project_id),
            percent_encode(&update.id),
            percent_encode(&asset.path)
        )
    }

    async fn require_project(&self, project_id: &str) -> AppResult<()> {
        let exists = is_valid_id(project_id) && self.projects.find(project_id).await?.is_some();
        if exists {
            Ok(())
        } else {
            Err(AppError::NotFound("Project not found.".to_owned()))
        }
    }

    /// A 404 that says which runtime versions do have updates: a mismatch
    /// between the app's runtime version and the published one is the most
    /// common reason an app sees no update.
    async fn no_update(
        &self,
        project_id: &str,
        runtime_version: &str,
        platform: Platform,
        channel: &ChannelName,
        branch: &BranchName,
    ) -> AppResult<AppError> {
        let versions = self.updates.runtime_versions(project_id, platform).await?;
        let available = if versions.is_empty() {
            format!(
                "no runtime version has updates for {} yet",
                platform.as_str()
            )
        } else {
            let listed: Vec<String> = versions.iter().take(20).map(|v| format!("{v:?}")).collect();
            format!(
                "runtime versions with updates for {}: {}",
                platform.as_str(),
                listed.join(", ")
            )
        };
        Ok(AppError::NotFound(format!(
            "No update for runtime version {runtime_version:?} on {} in branch {:?} (channel {:?}); {available}.",
            platform.as_str(),
            branch.as_str(),
            channel.as_str(),
        )))
    }

    /// Opens an asset of one of the project's updates.
    pub async fn asset(&self, project_id: &str, request: &AssetRequest) -> AppResult<ServedAsset> {
        let not_found = || AppError::NotFound("Asset not found.".to_owned());
        if !is_valid_id(project_id) {
            return Err(not_found());
        }
        let (update, path, immutable) = match request {
            AssetRequest::OfUpdate { update_id, path } => {
                if !is_valid_id(update_id) {
                    return Err(not_found());
                }
                (self.updates.find(project_id, update_id).await?, path, true)
            }
            AssetRequest::Latest {
                runtime_version,
                platform,
                path,
            } => {
                let platform = Platform::parse(platform).ok_or_else(not_found)?;
                let runtime_version =
                    RuntimeVersion::parse(runtime_version).map_err(|_| not_found())?;
                // The old server's form knows no channels or devices: the
                // default channel's fully rolled-out update.
                let (_, resolution) = self
                    .resolve(
                        project_id,
                        &ChannelName::default_channel(),
                        None,
                        runtime_version.as_str(),
                        platform,
                    )
                    .await?;
                let update = match resolution {
                    Resolution::Update(update) => Some(*update),
                    _ => None,
                };
                (update, path, false)
            }
        };
        let update = update.ok_or_else(not_found)?;
        let path = path.replace('\\', "/");
        let asset = update
            .assets
            .iter()
            .find(|asset| asset.path == path)
            .ok_or_else(not_found)?;
        let reader = self
            .blobs
            .open(&asset_blob_key(project_id, &asset.sha256_hex))
            .await
            .map_err(|error| match error {
                BlobError::NotFound(_) => {
                    AppError::Internal(format!("blob of asset {path} is missing"))
                }
                other => AppError::Internal(other.to_string()),
            })?;
        Ok(ServedAsset {
            content_type: asset.content_type.clone(),
            reader,
            immutable,
        })
    }
}

/// `2026-01-01T10:00:00.000Z`: the exact shape both clients parse.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at =
            DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").map(|t| t.with_timezone(&Utc));
        assert_eq!(
            at.map(timestamp).ok().as_deref(),
            Some("2026-01-01T10:00:00.000Z")
        );
    }

    #[test]
    fn urls_are_percent_encoded() {
        assert_eq!(
            percent_encode("assets/a b&c=d?é"),
            "assets/a%20b%26c%3Dd%3F%C3%A9"
        );
    }
}
