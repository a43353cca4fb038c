//! Faults only a real process can have: the server killed with SIGKILL in the middle of a
//! publish (on SQLite and on PostgreSQL), and several instances of the binary sharing one
//! PostgreSQL database and one S3 bucket.
//!
//! The server runs as a child process (the binary as an operator runs it), with its log in
//! its data directory. PostgreSQL is reached with `psql` (`TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`); S3 is the in-process s3s-fs server of
//! `s3-test-server`. Nothing skips: an unreachable PostgreSQL fails the test.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use test_support::{Export, PgDatabase, sha256_bytes_hex};

use common::server::{Server, http};

/// Shared by instances that must accept each other's tokens (48 bytes).
const JWT_SECRET: &str = "faults-secret-0123456789-abcdefghijklmnopqrstuvw";

// -------------------------------------------------------------------------------------------
// The server as a child process (`common::server::Server`), and what these tests ask of it
// -------------------------------------------------------------------------------------------

impl Server {
    /// `POST /api/updates/{project}/publish` with the whole export; (status, body).
    fn publish(&self, project_id: &str, secret: &str, export: &Export) -> (u16, Value) {
        let boundary = format!("faults-{}", uuid::Uuid::new_v4().simple());
        let (body, _) = encode(&release_parts(export), &boundary);
        let response = http()
            .post(format!("{}/api/updates/{project_id}/publish", self.url))
            .bearer_auth(secret)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Publishes `export`, asserting success; returns the update id.
    fn publish_ok(&self, project_id: &str, secret: &str, export: &Export) -> String {
        let (status, body) = self.publish(project_id, secret, export);
        assert_eq!(status, 200, "publish {}: {body}", export.name);
        assert_eq!(body["message"], "Update published successfully", "{body}");
        body["updateId"].as_str().unwrap().to_owned()
    }

    /// The update ids of the project's history, newest first.
    fn history(&self, token: &str, project_id: &str) -> Vec<String> {
        let (status, body) = self.get(
            &format!("/api/projects/{project_id}/updates?limit=100"),
            Some(token),
        );
        assert_eq!(status, 200, "history: {body}");
        body["updates"]
            .as_array()
            .unwrap_or_else(|| panic!("no updates array: {body}"))
            .iter()
            .map(|update| update["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// A protocol-1 update check answered as plain JSON: (status, body).
    fn json_check(
        &self,
        project_id: &str,
        platform: &str,
        runtime_version: &str,
        device: Option<&str>,
    ) -> (u16, Value) {
        let mut headers = vec![
            ("expo-platform", platform),
            ("expo-runtime-version", runtime_version),
            ("expo-protocol-version", "1"),
            ("accept", "application/json"),
        ];
        if let Some(device) = device {
            headers.push(("eas-client-id", device));
        }
        let answer = self.check(project_id, &headers);
        (answer.status, answer.json)
    }

    /// The manifest an update check must answer.
    fn manifest(&self, project_id: &str, platform: &str, runtime_version: &str) -> Value {
        let (status, manifest) = self.json_check(project_id, platform, runtime_version, None);
        assert_eq!(status, 200, "update check: {manifest}");
        assert!(
            manifest["launchAsset"].is_object(),
            "not a manifest: {manifest}"
        );
        manifest
    }

    /// The manifest id served to `device`, if a manifest is served at all.
    fn manifest_id_for(&self, project_id: &str, device: &str) -> Option<String> {
        let (status, body) = self.json_check(project_id, "ios", "1.0.0", Some(device));
        // No update for the device: a JSON-only protocol-1 client gets 204.
        assert!(
            status == 200 || status == 204,
            "update check: {status} {body}"
        );
        body["launchAsset"]
            .is_object()
            .then(|| body["id"].as_str().unwrap().to_owned())
    }
}

// -------------------------------------------------------------------------------------------
// Exports and publish forms
// -------------------------------------------------------------------------------------------

/// The form a release pipeline sends for `export`: `runtimeVersion`, `metadata.json`,
/// `expoConfig.json`, then one file field per listed path, assets before bundles.
fn release_parts(export: &Export) -> Vec<Part> {
    let mut parts = vec![
        Part::text("runtimeVersion", &export.runtime_version),
        Part::file("metadata.json", export.raw("metadata.json")),
        Part::file("expoConfig.json", export.raw("expoConfig.json")),
    ];
    let bundles = export.bundle_paths();
    let (bundle_paths, asset_paths): (Vec<String>, Vec<String>) = export
        .listed_paths()
        .into_iter()
        .partition(|path| bundles.contains(path));
    for path in asset_paths.into_iter().chain(bundle_paths) {
        parts.push(Part::file(&path, export.bytes(&path)));
    }
    parts
}

/// One part of a `multipart/form-data` body.
struct Part {
    name: String,
    file_name: Option<String>,
    bytes: Vec<u8>,
}

impl Part {
    fn text(name: &str, value: &str) -> Part {
        Part {
            name: name.to_owned(),
            file_name: None,
            bytes: value.as_bytes().to_vec(),
        }
    }

    /// A file field named verbatim by its path, as browsers, curl and Node send it.
    fn file(name: &str, bytes: Vec<u8>) -> Part {
        Part {
            name: name.to_owned(),
            file_name: Some(name.rsplit('/').next().unwrap().to_owned()),
            bytes,
        }
    }
}

/// The body, and where each part's content starts in it.
fn encode(parts: &[Part], boundary: &str) -> (Vec<u8>, Vec<usize>) {
    let mut body = Vec::new();
    let mut starts = Vec::new();
    for part in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                part.name
            )
            .as_bytes(),
        );
        if let Some(file_name) = &part.file_name {
            body.extend_from_slice(
                format!("; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        starts.push(body.len());
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, starts)
}

// -------------------------------------------------------------------------------------------
// Files and databases outside the server
// -------------------------------------------------------------------------------------------

/// The regular files directly in `dir` (none when it does not exist).
fn files_in(dir: &Path) -> BTreeMap<String, u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().map(|meta| meta.len()).unwrap_or(0),
            )
        })
        .collect()
}

/// The blobs of a project on local disk: (files by SHA-256, compressed copies).
fn project_blobs(blob_root: &Path, project_id: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let names = files_in(&blob_root.join("projects").join(project_id).join("assets"));
    let (copies, files): (BTreeSet<String>, BTreeSet<String>) =
        names.into_keys().partition(|name| name.contains('.'));
    (files, copies)
}

/// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` with the `sqlite3` CLI.
///
/// Without the CLI the check is left out (with a note): the restarted server reading the
/// history and serving manifests, then committing a new publish, is the integrity evidence
/// that remains.
fn sqlite_integrity_check(database: &Path) {
    let run = |pragma: &str| Command::new("sqlite3").arg(database).arg(pragma).output();
    let integrity = match run("PRAGMA integrity_check;") {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: no sqlite3 CLI; the integrity check rests on the restart");
            return;
        }
        Err(error) => panic!("run sqlite3: {error}"),
    };
    assert!(integrity.status.success(), "sqlite3: {integrity:?}");
    assert_eq!(
        String::from_utf8_lossy(&integrity.stdout).trim(),
        "ok",
        "PRAGMA integrity_check after SIGKILL"
    );
    let foreign_keys = run("PRAGMA foreign_key_check;").unwrap();
    assert!(foreign_keys.status.success(), "sqlite3: {foreign_keys:?}");
    assert_eq!(
        String::from_utf8_lossy(&foreign_keys.stdout).trim(),
        "",
        "PRAGMA foreign_key_check after SIGKILL"
    );
}

// -------------------------------------------------------------------------------------------
// SIGKILL during a publish
// -------------------------------------------------------------------------------------------

/// Starts publishing `export` over a raw connection: sends everything up to and including
/// the first 64 KiB of the first bundle at once, then the bundle 16 KiB every 50 ms, until
/// the server has staged files, and a few chunks more; never finishes. Returns the open
/// connection.
fn publish_slowly_until_staged(
    server: &Server,
    project_id: &str,
    secret: &str,
    export: &Export,
    staging: &Path,
) -> TcpStream {
    let parts = release_parts(export);
    let boundary = format!("faults-{}", uuid::Uuid::new_v4().simple());
    let (body, starts) = encode(&parts, &boundary);
    let first_bundle = parts
        .iter()
        .position(|part| export.bundle_paths().contains(&part.name))
        .unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /api/updates/{project_id}/publish HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
         Authorization: Bearer {secret}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.port,
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut sent = starts[first_bundle] + 64 * 1024;
    stream.write_all(&body[..sent]).unwrap();
    let started = Instant::now();
    let mut chunks_after_staged = 0;
    loop {
        if !files_in(staging).is_empty() {
            chunks_after_staged += 1;
            if chunks_after_staged > 4 {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing was staged within 20 s:\n{}",
            server.log()
        );
        let next = (sent + 16 * 1024).min(body.len() - 1);
        assert!(
            next > sent,
            "the whole body was sent before anything was staged"
        );
        stream.write_all(&body[sent..next]).unwrap();
        sent = next;
        sleep(Duration::from_millis(50));
    }
    assert!(
        sent < starts[first_bundle] + parts[first_bundle].bytes.len(),
        "the bundle was sent completely before the kill"
    );
    stream
}

/// Where a server keeps what the kill test looks at.
struct Setup {
    data: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Setup {
    fn blob_root(&self) -> PathBuf {
        self.data.path().join("updates")
    }

    fn staging(&self) -> PathBuf {
        self.blob_root().join("staging")
    }

    fn log(&self) -> PathBuf {
        self.data.path().join("server.log")
    }
}

fn kill_9_during_publish(database: Option<&PgDatabase>) {
    let started = Instant::now();
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![
        (
            "DATA_DIR".to_owned(),
            data.path().to_string_lossy().into_owned(),
        ),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ];
    if let Some(database) = database {
        env.push(("DATABASE_URL".to_owned(), database.url.clone()));
    }
    let setup = Setup { data, env };
    let (v1, v2) = (Export::v1(), Export::v2());

    let server = Server::start(&setup.env, &setup.log());
    let token = server.register("killed");
    let (project_id, secret) = server.project_with_key(&token, "killed-app");
    let v1_id = server.publish_ok(&project_id, &secret, &v1);
    let v1_ios = server.manifest(&project_id, "ios", "1.0.0");
    let v1_android = server.manifest(&project_id, "android", "1.0.0");
    assert_eq!(
        project_blobs(&setup.blob_root(), &project_id).0,
        v1.file_sha256s()
    );

    // v2's upload is under way, files staged, when the server is killed.
    let connection =
        publish_slowly_until_staged(&server, &project_id, &secret, &v2, &setup.staging());
    server.kill_9();
    drop(connection);
    let left_in_staging = files_in(&setup.staging());
    assert!(
        !left_in_staging.is_empty(),
        "the kill left nothing in staging: the test did not hit the window"
    );
    eprintln!("staging after SIGKILL: {left_in_staging:?}");
    if database.is_none() {
        sqlite_integrity_check(&setup.data.path().join("ota.db"));
    }

    // Restarted with the default grace (an hour), start-up leaves young staging files alone:
    // they could belong to a publish under way on another instance.
    let server = Server::start(&setup.env, &setup.log());
    assert_eq!(
        files_in(&setup.staging()).into_keys().collect::<Vec<_>>(),
        left_in_staging.keys().cloned().collect::<Vec<_>>(),
        "start-up deleted staging files younger than GC_GRACE_SECONDS"
    );
    server.kill_9();

    // Restarted with no grace: start-up deletes what the killed publish staged.
    let mut env = setup.env.clone();
    env.push(("GC_GRACE_SECONDS".to_owned(), "0".to_owned()));
    let server = Server::start(&env, &setup.log());
    assert_eq!(
        files_in(&setup.staging()),
        BTreeMap::new(),
        "staging after the restart"
    );
    assert_eq!(server.history(&token, &project_id), vec![v1_id.clone()]);
    let restarted_ios = server.manifest(&project_id, "ios", "1.0.0");
    assert_eq!(restarted_ios["id"], v1_ios["id"]);
    assert_eq!(
        server.manifest(&project_id, "android", "1.0.0")["id"],
        v1_android["id"]
    );
    let (files, copies) = project_blobs(&setup.blob_root(), &project_id);
    assert_eq!(files, v1.file_sha256s(), "blobs other than v1's are stored");
    for copy in &copies {
        let sha = copy.split('.').next().unwrap();
        assert!(
            v1.file_sha256s().contains(sha),
            "a copy of a non-v1 blob: {copy}"
        );
    }

    // The other window: a blob promoted, the update never committed (an orphan).
    let orphan_bytes = b"promoted by a publish that was killed before it committed";
    let orphan = setup
        .blob_root()
        .join("projects")
        .join(&project_id)
        .join("assets")
        .join(sha256_bytes_hex(orphan_bytes));
    std::fs::write(&orphan, orphan_bytes).unwrap();
    let (status, report) = server.post(
        &format!("/api/projects/{project_id}/storage/gc"),
        Some(&token),
        &json!({}),
    );
    assert_eq!(status, 200, "storage gc: {report}");
    assert_eq!(report["deletedBlobs"], 1, "{report}");
    assert!(!orphan.exists(), "the orphan survived the collection");
    assert_eq!(
        project_blobs(&setup.blob_root(), &project_id).0,
        v1.file_sha256s()
    );
    // And v1 still downloads intact.
    let launch = http()
        .get(restarted_ios["launchAsset"]["url"].as_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(launch.status().as_u16(), 200);
    assert_eq!(
        launch.bytes().unwrap().as_ref(),
        v1.bytes(&v1.bundle("ios")).as_slice()
    );

    // The interrupted publish can simply be done again.
    let v2_id = server.publish_ok(&project_id, &secret, &v2);
    assert_eq!(server.history(&token, &project_id), vec![v2_id, v1_id]);
    let served = server.manifest(&project_id, "ios", "1.0.0");
    assert_ne!(served["id"], v1_ios["id"]);
    assert_eq!(
        served["launchAsset"]["hash"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(v2.bytes(&v2.bundle("ios")))),
        "v2 is served"
    );
    assert_eq!(files_in(&setup.staging()), BTreeMap::new());
    drop(server);
    if database.is_none() {
        sqlite_integrity_check(&setup.data.path().join("ota.db"));
    }
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn kill_9_during_publish_sqlite() {
    kill_9_during_publish(None);
}

#[test]
fn kill_9_during_publish_postgres() {
    let database = PgDatabase::create_blocking();
    kill_9_during_publish(Some(&database));
}

// -------------------------------------------------------------------------------------------
// Two instances, one database, one bucket
// -------------------------------------------------------------------------------------------

/// Polls until `done` returns `Some`, failing after `limit`; returns the value and how long
/// it took.
fn within<T>(limit: Duration, what: &str, mut done: impl FnMut() -> Option<T>) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(value) = done() {
            return (value, started.elapsed());
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_instances_share_postgres_and_s3() {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s3 = runtime.block_on(s3_test_server::S3Server::start());
    let database = PgDatabase::create_blocking();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let shared: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .chain([
            ("DATABASE_URL".to_owned(), database.url.clone()),
            ("JWT_SECRET".to_owned(), JWT_SECRET.to_owned()),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ])
        .collect();
    let instance = |data: &tempfile::TempDir| {
        let mut env = shared.clone();
        env.push((
            "DATA_DIR".to_owned(),
            data.path().to_string_lossy().into_owned(),
        ));
        Server::start(&env, &data.path().join("server.log"))
    };
    let a = instance(&data_a);
    let b = instance(&data_b);

    let token = a.register("shared");
    let (project_id, secret) = a.project_with_key(&token, "shared-app");
    // B has looked before anything was published: it holds "no update" for the stream.
    assert_eq!(b.manifest_id_for(&project_id, "device-0"), None);

    // A publish on A is served by B within a second, also over an answer B had cached.
    let (v1, v2) = (Export::v1(), Export::v2());
    let v1_id = a.publish_ok(&project_id, &secret, &v1);
    let v1_manifest = a.manifest(&project_id, "ios", "1.0.0")["id"].clone();
    let (_, took) = within(Duration::from_secs(1), "B serves v1", || {
        (b.json_check(&project_id, "ios", "1.0.0", None).1["id"] == v1_manifest).then_some(())
    });
    eprintln!("B served A's publish after {took:?}");
    let v2_id = a.publish_ok(&project_id, &secret, &v2);
    let v2_manifest = a.manifest(&project_id, "ios", "1.0.0")["id"].clone();
    assert_ne!(v1_manifest, v2_manifest);
    let (_, took) = within(Duration::from_secs(1), "B serves v2 over v1", || {
        (b.json_check(&project_id, "ios", "1.0.0", None).1["id"] == v2_manifest).then_some(())
    });
    eprintln!("B replaced its cached answer after {took:?}");

    // A rollout set on A places every device the same way on both instances.
    let (status, body) = a.call(
        reqwest::Method::PATCH,
        &format!("/api/projects/{project_id}/updates/{v2_id}"),
        Some(&token),
        Some(&json!({ "rolloutPercentage": 50 })),
    );
    assert_eq!(status, 200, "rollout: {body}");
    let devices: Vec<String> = (0..50)
        .map(|i| format!("7d3f6a40-0000-4000-8000-{i:012}"))
        .collect();
    let (on_a, took) = within(
        Duration::from_secs(1),
        "A and B agree on every device",
        || {
            let on_a: Vec<Option<String>> = devices
                .iter()
                .map(|device| a.manifest_id_for(&project_id, device))
                .collect();
            let on_b: Vec<Option<String>> = devices
                .iter()
                .map(|device| b.manifest_id_for(&project_id, device))
                .collect();
            (on_a == on_b).then_some(on_a)
        },
    );
    eprintln!("A and B agreed on the rollout after {took:?}");
    let (v1_manifest, v2_manifest) = (
        v1_manifest.as_str().unwrap().to_owned(),
        v2_manifest.as_str().unwrap().to_owned(),
    );
    let in_rollout = on_a
        .iter()
        .filter(|id| id.as_deref() == Some(v2_manifest.as_str()))
        .count();
    let outside = on_a
        .iter()
        .filter(|id| id.as_deref() == Some(v1_manifest.as_str()))
        .count();
    assert_eq!(in_rollout + outside, devices.len(), "{on_a:?}");
    assert!(
        (10..=40).contains(&in_rollout),
        "a 50 % rollout reached {in_rollout} of {} devices",
        devices.len()
    );
    // Stable: each device gets the same answer again.
    for (device, first) in devices.iter().zip(&on_a) {
        assert_eq!(&a.manifest_id_for(&project_id, device), first, "{device}");
    }

    // Eight publishes at once, half on each instance: all succeed, all are in the history.
    let exports = [Export::v1(), Export::v2()];
    let published: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (server, export) = (if i % 2 == 0 { &a } else { &b }, &exports[i % 2]);
                let (project_id, secret) = (&project_id, &secret);
                scope.spawn(move || server.publish(project_id, secret, export))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut concurrent_ids = BTreeSet::new();
    for (status, body) in &published {
        assert_eq!(*status, 200, "a concurrent publish failed: {body}");
        concurrent_ids.insert(body["updateId"].as_str().unwrap().to_owned());
    }
    assert_eq!(concurrent_ids.len(), 8, "{published:?}");
    let mut expected: BTreeSet<String> = concurrent_ids.clone();
    expected.extend([v1_id, v2_id]);
    for server in [&a, &b] {
        let history: BTreeSet<String> = server.history(&token, &project_id).into_iter().collect();
        assert_eq!(history, expected, "history on {}", server.url);
    }
    // Both serve the same latest update, within a second.
    within(
        Duration::from_secs(1),
        "A and B serve the same latest",
        || {
            let on_a = a.manifest(&project_id, "ios", "1.0.0")["id"].clone();
            (b.json_check(&project_id, "ios", "1.0.0", None).1["id"] == on_a).then_some(())
        },
    );
    assert_eq!(
        files_in(&s3.bucket_dir().join("staging")),
        BTreeMap::new(),
        "publishes left files in staging"
    );
    drop((a, b));
    drop(database);
    drop(s3);
    drop(runtime);
    eprintln!("took {:?}", started.elapsed());
}
