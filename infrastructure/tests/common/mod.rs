//! What the tests of the real binary share: its path, a free port, the server as a child
//! process ([`server::Server`]). The fixtures and throwaway PostgreSQL databases come from the
//! `test-support` crate, shared with the other test crates.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "shared by several test binaries, each using a part of it"
)]

pub const BINARY: &str = env!("CARGO_BIN_EXE_expo-updates-server");

pub use test_support::free_port;

pub mod server;
