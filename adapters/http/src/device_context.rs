//! What a device handler gets from the edge besides the request (see
//! `device`), apart from the handlers so that they need not import the
//! dispatch that calls them.

use std::collections::HashMap;

use application::{AppError, Services};
use poem::Request;

use crate::metrics::Metrics;

/// What a device handler needs besides the request.
pub(crate) struct DeviceContext<'a> {
    pub services: &'a Services,
    pub metrics: &'a Metrics,
    /// The `{project}` segment of the path, as sent.
    pub project: &'a str,
}

/// The query string's parameters (the last of repeated ones).
pub(crate) fn query_params(req: &Request) -> Result<HashMap<String, String>, AppError> {
    let malformed = || AppError::Invalid("The query string is malformed.".to_owned());
    let mut params = HashMap::new();
    for pair in req.uri().query().unwrap_or_default().split('&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(
            form_decoded(name).ok_or_else(malformed)?,
            form_decoded(value).ok_or_else(malformed)?,
        );
    }
    Ok(params)
}

/// A form-encoded name or value (`+` is a space), or `None` when its bytes
/// are not UTF-8 (an overlong `%c0%ae` is not a dot, nor any text).
fn form_decoded(text: &str) -> Option<String> {
    let spaced = match text.contains('+') {
        true => std::borrow::Cow::Owned(text.replace('+', " ")),
        false => std::borrow::Cow::Borrowed(text),
    };
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_once_and_must_be_utf8() {
        assert_eq!(form_decoded("1.0.0").as_deref(), Some("1.0.0"));
        assert_eq!(form_decoded("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(form_decoded("%252e%252e").as_deref(), Some("%2e%2e"));
        assert_eq!(form_decoded("caf%C3%A9").as_deref(), Some("café"));
        // An overlong encoding of "." is not text at all.
        assert_eq!(form_decoded("%c0%ae%c0%ae"), None);
    }
}
