//! The client subcommands as a user runs them: the real binary as a child
//! process, against the real server (the same binary, serving) on a random
//! port, publishing the real `npx expo export` fixtures.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use test_support::fixture;

use common::server::Server;
use common::{BINARY, free_port};

/// The server on a data directory of its own, with `extra_env`.
fn serve(extra_env: &[(&str, &str)]) -> Server {
    let mut env = vec![("RUST_LOG", "warn")];
    env.extend_from_slice(extra_env);
    Server::start_fresh(&env)
}

/// A user's machine: its own config directory, so sessions never mix.
struct User {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl User {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(name, value)| (name, value)));
        command
    }

    /// Runs the CLI with `stdin` as its standard input.
    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// Runs a command that must succeed with `--json` and returns its JSON.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            describe(&output)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: not JSON: {}", describe(&output)))
    }
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Registers `name` with the CLI, the password on stdin, which logs in.
fn logged_in_user(server: &Server, name: &str) -> User {
    let user = User::new().with("EXPO_UPDATES_URL", &server.url);
    let email = format!("{name}@example.com");
    let register = user.run_with_stdin(
        &["register", "--username", name, "--email", &email],
        "correct horse battery\n",
    );
    assert!(register.status.success(), "{}", describe(&register));
    user
}

/// A project and an API key for it, made with the CLI; returns (project id, secret).
fn project_with_key(user: &User, slug: &str) -> (String, String) {
    let project = user.json(&["projects", "create", "Fixture App", "--slug", slug]);
    let project_id = project["id"].as_str().unwrap().to_owned();
    let key = user.json(&["keys", "create", "--name", "ci", "--project", &project_id]);
    (project_id, key["secret"].as_str().unwrap().to_owned())
}

/// A CI runner: nothing but the three variables.
fn pipeline(server: &Server, project_id: &str, secret: &str) -> User {
    User::new()
        .with("EXPO_UPDATES_URL", &server.url)
        .with("EXPO_UPDATES_PROJECT", project_id)
        .with("EXPO_UPDATES_API_KEY", secret)
}

/// The export's files (path → (size, sha256 hex)) as metadata.json lists them.
fn export_files(dir: &Path) -> Vec<(String, u64, String)> {
    let metadata: Value =
        serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).unwrap()).unwrap();
    let mut paths = std::collections::BTreeSet::new();
    for files in metadata["fileMetadata"].as_object().unwrap().values() {
        paths.insert(files["bundle"].as_str().unwrap().to_owned());
        for asset in files["assets"].as_array().unwrap() {
            paths.insert(asset["path"].as_str().unwrap().to_owned());
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(dir.join(&path)).unwrap();
            let size = bytes.len() as u64;
            (path, size, hex::encode(Sha256::digest(&bytes)))
        })
        .collect()
}

/// The manifest part of a v1 multipart answer for `platform`.
fn manifest(server: &Server, project_id: &str, platform: &str, runtime: &str) -> Value {
    let response = reqwest::blocking::Client::new()
        .get(format!("{}/api/updates/{project_id}/manifest", server.url))
        .header("expo-protocol-version", "1")
        .header("expo-platform", platform)
        .header("expo-runtime-version", runtime)
        .header("accept", "application/expo+json")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

/// The manifest id devices get for `platform` of an update.
fn manifest_id_of(user: &User, update_id: &Value, platform: &str) -> Value {
    let update = user.json(&["updates", "view", update_id.as_str().unwrap()]);
    update["platformUpdates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|one| one["platform"] == platform)
        .unwrap_or_else(|| panic!("{update_id} has no {platform} update"))["manifestId"]
        .clone()
}

fn base64url_sha256_of(hex_digest: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex::decode(hex_digest).unwrap())
}

#[test]
fn publishes_v1_then_v2_sending_only_the_new_files() {
    let server = serve(&[]);
    let user = logged_in_user(&server, "alice");
    let (project_id, secret) = project_with_key(&user, "fixture-app");
    let ci = pipeline(&server, &project_id, &secret);

    let v1_dir = fixture("expo-sdk56-export-v1");
    let v1_files = export_files(&v1_dir);
    let v1 = ci.json(&[
        "publish",
        "--dir",
        v1_dir.to_str().unwrap(),
        "--message",
        "v1",
    ]);
    assert_eq!(v1["branch"], "main");
    assert_eq!(v1["runtimeVersion"], "1.0.0", "read from expoConfig.json");
    assert_eq!(sorted(&v1["platforms"]), ["android", "ios"]);
    assert_eq!(v1["uploadedFiles"], v1_files.len());
    assert_eq!(
        v1["uploadedBytes"],
        v1_files.iter().map(|(_, size, _)| size).sum::<u64>()
    );
    assert_eq!(v1["reusedFiles"], 0);
    assert_eq!(
        v1["manifestUrl"],
        format!("{}/api/updates/{project_id}/manifest", server.url)
    );

    let served = manifest(&server, &project_id, "ios", "1.0.0");
    assert_eq!(served["id"], manifest_id_of(&ci, &v1["updateId"], "ios"));
    let ios_bundle = v1_files
        .iter()
        .find(|(path, _, _)| path.contains("/ios/"))
        .unwrap();
    assert_eq!(
        served["launchAsset"]["hash"],
        base64url_sha256_of(&ios_bundle.2)
    );

    // v2 shares four assets with v1: only its two bundles and the new
    // image travel.
    let v2_dir = fixture("expo-sdk56-export-v2");
    let v2_files = export_files(&v2_dir);
    let v1_hashes: HashSet<&str> = v1_files.iter().map(|(_, _, hash)| hash.as_str()).collect();
    let new: Vec<_> = v2_files
        .iter()
        .filter(|(_, _, hash)| !v1_hashes.contains(hash.as_str()))
        .collect();
    assert_eq!(new.len(), 3, "two bundles and banner.png");
    let v2 = ci.json(&["publish", "--dir", v2_dir.to_str().unwrap()]);
    assert_eq!(v2["uploadedFiles"], new.len());
    assert_eq!(
        v2["uploadedBytes"],
        new.iter().map(|(_, size, _)| size).sum::<u64>()
    );
    assert_eq!(v2["reusedFiles"], v2_files.len() - new.len());
    for platform in ["ios", "android"] {
        let served = manifest(&server, &project_id, platform, "1.0.0");
        assert_eq!(
            served["id"],
            manifest_id_of(&ci, &v2["updateId"], platform),
            "{platform}"
        );
        assert_eq!(served["assets"].as_array().unwrap().len(), 5);
        // Every asset the manifest names downloads with the bytes it hashes.
        for asset in served["assets"].as_array().unwrap() {
            let bytes = reqwest::blocking::get(asset["url"].as_str().unwrap())
                .unwrap()
                .bytes()
                .unwrap();
            assert_eq!(
                asset["hash"],
                base64url_sha256_of(&hex::encode(Sha256::digest(&bytes)))
            );
        }
    }
    eprintln!(
        "v1 uploaded {} bytes in {} files; v2 uploaded {} bytes in {} files and reused {}",
        v1["uploadedBytes"],
        v1["uploadedFiles"],
        v2["uploadedBytes"],
        v2["uploadedFiles"],
        v2["reusedFiles"]
    );
}

#[test]
fn human_output_names_the_update_branch_platforms_and_manifest_url() {
    let server = serve(&[]);
    let user = logged_in_user(&server, "bob");
    let (project_id, secret) = project_with_key(&user, "human");
    // No EXPO_UPDATES_PROJECT: the key's own project is used.
    let ci = User::new()
        .with("EXPO_UPDATES_URL", &server.url)
        .with("EXPO_UPDATES_API_KEY", &secret);
    let dir = fixture("expo-sdk56-export-rt2");
    let output = ci.run(&[
        "publish",
        "--dir",
        dir.to_str().unwrap(),
        "--branch",
        "staging",
        "--platform",
        "android",
        "--rollout",
        "25",
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("Published update "), "{stdout}");
    assert!(stdout.contains("branch:          staging"), "{stdout}");
    assert!(stdout.contains("platforms:       android"), "{stdout}");
    assert!(stdout.contains("runtime version: 2.0.0"), "{stdout}");
    assert!(stdout.contains("rollout:         25%"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "manifest URL:    {}/api/updates/{project_id}/manifest",
            server.url
        )),
        "{stdout}"
    );
    // Not a terminal: one plain line per uploaded file, no bar.
    let progress = stderr(&output);
    assert!(
        progress.contains("uploaded _expo/static/js/android/"),
        "{progress}"
    );
    assert!(
        !progress.contains("_expo/static/js/ios/"),
        "ios was not chosen"
    );
}

#[test]
fn publish_waits_for_bundle_patches_and_updates_view_shows_them() {
    let server = serve(&[]);
    let user = logged_in_user(&server, "pat");
    let (project_id, secret) = project_with_key(&user, "patches");
    let ci = pipeline(&server, &project_id, &secret);
    let v1 = fixture("expo-sdk56-export-v1");
    let first = ci.run(&["publish", "--dir", v1.to_str().unwrap()]);
    assert!(first.status.success(), "{}", describe(&first));
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        stdout.contains("patches (ios): none (no earlier bundle to patch from)"),
        "{stdout}"
    );
    let v2 = fixture("expo-sdk56-export-v2");
    let second = ci.run(&["publish", "--dir", v2.to_str().unwrap(), "--wait-patches"]);
    assert!(second.status.success(), "{}", describe(&second));
    let stdout = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(stdout.contains("patches (ios): 1 ready"), "{stdout}");
    assert!(stdout.contains("patches (android): 1 ready"), "{stdout}");

    let published = ci.json(&["updates", "list", "--platform", "android"]);
    let v2_id = published["updates"][0]["id"].as_str().unwrap().to_owned();
    let viewed = ci.json(&["updates", "view", &v2_id]);
    let platforms = viewed["patches"]["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 2);
    for platform in platforms {
        assert_eq!(platform["patches"][0]["state"], "ready", "{viewed}");
    }
    let human = ci.run(&["updates", "view", &v2_id]);
    assert!(human.status.success(), "{}", describe(&human));
    let text = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(
        text.contains("android bundle patches (full download"),
        "{text}"
    );
    assert!(text.contains("FROM BUNDLE"), "{text}");
    assert!(text.contains("ready"), "{text}");
}

#[test]
fn embedded_bundles_are_uploaded_listed_enabled_and_deleted() {
    let server = serve(&[]);
    let owner = logged_in_user(&server, "emma");
    let (project_id, secret) = project_with_key(&owner, "embedded");
    let owner = owner.with("EXPO_UPDATES_PROJECT", &project_id);
    let ci = pipeline(&server, &project_id, &secret);
    let v2 = fixture("expo-sdk56-export-v2");
    let published = ci.run(&["publish", "--dir", v2.to_str().unwrap()]);
    assert!(published.status.success(), "{}", describe(&published));

    // The build's app.manifest names the embedded update.
    let build = "4c1e1a52-8d4b-4b7e-9a55-1f0c6b3e2a01";
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("app.manifest");
    let embedded_manifest = serde_json::json!({ "id": build, "commitTime": 1, "assets": [] });
    std::fs::write(&manifest, embedded_manifest.to_string()).unwrap();
    let v1 = fixture("expo-sdk56-export-v1");
    let uploaded = ci.json(&[
        "embedded",
        "upload",
        "--dir",
        v1.to_str().unwrap(),
        "--platform",
        "android",
        "--manifest",
        manifest.to_str().unwrap(),
    ]);
    assert_eq!(uploaded["updateId"], build);
    assert_eq!(uploaded["platform"], "android");
    assert_eq!(uploaded["runtimeVersion"], "1.0.0");
    let listed = ci.json(&["embedded", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let human = owner.run(&["embedded", "list"]);
    let text = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(text.contains("UPDATE ID") && text.contains(build), "{text}");

    let enabled = owner.json(&["embedded", "enable"]);
    assert_eq!(enabled["patchFromEmbedded"], true);
    let disabled = owner.json(&["embedded", "disable"]);
    assert_eq!(disabled["patchFromEmbedded"], false);

    // Without the embedded update's id: a usage error that says what to give.
    let missing = ci.run(&[
        "embedded",
        "upload",
        "--dir",
        v1.to_str().unwrap(),
        "--platform",
        "ios",
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", describe(&missing));
    assert!(
        stderr(&missing).contains("--update-id"),
        "{}",
        describe(&missing)
    );

    owner.json(&["embedded", "delete", build]);
    assert_eq!(
        owner.json(&["embedded", "list"]).as_array().unwrap().len(),
        0
    );
}

#[test]
fn release_management_commands_work_end_to_end() {
    let server = serve(&[]);
    let owner = logged_in_user(&server, "carol");
    let (project_id, secret) = project_with_key(&owner, "releases");
    let owner = owner.with("EXPO_UPDATES_PROJECT", &project_id);

    let me = owner.json(&["whoami"]);
    assert_eq!(me["user"]["username"], "carol");
    let projects = owner.json(&["projects", "list"]);
    assert_eq!(projects.as_array().unwrap().len(), 1);

    // Members.
    let dave = logged_in_user(&server, "dave");
    let added = owner.json(&["members", "add", "dave@example.com"]);
    assert_eq!(added["role"], "member");
    let members = owner.json(&["members", "list"]);
    assert_eq!(members.as_array().unwrap().len(), 2);
    let dave_projects = dave.json(&["projects", "list"]);
    assert_eq!(dave_projects[0]["id"], project_id.as_str());
    owner.json(&["members", "remove", "dave"]);
    assert_eq!(
        owner.json(&["members", "list"]).as_array().unwrap().len(),
        1
    );

    // Keys.
    let keys = owner.json(&["keys", "list"]);
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    owner.json(&["keys", "rename", &key_id, "release-ci"]);
    assert_eq!(owner.json(&["keys", "list"])[0]["name"], "release-ci");

    // Publish twice with the key, then manage as the user.
    let ci = pipeline(&server, &project_id, &secret);
    let v1 = ci.json(&[
        "publish",
        "--dir",
        fixture("expo-sdk56-export-v1").to_str().unwrap(),
    ]);
    let v2 = ci.json(&[
        "publish",
        "--dir",
        fixture("expo-sdk56-export-v2").to_str().unwrap(),
    ]);
    let v2_id = v2["updateId"].as_str().unwrap();

    let listed = owner.json(&["updates", "list", "--platform", "ios"]);
    let updates = listed["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["id"], v2_id, "newest first");
    let viewed = owner.json(&["updates", "view", v2_id]);
    assert_eq!(viewed["platformUpdates"].as_array().unwrap().len(), 2);
    let human = owner.run(&["updates", "list"]);
    assert!(human.status.success());
    assert!(String::from_utf8_lossy(&human.stdout).contains(v2_id));

    // Rollout: halt v2, devices get v1 again; complete it.
    let halted = owner.json(&["rollout", "set", v2_id, "0"]);
    assert_eq!(halted["rolloutPercentage"], 0);
    assert_eq!(
        manifest(&server, &project_id, "ios", "1.0.0")["id"],
        manifest_id_of(&ci, &v1["updateId"], "ios")
    );
    ci.json(&["rollout", "set", v2_id, "100"]);
    assert_eq!(
        manifest(&server, &project_id, "ios", "1.0.0")["id"],
        manifest_id_of(&ci, &v2["updateId"], "ios")
    );

    // Republish v1 (with the key), then roll back to embedded.
    let republished = ci.json(&["updates", "republish", v1["updateId"].as_str().unwrap()]);
    let republished_id = republished["id"].as_str().unwrap();
    assert_eq!(
        manifest(&server, &project_id, "android", "1.0.0")["id"],
        manifest_id_of(&ci, &republished["id"], "android")
    );
    let rollback = owner.json(&["updates", "rollback", "--runtime-version", "1.0.0"]);
    assert_eq!(sorted(&rollback["platforms"]), ["android", "ios"]);

    // Channels: point production at a branch.
    let channel = owner.json(&["channels", "set", "production", "--branch", "main"]);
    assert_eq!(channel["branch"], "main");
    let channels = ci.json(&["channels", "list"]);
    assert_eq!(channels[0]["name"], "production");

    // Delete (owner), then revoke the key: it stops working.
    owner.json(&["updates", "delete", republished_id]);
    let gone = owner.run(&["updates", "view", republished_id]);
    assert_eq!(gone.status.code(), Some(4), "{}", describe(&gone));
    owner.json(&["keys", "revoke", &key_id]);
    let revoked = ci.run(&["updates", "list"]);
    assert_eq!(revoked.status.code(), Some(3), "{}", describe(&revoked));

    // Logout forgets the session.
    owner.json(&["logout"]);
    let after = owner.run(&["projects", "list"]);
    assert_eq!(after.status.code(), Some(2), "{}", describe(&after));
    assert!(stderr(&after).contains("not logged in"));
}

#[test]
fn login_keeps_the_token_private_and_never_takes_a_password_flag() {
    let server = serve(&[]);
    let user = logged_in_user(&server, "erin");
    let session = user
        .home
        .path()
        .join(".config/expo-updates-server/session.json");
    let mode = std::fs::metadata(&session).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&session).unwrap()).unwrap();
    assert!(stored["token"].as_str().unwrap().len() > 20);
    assert!(!String::from_utf8_lossy(&std::fs::read(&session).unwrap()).contains("correct horse"));

    // A fresh login replaces the session.
    std::fs::remove_file(&session).unwrap();
    let login = user.run_with_stdin(&["login", "--username", "erin"], "correct horse battery\n");
    assert!(login.status.success(), "{}", describe(&login));
    assert_eq!(user.json(&["whoami"])["user"]["username"], "erin");
    let mode = std::fs::metadata(&session).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let dir_mode = std::fs::metadata(session.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let no_name = user.run_with_stdin(&["login"], "correct horse battery\n");
    assert_eq!(no_name.status.code(), Some(2), "{}", describe(&no_name));
    let no_password = user.run(&["login", "--username", "erin"]);
    assert_eq!(
        no_password.status.code(),
        Some(2),
        "{}",
        describe(&no_password)
    );

    let flag = user.run(&["login", "--username", "erin", "--password", "x"]);
    assert_eq!(flag.status.code(), Some(2), "{}", describe(&flag));
    let wrong = user.run_with_stdin(&["login", "--username", "erin"], "wrong password\n");
    assert_eq!(wrong.status.code(), Some(3), "{}", describe(&wrong));
    assert!(stderr(&wrong).contains("Invalid credentials"));
}

#[test]
fn failures_exit_with_a_code_and_a_message_that_say_what_went_wrong() {
    let server = serve(&[("MAX_UPLOAD_BYTES", "100000")]);
    let user = logged_in_user(&server, "frank");
    let (project_id, secret) = project_with_key(&user, "failures");
    let ci = pipeline(&server, &project_id, &secret);
    let v1 = fixture("expo-sdk56-export-v1");
    let v1 = v1.to_str().unwrap();

    // Wrong key: 401, exit 3.
    let wrong = pipeline(&server, &project_id, "eus_wrong").run(&["publish", "--dir", v1]);
    assert_eq!(wrong.status.code(), Some(3), "{}", describe(&wrong));
    assert!(stderr(&wrong).contains("401"), "{}", describe(&wrong));

    // Another project's key: 403, exit 3.
    let (other_project, _) = project_with_key(&user, "other");
    let foreign = pipeline(&server, &other_project, &secret).run(&["publish", "--dir", v1]);
    assert_eq!(foreign.status.code(), Some(3), "{}", describe(&foreign));
    assert!(stderr(&foreign).contains("403"));

    // A listed file missing: named, exit 5, nothing sent.
    let broken = tempfile::tempdir().unwrap();
    copy_dir(Path::new(v1), broken.path());
    std::fs::remove_file(
        broken
            .path()
            .join("assets/196f9dcf661c40514b61f7ecb4997cd0"),
    )
    .unwrap();
    let missing = ci.run(&["publish", "--dir", broken.path().to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(5), "{}", describe(&missing));
    assert!(stderr(&missing).contains("assets/196f9dcf661c40514b61f7ecb4997cd0"));
    // Not an export at all.
    let empty = tempfile::tempdir().unwrap();
    let not_export = ci.run(&["publish", "--dir", empty.path().to_str().unwrap()]);
    assert_eq!(
        not_export.status.code(),
        Some(5),
        "{}",
        describe(&not_export)
    );
    assert!(stderr(&not_export).contains("metadata.json"));

    // Runtime versions: an invalid flag, a policy only Expo can compute, none at all.
    let bad = ci.run(&["publish", "--dir", v1, "--runtime-version", ""]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(stderr(&bad).contains("runtimeVersion must not be empty"));
    let fingerprint = tempfile::tempdir().unwrap();
    copy_dir(Path::new(v1), fingerprint.path());
    std::fs::write(
        fingerprint.path().join("expoConfig.json"),
        r#"{"name":"app","version":"1.0.0","runtimeVersion":{"policy":"fingerprint"}}"#,
    )
    .unwrap();
    let policy = ci.run(&["publish", "--dir", fingerprint.path().to_str().unwrap()]);
    assert_eq!(policy.status.code(), Some(2), "{}", describe(&policy));
    assert!(stderr(&policy).contains("fingerprint"));
    assert!(stderr(&policy).contains("--runtime-version"));
    std::fs::remove_file(fingerprint.path().join("expoConfig.json")).unwrap();
    let none = ci.run(&["publish", "--dir", fingerprint.path().to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(2), "{}", describe(&none));
    assert!(stderr(&none).contains("expoConfig.json"));

    // Over MAX_UPLOAD_BYTES: 413, exit 6.
    let large = ci.run(&["publish", "--dir", v1]);
    assert_eq!(large.status.code(), Some(6), "{}", describe(&large));
    assert!(stderr(&large).contains("413"));

    // A symbolic link out of the export is never followed.
    let planted = tempfile::tempdir().unwrap();
    copy_dir(Path::new(v1), planted.path());
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), "AWS_SECRET=hunter2").unwrap();
    let asset = planted
        .path()
        .join("assets/196f9dcf661c40514b61f7ecb4997cd0");
    std::fs::remove_file(&asset).unwrap();
    std::os::unix::fs::symlink(secret_file.path(), &asset).unwrap();
    let escaped = ci.run(&["publish", "--dir", planted.path().to_str().unwrap()]);
    assert_eq!(escaped.status.code(), Some(5), "{}", describe(&escaped));
    assert!(
        stderr(&escaped).contains("outside the export"),
        "{}",
        describe(&escaped)
    );

    // Nothing of all that became an update.
    let listed = ci.json(&["updates", "list"]);
    assert_eq!(listed["updates"], json!([]));

    // Server answers map to exit codes: 409 → 5, 404 → 4.
    let taken = user.run(&["projects", "create", "Again", "--slug", "failures"]);
    assert_eq!(taken.status.code(), Some(5), "{}", describe(&taken));
    let nobody = user.run(&[
        "members",
        "add",
        "nobody@example.com",
        "--project",
        &project_id,
    ]);
    assert_eq!(nobody.status.code(), Some(4), "{}", describe(&nobody));
    // An API key is only sent to a URL given with it.
    let no_url = User::new()
        .with("EXPO_UPDATES_PROJECT", &project_id)
        .with("EXPO_UPDATES_API_KEY", &secret)
        .run(&["updates", "list"]);
    assert_eq!(no_url.status.code(), Some(2), "{}", describe(&no_url));
    assert!(stderr(&no_url).contains("EXPO_UPDATES_URL"));

    // The server down: retried with back-off, then exit 7.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let down = User::new()
        .with("EXPO_UPDATES_URL", &closed)
        .with("EXPO_UPDATES_PROJECT", &project_id)
        .with("EXPO_UPDATES_API_KEY", &secret)
        .run(&["publish", "--dir", v1]);
    assert_eq!(down.status.code(), Some(7), "{}", describe(&down));
    let message = stderr(&down);
    assert!(message.contains("retrying"), "{message}");
    assert!(message.contains("cannot reach the server"), "{message}");
    assert!(!message.contains(&secret), "the key is never printed");

    // --json failures are JSON too.
    let json_failure =
        pipeline(&server, &project_id, "eus_wrong").run(&["publish", "--dir", v1, "--json"]);
    let body: Value = serde_json::from_slice(&json_failure.stdout).unwrap();
    assert!(body["error"].as_str().unwrap().contains("401"));
}

#[test]
fn the_app_version_policy_is_resolved_from_the_config() {
    let server = serve(&[]);
    let user = logged_in_user(&server, "heidi");
    let (project_id, secret) = project_with_key(&user, "policy");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture("expo-sdk56-export-v1"), dir.path());
    // With a BOM, as PowerShell writes it.
    std::fs::write(
        dir.path().join("expoConfig.json"),
        "\u{feff}{\"name\":\"app\",\"version\":\"3.1.0\",\"runtimeVersion\":{\"policy\":\"appVersion\"}}",
    )
    .unwrap();
    let ci = pipeline(&server, &project_id, &secret);
    let published = ci.json(&["publish", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(published["runtimeVersion"], "3.1.0");
    assert_eq!(
        manifest(&server, &project_id, "android", "3.1.0")["id"],
        manifest_id_of(&ci, &published["updateId"], "android")
    );
}

#[test]
fn publish_without_dir_runs_the_expo_export_itself() {
    let server = serve(&[]);
    let user = logged_in_user(&server, "grace");
    let (project_id, secret) = project_with_key(&user, "from-source");
    // A stand-in for npx that does what `expo export` and `expo config`
    // would do in this project, and records how it was called.
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls.txt");
    let npx = bin.path().join("npx");
    std::fs::write(
        &npx,
        format!(
            r#"#!/bin/sh
echo "$@" >> {calls}
if [ "$2" = export ]; then
    out="$4"; mkdir -p "$out"; cp -R {v1}/. "$out"/; rm "$out/expoConfig.json"; echo "Exported: $out"
elif [ "$2" = config ]; then
    echo "app.config.js says hello"; cat {v1}/expoConfig.json
fi
"#,
            calls = calls.display(),
            v1 = fixture("expo-sdk56-export-v1").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&npx, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let ci = pipeline(&server, &project_id, &secret).with("PATH", &path);
    let published = ci.json(&["publish", "--platform", "ios"]);
    assert_eq!(published["platforms"], json!(["ios"]));
    assert_eq!(published["runtimeVersion"], "1.0.0");
    let recorded = std::fs::read_to_string(&calls).unwrap();
    assert!(recorded.contains("expo export --output-dir "), "{recorded}");
    assert!(recorded.contains("--platform ios"), "{recorded}");
    assert!(
        recorded.contains("expo config --type public --json"),
        "{recorded}"
    );
    assert_eq!(
        manifest(&server, &project_id, "ios", "1.0.0")["id"],
        manifest_id_of(&ci, &published["updateId"], "ios")
    );
}

fn sorted(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-R")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}
