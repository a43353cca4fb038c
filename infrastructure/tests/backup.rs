//! Backups as the README describes them, restored and checked: the
//! database (`sqlite3 .backup` while the server runs, or `pg_dump`), the
//! blob directory and the generated JWT secret, copied to a fresh machine
//! (a new data directory, a new database) serve the same updates to the
//! same devices, and the same accounts and sessions work.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{BINARY, free_port};

const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(name)
}

/// The server as a child process on `data` (and `database_url`, when
/// given); killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(data: &Path, database_url: Option<&str>) -> Self {
        let port = free_port();
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("DATA_DIR", data)
            .env("RUST_LOG", "warn")
            .env("PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let mut server = Self {
            child: command.spawn().unwrap(),
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while !reqwest::blocking::get(format!("{}/readyz", server.url))
            .is_ok_and(|response| response.status().is_success())
        {
            assert!(started.elapsed() < Duration::from_secs(30), "never ready");
            assert!(server.child.try_wait().unwrap().is_none(), "it exited");
            sleep(Duration::from_millis(100));
        }
        server
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Value {
        let mut request = reqwest::blocking::Client::new()
            .post(format!("{}{path}", self.url))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().unwrap()
    }

    fn get(&self, path: &str, token: &str) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .unwrap()
    }

    /// The manifest an iOS device on runtime 1.0.0 gets, as JSON.
    fn manifest(&self, project: &str) -> Value {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}/api/updates/{project}/manifest", self.url))
            .header("expo-platform", "ios")
            .header("expo-runtime-version", "1.0.0")
            .header("expo-protocol-version", "1")
            .header("accept", "application/expo+json")
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a backup must bring back: an account, a project, a published
/// update.
struct Published {
    token: String,
    project: String,
    manifest: Value,
    bundle: Vec<u8>,
}

fn publish_something(server: &Server) -> Published {
    let session = server.post(
        "/api/auth/register",
        None,
        &json!({"username": "backup", "email": "backup@example.com", "password": "correct horse battery"}),
    );
    let token = session["token"].as_str().unwrap().to_owned();
    let project = server.post(
        "/api/projects",
        Some(&token),
        &json!({"name": "Backed up", "slug": "backed-up"}),
    );
    let project = project["id"].as_str().unwrap().to_owned();
    let key = server.post(
        &format!("/api/projects/{project}/keys"),
        Some(&token),
        &json!({}),
    );
    let secret = key["secret"].as_str().unwrap();
    let output = Command::new(BINARY)
        .args(["publish", "--dir"])
        .arg(fixture("expo-sdk56-export-v1"))
        .args(["--platform", "all", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("EXPO_UPDATES_URL", &server.url)
        .env("EXPO_UPDATES_PROJECT", &project)
        .env("EXPO_UPDATES_API_KEY", secret)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "publish: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = server.manifest(&project);
    let bundle = reqwest::blocking::get(manifest["launchAsset"]["url"].as_str().unwrap())
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    Published {
        token,
        project,
        manifest,
        bundle,
    }
}

/// The restored server serves what the original did, to the same session.
fn assert_restored(restored: &Server, original: &Published) {
    let manifest = restored.manifest(&original.project);
    assert_eq!(manifest["id"], original.manifest["id"]);
    let url = manifest["launchAsset"]["url"].as_str().unwrap();
    let bundle = reqwest::blocking::get(url).unwrap().bytes().unwrap();
    assert_eq!(bundle.as_ref(), original.bundle.as_slice());
    // The JWT secret came back too: the old session still works.
    let me = restored.get("/api/auth/me", &original.token);
    assert_eq!(me.status(), 200);
    let updates: Value = restored
        .get(
            &format!("/api/projects/{}/updates", original.project),
            &original.token,
        )
        .json()
        .unwrap();
    assert_eq!(updates["updates"].as_array().unwrap().len(), 1);
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `cp -a`: the blob directory and the secret, as an operator copies them.
fn copy(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

#[test]
fn sqlite_and_local_files_restore_from_an_online_backup() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), None);
    let original = publish_something(&server);

    // While the server runs: the database first, then the files.
    let backup = tempfile::tempdir().unwrap();
    run(Command::new("sqlite3")
        .arg(data.path().join("ota.db"))
        .arg(format!(
            ".backup '{}'",
            backup.path().join("ota.db").display()
        )));
    copy(&data.path().join("updates"), backup.path());
    copy(&data.path().join("jwt-secret"), backup.path());
    drop(server);

    // A fresh machine: restore into an empty data directory.
    let restored_dir = tempfile::tempdir().unwrap();
    for entry in ["ota.db", "updates", "jwt-secret"] {
        copy(&backup.path().join(entry), restored_dir.path());
    }
    let restored = Server::start(restored_dir.path(), None);
    assert_restored(&restored, &original);
}

#[test]
fn postgres_restores_from_pg_dump() {
    let suffix = uuid_like();
    let (source, target) = (
        format!("eus_backup_src_{suffix}"),
        format!("eus_backup_dst_{suffix}"),
    );
    for db in [&source, &target] {
        run(Command::new("psql").args([ADMIN_URL, "-qc", &format!("CREATE DATABASE \"{db}\"")]));
    }
    let url = |db: &str| format!("postgres://postgres@127.0.0.1:5432/{db}");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), Some(&url(&source)));
    let original = publish_something(&server);

    let backup = tempfile::tempdir().unwrap();
    let dump = backup.path().join("ota.dump");
    run(Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(url(&source)));
    copy(&data.path().join("updates"), backup.path());
    copy(&data.path().join("jwt-secret"), backup.path());
    drop(server);

    run(Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &url(&target)])
        .arg(&dump));
    let restored_dir = tempfile::tempdir().unwrap();
    for entry in ["updates", "jwt-secret"] {
        copy(&backup.path().join(entry), restored_dir.path());
    }
    let restored = Server::start(restored_dir.path(), Some(&url(&target)));
    assert_restored(&restored, &original);
    drop(restored);
    for db in [&source, &target] {
        run(Command::new("psql").args([
            ADMIN_URL,
            "-qc",
            &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
        ]));
    }
}

/// A name part no other run uses.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{nanos}", std::process::id())
}
