//! What the tests of the real binary share: its path and a free port.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;

pub const BINARY: &str = env!("CARGO_BIN_EXE_expo-updates-server");

/// A port nothing listens on right now (the server binds it moments later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub mod server;
