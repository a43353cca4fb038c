//! What every test crate of the workspace shares, whatever it drives (the server in-process,
//! the binary as a child process, or a Go data dir):
//!
//! - [`fixtures`]: the fixtures in `tests/fixtures`, found from one place
//!   ([`fixtures_dir`]), the real `expo export` outputs ([`Export`]) and `CHECKSUMS.txt`;
//! - [`postgres`]: throwaway PostgreSQL databases ([`PgDatabase`]);
//! - [`free_port`].
//!
//! It depends on no crate of the workspace, so the end-to-end tests (`e2e`), the tests of the
//! binary (`expo-updates-server`'s `tests/`) and the Go data dir (`go-data-fixture`) can all
//! use it.

#![allow(
    clippy::unwrap_used,
    reason = "test support fails loudly on a value it did not expect"
)]

pub mod fixtures;
pub mod postgres;

pub use fixtures::{
    CERTIFICATE_PATH, Checksum, Export, FIXTURES_DIR, PRIVATE_KEY_PATH, asset_key, checksums,
    fixture, fixtures_dir, sha256_bytes_hex,
};
pub use postgres::{DEFAULT_POSTGRES_URL, PgDatabase};

/// A loopback port nothing listens on right now (a server binds it moments later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("reserve a local port")
        .port()
}
