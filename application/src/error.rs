//! The application's error: one variant per kind of answer a client gets.
//! The HTTP adapter maps each variant to one status code, in one place.

use domain::ValidationError;
use domain::blob::BlobError;
use domain::fault::{BoxError, Fault, chain};
use domain::ports::{Constraint, CryptoError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or a value breaks a rule (400).
    #[error("{0}")]
    Invalid(String),
    /// No valid credentials (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The thing addressed does not exist, or is not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state, or with how the
    /// server is set up (a feature it is not configured for: the text names
    /// the setting) (409).
    #[error("{0}")]
    Conflict(String),
    /// Nothing the client accepts can carry the answer (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// The request body is larger than the server accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// A backend the answer needs is down, or what the server holds cannot
    /// be used as it is set up (project keys without their master key)
    /// (503); the text is for the client.
    #[error("{0}")]
    Unavailable(String),
    /// The storage is full (507): nothing was stored.
    #[error("{0}")]
    InsufficientStorage(String),
    /// A fault of ours or of a backend (500) that only text describes. The
    /// text goes to the log only. Made by [`AppError::internal`] too.
    #[error("{0}")]
    Internal(String),
    /// A fault of ours or of a backend (500), with the error that caused
    /// it: what failed and the whole chain beneath go to the log only. Made
    /// by [`AppError::fault`].
    #[error(transparent)]
    Fault(Fault),
}

impl AppError {
    /// A fault (500) that only a message describes.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// A fault (500) caused by `cause`, which is kept for the log.
    pub fn fault(what: impl Into<String>, cause: impl Into<BoxError>) -> Self {
        Self::Fault(Fault::new(what, cause))
    }
}

pub type AppResult<T> = Result<T, AppError>;

impl From<ValidationError> for AppError {
    fn from(error: ValidationError) -> Self {
        Self::Invalid(error.0)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(constraint) => Self::Conflict(conflict_message(constraint)),
            StoreError::ProjectGone => permission_denied(),
            StoreError::LastOwner(error) => Self::Conflict(error.to_string()),
            StoreError::Backend(fault) => {
                tracing::error!(detail = %chain(&fault), "database error");
                Self::Unavailable("The database is unavailable; try again shortly.".to_owned())
            }
        }
    }
}

/// A storage failure as the client sees it; the detail goes to the log.
impl From<BlobError> for AppError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::TooLarge(limit) => {
                Self::TooLarge(format!("The upload is larger than {limit} bytes."))
            }
            BlobError::Body(detail) => {
                Self::Invalid(format!("The upload could not be read: {detail}"))
            }
            BlobError::StorageFull => Self::InsufficientStorage(
                "The server's storage is full; nothing was stored. Try again once space is freed."
                    .to_owned(),
            ),
            BlobError::NotFound(key) => Self::internal(format!("blob {key} is missing")),
            BlobError::Backend(detail) => {
                tracing::error!(%detail, "storage backend error");
                Self::Unavailable("Storage is unavailable; try again shortly.".to_owned())
            }
        }
    }
}

impl From<CryptoError> for AppError {
    fn from(error: CryptoError) -> Self {
        Self::fault("cryptography failed", error)
    }
}

fn conflict_message(constraint: Constraint) -> String {
    match constraint {
        Constraint::Username | Constraint::Email => "User already exists.".to_owned(),
        Constraint::Slug => "Slug already in use.".to_owned(),
        Constraint::Membership => "User is already a member.".to_owned(),
        Constraint::Channel | Constraint::SigningKeyId | Constraint::Record => {
            format!("{constraint} already exists.")
        }
    }
}

/// The answer for a project the caller cannot see: the same whether it does
/// not exist, was just deleted, or belongs to someone else. Public so that a
/// driving adapter refuses a project id it cannot even parse in the same
/// words (see also [`crate::access::not_callers_project`]).
pub fn permission_denied() -> AppError {
    AppError::Forbidden("Permission denied.".to_owned())
}

/// The answers for an id that names nothing in the project. The services
/// give them for an id they do not find; a driving adapter gives the same
/// for an id it cannot parse, so a malformed id reads like an unknown one.
pub mod not_found {
    use crate::error::AppError;

    /// No publish (`updateId` in the API) with this id in the project.
    pub fn update(id: impl std::fmt::Display) -> AppError {
        AppError::NotFound(format!("Update {id} not found."))
    }

    /// No API key with this id in the project.
    pub fn api_key() -> AppError {
        AppError::NotFound("Key not found.".to_owned())
    }

    /// The user is not a member of the project (or is no user at all).
    pub fn member() -> AppError {
        AppError::NotFound("User is not a member of this project.".to_owned())
    }

    /// No signing key with this key id in the project.
    pub fn signing_key() -> AppError {
        AppError::NotFound("Signing key not found.".to_owned())
    }
}

/// The answer to a request that leaves out a required field, as the old
/// server worded it.
pub(crate) fn missing_parameters() -> AppError {
    AppError::Invalid("Missing parameters.".to_owned())
}
