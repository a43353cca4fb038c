//! The S3 client every S3-backed store is built with (this server's timeouts
//! and retries), and the configuration error it reports.

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

#[derive(Debug, thiserror::Error)]
pub enum StorageConfigError {
    #[error("cannot use {path} for local storage: {source}")]
    Local {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid S3 configuration: {0}")]
    S3(String),
}

/// A client for one bucket, with this server's timeouts and retries.
pub(crate) fn s3_client(
    endpoint: Option<&str>,
    bucket: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
    virtual_hosted: bool,
) -> Result<AmazonS3, StorageConfigError> {
    let mut builder = AmazonS3Builder::new()
        .with_retry(s3_retries())
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(S3_CONNECT_TIMEOUT)
                .with_timeout(S3_REQUEST_TIMEOUT),
        )
        .with_bucket_name(bucket)
        .with_region(region)
        .with_access_key_id(access_key)
        .with_secret_access_key(secret_key)
        .with_virtual_hosted_style_request(virtual_hosted);
    if let Some(endpoint) = endpoint {
        builder = builder
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"));
    }
    builder
        .build()
        .map_err(|error| StorageConfigError::S3(error.to_string()))
}

/// How long to wait for a TCP connection to S3.
const S3_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest one S3 request may take (a part of an upload is at most a
/// few MiB).
const S3_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Two quick retries for a transient S3 error, then the error: while S3 is
/// down, a request is answered 503 in about a second instead of after
/// object_store's default ten retries (up to three minutes).
fn s3_retries() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(5),
    }
}
