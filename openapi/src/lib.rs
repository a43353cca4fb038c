//! The OpenAPI document of expo-updates-server, generated from the handlers.
//!
//! `openapi/openapi.json` is the committed copy; the `spec_is_current` test
//! fails when it and the code drift apart. Regenerate it with
//! `UPDATE_OPENAPI=1 cargo test -p openapi-spec`.

use std::path::PathBuf;

/// The document the server serves at `/api/openapi.json`.
pub fn generated() -> String {
    let mut document = adapter_http::openapi_document();
    document.push('\n');
    document
}

/// Where the committed copy lives.
pub fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}
