//! End-to-end tests, one binary (faster to link), one module per area.
//! Every scenario runs on SQLite and on PostgreSQL (see `e2e::both_backends!`).
#![allow(clippy::unwrap_used)]

mod api_keys;
mod auth;
mod hostile;
mod jwt;
mod legacy;
mod members;
mod operations;
mod projects;
mod tenancy;
mod walkthrough;
