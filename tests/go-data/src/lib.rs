//! A Go expo-updates-server data dir, laid out exactly as the Go server
//! leaves it (its tables, key and password formats and update tree, as the
//! README's "Switching from the Go server" describes them): its SQLite
//! database `ota.db` in WAL mode (some rows only in `ota.db-wal`, as
//! a live copy has them) and the update tree `updates/<project>/<runtime
//! version>/<unix seconds>/`, built from the real Expo exports in
//! `tests/fixtures`, with every quirk its data can have.
//!
//! The Go server cannot be built here; this is its data, written by hand
//! from its source's behaviour. [`GoDataDir`] says what was written, so
//! tests can check an import against it.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use md5::Md5;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::sqlx::{ConnectOptions, Connection, Executor, SqliteConnection};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use test_support::fixtures_dir;

/// The ids of the data dir's rows (UUIDv7, as the Go server made them).
pub mod ids {
    pub const ALICE: &str = "019d7a10-0000-7000-8000-00000000a11c";
    /// `Alice`: the same name as `alice` but for its case.
    pub const ALICE_UPPER: &str = "019d7a10-1000-7000-8000-00000000a11d";
    pub const BOB: &str = "019d7a10-2000-7000-8000-000000000b0b";
    /// Username `bob@example.com`: Bob's email, as a username.
    pub const MALLORY: &str = "019d7a10-3000-7000-8000-0000000ba11e";
    /// Written after the last checkpoint: only in `ota.db-wal`.
    pub const CAROL: &str = "019d7a10-4000-7000-8000-0000000ca201";
    /// `created_at` NULL.
    pub const DAVE: &str = "019d7a10-5000-7000-8000-000000000da5";
    /// Named by a membership, never created.
    pub const GHOST: &str = "019d7a10-6000-7000-8000-0000000000ff";

    pub const APP: &str = "019d7a11-0000-7000-8000-0000000000a1";
    /// Slug `my-app` again.
    pub const OTHER: &str = "019d7a11-1000-7000-8000-0000000000a2";
    /// Only in the WAL, with its member and key.
    pub const WAL: &str = "019d7a11-2000-7000-8000-0000000000a3";
    /// A directory in the tree with no row in the database.
    pub const ORPHAN: &str = "019d7a11-3000-7000-8000-0000000000a4";

    pub const KEY_APP: &str = "019d7a12-0000-7000-8000-0000000000c1";
    /// Its creator does not exist.
    pub const KEY_APP_GHOST: &str = "019d7a12-1000-7000-8000-0000000000c2";
    pub const KEY_OTHER: &str = "019d7a12-2000-7000-8000-0000000000c3";
    pub const KEY_WAL: &str = "019d7a12-3000-7000-8000-0000000000c4";
}

/// An account of the data dir, with its password.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: &'static str,
    pub username: &'static str,
    pub email: &'static str,
    pub password: &'static str,
}

/// An API key of the data dir, with its secret (64 lowercase hex).
#[derive(Debug, Clone)]
pub struct Key {
    pub id: &'static str,
    pub project_id: &'static str,
    pub secret: String,
}

/// A file of an update directory: what a manifest names it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    /// Base64url SHA-256, unpadded.
    pub hash: String,
    /// Hex MD5.
    pub key: String,
    pub size: u64,
}

/// One update directory as written.
#[derive(Debug, Clone)]
pub struct Dir {
    /// `<project>/<runtime version>/<go id>`.
    pub path: String,
    pub go_id: u64,
    /// The Go manifest id (from `metadata.json`), when it has one.
    pub manifest_id: Option<String>,
    /// `metadata.json` as written.
    pub metadata: Option<Vec<u8>>,
    /// The launch asset per platform, normalised path.
    pub bundles: BTreeMap<String, String>,
    /// Every file written, by path relative to the directory.
    pub files: BTreeMap<String, FileFacts>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct GoDataDir {
    pub root: PathBuf,
    pub accounts: Vec<Account>,
    pub keys: Vec<Key>,
    pub dirs: BTreeMap<String, Dir>,
}

impl GoDataDir {
    pub fn account(&self, id: &str) -> &Account {
        self.accounts.iter().find(|a| a.id == id).unwrap()
    }

    pub fn key(&self, id: &str) -> &Key {
        self.keys.iter().find(|k| k.id == id).unwrap()
    }

    pub fn dir(&self, path: &str) -> &Dir {
        self.dirs
            .get(path)
            .unwrap_or_else(|| panic!("no directory {path}"))
    }
}

/// Update ids (unix seconds) of the tree, named by what they hold.
pub mod times {
    /// SDK 49 layout (`bundles/`), before index files, Windows paths, BOM.
    pub const SDK49: u64 = 1_775_000_000;
    pub const V1: u64 = 1_776_000_000;
    pub const RT2: u64 = 1_776_000_500;
    /// A numeric directory with neither metadata.json nor rollback.
    pub const JUNK: u64 = 1_776_100_000;
    pub const V2: u64 = 1_776_200_000;
    pub const NESTED: u64 = 1_776_250_000;
    pub const ROLLBACK: u64 = 1_776_300_000;
    /// A partial publish (a listed file missing), the latest of its runtime.
    pub const PARTIAL: u64 = 1_776_400_000;
    /// A file whose bytes do not match its announced hash.
    pub const CORRUPT: u64 = 1_776_500_000;
    /// iOS only.
    pub const IOS_ONLY: u64 = 1_776_600_000;
    /// The first of the filler updates.
    pub const FILLER: u64 = 1_777_000_000;
}

/// What a test wants beyond the quirks.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Extra small update directories (runtime version `filler`), so an
    /// import takes long enough to be interrupted.
    pub filler_dirs: usize,
}

fn hex_secret(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

fn facts(bytes: &[u8]) -> FileFacts {
    FileFacts {
        hash: URL_SAFE_NO_PAD.encode(Sha256::digest(bytes)),
        key: hex::encode(Md5::digest(bytes)),
        size: bytes.len() as u64,
    }
}

/// The Go server's password hash: argon2id t=1, m=64 MiB, p=4, 32 bytes.
fn go_password_hash(password: &str) -> String {
    let params = Params::new(65536, 1, 4, Some(32)).unwrap();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = STANDARD_NO_PAD.encode(Sha256::digest(password.as_bytes()).get(..16).unwrap());
    let salt = SaltString::from_b64(&salt).unwrap();
    argon2
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

const ACCOUNTS: [Account; 6] = [
    Account {
        id: ids::ALICE,
        username: "alice",
        email: "alice@example.com",
        password: "alice-go-password",
    },
    Account {
        id: ids::ALICE_UPPER,
        username: "Alice",
        email: "alice.two@example.com",
        password: "other-alice-password",
    },
    Account {
        id: ids::BOB,
        username: "bob",
        email: "bob@example.com",
        password: "bob-go-password",
    },
    Account {
        id: ids::MALLORY,
        username: "bob@example.com",
        email: "mallory@example.com",
        password: "mallory-go-password",
    },
    Account {
        id: ids::CAROL,
        username: "carol",
        email: "carol@example.com",
        password: "carol-go-password",
    },
    Account {
        id: ids::DAVE,
        username: "dave",
        email: "dave@example.com",
        password: "dave-go-password",
    },
];

/// bun's `CREATE TABLE IF NOT EXISTS` for the Go server's four models.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS "user" ("id" VARCHAR NOT NULL, "username" VARCHAR NOT NULL, "email" VARCHAR NOT NULL, "password_hash" VARCHAR NOT NULL, "created_at" VARCHAR, PRIMARY KEY ("id"), UNIQUE ("username"), UNIQUE ("email"));
CREATE TABLE IF NOT EXISTS "project" ("id" VARCHAR NOT NULL, "name" VARCHAR NOT NULL, "slug" VARCHAR NOT NULL, "created_at" VARCHAR, PRIMARY KEY ("id"));
CREATE TABLE IF NOT EXISTS "project_user" ("id" VARCHAR NOT NULL, "project_id" VARCHAR NOT NULL, "user_id" VARCHAR NOT NULL, "role" VARCHAR NOT NULL, "created_at" VARCHAR, PRIMARY KEY ("id"));
CREATE TABLE IF NOT EXISTS "key" ("id" VARCHAR NOT NULL, "project_id" VARCHAR NOT NULL, "created_by" VARCHAR NOT NULL, "name" VARCHAR NOT NULL, "key_hash" VARCHAR NOT NULL, "key_prefix" VARCHAR NOT NULL, "created_at" VARCHAR, PRIMARY KEY ("id"));
"#;

fn quote(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_owned(),
        Some(text) => format!("'{}'", text.replace('\'', "''")),
    }
}

fn user_row(account: &Account, created_at: Option<&str>) -> String {
    format!(
        "INSERT INTO \"user\" VALUES ({}, {}, {}, {}, {});",
        quote(Some(account.id)),
        quote(Some(account.username)),
        quote(Some(account.email)),
        quote(Some(&go_password_hash(account.password))),
        quote(created_at)
    )
}

fn project_row(id: &str, name: &str, slug: &str, created_at: &str) -> String {
    format!(
        "INSERT INTO \"project\" VALUES ({}, {}, {}, {});",
        quote(Some(id)),
        quote(Some(name)),
        quote(Some(slug)),
        quote(Some(created_at))
    )
}

fn member_row(id: &str, project: &str, user: &str, role: &str, created_at: &str) -> String {
    format!(
        "INSERT INTO \"project_user\" VALUES ({}, {}, {}, {}, {});",
        quote(Some(id)),
        quote(Some(project)),
        quote(Some(user)),
        quote(Some(role)),
        quote(Some(created_at))
    )
}

fn key_row(key: &Key, created_by: &str, name: &str, created_at: &str) -> String {
    let hash = hex::encode(Sha256::digest(key.secret.as_bytes()));
    format!(
        "INSERT INTO \"key\" VALUES ({}, {}, {}, {}, {}, {}, {});",
        quote(Some(key.id)),
        quote(Some(key.project_id)),
        quote(Some(created_by)),
        quote(Some(name)),
        quote(Some(&hash)),
        quote(Some(&key.secret[..8])),
        quote(Some(created_at))
    )
}

fn keys() -> Vec<Key> {
    [
        (ids::KEY_APP, ids::APP),
        (ids::KEY_APP_GHOST, ids::APP),
        (ids::KEY_OTHER, ids::OTHER),
        (ids::KEY_WAL, ids::WAL),
    ]
    .into_iter()
    .map(|(id, project_id)| Key {
        id,
        project_id,
        secret: hex_secret(id),
    })
    .collect()
}

/// Writes `ota.db`, `ota.db-wal` and `ota.db-shm` into `root` as a copy of
/// a live Go server's files: the last rows only in the WAL.
async fn write_database(root: &Path, keys: &[Key]) {
    let build = tempfile::tempdir().unwrap();
    let path = build.path().join("ota.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(false)
        .disable_statement_logging();
    let mut db = SqliteConnection::connect_with(&options).await.unwrap();
    db.execute(SCHEMA).await.unwrap();
    let [alice, alice_upper, bob, mallory, carol, dave] = &ACCOUNTS;
    let key = |id: &str| keys.iter().find(|k| k.id == id).unwrap();
    let checkpointed = [
        user_row(alice, Some("2026-04-10T10:00:00Z")),
        user_row(alice_upper, Some("2026-04-11T10:00:00Z")),
        user_row(bob, Some("2026-04-12T10:00:00Z")),
        user_row(mallory, Some("2026-04-13T10:00:00Z")),
        user_row(dave, None),
        project_row(ids::APP, "My App", "my-app", "2026-04-10T11:00:00Z"),
        project_row(ids::OTHER, "Other App", "my-app", "2026-04-12T11:00:00Z"),
        member_row(
            "019d7a13-0000-7000-8000-000000000001",
            ids::APP,
            ids::ALICE,
            "owner",
            "2026-04-10T11:00:00Z",
        ),
        // The same user again: the earliest row is what the Go server enforced.
        member_row(
            "019d7a13-1000-7000-8000-000000000002",
            ids::APP,
            ids::ALICE,
            "member",
            "2026-04-10T12:00:00Z",
        ),
        member_row(
            "019d7a13-2000-7000-8000-000000000003",
            ids::APP,
            ids::GHOST,
            "owner",
            "2026-04-10T13:00:00Z",
        ),
        member_row(
            "019d7a13-3000-7000-8000-000000000004",
            ids::APP,
            ids::BOB,
            "admin",
            "2026-04-12T12:00:00Z",
        ),
        member_row(
            "019d7a13-4000-7000-8000-000000000005",
            ids::APP,
            ids::ALICE_UPPER,
            "member",
            "2026-04-12T13:00:00Z",
        ),
        // No owner at all: bob ("" role) came first.
        member_row(
            "019d7a13-5000-7000-8000-000000000006",
            ids::OTHER,
            ids::BOB,
            "",
            "2026-04-12T11:00:00Z",
        ),
        member_row(
            "019d7a13-6000-7000-8000-000000000007",
            ids::OTHER,
            ids::MALLORY,
            "member",
            "2026-04-13T11:00:00Z",
        ),
        key_row(key(ids::KEY_APP), ids::ALICE, "ci", "2026-04-10T14:00:00Z"),
        key_row(
            key(ids::KEY_APP_GHOST),
            ids::GHOST,
            "ci",
            "2026-04-10T15:00:00Z",
        ),
        key_row(
            key(ids::KEY_OTHER),
            ids::BOB,
            "key-019d7a12",
            "2026-04-12T14:00:00Z",
        ),
    ];
    run_all(&mut db, checkpointed).await;
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    db.execute("PRAGMA wal_autocheckpoint = 0").await.unwrap();
    let in_wal_only = [
        user_row(carol, Some("2026-04-20T10:00:00Z")),
        project_row(ids::WAL, "Wal App", "wal-app", "2026-04-20T11:00:00Z"),
        member_row(
            "019d7a13-7000-7000-8000-000000000008",
            ids::WAL,
            ids::CAROL,
            "owner",
            "2026-04-20T11:00:00Z",
        ),
        key_row(
            key(ids::KEY_WAL),
            ids::CAROL,
            "deploy",
            "2026-04-20T12:00:00Z",
        ),
    ];
    run_all(&mut db, in_wal_only).await;
    // A copy of the files of a running server: the WAL is not checkpointed.
    for suffix in ["", "-wal", "-shm"] {
        std::fs::copy(
            build.path().join(format!("ota.db{suffix}")),
            root.join(format!("ota.db{suffix}")),
        )
        .unwrap();
    }
    db.close().await.unwrap();
}

/// Go's `mime.TypeByExtension` without a system mime table (distroless):
/// fonts are `""`.
fn go_content_type(ext: &str) -> &'static str {
    match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        _ => "",
    }
}

/// The Go server's `index.<platform>.json` for a platform of `metadata`,
/// from the files as stored in `dir`.
fn index_for(dir: &Path, files: &Value) -> Vec<u8> {
    let normal = |path: &str| path.replace('\\', "/");
    let bundle_path = normal(files["bundle"].as_str().unwrap());
    let bundle = facts(&std::fs::read(dir.join(&bundle_path)).unwrap());
    let assets: Vec<Value> = files["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|asset| {
            let path = normal(asset["path"].as_str().unwrap());
            let ext = asset["ext"].as_str().unwrap_or_default();
            let file = facts(&std::fs::read(dir.join(&path)).unwrap());
            json!({"path": path, "hash": file.hash, "key": file.key,
                   "contentType": go_content_type(ext), "fileExtension": format!(".{ext}")})
        })
        .collect();
    // Go marshals struct fields in declaration order.
    let text = format!(
        r#"{{"bundle":{{"path":{},"hash":{},"key":{},"contentType":"application/javascript"}},"assets":{}}}"#,
        json!(bundle_path),
        json!(bundle.hash),
        json!(bundle.key),
        serde_json::to_string(&assets).unwrap()
    );
    text.into_bytes()
}

/// What to write into one update directory.
struct Publish<'a> {
    tree: &'a Path,
    path: String,
    go_id: u64,
    /// `metadata.json` bytes (exactly as uploaded), or none (rollback dir).
    metadata: Option<Vec<u8>>,
    expo_config: Option<Vec<u8>>,
    /// (path in the dir, bytes) of every uploaded file.
    files: Vec<(String, Vec<u8>)>,
    with_index: bool,
    rollback: bool,
}

impl Publish<'_> {
    fn write(self, dirs: &mut BTreeMap<String, Dir>) {
        let dir = self.tree.join(&self.path);
        std::fs::create_dir_all(&dir).unwrap();
        let mut written = BTreeMap::new();
        let mut put = |name: &str, bytes: &[u8]| {
            let target = dir.join(name);
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::write(&target, bytes).unwrap();
            written.insert(name.to_owned(), facts(bytes));
        };
        for (name, bytes) in &self.files {
            put(name, bytes);
        }
        if let Some(config) = &self.expo_config {
            put("expoConfig.json", config);
        }
        let mut bundles = BTreeMap::new();
        if let Some(metadata) = &self.metadata {
            put("metadata.json", metadata);
            let parsed: Value = serde_json::from_slice(metadata).unwrap();
            for (platform, files) in parsed["fileMetadata"].as_object().unwrap() {
                bundles.insert(
                    platform.clone(),
                    files["bundle"].as_str().unwrap().replace('\\', "/"),
                );
                if self.with_index {
                    let index = index_for(&dir, files);
                    put(&format!("index.{platform}.json"), &index);
                }
            }
        }
        if self.rollback {
            put("rollback", b"");
        }
        let manifest_id = self.metadata.as_deref().map(go_manifest_id);
        dirs.insert(
            self.path.clone(),
            Dir {
                path: self.path,
                go_id: self.go_id,
                manifest_id,
                metadata: self.metadata,
                bundles,
                files: written,
            },
        );
    }
}

/// The Go server's manifest id: SHA-256 hex of the metadata bytes, first 32
/// characters as 8-4-4-4-12.
pub fn go_manifest_id(metadata: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(metadata));
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Every file of an export (relative path, bytes), metadata.json and
/// expoConfig.json excluded.
fn export_files(export: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let relative = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                if relative != "metadata.json" && relative != "expoConfig.json" {
                    out.push((relative, std::fs::read(&path).unwrap()));
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(export, export, &mut files);
    files.sort();
    files
}

fn read(export: &Path, name: &str) -> Vec<u8> {
    std::fs::read(export.join(name)).unwrap()
}

/// An SDK 49-style export made from an SDK 56 one: bundles at
/// `bundles/<platform>-<md5>.js`, metadata written on Windows (`\`).
fn sdk49_export(export: &Path) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let metadata: Value = serde_json::from_slice(&read(export, "metadata.json")).unwrap();
    let mut files = Vec::new();
    let mut file_metadata = serde_json::Map::new();
    for (platform, entry) in metadata["fileMetadata"].as_object().unwrap() {
        let bytes = read(export, entry["bundle"].as_str().unwrap());
        let bundle = format!("bundles/{platform}-{}.js", hex::encode(Md5::digest(&bytes)));
        files.push((bundle.clone(), bytes));
        let assets: Vec<Value> = entry["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|asset| {
                let path = asset["path"].as_str().unwrap();
                json!({"path": path.replace('/', "\\"), "ext": asset["ext"]})
            })
            .collect();
        file_metadata.insert(
            platform.clone(),
            json!({"bundle": bundle.replace('/', "\\"), "assets": assets}),
        );
    }
    for (path, bytes) in export_files(export) {
        if path.starts_with("assets/") {
            files.push((path, bytes));
        }
    }
    let metadata = json!({"version": 0, "bundler": "metro", "fileMetadata": file_metadata});
    (serde_json::to_vec(&metadata).unwrap(), files)
}

/// A tiny update of its own (a bundle and an image of a few bytes).
fn filler_export(n: usize) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let bundle = format!("var filler = {n};").repeat(2000).into_bytes();
    let image = format!("filler image {n}").repeat(500).into_bytes();
    let image_path = format!("assets/{}", hex::encode(Md5::digest(&image)));
    let mut file_metadata = serde_json::Map::new();
    for platform in ["ios", "android"] {
        file_metadata.insert(
            platform.to_owned(),
            json!({"bundle": format!("bundles/{platform}-{n}.js"),
                   "assets": [{"path": image_path, "ext": "png"}]}),
        );
    }
    let metadata = json!({"version": 0, "bundler": "metro", "fileMetadata": file_metadata});
    let files = vec![
        (format!("bundles/ios-{n}.js"), bundle.clone()),
        (format!("bundles/android-{n}.js"), bundle),
        (image_path, image),
    ];
    (serde_json::to_vec(&metadata).unwrap(), files)
}

/// Runs each SQL statement, in order.
async fn run_all(db: &mut SqliteConnection, statements: impl IntoIterator<Item = String>) {
    for statement in statements {
        sea_orm::sqlx::raw_sql(sea_orm::sqlx::AssertSqlSafe(statement))
            .execute(&mut *db)
            .await
            .unwrap();
    }
}

/// Lays out the data dir in `root` (created if needed).
pub async fn write(root: &Path, options: &Options) -> GoDataDir {
    let fixtures = fixtures_dir();
    let v1 = fixtures.join("expo-sdk56-export-v1");
    let v2 = fixtures.join("expo-sdk56-export-v2");
    let rt2 = fixtures.join("expo-sdk56-export-rt2");
    std::fs::create_dir_all(root).unwrap();
    let keys = keys();
    write_database(root, &keys).await;

    let tree = root.join("updates");
    let mut dirs = BTreeMap::new();
    let export = |path: String, go_id: u64, export: &Path| Publish {
        tree: &tree,
        path,
        go_id,
        metadata: Some(read(export, "metadata.json")),
        expo_config: Some(read(export, "expoConfig.json")),
        files: export_files(export),
        with_index: true,
        rollback: false,
    };
    let app = ids::APP;
    export(format!("{app}/1.0.0/{}", times::V1), times::V1, &v1).write(&mut dirs);
    export(format!("{app}/1.0.0/{}", times::V2), times::V2, &v2).write(&mut dirs);
    export(format!("{app}/2.0.0/{}", times::RT2), times::RT2, &rt2).write(&mut dirs);
    // The same export again, under a nested runtime version "1.0.0/beta".
    export(
        format!("{app}/1.0.0/beta/{}", times::NESTED),
        times::NESTED,
        &v1,
    )
    .write(&mut dirs);
    Publish {
        tree: &tree,
        path: format!("{app}/2.0.0/{}", times::ROLLBACK),
        go_id: times::ROLLBACK,
        metadata: None,
        expo_config: None,
        files: Vec::new(),
        with_index: false,
        rollback: true,
    }
    .write(&mut dirs);
    // Published before the Go server wrote index files, from Windows, with
    // an SDK 49 layout and a BOM in its config.
    let (metadata, files) = sdk49_export(&v1);
    let mut config = b"\xEF\xBB\xBF".to_vec();
    config.extend(
        String::from_utf8(read(&v1, "expoConfig.json"))
            .unwrap()
            .replace(
                "\"runtimeVersion\":\"1.0.0\"",
                "\"runtimeVersion\":\"0.9.0\"",
            )
            .into_bytes(),
    );
    Publish {
        tree: &tree,
        path: format!("{app}/0.9.0/{}", times::SDK49),
        go_id: times::SDK49,
        metadata: Some(metadata),
        expo_config: Some(config),
        files,
        with_index: false,
        rollback: false,
    }
    .write(&mut dirs);
    // Junk: a numeric directory without metadata or marker, a scratch
    // directory, a stray file at the root.
    for (path, bytes) in [
        (
            format!("{app}/1.0.0/{}/notes.txt", times::JUNK),
            "half an upload",
        ),
        (format!("{app}/1.0.0/tmp/scratch.txt"), "scratch"),
        ("README.txt".to_owned(), "copied here by hand"),
    ] {
        let target = tree.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }

    let other = ids::OTHER;
    export(format!("{other}/1.0.0/{}", times::V1), times::V1, &v1).write(&mut dirs);
    // A partial publish: v2 with its index, one listed file never written.
    let partial = export(
        format!("{other}/1.0.0/{}", times::PARTIAL),
        times::PARTIAL,
        &v2,
    );
    let v2_files = export_files(&v2);
    let v1_assets: Vec<String> = export_files(&v1).into_iter().map(|(p, _)| p).collect();
    let missing = v2_files
        .iter()
        .map(|(path, _)| path.clone())
        .find(|path| path.starts_with("assets/") && !v1_assets.contains(path))
        .unwrap();
    partial.write(&mut dirs);
    std::fs::remove_file(tree.join(format!("{other}/1.0.0/{}/{missing}", times::PARTIAL))).unwrap();
    dirs.get_mut(&format!("{other}/1.0.0/{}", times::PARTIAL))
        .unwrap()
        .files
        .remove(&missing);
    // A file changed after its hash was announced.
    let corrupt = format!("{other}/3.0.0/{}", times::CORRUPT);
    export(corrupt.clone(), times::CORRUPT, &v1).write(&mut dirs);
    let victim = tree.join(&corrupt).join(&v1_assets[0]);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes.push(b'!');
    std::fs::write(&victim, bytes).unwrap();

    // iOS only (only in the WAL's project).
    let mut ios_only: Value = serde_json::from_slice(&read(&v1, "metadata.json")).unwrap();
    ios_only["fileMetadata"]
        .as_object_mut()
        .unwrap()
        .remove("android");
    let wal = ids::WAL;
    Publish {
        tree: &tree,
        path: format!("{wal}/1.0.0/{}", times::IOS_ONLY),
        go_id: times::IOS_ONLY,
        metadata: Some(serde_json::to_vec(&ios_only).unwrap()),
        expo_config: Some(read(&v1, "expoConfig.json")),
        files: export_files(&v1)
            .into_iter()
            .filter(|(path, _)| !path.contains("/android/"))
            .collect(),
        with_index: true,
        rollback: false,
    }
    .write(&mut dirs);

    // A project directory the database does not know.
    export(
        format!("{}/1.0.0/{}", ids::ORPHAN, times::V1),
        times::V1,
        &v1,
    )
    .write(&mut dirs);

    for n in 0..options.filler_dirs {
        let (metadata, files) = filler_export(n);
        let go_id = times::FILLER + n as u64;
        Publish {
            tree: &tree,
            path: format!("{app}/filler/{go_id}"),
            go_id,
            metadata: Some(metadata),
            expo_config: Some(read(&v1, "expoConfig.json")),
            files,
            with_index: true,
            rollback: false,
        }
        .write(&mut dirs);
    }

    GoDataDir {
        root: root.to_owned(),
        accounts: ACCOUNTS.to_vec(),
        keys,
        dirs,
    }
}

/// Publishes one more update into an existing data dir, as the Go server
/// does (files, `metadata.json`, `expoConfig.json`, index files), from an
/// export directory; `path` is `<project>/<runtime version>/<go id>`.
pub fn add_update(root: &Path, path: &str, go_id: u64, export: &Path) -> Dir {
    let tree = root.join("updates");
    let mut dirs = BTreeMap::new();
    Publish {
        tree: &tree,
        path: path.to_owned(),
        go_id,
        metadata: Some(read(export, "metadata.json")),
        expo_config: Some(read(export, "expoConfig.json")),
        files: export_files(export),
        with_index: true,
        rollback: false,
    }
    .write(&mut dirs);
    dirs.remove(path).unwrap()
}

/// Whether the rows written last are only in the WAL: the main database
/// file, read as if no WAL existed, lacks them.
pub async fn wal_holds_rows(root: &Path) -> bool {
    let copy = tempfile::tempdir().unwrap();
    let main_only = copy.path().join("ota.db");
    std::fs::copy(root.join("ota.db"), &main_only).unwrap();
    let options = SqliteConnectOptions::new()
        .filename(&main_only)
        .immutable(true)
        .read_only(true);
    let mut db = SqliteConnection::connect_with(&options).await.unwrap();
    let rows = sea_orm::sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM \"user\" WHERE id = ?")
        .bind(ids::CAROL)
        .fetch_one(&mut db)
        .await
        .unwrap();
    rows == 0
}
