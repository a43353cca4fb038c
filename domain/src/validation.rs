//! The one error type every validating constructor returns.

/// Why a value a client supplied was refused. The message is written for the
/// client: it names the field and says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

impl ValidationError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// True when the text holds a control character (including NUL and newlines),
/// which no name, slug or identifier shown back to users may carry.
pub(crate) fn has_control_chars(text: &str) -> bool {
    text.chars().any(char::is_control)
}
