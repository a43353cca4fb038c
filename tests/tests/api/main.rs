//! End-to-end tests, one binary (faster to link), one module per area.
//! Every scenario runs on SQLite and on PostgreSQL (see `e2e::both_backends!`); the ones that
//! store blobs also run on local disk and on S3 (see `e2e::all_backends!`).
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod api_keys;
mod auth;
mod authz_matrix;
mod bundle_diffing;
mod channels_rollouts;
mod delivery;
mod embedded_bundles;
mod hostile;
mod hostile_corpus;
mod insights;
mod jwt;
mod legacy;
mod maintenance;
mod members;
mod metrics;
mod operations;
mod projects;
mod protocol;
mod publish;
mod publish_by_hash;
mod rate_limits;
mod releases_history;
mod signing_keys;
mod storage;
mod tenancy;
mod walkthrough;
