//! End-to-end test harness.
//!
//! Every test starts the real server (`expo_updates_server::Application`) in-process on a
//! random port, with its own temporary `DATA_DIR` and its own database (a SQLite file in
//! `DATA_DIR`, or a throwaway PostgreSQL database), and talks to it over HTTP with `reqwest`.
//!
//! Scenarios are written once with [`both_backends!`] and run against both backends, or with
//! [`all_backends!`] and run against both backends on both blob storages ([`Storage`]: local
//! disk, or an in-process S3 server).
//!
//! One module per job, everything re-exported here (`e2e::TestApp`, `e2e::str_field`, …):
//!
//! | module | what |
//! | --- | --- |
//! | `backends` | [`Backend`], [`Storage`] and the macros that run a scenario on each |
//! | `app` | [`TestApp`]: the server under test and the account, project and key calls |
//! | `database` | the server's database: [`PgDatabase`] (from `test_support`), SQL from outside |
//! | `blobs` | the stored objects, read from outside (local disk or the S3 bucket) |
//! | `responses` | [`Response`] and the assertions on answers and JSON values |
//! | `fixtures` | unique names and ids, and the fixtures in `tests/fixtures` |
//! | [`jwt`] | forging, reading and verifying tokens |
//! | `files` | directory listings and SQLite files |
//! | [`raw_http`] | a byte-exact HTTP/1.1 client over TCP |
//! | [`protocol`] | the Expo Updates protocol from the device's side |
//! | [`publish`] | the publish forms and [`publish::Publisher`] |
//! | [`proxy`] | a TCP proxy that can cut a backend off |

#![allow(
    clippy::unwrap_used,
    reason = "test support fails loudly on a value it did not expect"
)]

mod app;
mod backends;
mod blobs;
mod database;
mod files;
mod fixtures;
pub mod jwt;
pub mod protocol;
pub mod proxy;
pub mod publish;
pub mod raw_http;
mod responses;

pub use s3_test_server as s3;
pub use {reqwest, serde_json, test_support};

pub use app::{PASSWORD, ProjectSetup, TestApp, TestUser};
pub use backends::{Backend, Storage};
pub use database::{DEFAULT_POSTGRES_URL, PgDatabase};
pub use files::{files_in, is_sqlite_file, list_files};
pub use fixtures::{sha256_hex, unique_identity, unique_slug, uuid_v4};
pub use jwt::{TEST_JWT_SECRET, TOKEN_LIFETIME_SECS, file_holds_secret_of};
pub use responses::{
    Response, all_keys, assert_has_fields, assert_no_secrets, assert_rfc3339, assert_same,
    assert_timestamp_millis, assert_user_shape, assert_uuid, brotli_decoded, gzip_decoded,
    same_json, str_field, zstd_decoded,
};
