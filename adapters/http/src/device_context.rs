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
    match req.uri().query() {
        None | Some("") => Ok(HashMap::new()),
        Some(query) => serde_urlencoded::from_str(query)
            .map_err(|_| AppError::Invalid("The query string is malformed.".to_owned())),
    }
}
