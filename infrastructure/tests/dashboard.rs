//! The web dashboard in a real browser: starts this binary on a fresh data
//! directory and runs `tests/browser/dashboard.test.mjs` (playwright-core
//! driving Debian's headless Chromium). Part of `cargo test --workspace`; it
//! needs Node.js 20+, npm and `/usr/bin/chromium` (`.ci/run` installs it),
//! and fails, never skips, without them. Screenshots land in
//! `$CARGO_TARGET_DIR/tmp/dashboard-screenshots`.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::FIXTURES_DIR;

use common::BINARY;
use common::server::Server;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The server on a data directory of its own, with registration open, insights written
/// every second and `extra_env`.
fn serve(extra_env: &[(&str, &str)]) -> Server {
    let mut env = vec![
        ("RUST_LOG", "warn"),
        ("ALLOW_REGISTRATION", "true"),
        ("INSIGHTS_WRITE_SECONDS", "1"),
    ];
    env.extend_from_slice(extra_env);
    Server::start_fresh(&env)
}

/// [`serve`] with a master key, so signing keys can be stored.
fn serve_with_master_key() -> Server {
    serve(&[(
        "SIGNING_KEY_ENCRYPTION_KEY",
        "dashboard-test-master-key-0123456789abcdef",
    )])
}

fn npm(dir: &Path, args: &[&str], envs: &[(&str, String)]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().map(|(name, value)| (*name, value.as_str())))
        .status()
        .unwrap_or_else(|error| {
            panic!("cannot run npm ({error}): the dashboard test needs Node.js 20+ and npm")
        });
    assert!(status.success(), "npm {args:?} failed ({status})");
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("tmp/dashboard-screenshots")
}

#[test]
fn every_dashboard_page_and_action_works_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let browser_tests = root.join("tests/browser");
    npm(
        &browser_tests,
        &["ci", "--no-audit", "--no-fund", "--prefer-offline"],
        &[],
    );
    let server = serve_with_master_key();
    let shots = screenshot_dir();
    npm(
        &browser_tests,
        &["test"],
        &[
            ("BASE_URL", server.url.clone()),
            ("EUS_BIN", BINARY.to_owned()),
            ("FIXTURES", FIXTURES_DIR.to_owned()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
            ("CHROMIUM", CHROMIUM.to_owned()),
        ],
    );
    for name in [
        "01-sign-in",
        "03-setup",
        "05-updates-rollout",
        "10-updates-phone",
    ] {
        assert!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name} was saved"
        );
    }
}

/// Without `SIGNING_KEY_ENCRYPTION_KEY` (the zero-configuration start), the
/// code-signing page says what to set before anyone tries to add a key.
#[test]
fn the_signing_page_says_when_the_server_has_no_master_key() {
    let server = serve(&[]);
    let client = reqwest::blocking::Client::new();
    let session: serde_json::Value = client
        .post(format!("{}/api/auth/register", server.url))
        .json(&serde_json::json!({
            "username": "dana",
            "email": "dana@example.com",
            "password": "a good long password",
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = session["token"].as_str().unwrap();
    let project: serde_json::Value = client
        .post(format!("{}/api/projects", server.url))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": "App", "slug": "app"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let page = client
        .get(format!(
            "{}/dashboard/projects/{}/signing-keys",
            server.url,
            project["id"].as_str().unwrap()
        ))
        .header("cookie", format!("eus_session={token}"))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().unwrap();
    assert!(body.contains("This server cannot store signing keys yet"));
    assert!(body.contains("SIGNING_KEY_ENCRYPTION_KEY"));
}
