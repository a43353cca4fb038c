//! Switching from the Go server, as a user does it: a Go data dir (made by
//! `go-data-fixture` from the real exports, with every quirk of its data)
//! is imported with the real binary's `import-go`, then the real server
//! starts on the result and is checked over HTTP: old passwords, old API
//! keys and old sessions work, and every app in the field is told exactly
//! what the Go server told it (same manifest ids, times, files, rollbacks,
//! signatures), except where the Go data was broken, which the report says.
//!
//! On SQLite with local disk, and on PostgreSQL with S3 (the Go tree in a
//! bucket of its own); plus: a rerun imports nothing, a dry run writes
//! nothing, a kill -9 mid-import and a rerun equal an uninterrupted run,
//! the server refuses to start on a Go database, and unusable sources fail
//! with one line.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use go_data_fixture::{GoDataDir, Options, ids, times};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use common::BINARY;
use common::server::{Server, psql, sqlite};
use test_support::{PgDatabase, fixtures_dir};

/// The Go server's JWT_SECRET, kept for the switch (at least 32 bytes).
const JWT_SECRET: &str = "the-go-servers-jwt-secret-0123456789abcdef";

fn generate(root: &Path, options: &Options) -> GoDataDir {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let written = runtime.block_on(go_data_fixture::write(root, options));
    assert!(
        runtime.block_on(go_data_fixture::wal_holds_rows(root)),
        "the generator must leave rows only in the WAL"
    );
    written
}

fn signing_key_path() -> PathBuf {
    fixtures_dir().join("code-signing/private-key.pem")
}

/// `import-go` with the target environment `env`; exit status, stdout, stderr.
fn import_go(env: &[(String, String)], args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BINARY)
        .arg("import-go")
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// A successful `import-go --json`: the report.
fn import_json(env: &[(String, String)], args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = import_go(env, &all);
    assert!(ok, "import-go failed: {stderr}\n{stdout}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|error| panic!("stdout is not one JSON object ({error}): {stdout}"))
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every file under `dir` with its SHA-256 (the -shm index excluded: SQLite
/// readers may refresh it, it holds no data).
fn file_digests(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if !path.to_string_lossy().ends_with("-shm") {
                let relative = path.strip_prefix(base).unwrap().display().to_string();
                out.insert(
                    relative,
                    hex::encode(Sha256::digest(std::fs::read(&path).unwrap())),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn entries(report: &Value, list: &str) -> Vec<(String, String)> {
    report[list]
        .as_array()
        .unwrap_or_else(|| panic!("report has no {list}: {report}"))
        .iter()
        .map(|e| {
            (
                e["about"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Whether the report's `list` has an entry about `about` whose reason
/// contains `words`.
fn says(report: &Value, list: &str, about: &str, words: &str) -> bool {
    entries(report, list)
        .iter()
        .any(|(a, r)| a.contains(about) && r.contains(words))
}

fn assert_says(report: &Value, list: &str, about: &str, words: &str) {
    assert!(
        says(report, list, about, words),
        "{list} should say {words:?} about {about:?}: {:#?}",
        entries(report, list)
    );
}

/// What the first import of the fixture data dir reports.
fn check_first_report(report: &Value) {
    assert_eq!(
        report["imported"],
        json!({"users": 6, "projects": 3, "members": 6, "keys": 4, "updates": 14,
               "rollbacks": 2, "files": report["imported"]["files"], "bytes": report["imported"]["bytes"]}),
        "{report:#}"
    );
    assert!(report["imported"]["files"].as_u64().unwrap() >= 20);
    let partial = format!("{}/1.0.0/{}", ids::OTHER, times::PARTIAL);
    let corrupt = format!("{}/3.0.0/{}", ids::OTHER, times::CORRUPT);
    // Broken data: skipped, and loudly where it was a runtime's latest.
    assert_says(report, "problems", &partial, "partial publish");
    assert_says(
        report,
        "problems",
        &partial,
        &format!(
            "they now get the update of {}/1.0.0/{}",
            ids::OTHER,
            times::V1
        ),
    );
    assert_says(report, "problems", &corrupt, "does not match the hash");
    assert_says(report, "problems", &corrupt, "they get 404");
    assert_says(report, "problems", ids::ORPHAN, "no row in the Go database");
    assert_says(
        report,
        "problems",
        &format!("{}/1.0.0/{}", ids::APP, times::JUNK),
        "neither metadata.json nor a rollback marker",
    );
    assert_says(
        report,
        "problems",
        &format!("{}/1.0.0/tmp", ids::APP),
        "left alone",
    );
    assert_says(report, "problems", "root of the update tree", "left alone");
    // Rows: dangling, duplicated, unknown roles, owners, slugs, creators.
    assert_says(
        report,
        "skipped",
        "project_user 019d7a13-2000",
        "does not exist",
    );
    assert_says(
        report,
        "warnings",
        "project_user 019d7a13-0000",
        "kept the earliest row",
    );
    assert_says(
        report,
        "warnings",
        "project_user 019d7a13-3000",
        "role \"admin\"",
    );
    assert_says(
        report,
        "warnings",
        "project_user 019d7a13-5000",
        "role \"\"",
    );
    assert_says(
        report,
        "warnings",
        &format!("project {}", ids::OTHER),
        "is its owner now",
    );
    assert_says(
        report,
        "warnings",
        &format!("project {}", ids::OTHER),
        "\"my-app-2\"",
    );
    assert_says(
        report,
        "warnings",
        &format!("key {}", ids::KEY_APP_GHOST),
        "does not exist",
    );
    assert_says(report, "warnings", &format!("user {}", ids::MALLORY), "'@'");
    assert_says(
        report,
        "warnings",
        &format!("user {}", ids::ALICE_UPPER),
        "exactly \"Alice\"",
    );
    // Update dirs imported with a caveat.
    let sdk49 = format!("{}/0.9.0/{}", ids::APP, times::SDK49);
    assert_says(report, "warnings", &sdk49, "byte order mark");
    assert_says(report, "warnings", &sdk49, "rebuilt from metadata.json");
    assert_says(report, "warnings", "1.0.0/beta", "nested directories");
}

fn device(platform: &str, runtime: &str) -> Vec<(&'static str, String)> {
    vec![
        ("expo-platform", platform.to_owned()),
        ("expo-runtime-version", runtime.to_owned()),
        ("expo-protocol-version", "1".to_owned()),
        (
            "expo-expect-signature",
            "sig, keyid=\"main\", alg=\"rsa-v1_5-sha256\"".to_owned(),
        ),
    ]
}

fn check(
    server: &Server,
    project: &str,
    headers: &[(&'static str, String)],
) -> common::server::UpdateCheck {
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    server.check(project, &borrowed)
}

/// Nothing to serve: protocol 1's `noUpdateAvailable` directive (the Go
/// server answered 404, which the Android client counts as a failed check).
#[track_caller]
fn assert_no_update(answer: &common::server::UpdateCheck) {
    assert_eq!(answer.status, 200);
    assert_eq!(answer.part, "directive");
    assert_eq!(answer.json, json!({"type": "noUpdateAvailable"}));
}

/// The signature of a part verifies with the fixture certificate's key,
/// announced as `keyid="main"` (what apps in the field embed).
fn assert_signed(answer: &common::server::UpdateCheck) {
    let header = answer
        .signature
        .as_deref()
        .expect("an expo-signature header");
    assert!(header.contains("keyid=\"main\""), "{header}");
    let sig = header
        .split("sig=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let pem = std::fs::read_to_string(fixtures_dir().join("code-signing/public-key.pem")).unwrap();
    let key = RsaPublicKey::from_public_key_pem(&pem).unwrap();
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(&answer.raw),
        &STANDARD.decode(sig).unwrap(),
    )
    .expect("the signature verifies");
}

/// `2026-04-14T20:53:20.000Z`: the shape manifests carry times in.
fn rfc3339(seconds: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(seconds).unwrap(), 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The device running the Go update of `dir` for `platform` is served it:
/// its manifest id, time and files, signed; told there is nothing new once
/// it runs it; its files download, also through the Go server's URL form.
fn assert_serves(
    server: &Server,
    go: &GoDataDir,
    project: &str,
    runtime: &str,
    platform: &str,
    dir: &str,
) {
    let expected = go.dir(dir);
    let answer = check(server, project, &device(platform, runtime));
    assert_eq!(
        answer.status, 200,
        "{project} {runtime} {platform}: {:?}",
        answer.json
    );
    assert_eq!(answer.part, "manifest", "{:?}", answer.json);
    let manifest = &answer.json;
    assert_eq!(
        manifest["id"].as_str(),
        expected.manifest_id.as_deref(),
        "{dir}: the Go manifest id"
    );
    assert_eq!(manifest["createdAt"], rfc3339(expected.go_id), "{dir}");
    assert_eq!(manifest["runtimeVersion"], runtime);
    assert_signed(&answer);
    let bundle_path = &expected.bundles[platform];
    let bundle = &expected.files[bundle_path];
    assert_eq!(
        manifest["launchAsset"]["hash"],
        bundle.hash.as_str(),
        "{dir}"
    );
    assert_eq!(manifest["launchAsset"]["key"], bundle.key.as_str(), "{dir}");
    let metadata: Value = serde_json::from_slice(expected.metadata.as_deref().unwrap()).unwrap();
    let listed: BTreeSet<String> = metadata["fileMetadata"][platform]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            expected.files[&a["path"].as_str().unwrap().replace('\\', "/")]
                .hash
                .clone()
        })
        .collect();
    let served: BTreeSet<String> = manifest["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["hash"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(served, listed, "{dir}: the asset hashes");
    let (status, bytes) = server.download(manifest["launchAsset"]["url"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(URL_SAFE_NO_PAD.encode(Sha256::digest(&bytes)), bundle.hash);
    let legacy = format!(
        "/api/updates/{project}/assets?asset={bundle_path}&runtimeVersion={}&platform={platform}",
        runtime.replace('/', "%2F")
    );
    let (status, bytes) = server.download(&legacy);
    assert_eq!(status, 200, "{legacy}");
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(&bytes)),
        bundle.hash,
        "{legacy}"
    );
    // A device already running it downloads nothing.
    let mut running = device(platform, runtime);
    running.push((
        "expo-current-update-id",
        expected.manifest_id.clone().unwrap(),
    ));
    let answer = check(server, project, &running);
    assert_eq!(answer.part, "directive");
    assert_eq!(answer.json, json!({"type": "noUpdateAvailable"}));
    assert_signed(&answer);
}

/// What apps in the field get from the imported fixture data.
fn check_devices(server: &Server, go: &GoDataDir) {
    let app = ids::APP;
    let other = ids::OTHER;
    let v2 = format!("{app}/1.0.0/{}", times::V2);
    for platform in ["ios", "android"] {
        assert_serves(server, go, app, "1.0.0", platform, &v2);
        assert_serves(
            server,
            go,
            app,
            "1.0.0/beta",
            platform,
            &format!("{app}/1.0.0/beta/{}", times::NESTED),
        );
        assert_serves(
            server,
            go,
            app,
            "0.9.0",
            platform,
            &format!("{app}/0.9.0/{}", times::SDK49),
        );
        // The partial latest is skipped: the previous intact update.
        assert_serves(
            server,
            go,
            other,
            "1.0.0",
            platform,
            &format!("{other}/1.0.0/{}", times::V1),
        );
        // Runtime 2.0.0 was rolled back to the embedded update.
        let rt2 = go.dir(&format!("{app}/2.0.0/{}", times::RT2));
        let mut on_rt2 = device(platform, "2.0.0");
        on_rt2.push(("expo-current-update-id", rt2.manifest_id.clone().unwrap()));
        on_rt2.push((
            "expo-embedded-update-id",
            "0a8f7e9c-0000-4000-8000-000000000000".to_owned(),
        ));
        let answer = check(server, app, &on_rt2);
        assert_eq!(answer.part, "directive", "{:?}", answer.json);
        assert_eq!(
            answer.json,
            json!({"type": "rollBackToEmbedded", "parameters": {"commitTime": rfc3339(times::ROLLBACK)}})
        );
        assert_signed(&answer);
        // A device running its embedded update is told there is nothing new.
        let embedded = "0a8f7e9c-0000-4000-8000-000000000001".to_owned();
        let mut on_embedded = device(platform, "2.0.0");
        on_embedded.push(("expo-current-update-id", embedded.clone()));
        on_embedded.push(("expo-embedded-update-id", embedded));
        let answer = check(server, app, &on_embedded);
        assert_eq!(answer.json, json!({"type": "noUpdateAvailable"}));
    }
    // The SDK 49 update keeps its bundles/ path and serves its config (BOM gone).
    let sdk49 = check(server, app, &device("ios", "0.9.0"));
    assert!(
        sdk49.json["launchAsset"]["url"]
            .as_str()
            .unwrap()
            .contains("asset=bundles/ios-"),
        "{:?}",
        sdk49.json
    );
    assert_eq!(sdk49.json["extra"]["expoClient"]["runtimeVersion"], "0.9.0");
    // Only the intact platform of the corrupt update; the iOS-only update.
    assert_serves(
        server,
        go,
        other,
        "3.0.0",
        "ios",
        &format!("{other}/3.0.0/{}", times::CORRUPT),
    );
    assert_no_update(&check(server, other, &device("android", "3.0.0")));
    assert_serves(
        server,
        go,
        ids::WAL,
        "1.0.0",
        "ios",
        &format!("{}/1.0.0/{}", ids::WAL, times::IOS_ONLY),
    );
    assert_no_update(&check(server, ids::WAL, &device("android", "1.0.0")));
    // A tree directory without a database row was left alone: no such project.
    assert_eq!(
        check(server, ids::ORPHAN, &device("ios", "1.0.0")).status,
        404
    );
}

/// People, sessions and CI keep working.
fn check_people_and_keys(server: &Server, go: &GoDataDir) {
    for account in &go.accounts {
        assert_eq!(
            server.login(account.username, account.password).as_deref(),
            Some(account.id),
            "{} logs in with the old password",
            account.username
        );
    }
    // bob's email is mallory's username: each password reaches its owner.
    let bob = go.account(ids::BOB);
    let mallory = go.account(ids::MALLORY);
    assert_eq!(
        server.login(bob.email, bob.password).as_deref(),
        Some(ids::BOB)
    );
    assert_eq!(
        server.login(mallory.username, mallory.password).as_deref(),
        Some(ids::MALLORY)
    );
    assert_eq!(server.login("alice", "other-alice-password"), None);
    // A session the Go server issued (HS256, sub/iat/exp, same secret).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": ids::ALICE, "iat": now, "exp": now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, projects) = server.call(reqwest::Method::GET, "/api/projects", Some(&token), None);
    assert_eq!(status, 200, "{projects}");
    let listed: Vec<&str> = projects
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids::APP], "alice's projects");
    let (status, members) = server.call(
        reqwest::Method::GET,
        &format!("/api/projects/{}/users", ids::OTHER),
        Some(&server_token(server, bob.username, bob.password)),
        None,
    );
    assert_eq!(status, 200, "{members}");
    let roles: BTreeMap<&str, &str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["userId"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        BTreeMap::from([(ids::BOB, "owner"), (ids::MALLORY, "member")])
    );
}

fn server_token(server: &Server, login: &str, password: &str) -> String {
    let body = json!({"login": login, "password": password});
    let (status, answer) = server.call(reqwest::Method::POST, "/api/auth/login", None, Some(&body));
    assert_eq!(status, 200);
    answer["token"].as_str().unwrap().to_owned()
}

/// CI publishes with its old key and devices get the new update.
fn check_publish_with_old_key(server: &Server, go: &GoDataDir) {
    let key = go.key(ids::KEY_APP);
    let output = Command::new(BINARY)
        .args(["publish", "--json", "--dir"])
        .arg(fixtures_dir().join("expo-sdk56-export-rt2"))
        .args(["--runtime-version", "1.0.0"])
        .env_clear()
        .env("EXPO_UPDATES_URL", &server.url)
        .env("EXPO_UPDATES_PROJECT", ids::APP)
        .env("EXPO_UPDATES_API_KEY", &key.secret)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "publish with the Go key: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let published: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(published["updateId"].is_string(), "{published}");
    let answer = check(server, ids::APP, &device("ios", "1.0.0"));
    assert_eq!(answer.part, "manifest");
    let go_v2 = go.dir(&format!("{}/1.0.0/{}", ids::APP, times::V2));
    assert_ne!(answer.json["id"].as_str(), go_v2.manifest_id.as_deref());
    let rt2_bundle = std::fs::read(fixtures_dir().join(
        "expo-sdk56-export-rt2/_expo/static/js/ios/index-a5666ff48349e456a880b7ec408d56aa.hbc",
    ))
    .unwrap();
    assert_eq!(
        answer.json["launchAsset"]["hash"],
        URL_SAFE_NO_PAD.encode(Sha256::digest(&rt2_bundle)),
        "devices get the update published with the old key"
    );
    assert_signed(&answer);
}

fn zero_counts() -> Value {
    json!({"users": 0, "projects": 0, "members": 0, "keys": 0, "updates": 0,
           "rollbacks": 0, "files": 0, "bytes": 0})
}

/// The report with what differs between a dry run and a run taken out.
fn comparable(report: &Value) -> Value {
    let mut report = report.clone();
    report["dryRun"] = Value::Null;
    report
}

#[test]
fn sqlite_and_local_disk() {
    let work = tempfile::tempdir().unwrap();
    let go_dir = work.path().join("go-data");
    let go = generate(&go_dir, &Options::default());
    let source_before = file_digests(&go_dir);
    let data = work.path().join("data");
    let target = env(&[("DATA_DIR", data.to_str().unwrap())]);
    let go_arg = go_dir.to_str().unwrap();

    // A dry run reads everything and writes nothing.
    let dry = import_json(&target, &["--data-dir", go_arg, "--dry-run"]);
    assert_eq!(dry["dryRun"], true);
    assert!(!data.exists(), "a dry run created {}", data.display());
    check_first_report(&dry);

    let report = import_json(&target, &["--data-dir", go_arg]);
    check_first_report(&report);
    assert_eq!(
        comparable(&report),
        comparable(&dry),
        "the dry run reported what the run did"
    );
    assert_same_files(
        &file_digests(&go_dir),
        &source_before,
        "the source was changed",
    );

    // A rerun (the final sync) finds nothing new; a dry run now says so too.
    let again = import_json(&target, &["--data-dir", go_arg]);
    assert_eq!(again["imported"], zero_counts(), "{again:#}");
    assert_eq!(again["alreadyImported"]["users"], 6);
    assert_eq!(again["alreadyImported"]["updates"], 14);
    assert_eq!(again["alreadyImported"]["rollbacks"], 2);
    let before_dry = file_digests(&data);
    let dry_again = import_json(&target, &["--data-dir", go_arg, "--dry-run"]);
    assert_eq!(dry_again["imported"], zero_counts());
    let after_dry: BTreeMap<String, String> = file_digests(&data)
        .into_iter()
        .filter(|(path, _)| !path.ends_with("-wal"))
        .collect();
    let before_dry: BTreeMap<String, String> = before_dry
        .into_iter()
        .filter(|(path, _)| !path.ends_with("-wal"))
        .collect();
    assert_same_files(
        &after_dry,
        &before_dry,
        "a dry run on an existing target wrote",
    );

    let server = Server::start(
        &env(&[
            ("DATA_DIR", data.to_str().unwrap()),
            ("JWT_SECRET", JWT_SECRET),
            ("PRIVATE_KEY", signing_key_path().to_str().unwrap()),
        ]),
        &work.path().join("server.log"),
    );
    check_people_and_keys(&server, &go);
    check_devices(&server, &go);
    check_publish_with_old_key(&server, &go);

    final_sync_while_serving(&server, &go, &go_dir, &target);
}

/// While the server runs, the Go server changes: it revokes a key, changes
/// a member's role (its way: remove, add again), publishes, pulls a rollback
/// (deletes its directory) and loses a whole runtime directory. The final
/// sync carries each over, and the running server serves the result.
fn final_sync_while_serving(
    server: &Server,
    go: &GoDataDir,
    go_dir: &Path,
    target: &[(String, String)],
) {
    let app = ids::APP;
    let statements = format!(
        "DELETE FROM \"key\" WHERE id = '{}'; \
         DELETE FROM project_user WHERE id = '019d7a13-3000-7000-8000-000000000004'; \
         INSERT INTO project_user VALUES ('019d7a13-9000-7000-8000-000000000009', '{app}', '{}', 'owner', '2026-05-01T10:00:00Z');",
        ids::KEY_OTHER,
        ids::BOB
    );
    let status = Command::new("sqlite3")
        .arg(go_dir.join("ota.db"))
        .arg(statements)
        .status()
        .unwrap();
    assert!(status.success());
    let new_dir = format!("{app}/3.5.0/1776700000");
    let added = go_data_fixture::add_update(
        go_dir,
        &new_dir,
        1_776_700_000,
        &fixtures_dir().join("expo-sdk56-export-v2"),
    );
    std::fs::remove_dir_all(go_dir.join(format!("updates/{app}/2.0.0/{}", times::ROLLBACK)))
        .unwrap();
    std::fs::remove_dir_all(go_dir.join(format!("updates/{app}/1.0.0/beta"))).unwrap();

    let sync = import_json(target, &["--data-dir", go_dir.to_str().unwrap()]);
    assert_eq!(
        sync["removed"],
        json!({"members": 0, "keys": 1, "updates": 2}),
        "{sync:#}"
    );
    assert_eq!(sync["imported"]["updates"], 2, "{sync:#}");
    assert_says(
        &sync,
        "warnings",
        "project_user 019d7a13-9000",
        "role \"owner\"",
    );
    assert_says(&sync, "warnings", "1.0.0/beta", "kept here");

    let mut go = go.clone();
    go.dirs.insert(new_dir.clone(), added);
    for platform in ["ios", "android"] {
        // Published on the Go server after the first import.
        assert_serves(server, &go, app, "3.5.0", platform, &new_dir);
        // The rollback was pulled: devices get the update beneath it again.
        assert_serves(
            server,
            &go,
            app,
            "2.0.0",
            platform,
            &format!("{app}/2.0.0/{}", times::RT2),
        );
        // A runtime directory gone altogether is kept (the tree may be partial).
        assert_serves(
            server,
            &go,
            app,
            "1.0.0/beta",
            platform,
            &format!("{app}/1.0.0/beta/{}", times::NESTED),
        );
    }
    let alice = go.account(ids::ALICE);
    let (status, members) = server.call(
        reqwest::Method::GET,
        &format!("/api/projects/{app}/users"),
        Some(&server_token(server, alice.username, alice.password)),
        None,
    );
    assert_eq!(status, 200, "{members}");
    let bob = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == ids::BOB)
        .expect("bob is still a member");
    assert_eq!(bob["role"], "owner", "the role the Go server now gives");
    let revoked = Command::new(BINARY)
        .args(["publish", "--dir"])
        .arg(fixtures_dir().join("expo-sdk56-export-v1"))
        .env_clear()
        .env("EXPO_UPDATES_URL", &server.url)
        .env("EXPO_UPDATES_PROJECT", ids::OTHER)
        .env("EXPO_UPDATES_API_KEY", &go.key(ids::KEY_OTHER).secret)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        !revoked.status.success(),
        "a key revoked on the Go server no longer publishes"
    );
}

#[test]
fn removals_need_the_tree_and_a_cleanly_stopped_database_is_not_touched() {
    let work = tempfile::tempdir().unwrap();
    let go_dir = work.path().join("go-data");
    generate(&go_dir, &Options::default());
    let data = work.path().join("data");
    let target = env(&[("DATA_DIR", data.to_str().unwrap())]);
    import_json(&target, &["--data-dir", go_dir.to_str().unwrap()]);
    let count = || sqlite(&data.join("ota.db"), "SELECT count(*) FROM updates");
    let before = count();

    // The Go server stopped cleanly (its WAL checkpointed and gone), and a
    // copy of its DATA_DIR without updates/ (it used S3; --s3-bucket forgotten).
    let stopped = work.path().join("stopped");
    std::fs::create_dir_all(&stopped).unwrap();
    for name in ["ota.db", "ota.db-wal", "ota.db-shm"] {
        std::fs::copy(go_dir.join(name), stopped.join(name)).unwrap();
    }
    let status = Command::new("sqlite3")
        .arg(stopped.join("ota.db"))
        .arg("PRAGMA wal_checkpoint(TRUNCATE);")
        .output()
        .unwrap();
    assert!(status.status.success());
    assert!(
        !stopped.join("ota.db-wal").exists(),
        "the WAL is checkpointed away on close"
    );
    let _ = std::fs::remove_file(stopped.join("ota.db-shm"));
    let digests = file_digests(&stopped);

    let dry = import_json(
        &target,
        &["--data-dir", stopped.to_str().unwrap(), "--dry-run"],
    );
    assert_eq!(dry["removed"]["updates"], 0, "{dry:#}");
    let sync = import_json(&target, &["--data-dir", stopped.to_str().unwrap()]);
    assert_eq!(sync["removed"]["updates"], 0, "{sync:#}");
    assert_says(&sync, "problems", "updates", "holds no update directory");
    assert_eq!(count(), before, "nothing was removed");
    assert_eq!(sync["imported"], zero_counts(), "{sync:#}");
    let names: BTreeSet<String> = std::fs::read_dir(&stopped)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["ota.db".to_owned()]),
        "no -wal or -shm was created"
    );
    assert_same_files(
        &file_digests(&stopped),
        &digests,
        "the stopped database was written",
    );
}

#[test]
fn postgresql_and_s3_with_the_go_tree_in_a_bucket() {
    let work = tempfile::tempdir().unwrap();
    let go_dir = work.path().join("go-data");
    let go = generate(&go_dir, &Options::default());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = runtime.block_on(s3_test_server::S3Server::start());
    // The Go server's bucket: its tree from the bucket root.
    let go_bucket = s3.root().join("go-updates");
    copy_tree(&go_dir.join("updates"), &go_bucket);
    // A Go server on S3 keeps only ota.db in its DATA_DIR.
    std::fs::rename(go_dir.join("updates"), work.path().join("moved-away")).unwrap();
    let database = PgDatabase::create_blocking();
    let mut target = env(&[
        ("DATA_DIR", work.path().join("data").to_str().unwrap()),
        ("DATABASE_URL", &database.url),
    ]);
    target.extend(s3.env());
    target.extend(env(&[
        ("GO_S3_ENDPOINT", &s3.endpoint),
        ("GO_S3_ACCESS_KEY", s3_test_server::ACCESS_KEY),
        ("GO_S3_SECRET_KEY", s3_test_server::SECRET_KEY),
    ]));
    let go_arg = go_dir.to_str().unwrap();
    let bucket_args = ["--data-dir", go_arg, "--s3-bucket", "go-updates"];

    let mut dry_args = bucket_args.to_vec();
    dry_args.push("--dry-run");
    let dry = import_json(&target, &dry_args);
    check_first_report(&dry);
    let tables = psql(
        &database.url,
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert_eq!(tables.trim(), "0", "a dry run created tables");
    assert!(
        std::fs::read_dir(s3.bucket_dir()).unwrap().next().is_none(),
        "a dry run wrote to the target bucket"
    );

    let report = import_json(&target, &bucket_args);
    check_first_report(&report);
    assert_eq!(comparable(&report), comparable(&dry));
    let again = import_json(&target, &bucket_args);
    assert_eq!(again["imported"], zero_counts(), "{again:#}");

    let mut serve = target.clone();
    serve.extend(env(&[
        ("JWT_SECRET", JWT_SECRET),
        ("PRIVATE_KEY", signing_key_path().to_str().unwrap()),
    ]));
    let server = Server::start(&serve, &work.path().join("server.log"));
    check_people_and_keys(&server, &go);
    check_devices(&server, &go);
    check_publish_with_old_key(&server, &go);
    drop(runtime);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Where an import writes: SQLite and local disk, or PostgreSQL and S3.
enum Target {
    Local {
        data: PathBuf,
    },
    Shared {
        data: PathBuf,
        database: PgDatabase,
        s3: s3_test_server::S3Server,
    },
}

impl Target {
    fn local(data: PathBuf) -> Target {
        Target::Local { data }
    }

    fn shared(data: PathBuf, runtime: &tokio::runtime::Runtime) -> Target {
        Target::Shared {
            data,
            database: PgDatabase::create_blocking(),
            s3: runtime.block_on(s3_test_server::S3Server::start()),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        match self {
            Target::Local { data } => env(&[("DATA_DIR", data.to_str().unwrap())]),
            Target::Shared { data, database, s3 } => {
                let mut pairs = env(&[
                    ("DATA_DIR", data.to_str().unwrap()),
                    ("DATABASE_URL", &database.url),
                ]);
                pairs.extend(s3.env());
                pairs
            }
        }
    }

    fn query(&self, query: &str) -> String {
        match self {
            Target::Local { data } => sqlite(&data.join("ota.db"), query),
            Target::Shared { database, .. } => psql(&database.url, query),
        }
    }

    fn blob_root(&self) -> PathBuf {
        match self {
            Target::Local { data } => data.join("updates"),
            Target::Shared { s3, .. } => s3.bucket_dir(),
        }
    }

    /// Everything an import wrote that must not depend on when or how often
    /// it ran: every imported row, the ledger, the stored files.
    fn state(&self) -> String {
        let mut state = String::new();
        for query in [
            "SELECT id, username, username_key, email, email_key, password_hash, created_at FROM users ORDER BY id",
            "SELECT id, name, slug, created_at FROM projects ORDER BY id",
            "SELECT id, project_id, user_id, role, created_at FROM project_members ORDER BY id",
            "SELECT id, project_id, created_by, name, key_hash, key_prefix, created_at FROM api_keys ORDER BY id",
            "SELECT * FROM updates ORDER BY id",
            "SELECT * FROM update_assets ORDER BY update_id, position",
            "SELECT source, target_id FROM legacy_imports ORDER BY source",
        ] {
            state.push_str(&self.query(query));
        }
        // Compressed copies are named, not compared: brotli and gzip output
        // varies with how the input arrived, and any copy decodes to its file.
        for (path, digest) in file_digests(&self.blob_root()) {
            if path.ends_with(".br") || path.ends_with(".gz") || path.ends_with(".zst") {
                state.push_str(&format!("{path}\n"));
            } else if path.starts_with("projects/") {
                state.push_str(&format!("{path} {digest}\n"));
            }
        }
        state
    }
}

/// Equal texts, or a failure that shows only the lines that differ.
fn assert_same_lines(left: &str, right: &str) {
    let left_lines: BTreeSet<&str> = left.lines().collect();
    let right_lines: BTreeSet<&str> = right.lines().collect();
    let only_left: Vec<&&str> = left_lines.difference(&right_lines).collect();
    let only_right: Vec<&&str> = right_lines.difference(&left_lines).collect();
    assert!(
        only_left.is_empty() && only_right.is_empty(),
        "only after the kill and rerun: {only_left:#?}\nonly in the uninterrupted run: {only_right:#?}"
    );
    let first_difference = left.lines().zip(right.lines()).position(|(a, b)| a != b);
    assert!(
        left == right,
        "the same lines in another order or number ({} and {} lines), first at line {first_difference:?}",
        left.lines().count(),
        right.lines().count()
    );
}

/// Fails with the files that changed, not every file.
fn assert_same_files(
    after: &BTreeMap<String, String>,
    before: &BTreeMap<String, String>,
    what: &str,
) {
    let changed: BTreeSet<&String> = after
        .keys()
        .chain(before.keys())
        .filter(|path| after.get(*path) != before.get(*path))
        .collect();
    assert!(changed.is_empty(), "{what}: {changed:?}");
}

/// An import killed with SIGKILL after `imported` update directories, then
/// run again, leaves what one uninterrupted run leaves.
fn kill_9_then_rerun(go_dir: &Path, whole: &Target, killed: &Target) {
    let go_arg = go_dir.to_str().unwrap();
    let first = import_json(&whole.env(), &["--data-dir", go_arg]);
    let mut child = Command::new(BINARY)
        .args(["import-go", "--data-dir", go_arg])
        .env_clear()
        .envs(killed.env())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut imported = 0;
    while imported < 20 {
        let line = lines
            .next()
            .expect("import-go ended before it was killed")
            .unwrap();
        if line.contains(": imported ") {
            imported += 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial: u64 = killed
        .query("SELECT count(*) FROM updates")
        .trim()
        .parse()
        .unwrap();
    assert!(partial > 0, "killed before anything was imported");
    let total: u64 = whole
        .query("SELECT count(*) FROM updates")
        .trim()
        .parse()
        .unwrap();
    assert!(partial < total, "killed after everything was imported");

    let rerun = import_json(&killed.env(), &["--data-dir", go_arg]);
    for kind in [
        "users",
        "projects",
        "members",
        "keys",
        "updates",
        "rollbacks",
    ] {
        let total = rerun["imported"][kind].as_u64().unwrap()
            + rerun["alreadyImported"][kind].as_u64().unwrap();
        assert_eq!(
            total,
            first["imported"][kind].as_u64().unwrap(),
            "{kind}: {rerun:#}"
        );
    }
    assert!(rerun["imported"]["updates"].as_u64().unwrap() > 0);
    assert_same_lines(&killed.state(), &whole.state());
}

#[test]
fn kill_9_mid_import_then_a_rerun_equals_an_uninterrupted_run_on_sqlite() {
    let work = tempfile::tempdir().unwrap();
    let go_dir = work.path().join("go-data");
    generate(&go_dir, &Options { filler_dirs: 60 });
    let whole = Target::local(work.path().join("whole"));
    let killed = Target::local(work.path().join("killed"));
    kill_9_then_rerun(&go_dir, &whole, &killed);
}

#[test]
fn kill_9_mid_import_then_a_rerun_equals_an_uninterrupted_run_on_postgresql_and_s3() {
    let work = tempfile::tempdir().unwrap();
    let go_dir = work.path().join("go-data");
    generate(&go_dir, &Options { filler_dirs: 60 });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let whole = Target::shared(work.path().join("whole"), &runtime);
    let killed = Target::shared(work.path().join("killed"), &runtime);
    kill_9_then_rerun(&go_dir, &whole, &killed);
    drop((whole, killed));
}

#[test]
fn the_server_refuses_to_start_on_a_go_database() {
    let work = tempfile::tempdir().unwrap();
    let go_dir = work.path().join("go-data");
    generate(&go_dir, &Options::default());
    let tables_before = sqlite(
        &go_dir.join("ota.db"),
        "SELECT name FROM sqlite_master ORDER BY name",
    );
    let digests_before = file_digests(&go_dir);
    let output = Command::new(BINARY)
        .arg("serve")
        .env_clear()
        .env("DATA_DIR", &go_dir)
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("Go expo-updates-server's database") && last.contains("import-go"),
        "{stderr}"
    );
    assert_eq!(
        sqlite(
            &go_dir.join("ota.db"),
            "SELECT name FROM sqlite_master ORDER BY name"
        ),
        tables_before,
        "no table was added to the Go database"
    );
    assert_same_files(
        &file_digests(&go_dir),
        &digests_before,
        "the refused start wrote",
    );
}

#[test]
fn unusable_sources_and_targets_fail_with_one_line() {
    let work = tempfile::tempdir().unwrap();
    let target = env(&[("DATA_DIR", work.path().join("data").to_str().unwrap())]);
    let missing = work.path().join("nothing-here");
    let (ok, _, stderr) = import_go(&target, &["--data-dir", missing.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has no ota.db"), "{stderr}");

    // Not a Go database: this server's own.
    let ours = work.path().join("ours");
    std::fs::create_dir_all(&ours).unwrap();
    let status = Command::new("sqlite3")
        .arg(ours.join("ota.db"))
        .arg("CREATE TABLE seaql_migrations (version TEXT); CREATE TABLE users (id TEXT);")
        .status()
        .unwrap();
    assert!(status.success());
    let (ok, _, stderr) = import_go(&target, &["--data-dir", ours.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("not the Go server's"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // Not a database at all.
    let garbage = work.path().join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("ota.db"), b"this is no sqlite file").unwrap();
    let (ok, _, stderr) = import_go(&target, &["--data-dir", garbage.to_str().unwrap()]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // The target unreachable.
    let go_dir = work.path().join("go-data");
    generate(&go_dir, &Options::default());
    let unreachable = env(&[
        ("DATA_DIR", work.path().join("data2").to_str().unwrap()),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing"),
    ]);
    let (ok, _, stderr) = import_go(&unreachable, &["--data-dir", go_dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("target database"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    // The target is the source.
    let same = env(&[("DATA_DIR", go_dir.to_str().unwrap())]);
    let (ok, _, stderr) = import_go(&same, &["--data-dir", go_dir.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("is the Go server's data directory"),
        "{stderr}"
    );
}
