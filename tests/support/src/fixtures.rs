//! The fixtures in `tests/fixtures` (see its README): the real `npx expo export` outputs, the
//! code-signing key and certificate, and `CHECKSUMS.txt`. Every test, script and document of
//! the repository finds them from here ([`fixtures_dir`]; scripts from `tests/fixtures`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::Digest;

/// `tests/fixtures` as a string literal, for `concat!`.
macro_rules! fixtures_dir_literal {
    () => {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures")
    };
}

/// `tests/fixtures`, found from this crate's directory (`tests/support`).
pub const FIXTURES_DIR: &str = fixtures_dir_literal!();

/// The fixture signing key (PKCS#1 PEM, CRLF line ends), for `PRIVATE_KEY`.
pub const PRIVATE_KEY_PATH: &str =
    concat!(fixtures_dir_literal!(), "/code-signing/private-key.pem");

/// The self-signed certificate of [`PRIVATE_KEY_PATH`] (keyid `main`).
pub const CERTIFICATE_PATH: &str =
    concat!(fixtures_dir_literal!(), "/code-signing/certificate.pem");

/// The fixtures directory, `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(FIXTURES_DIR)
}

/// `tests/fixtures/<name>` (`name` may have `/`s: `code-signing/public-key.pem`).
pub fn fixture(name: &str) -> PathBuf {
    name.split('/')
        .fold(fixtures_dir(), |path, segment| path.join(segment))
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_bytes_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The blob key of a file with SHA-256 `sha256_hex` in `project_id`.
pub fn asset_key(project_id: &str, sha256_hex: &str) -> String {
    format!("projects/{project_id}/assets/{sha256_hex}")
}

/// One `expo export` output directory.
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub dir: PathBuf,
    /// `metadata.json`, parsed.
    pub metadata: Value,
    /// `runtimeVersion` from the export's `expoConfig.json`.
    pub runtime_version: String,
}

impl Export {
    /// Loads `<fixtures>/<name>`.
    pub fn load(name: &str) -> Export {
        let dir = fixtures_dir().join(name);
        let read_json = |file: &str| -> Value {
            let path = dir.join(file);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("read the fixture {}: {e}", path.display()));
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("the fixture {} is not JSON: {e}", path.display()))
        };
        let metadata = read_json("metadata.json");
        let runtime_version = read_json("expoConfig.json")["runtimeVersion"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}/expoConfig.json has no string runtimeVersion"))
            .to_owned();
        Export {
            name: name.to_owned(),
            dir,
            metadata,
            runtime_version,
        }
    }

    /// runtimeVersion 1.0.0, "Fixture update v1", 4 asset files.
    pub fn v1() -> Export {
        Self::load("expo-sdk56-export-v1")
    }

    /// runtimeVersion 1.0.0, the update after v1: 4 assets shared with v1 plus one more.
    pub fn v2() -> Export {
        Self::load("expo-sdk56-export-v2")
    }

    /// runtimeVersion 2.0.0, v1's assets with new bundles.
    pub fn rt2() -> Export {
        Self::load("expo-sdk56-export-rt2")
    }

    fn file_metadata(&self) -> &serde_json::Map<String, Value> {
        self.metadata["fileMetadata"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: fileMetadata is not an object", self.name))
    }

    /// The platforms listed in `fileMetadata` (key order is not meaningful).
    pub fn platforms(&self) -> Vec<String> {
        self.file_metadata().keys().cloned().collect()
    }

    /// The launch bundle path of `platform`.
    pub fn bundle(&self, platform: &str) -> String {
        self.file_metadata()[platform]["bundle"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no bundle for {platform}", self.name))
            .to_owned()
    }

    /// The distinct bundle paths.
    pub fn bundle_paths(&self) -> BTreeSet<String> {
        self.platforms()
            .iter()
            .map(|platform| self.bundle(platform))
            .collect()
    }

    /// The distinct asset paths (over all platforms).
    pub fn asset_paths(&self) -> BTreeSet<String> {
        self.file_metadata()
            .values()
            .flat_map(|platform| {
                platform["assets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|asset| {
                        asset["path"]
                            .as_str()
                            .expect("an asset has a string path")
                            .to_owned()
                    })
            })
            .collect()
    }

    /// Every distinct path listed in `metadata.json`: bundles and assets.
    pub fn listed_paths(&self) -> BTreeSet<String> {
        let mut paths = self.bundle_paths();
        paths.extend(self.asset_paths());
        paths
    }

    /// The file at `path` (relative to the export root).
    pub fn file(&self, path: &str) -> PathBuf {
        path.split('/')
            .fold(self.dir.clone(), |dir, segment| dir.join(segment))
    }

    pub fn bytes(&self, path: &str) -> Vec<u8> {
        let file = self.file(path);
        std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
    }

    /// Hex SHA-256 of the file at `path`.
    pub fn sha256_hex(&self, path: &str) -> String {
        sha256_bytes_hex(&self.bytes(path))
    }

    /// The hex SHA-256 of every listed file: the names its blobs are stored under.
    pub fn file_sha256s(&self) -> BTreeSet<String> {
        self.listed_paths()
            .iter()
            .map(|path| self.sha256_hex(path))
            .collect()
    }

    /// Where each listed file must be stored after publishing to `project_id`:
    /// blob key → the export path it comes from (one entry per distinct content).
    pub fn expected_blobs(&self, project_id: &str) -> BTreeMap<String, String> {
        self.listed_paths()
            .into_iter()
            .map(|path| (asset_key(project_id, &self.sha256_hex(&path)), path))
            .collect()
    }

    /// The raw bytes of a top-level file of the export (`metadata.json`, `expoConfig.json`).
    pub fn raw(&self, file: &str) -> Vec<u8> {
        self.bytes(file)
    }
}

/// One row of `CHECKSUMS.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub size: u64,
    pub md5_hex: String,
    pub sha256_b64url: String,
}

/// `CHECKSUMS.txt`: `<export dir>/<path>` → checksums.
pub fn checksums() -> BTreeMap<String, Checksum> {
    let path = fixture("CHECKSUMS.txt");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(columns.len(), 4, "bad CHECKSUMS.txt line: {line}");
            (
                columns[3].to_owned(),
                Checksum {
                    size: columns[0].parse().expect("a size"),
                    md5_hex: columns[1].to_owned(),
                    sha256_b64url: columns[2].to_owned(),
                },
            )
        })
        .collect()
}

/// The [`Checksum`] of `bytes`.
pub fn checksum_of(bytes: &[u8]) -> Checksum {
    Checksum {
        size: bytes.len() as u64,
        md5_hex: hex::encode(md5::Md5::digest(bytes)),
        sha256_b64url: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every regular file below `dir`, relative to the fixtures directory with `/`.
    fn files_below(dir: &Path, relative: &str, files: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{relative}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                files_below(&entry.path(), &name, files);
            } else {
                files.insert(name);
            }
        }
    }

    /// `sha256sum -c`, for `CHECKSUMS.txt`'s columns: every row matches its file, and every
    /// file of the three exports has a row.
    #[test]
    fn checksums_match_the_fixture_files() {
        let listed = checksums();
        assert_eq!(listed.len(), 25, "rows of CHECKSUMS.txt");
        for (path, expected) in &listed {
            let bytes = std::fs::read(fixture(path))
                .unwrap_or_else(|e| panic!("{path} is listed in CHECKSUMS.txt: {e}"));
            assert_eq!(&checksum_of(&bytes), expected, "{path}");
        }
        let mut files = BTreeSet::new();
        for export in [
            "expo-sdk56-export-v1",
            "expo-sdk56-export-v2",
            "expo-sdk56-export-rt2",
        ] {
            files_below(&fixture(export), export, &mut files);
        }
        let listed: BTreeSet<String> = listed.into_keys().collect();
        assert_eq!(files, listed, "the export files and CHECKSUMS.txt's rows");
    }

    #[test]
    fn the_exports_list_only_files_they_have() {
        for export in [Export::v1(), Export::v2(), Export::rt2()] {
            assert_eq!(export.platforms().len(), 2, "{}", export.name);
            for path in export.listed_paths() {
                assert!(export.file(&path).is_file(), "{}: {path}", export.name);
            }
        }
        assert_eq!(Export::v1().runtime_version, "1.0.0");
        assert_eq!(Export::rt2().runtime_version, "2.0.0");
    }

    #[test]
    fn the_code_signing_files_are_there_with_crlf_line_ends() {
        for path in [PRIVATE_KEY_PATH, CERTIFICATE_PATH] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{path}");
            assert!(text.contains("\r\n"), "{path}: git converted its line ends");
        }
        assert!(fixture("code-signing/signature-test-vector.json").is_file());
    }
}
