//! Backups as the README describes them, restored and checked: the
//! database (`sqlite3 .backup` while the server runs, or `pg_dump`), the
//! blob directory and the generated JWT secret, copied to a fresh machine
//! (a new data directory, a new database) serve the same updates to the
//! same devices, and the same accounts and sessions work.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use test_support::{PgDatabase, fixture};

use common::BINARY;
use common::server::Server;

/// The server on `data` (and `database_url`, when given), logging into `data`.
fn serve(data: &Path, database_url: Option<&str>) -> Server {
    let mut env = vec![("DATA_DIR", data.to_str().unwrap()), ("RUST_LOG", "warn")];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
    }
    Server::start(&env, &data.join("server.log"))
}

/// `POST path`, which must succeed; the answer.
fn post_ok(server: &Server, path: &str, token: Option<&str>, body: &Value) -> Value {
    let (status, answer) = server.post(path, token, body);
    assert!(
        (200..300).contains(&status),
        "POST {path}: {status} {answer}"
    );
    answer
}

/// The manifest an iOS device on runtime 1.0.0 gets, as JSON.
fn manifest(server: &Server, project: &str) -> Value {
    let answer = server.check(
        project,
        &[
            ("expo-platform", "ios"),
            ("expo-runtime-version", "1.0.0"),
            ("expo-protocol-version", "1"),
            ("accept", "application/expo+json"),
        ],
    );
    assert_eq!(answer.status, 200, "{}", answer.json);
    answer.json
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
    let session = post_ok(
        server,
        "/api/auth/register",
        None,
        &json!({"username": "backup", "email": "backup@example.com", "password": "correct horse battery"}),
    );
    let token = session["token"].as_str().unwrap().to_owned();
    let project = post_ok(
        server,
        "/api/projects",
        Some(&token),
        &json!({"name": "Backed up", "slug": "backed-up"}),
    );
    let project = project["id"].as_str().unwrap().to_owned();
    let key = post_ok(
        server,
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
    let manifest = manifest(server, &project);
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
    let manifest = manifest(restored, &original.project);
    assert_eq!(manifest["id"], original.manifest["id"]);
    let url = manifest["launchAsset"]["url"].as_str().unwrap();
    let bundle = reqwest::blocking::get(url).unwrap().bytes().unwrap();
    assert_eq!(bundle.as_ref(), original.bundle.as_slice());
    // The JWT secret came back too: the old session still works.
    let (status, _) = restored.get("/api/auth/me", Some(&original.token));
    assert_eq!(status, 200);
    let (_, updates) = restored.get(
        &format!("/api/projects/{}/updates", original.project),
        Some(&original.token),
    );
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
    let server = serve(data.path(), None);
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
    let restored = serve(restored_dir.path(), None);
    assert_restored(&restored, &original);
}

#[test]
fn postgres_restores_from_pg_dump() {
    let (source, target) = (PgDatabase::create_blocking(), PgDatabase::create_blocking());
    let data = tempfile::tempdir().unwrap();
    let server = serve(data.path(), Some(&source.url));
    let original = publish_something(&server);

    let backup = tempfile::tempdir().unwrap();
    let dump = backup.path().join("ota.dump");
    run(Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&dump)
        .arg(&source.url));
    copy(&data.path().join("updates"), backup.path());
    copy(&data.path().join("jwt-secret"), backup.path());
    drop(server);

    run(Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &target.url])
        .arg(&dump));
    let restored_dir = tempfile::tempdir().unwrap();
    for entry in ["updates", "jwt-secret"] {
        copy(&backup.path().join(entry), restored_dir.path());
    }
    let restored = serve(restored_dir.path(), Some(&target.url));
    assert_restored(&restored, &original);
}
