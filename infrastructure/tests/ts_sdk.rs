//! The TypeScript SDK in `openapi/ts-client`: its Node test (checks the
//! generated `src/schema.ts` is current with `openapi.json`, type-checks,
//! then drives this binary through the generated client only). Part of
//! `cargo test --workspace` so the README's one test command runs every
//! test; it needs Node.js 20+ and npm, and fails, never skips, without them.

#![allow(
    clippy::unwrap_used,
    reason = "test support fails loudly on a value it did not expect"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::BINARY;

fn npm(client: &Path, args: &[&str]) {
    let output = Command::new("npm")
        .args(args)
        .current_dir(client)
        .env("EXPO_UPDATES_SERVER_BIN", BINARY)
        .env_remove("EXPO_UPDATES_URL")
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run npm ({error}): the SDK test needs Node.js 20+ and npm")
        });
    assert!(
        output.status.success(),
        "npm {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_generated_typescript_client_works_against_the_server() {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/ts-client");
    npm(
        &client,
        &["ci", "--no-audit", "--no-fund", "--prefer-offline"],
    );
    npm(&client, &["test"]);
}
