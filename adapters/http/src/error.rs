//! Errors on the wire: every failure is `{"error": "..."}` with a 4xx or 5xx
//! status. [`AppError`] is mapped to a status here and nowhere else.

use application::AppError;
use domain::fault::chain;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::Object;

/// The body of every error response.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// What went wrong, written for the client.
    pub error: String,
}

/// The status and client-facing message of an application error. Internal
/// errors are logged with their detail and answered with a generic message.
pub fn classify(error: AppError) -> (StatusCode, String) {
    match error {
        AppError::Invalid(message) => (StatusCode::BAD_REQUEST, message),
        AppError::Unauthenticated(message) => (StatusCode::UNAUTHORIZED, message),
        AppError::Forbidden(message) => (StatusCode::FORBIDDEN, message),
        AppError::NotFound(message) => (StatusCode::NOT_FOUND, message),
        AppError::Conflict(message) => (StatusCode::CONFLICT, message),
        AppError::TooLarge(message) => (StatusCode::PAYLOAD_TOO_LARGE, message),
        AppError::NotAcceptable(message) => (StatusCode::NOT_ACCEPTABLE, message),
        AppError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
        AppError::InsufficientStorage(message) => (StatusCode::INSUFFICIENT_STORAGE, message),
        AppError::Internal(detail) => internal_error(&detail),
        AppError::Fault(fault) => internal_error(&chain(&fault)),
    }
}

/// A fault of ours: the detail goes to the log, the client gets a generic
/// message.
fn internal_error(detail: &str) -> (StatusCode, String) {
    tracing::error!(%detail, "internal error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal server error.".to_owned(),
    )
}

/// Declares an operation's error responses: one variant per status it can
/// answer with (each documented in the OpenAPI spec), plus 500. Statuses
/// that poem-openapi produces before the handler runs (400 for a malformed
/// body, 401 for a missing token) are listed too, so the spec is complete;
/// the JSON-error middleware gives those responses the same body.
macro_rules! error_responses {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $status:tt),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, poem_openapi::ApiResponse)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[oai(status = $status)]
                $variant(poem_openapi::payload::Json<$crate::error::ErrorBody>),
            )*
            /// An unexpected fault on the server; details are in its log.
            #[oai(status = 500)]
            InternalServerError(poem_openapi::payload::Json<$crate::error::ErrorBody>),
            /// The database or the storage is unavailable; try again later.
            #[oai(status = 503)]
            ServiceUnavailable(poem_openapi::payload::Json<$crate::error::ErrorBody>),
            /// The storage is full; nothing was stored.
            #[oai(status = 507)]
            InsufficientStorage(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        }

        impl From<application::AppError> for $name {
            fn from(error: application::AppError) -> Self {
                let (status, message) = $crate::error::classify(error);
                let body = poem_openapi::payload::Json($crate::error::ErrorBody { error: message });
                match status.as_u16() {
                    $($status => Self::$variant(body),)*
                    500 => Self::InternalServerError(body),
                    503 => Self::ServiceUnavailable(body),
                    507 => Self::InsufficientStorage(body),
                    other => {
                        tracing::error!(status = other, "status not declared for this operation");
                        Self::InternalServerError(body)
                    }
                }
            }
        }
    };
}

pub(crate) use error_responses;

/// Leaves handlers' error responses as they are, and turns every other error
/// that escaped a handler (unknown route, wrong method,
/// malformed body, missing credentials, oversized body) into
/// `{"error": "..."}` with its status.
pub(crate) fn json_errors(error: poem::Error) -> Response {
    if error.is_from_response() {
        // A handler's own error response: already `{"error": ...}`.
        return error.into_response();
    }
    // The old server answered an unsupported content type with 400, and
    // clients written against it check for 400.
    let status = match error.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::BAD_REQUEST,
        status => status,
    };
    let message = if error.is::<poem_openapi::error::AuthorizationError>() {
        "Missing or invalid Authorization header".to_owned()
    } else if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%error, "unhandled error");
        "Internal server error.".to_owned()
    } else {
        match status {
            StatusCode::NOT_FOUND => "Not Found".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE => "Request body too large.".to_owned(),
            _ => error.to_string(),
        }
    };
    poem::web::Json(serde_json::json!({ "error": message }))
        .with_status(status)
        .into_response()
}
