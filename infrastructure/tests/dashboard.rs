//! The web dashboard in a real browser: starts this binary on a fresh data
//! directory and runs `tests/browser/dashboard.test.mjs` (playwright-core
//! driving Debian's headless Chromium). Part of `cargo test --workspace`; it
//! needs Node.js 20+, npm and `/usr/bin/chromium` (`.ci/run` installs it),
//! and fails, never skips, without them. Screenshots land in
//! `$CARGO_TARGET_DIR/tmp/dashboard-screenshots`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{BINARY, free_port};

const CHROMIUM: &str = "/usr/bin/chromium";

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        Self::start_with(&[(
            "SIGNING_KEY_ENCRYPTION_KEY",
            "dashboard-test-master-key-0123456789abcdef",
        )])
    }

    fn start_with(extra_env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(BINARY)
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATA_DIR", data.path())
            .env("RUST_LOG", "warn")
            .env("ALLOW_REGISTRATION", "true")
            .env("INSIGHTS_WRITE_SECONDS", "1")
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let server = Self {
            child,
            url,
            _data: data,
        };
        let started = Instant::now();
        while reqwest::blocking::get(format!("{}/readyz", server.url))
            .map(|response| !response.status().is_success())
            .unwrap_or(true)
        {
            assert!(started.elapsed() < Duration::from_secs(30), "never ready");
            sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let server = Server::start();
    let shots = screenshot_dir();
    npm(
        &browser_tests,
        &["test"],
        &[
            ("BASE_URL", server.url.clone()),
            ("EUS_BIN", BINARY.to_owned()),
            (
                "FIXTURES",
                root.join("../shared/fixtures").display().to_string(),
            ),
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
    let server = Server::start_with(&[]);
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
