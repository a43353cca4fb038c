//! Reading the publish form: its parts, typed by the HTTP adapter (which
//! knows the form's field names), arrive one after the other; text fields
//! and the small JSON files are read whole, file parts are streamed into
//! staging storage.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::blob::{BlobError, BlobStore, ByteStream, StagedBlob};
use domain::release::BranchName;
use domain::update::normalize_export_path;
use futures_util::StreamExt;

use crate::error::{AppError, AppResult};

/// The largest `metadata.json`, `expoConfig.json` or text field read.
const MAX_SMALL_PART_BYTES: usize = 1024 * 1024;

/// The most hashes one missing-files question may ask about, and the most
/// files one publish may name by hash.
pub const MAX_HASHES_PER_QUERY: usize = 10_000;

/// A text field of the publish form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormText {
    RuntimeVersion,
    Branch,
    Message,
    RolloutPercentage,
}

/// What one part of the publish form is, as the HTTP adapter recognised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartKind {
    Text(FormText),
    /// The export's `metadata.json`.
    Metadata,
    /// The export's `expoConfig.json`.
    ExpoConfig,
    /// A file named by hash instead of uploaded: its path in the export
    /// (as sent); the body is its SHA-256 in hex.
    Reference(String),
    /// An uploaded file: its path in the export (as sent).
    File(String),
    /// Anything else: read and dropped.
    Ignored,
}

/// One part of the publish form, as the HTTP adapter hands it over.
pub struct UploadPart {
    /// The field's name as sent, for messages.
    pub name: String,
    pub kind: PartKind,
    pub body: ByteStream,
}

/// The parts of a publish form, read one after the other: a part's body
/// must be consumed before the next part is asked for.
#[async_trait]
pub trait UploadParts: Send {
    async fn next_part(&mut self) -> AppResult<Option<UploadPart>>;
}

/// The form's fields, as read.
#[derive(Default)]
pub(super) struct Form {
    pub(super) runtime_version: Option<String>,
    pub(super) branch: Option<String>,
    pub(super) message: Option<String>,
    pub(super) rollout_percentage: Option<String>,
    pub(super) metadata: Option<Vec<u8>>,
    pub(super) expo_config: Option<Vec<u8>>,
    /// Uploaded files by normalised path.
    pub(super) files: HashMap<String, StagedBlob>,
    /// Files named by SHA-256 (hex) instead of uploaded, by normalised
    /// path: the project already has them.
    pub(super) references: HashMap<String, String>,
}

/// Reads every part into `form`, staging the files (at most
/// `max_upload_bytes` of them in all). What was staged stays in `form`,
/// also on an error, for the caller to discard.
pub(super) async fn read_form(
    blobs: &dyn BlobStore,
    max_upload_bytes: u64,
    parts: &mut dyn UploadParts,
    form: &mut Form,
) -> AppResult<()> {
    let mut budget = max_upload_bytes;
    while let Some(part) = parts.next_part().await? {
        match part.kind {
            PartKind::Text(field) => {
                let slot = match field {
                    FormText::RuntimeVersion => &mut form.runtime_version,
                    FormText::Branch => &mut form.branch,
                    FormText::Message => &mut form.message,
                    FormText::RolloutPercentage => &mut form.rollout_percentage,
                };
                if slot.is_some() {
                    return Err(sent_twice(&part.name));
                }
                *slot = Some(text(&part.name, read_small(part.body).await?)?);
            }
            PartKind::Reference(raw_path) => {
                if form.references.len() >= MAX_HASHES_PER_QUERY {
                    return Err(AppError::Invalid(format!(
                        "at most {MAX_HASHES_PER_QUERY} files may be named by hash."
                    )));
                }
                let path = normalize_export_path(&raw_path)?;
                let sha256_hex = text(&part.name, read_small(part.body).await?)?;
                if form
                    .references
                    .insert(path, parse_sha256_hex(&sha256_hex)?)
                    .is_some()
                {
                    return Err(sent_twice(&part.name));
                }
            }
            PartKind::Metadata | PartKind::ExpoConfig => {
                let slot = match part.kind {
                    PartKind::Metadata => &mut form.metadata,
                    _ => &mut form.expo_config,
                };
                if slot.is_some() {
                    return Err(sent_twice(&part.name));
                }
                *slot = Some(read_small(part.body).await?);
            }
            PartKind::File(raw_path) => match normalize_export_path(&raw_path).ok() {
                Some(path) => {
                    if form.files.contains_key(&path) {
                        // Which of two different bodies would be served?
                        return Err(sent_twice(&part.name));
                    }
                    let staged = blobs
                        .stage(part.body, budget)
                        .await
                        .map_err(|error| upload_error(error, max_upload_bytes))?;
                    budget = budget.saturating_sub(staged.size);
                    form.files.insert(path, staged);
                }
                // Not a file we could ever serve: drain it.
                None => drain(part.body).await?,
            },
            PartKind::Ignored => drain(part.body).await?,
        }
    }
    Ok(())
}

/// A SHA-256 in lowercase hex, as a client sent it.
pub(super) fn parse_sha256_hex(raw: &str) -> AppResult<String> {
    let hex = raw.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(AppError::Invalid(format!(
            "{raw:?} is not a SHA-256 in hex (64 characters)."
        )))
    }
}

/// A branch from a form or body; the default branch when left out.
pub(super) fn optional_branch(raw: Option<&str>) -> AppResult<BranchName> {
    match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
        Some(raw) => Ok(BranchName::parse(raw)?),
        None => Ok(BranchName::default_branch()),
    }
}

/// A form field that appeared twice: refused rather than guessed at.
fn sent_twice(name: &str) -> AppError {
    AppError::Invalid(format!("{name} was sent twice; send each field once."))
}

fn text(field: &str, bytes: Vec<u8>) -> AppResult<String> {
    String::from_utf8(bytes).map_err(|_| AppError::Invalid(format!("{field} must be UTF-8 text.")))
}

/// Reads a small part fully, refusing one over [`MAX_SMALL_PART_BYTES`].
async fn read_small(mut body: ByteStream) -> AppResult<Vec<u8>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| upload_error(BlobError::Body(error.to_string()), 0))?;
        if bytes.len() + chunk.len() > MAX_SMALL_PART_BYTES {
            return Err(AppError::TooLarge(format!(
                "a form field is larger than {MAX_SMALL_PART_BYTES} bytes."
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads and drops a part the publish does not use.
async fn drain(mut body: ByteStream) -> AppResult<()> {
    while let Some(chunk) = body.next().await {
        chunk.map_err(|error| upload_error(BlobError::Body(error.to_string()), 0))?;
    }
    Ok(())
}

fn upload_error(error: BlobError, limit: u64) -> AppError {
    match error {
        BlobError::TooLarge(_) => AppError::TooLarge(format!(
            "The upload is larger than MAX_UPLOAD_BYTES ({limit} bytes)."
        )),
        BlobError::Body(detail) => {
            AppError::Invalid(format!("The upload could not be read: {detail}"))
        }
        other => other.into(),
    }
}
