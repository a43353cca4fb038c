//! The storage configuration for the shared in-process S3 test server.

use adapter_storage::StorageConfig;
pub use s3_test_server::S3Server;
use s3_test_server::{ACCESS_KEY, BUCKET, REGION, SECRET_KEY};

pub fn config(server: &S3Server, prefix: Option<&str>) -> StorageConfig {
    StorageConfig::S3 {
        endpoint: Some(server.endpoint.clone()),
        bucket: BUCKET.to_owned(),
        region: REGION.to_owned(),
        access_key: ACCESS_KEY.to_owned(),
        secret_key: SECRET_KEY.to_owned(),
        prefix: prefix.map(str::to_owned),
        virtual_hosted: false,
    }
}
