//! What can go wrong in a client command, and the exit code each failure
//! gives, so that a CI script can tell "my key is wrong" from "the server is
//! down" without parsing messages.

use std::process::ExitCode;

/// A failed command. The message is written for the person at the terminal
/// or reading the CI log: it says what failed and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Missing or contradictory configuration: no server URL, no project,
    /// not logged in, a bad flag value.
    #[error("{0}")]
    Usage(String),
    /// 401 or 403: the credentials are wrong, expired or not allowed.
    #[error("{0}")]
    Denied(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// The export failed its checks, or the server refused the request as
    /// invalid (400) or conflicting (409).
    #[error("{0}")]
    Rejected(String),
    /// 413: the upload is over the server's `MAX_UPLOAD_BYTES`.
    #[error("{0}")]
    TooLarge(String),
    /// The server could not be reached or kept failing (5xx) after retries.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: a local I/O error, an answer the client does not
    /// understand, a failing `npx expo` command.
    #[error("{0}")]
    Other(String),
}

impl CliError {
    /// The process exit code; the README's CLI section lists them.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Other(_) => 1,
            Self::Usage(_) => 2,
            Self::Denied(_) => 3,
            Self::NotFound(_) => 4,
            Self::Rejected(_) => 5,
            Self::TooLarge(_) => 6,
            Self::Unavailable(_) => 7,
        })
    }
}

pub type CliResult<T> = Result<T, CliError>;
