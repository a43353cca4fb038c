//! Reading an `npx expo export` folder and checking it before anything is
//! uploaded, with the same rules the server applies (`domain::export`), so a
//! broken export fails on the runner with a message that names the problem
//! rather than after a long upload.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use domain::export::{self, PlatformFiles, RuntimeVersionError};
use domain::update::{Platform, RuntimeVersion};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::args::PlatformChoice;
use crate::error::{CliError, CliResult};

/// One file the publish needs.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// Normalised path relative to the export root (the form field name).
    pub path: String,
    pub location: PathBuf,
    pub size: u64,
    pub sha256_hex: String,
}

/// An export that passed every check, narrowed to the chosen platforms.
#[derive(Debug)]
pub struct CheckedExport {
    /// `metadata.json` as it is sent: the original bytes, or rewritten to
    /// list only the chosen platforms.
    pub metadata: Vec<u8>,
    /// `expoConfig.json` without a BOM, when the export has one.
    pub expo_config: Option<Vec<u8>>,
    pub platforms: Vec<Platform>,
    pub runtime_version: RuntimeVersion,
    /// Each distinct path once, in a stable order.
    pub files: Vec<ExportFile>,
}

impl CheckedExport {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|file| file.size).sum()
    }
}

fn invalid(message: String) -> CliError {
    CliError::Rejected(format!("the export cannot be published: {message}"))
}

/// Reads and checks the export in `dir`.
pub async fn check(
    dir: &Path,
    choice: PlatformChoice,
    runtime_version: Option<&str>,
) -> CliResult<CheckedExport> {
    let dir = &tokio::fs::canonicalize(dir)
        .await
        .map_err(|error| invalid(format!("{} cannot be read ({error})", dir.display())))?;
    let metadata_path = dir.join("metadata.json");
    let metadata = read_small(dir, &metadata_path).await.map_err(|why| {
        invalid(format!(
            "{why}; is {} the output of `npx expo export`?",
            dir.display()
        ))
    })?;
    let mut listed = export::parse_metadata(&metadata).map_err(|error| invalid(error.0))?;

    let all: Vec<Platform> = listed.keys().copied().collect();
    listed.retain(|platform, _| choice.names().contains(&platform.as_str()));
    if listed.is_empty() {
        let exported: Vec<&str> = all.iter().map(|platform| platform.as_str()).collect();
        return Err(invalid(format!(
            "it has no {} bundle (it has: {}); export that platform or choose another --platform",
            choice.names().join(" or "),
            exported.join(", ")
        )));
    }
    let platforms: Vec<Platform> = listed.keys().copied().collect();
    let metadata = if platforms.len() == all.len() {
        metadata
    } else {
        only_platforms(&metadata, &platforms)?
    };

    let expo_config_path = dir.join("expoConfig.json");
    let expo_config = match tokio::fs::try_exists(&expo_config_path).await {
        Ok(true) => {
            let bytes = read_small(dir, &expo_config_path).await.map_err(invalid)?;
            Some(export::strip_bom(&bytes).to_vec())
        }
        _ => None,
    };
    let config = expo_config
        .as_deref()
        .map(export::parse_expo_config)
        .transpose()
        .map_err(|error| invalid(error.0))?;
    let runtime_version = match runtime_version {
        Some(raw) => RuntimeVersion::parse(raw)
            .map_err(|error| CliError::Usage(format!("--runtime-version: {error}")))?,
        None => resolve_runtime_version(config.as_ref(), &platforms)?,
    };

    let files = hash_files(dir, &listed).await?;
    Ok(CheckedExport {
        metadata,
        expo_config,
        platforms,
        runtime_version,
        files,
    })
}

/// The runtime version from expoConfig.json; every chosen platform must
/// agree, since one publish carries one runtime version.
fn resolve_runtime_version(
    config: Option<&serde_json::Map<String, Value>>,
    platforms: &[Platform],
) -> CliResult<RuntimeVersion> {
    let config = config.ok_or_else(|| {
        CliError::Usage(
            "no --runtime-version and the export has no expoConfig.json to read it from; run \
             `npx expo config --type public --json > <dir>/expoConfig.json` or pass --runtime-version"
                .to_owned(),
        )
    })?;
    let mut resolved = BTreeMap::new();
    for platform in platforms {
        let version = export::resolve_runtime_version(config, *platform).map_err(|error| {
            let advice = match error {
                RuntimeVersionError::Unresolvable(_) => {
                    "; pass --runtime-version with the value your build reports"
                }
                _ => "; set runtimeVersion in app.json or pass --runtime-version",
            };
            CliError::Usage(format!(
                "expoConfig.json ({}): {error}{advice}",
                platform.as_str()
            ))
        })?;
        resolved.insert(version.as_str().to_owned(), *platform);
    }
    if resolved.len() > 1 {
        let versions: Vec<String> = resolved
            .iter()
            .map(|(version, platform)| format!("{} {version:?}", platform.as_str()))
            .collect();
        return Err(CliError::Usage(format!(
            "the platforms have different runtime versions ({}); publish each with --platform",
            versions.join(", ")
        )));
    }
    let version = resolved.into_keys().next().unwrap_or_default();
    RuntimeVersion::parse(&version).map_err(|error| CliError::Usage(error.0))
}

/// metadata.json with only the chosen platforms in `fileMetadata`.
fn only_platforms(metadata: &[u8], platforms: &[Platform]) -> CliResult<Vec<u8>> {
    let mut json: Value = serde_json::from_slice(export::strip_bom(metadata))
        .map_err(|error| invalid(error.to_string()))?;
    if let Some(Value::Object(files)) = json.get_mut("fileMetadata") {
        files.retain(|name, _| platforms.iter().any(|platform| platform.as_str() == name));
    }
    serde_json::to_vec(&json).map_err(|error| invalid(error.to_string()))
}

/// Hashes every listed file, failing on the first that is missing.
async fn hash_files(
    dir: &Path,
    listed: &BTreeMap<Platform, PlatformFiles>,
) -> CliResult<Vec<ExportFile>> {
    let paths: BTreeSet<&str> = listed.values().flat_map(PlatformFiles::paths).collect();
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        if path.contains('"') {
            return Err(invalid(format!(
                "{path} has a double quote, which a form field name cannot carry; rename the file"
            )));
        }
        let location = dir.join(path);
        let (size, sha256_hex) = hash_file(dir, &location).await.map_err(|error| {
            invalid(format!(
                "{path} is listed in metadata.json but cannot be read ({error})"
            ))
        })?;
        files.push(ExportFile {
            path: path.to_owned(),
            location,
            size,
            sha256_hex,
        });
    }
    Ok(files)
}

/// Refuses a path that is not a regular file inside `root` (the export,
/// canonical): a symbolic link out of the export, planted by whatever
/// produced it, would otherwise publish any file the runner can read.
async fn confine(root: &Path, location: &Path) -> std::io::Result<PathBuf> {
    let real = tokio::fs::canonicalize(location).await?;
    if !real.starts_with(root) {
        return Err(std::io::Error::other(
            "it leads outside the export folder (a symbolic link?)",
        ));
    }
    if !tokio::fs::metadata(&real).await?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(real)
}

async fn hash_file(root: &Path, location: &Path) -> std::io::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(confine(root, location).await?).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    let mut size = 0;
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// Reads metadata.json or expoConfig.json, which are small.
async fn read_small(root: &Path, path: &Path) -> Result<Vec<u8>, String> {
    const LIMIT: u64 = 1024 * 1024;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = &confine(root, path)
        .await
        .map_err(|error| format!("{name} cannot be read ({error})"))?;
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|error| format!("{name} cannot be read ({error})"))?
        .len();
    if size > LIMIT {
        return Err(format!("{name} is larger than {LIMIT} bytes"));
    }
    tokio::fs::read(path)
        .await
        .map_err(|error| format!("{name} cannot be read ({error})"))
}

/// Runs `npx expo export` and `npx expo config --type public --json` in the
/// current directory, into a temporary folder that lives as long as the
/// returned guard. Their output goes to stderr, keeping stdout for the
/// result.
pub fn run_expo_export(choice: PlatformChoice) -> CliResult<tempfile::TempDir> {
    let out = tempfile::Builder::new()
        .prefix("expo-updates-export-")
        .tempdir()
        .map_err(|error| CliError::Other(format!("cannot create a temporary folder: {error}")))?;
    let mut export_args = vec![
        "expo".to_owned(),
        "export".to_owned(),
        "--output-dir".to_owned(),
    ];
    export_args.push(out.path().to_string_lossy().into_owned());
    for platform in choice.names() {
        export_args.push("--platform".to_owned());
        export_args.push((*platform).to_owned());
    }
    eprintln!("running npx {}", export_args.join(" "));
    let status = Command::new("npx")
        .args(&export_args)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|error| npx_error(&error))?;
    if !status.success() {
        return Err(CliError::Other(format!(
            "`npx expo export` failed ({status}); run it yourself to see why, or publish an existing export with --dir"
        )));
    }
    eprintln!("running npx expo config --type public --json");
    let config = Command::new("npx")
        .args(["expo", "config", "--type", "public", "--json"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| npx_error(&error))?;
    if !config.status.success() {
        return Err(CliError::Other(format!(
            "`npx expo config --type public --json` failed ({})",
            config.status
        )));
    }
    // A console.log in app.config.js lands before the JSON: skip to the
    // first line that opens an object.
    let stdout = String::from_utf8_lossy(&config.stdout);
    let json_start = stdout
        .match_indices('{')
        .map(|(index, _)| index)
        .find(|&index| index == 0 || stdout[..index].ends_with('\n'))
        .unwrap_or(0);
    std::fs::write(out.path().join("expoConfig.json"), &stdout[json_start..])
        .map_err(|error| CliError::Other(format!("cannot write expoConfig.json: {error}")))?;
    Ok(out)
}

fn npx_error(error: &std::io::Error) -> CliError {
    CliError::Other(format!(
        "cannot run npx ({error}): install Node.js, or publish an existing export with --dir"
    ))
}
