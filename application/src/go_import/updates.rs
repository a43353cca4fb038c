//! The update tree: each Go update directory becomes one update per
//! platform on the default branch (and a rollback marker one rollback per
//! platform), dated by the directory's name and carrying the manifest id
//! the Go server derived from `metadata.json`, so that devices running it
//! are told there is nothing new.
//!
//! Every file a platform lists is read and checked against the hash the Go
//! server announced for it; a platform with a missing or altered file is a
//! partial publish and is left out, so broken data is never served. The
//! files of a directory are staged first and promoted only once all of them
//! are known good, then its updates are committed in one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::blob::{BlobError, ByteStream, StagedBlob};
use domain::export::{file_metadata, parse_expo_config, platform_files, strip_bom};
use domain::go_server::ports::GoSourceError;
use domain::go_server::{GoIndex, GoTree, UpdateDir, go_update_time, legacy_manifest_id};
use domain::id::ProjectId;
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{
    Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind, asset_blob_key, is_compressible,
};
use futures_util::StreamExt;
use md5::Md5;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::control_plane::Projects;
use super::report::ImportReport;
use super::{GoImport, ImportError, importer};
use crate::precompress::precompress;
use crate::publish::content_type_of;

/// The largest `metadata.json`, `expoConfig.json` or index file read.
const MAX_SMALL_FILE: u64 = 16 * 1024 * 1024;

/// Both platforms a rollback marker rolls back.
const PLATFORMS: [Platform; 2] = [Platform::Ios, Platform::Android];

/// A UUIDv7 for an imported row: its time is the Go update's (so it sorts
/// among the project's updates as the Go server ordered them), its other
/// bits a digest of where it came from (so a rerun derives the same id).
fn derived_id(millis: u64, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// One file of a platform, as the manifest will describe it.
struct PlannedFile {
    path: String,
    /// `None` for the bundle.
    file_extension: Option<String>,
    /// What the Go server's index announced, when it wrote one.
    expected: Option<(String, String)>,
}

/// A file read and checked.
struct CheckedFile {
    sha256: [u8; 32],
    md5: [u8; 16],
    size: u64,
    /// Its staging copy, unless it needed none.
    staged: Option<StagedBlob>,
}

/// Why a platform of a directory is left out.
enum Broken {
    /// A partial publish: the reason names the file.
    Partial(String),
    Source(GoSourceError),
}

pub(super) struct Run<'a> {
    import: &'a GoImport,
    ledger: &'a HashMap<String, String>,
    projects: &'a Projects,
    report: &'a mut ImportReport,
    /// Blobs this run stored, per project: not copied twice.
    stored: HashSet<(String, String)>,
    /// Files this run counted, per project.
    counted: HashSet<(String, String)>,
    /// The platforms each directory's `metadata.json` lists (by its path).
    listed: HashSet<(String, Platform)>,
    /// Per project, its oldest update directory with an index file.
    indexed: HashMap<String, (u64, String)>,
}

impl<'a> Run<'a> {
    pub fn new(
        import: &'a GoImport,
        ledger: &'a HashMap<String, String>,
        projects: &'a Projects,
        report: &'a mut ImportReport,
    ) -> Self {
        Self {
            import,
            ledger,
            projects,
            report,
            stored: HashSet::new(),
            counted: HashSet::new(),
            listed: HashSet::new(),
            indexed: HashMap::new(),
        }
    }

    pub async fn import(&mut self, tree: &GoTree) -> Result<(), ImportError> {
        for stray in &tree.strays {
            let about = match stray.path.as_str() {
                "" => "(the root of the update tree)".to_owned(),
                path => path.to_owned(),
            };
            self.report.problem(
                about,
                format!(
                    "{} ({} files); left alone",
                    stray.reason.describe(),
                    stray.files
                ),
            );
        }
        let mut pending_files = 0;
        let mut pending_bytes = 0;
        for (project_id, dirs) in &tree.update_dirs {
            if !self.projects.here.contains(project_id) {
                continue;
            }
            for dir in dirs.iter().filter(|dir| !self.is_done(dir)) {
                pending_files += dir.files.len() as u64;
                pending_bytes += dir.files.values().sum::<u64>();
            }
        }
        self.import
            .progress
            .begin_files(pending_files, pending_bytes);
        for (project_id, dirs) in &tree.update_dirs {
            let oldest_indexed = dirs
                .iter()
                .filter(|dir| dir.files.keys().any(|name| is_index_file(name)))
                .min_by_key(|dir| dir.go_id);
            if let Some(dir) = oldest_indexed {
                self.indexed
                    .insert(project_id.clone(), (dir.go_id, dir.path.clone()));
            }
        }
        for (project_id, dirs) in &tree.update_dirs {
            if !self.projects.in_source.contains(project_id) {
                self.report.problem(
                    project_id.clone(),
                    format!(
                        "a project directory with {} update directories but no row in the Go database; left alone",
                        dirs.len()
                    ),
                );
                continue;
            }
            if !self.projects.here.contains(project_id) {
                continue;
            }
            let mut served: BTreeMap<(String, Platform), (u64, UpdateKind)> = BTreeMap::new();
            let mut nested_reported = HashSet::new();
            for dir in dirs {
                if dir.runtime_version.contains('/')
                    && nested_reported.insert(dir.runtime_version.clone())
                {
                    self.report.warn(
                        format!("{project_id}/{}", dir.runtime_version),
                        format!(
                            "runtime version {:?} comes from nested directories: check it is one runtime version and not an update stored inside another",
                            dir.runtime_version
                        ),
                    );
                }
                for (kind, platform) in self.import_dir(dir).await? {
                    served.insert((dir.runtime_version.clone(), platform), (dir.go_id, kind));
                }
            }
            self.compare_latest(project_id, tree, &served);
        }
        self.remove_gone(tree).await
    }

    /// Whether every update this directory can give was imported earlier.
    fn is_done(&self, dir: &UpdateDir) -> bool {
        let update_done = !dir.has_metadata
            || PLATFORMS.iter().any(|p| {
                self.ledger
                    .contains_key(&source(UpdateKind::Update, dir, *p))
            });
        let rollback_done = !dir.has_rollback
            || PLATFORMS.iter().all(|p| {
                self.ledger
                    .contains_key(&source(UpdateKind::Rollback, dir, *p))
            });
        update_done && rollback_done
    }

    /// Imports one directory; returns what it now gives devices (imported
    /// now or earlier), by kind and platform.
    async fn import_dir(
        &mut self,
        dir: &UpdateDir,
    ) -> Result<Vec<(UpdateKind, Platform)>, ImportError> {
        let Ok(runtime_version) = RuntimeVersion::parse(&dir.runtime_version) else {
            self.report.problem(
                dir.path.clone(),
                format!(
                    "runtime version {:?} is not one this server accepts (empty, over 255 characters or with control characters); left alone",
                    dir.runtime_version
                ),
            );
            return Ok(Vec::new());
        };
        let Some(created_at) = go_update_time(dir.go_id) else {
            self.report
                .problem(dir.path.clone(), "the update id is not a time; left alone");
            return Ok(Vec::new());
        };
        let age = chrono::Utc::now().signed_duration_since(created_at);
        if age < chrono::Duration::zero() - chrono::Duration::days(1) {
            self.report.warn(
                dir.path.clone(),
                "is dated in the future (the Go server's clock was wrong): it stays the latest of its runtime version until something newer than that date is published, as on the Go server; delete it here once a new publish should win",
            );
        }
        let mut gives = Vec::new();
        let mut updates = Vec::new();
        let mut sources = Vec::new();
        let mut staged = Vec::new();
        if dir.has_metadata {
            let result = self
                .platform_updates(dir, &runtime_version, created_at, &mut staged)
                .await;
            let (built, done) = match result {
                Ok(found) => found,
                Err(error) => {
                    self.discard(&staged).await;
                    return Err(error);
                }
            };
            for platform in done {
                gives.push((UpdateKind::Update, platform));
                self.report.already_imported.updates += 1;
            }
            for update in built {
                gives.push((UpdateKind::Update, update.platform));
                sources.push(source(UpdateKind::Update, dir, update.platform));
                updates.push(update);
            }
        }
        if dir.has_rollback {
            let publish_id = derived_id(dir.go_id * 1000 + 1, &format!("rollback:{}", dir.path));
            for platform in PLATFORMS {
                let key = source(UpdateKind::Rollback, dir, platform);
                gives.push((UpdateKind::Rollback, platform));
                if self.ledger.contains_key(&key) {
                    self.report.already_imported.rollbacks += 1;
                    continue;
                }
                // Sorts after an update of the same directory: the marker
                // was put there after it was published.
                let id = derived_id(dir.go_id * 1000 + 1, &key);
                updates.push(Update {
                    manifest_id: id.clone(),
                    id,
                    publish_id: publish_id.clone(),
                    project_id: dir.project_id.clone(),
                    runtime_version: runtime_version.as_str().to_owned(),
                    platform,
                    kind: UpdateKind::Rollback,
                    branch: BranchName::default_branch(),
                    message: Some(format!("Imported from the Go server ({})", dir.path)),
                    rollout: RolloutPercentage::FULL,
                    published_by: Some(importer()),
                    republished_from: None,
                    expo_config: None,
                    assets: Vec::new(),
                    created_at,
                });
                sources.push(key);
            }
            if dir.has_metadata {
                self.report.warn(
                    dir.path.clone(),
                    "holds an update and a rollback marker: imported as the update followed by a roll-back to the embedded update with the same commitTime (devices running this update keep it, as with the Go server)",
                );
            }
        }
        if updates.is_empty() {
            self.discard(&staged).await;
            return Ok(gives);
        }
        let stored = self.commit(dir, &updates, &sources, &staged).await;
        self.discard(&staged).await;
        if !stored? {
            return Ok(Vec::new());
        }
        let updates_count = updates
            .iter()
            .filter(|u| u.kind == UpdateKind::Update)
            .count();
        let rollbacks_count = updates.len() - updates_count;
        self.report.imported.updates += updates_count as u64;
        self.report.imported.rollbacks += rollbacks_count as u64;
        let platforms: Vec<&str> = updates.iter().map(|u| u.platform.as_str()).collect();
        self.import.progress.step(&format!(
            "{} {} ({})",
            if self.import.writes() {
                "imported"
            } else {
                "would import"
            },
            dir.path,
            platforms.join(", ")
        ));
        Ok(gives)
    }

    /// Promotes the staged files, makes their compressed copies and stores
    /// the updates with their ledger entries, under the project's reference
    /// lock after checking every file they name is in storage (a storage
    /// collection may have deleted one found there earlier and unreferenced:
    /// it is promoted again when staged, else the directory waits for the
    /// next run). `false` when nothing was stored (reported).
    async fn commit(
        &mut self,
        dir: &UpdateDir,
        updates: &[Update],
        sources: &[String],
        staged: &[StagedBlob],
    ) -> Result<bool, ImportError> {
        let (Some(blobs), true) = (&self.import.target.blobs, self.import.writes()) else {
            return Ok(true);
        };
        let blobs = Arc::clone(blobs);
        for blob in staged {
            let sha256_hex = hex::encode(blob.sha256);
            blobs
                .promote(blob, &asset_blob_key(&dir.project_id, &sha256_hex))
                .await?;
        }
        // Every compressible file gets its copies, also one stored by a run
        // killed before it made them (a copy already there is kept).
        let files: BTreeMap<&str, (u64, bool)> = updates
            .iter()
            .flat_map(|update| &update.assets)
            .map(|asset| {
                let compressible = is_compressible(&asset.content_type);
                (asset.sha256_hex.as_str(), (asset.size, compressible))
            })
            .collect();
        for (sha256_hex, (size, compressible)) in &files {
            if *compressible {
                let key = asset_blob_key(&dir.project_id, sha256_hex);
                precompress(blobs.as_ref(), &key, *size).await;
            }
        }
        let mut lock = match self
            .import
            .target
            .store
            .lock_for_import(&dir.project_id)
            .await
        {
            Ok(lock) => lock,
            Err(domain::ports::StoreError::ProjectGone) => {
                self.report.problem(
                    dir.path.clone(),
                    "its project was deleted on this server; not imported",
                );
                return Ok(false);
            }
            Err(other) => return Err(other.into()),
        };
        let staged_by_hash: HashMap<String, &StagedBlob> = staged
            .iter()
            .map(|blob| (hex::encode(blob.sha256), blob))
            .collect();
        for sha256_hex in files.keys() {
            let key = asset_blob_key(&dir.project_id, sha256_hex);
            if blobs.exists(&key).await? {
                continue;
            }
            match staged_by_hash.get(*sha256_hex) {
                Some(blob) => blobs.promote(blob, &key).await?,
                None => {
                    drop(lock);
                    self.stored
                        .retain(|(project, sha)| project != &dir.project_id || sha != sha256_hex);
                    self.report.problem(
                        dir.path.clone(),
                        format!("a file of it ({sha256_hex}) was removed from storage while it was imported (storage collection); not imported this time: run import-go again"),
                    );
                    return Ok(false);
                }
            }
        }
        lock.insert_updates(updates, sources).await?;
        lock.commit().await?;
        for sha256_hex in files.keys() {
            self.stored
                .insert((dir.project_id.clone(), (*sha256_hex).to_owned()));
        }
        if let Some(audit) = &self.import.target.audit {
            // The plan kept only directories of projects whose ids are ids.
            let project_id = ProjectId::from_trusted(dir.project_id.clone());
            audit
                .record(
                    &importer(),
                    &project_id,
                    "update.import",
                    json!({
                        "source": dir.path,
                        "updateIds": updates.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
                        "runtimeVersion": dir.runtime_version,
                    }),
                )
                .await;
        }
        Ok(true)
    }

    async fn discard(&self, staged: &[StagedBlob]) {
        if let Some(blobs) = &self.import.target.blobs {
            for blob in staged {
                blobs.discard(blob).await;
            }
        }
    }

    /// The updates of a directory with `metadata.json` that are not
    /// imported yet, and the platforms that were.
    async fn platform_updates(
        &mut self,
        dir: &UpdateDir,
        runtime_version: &RuntimeVersion,
        created_at: chrono::DateTime<chrono::Utc>,
        staged: &mut Vec<StagedBlob>,
    ) -> Result<(Vec<Update>, Vec<Platform>), ImportError> {
        let Some(metadata) = self.read_small(dir, "metadata.json").await? else {
            self.report.problem(
                dir.path.clone(),
                "metadata.json is listed but could not be read; left alone",
            );
            return Ok((Vec::new(), Vec::new()));
        };
        let platforms = match file_metadata(&metadata) {
            Ok(platforms) => platforms,
            Err(error) => {
                self.report
                    .problem(dir.path.clone(), format!("{error}; left alone"));
                return Ok((Vec::new(), Vec::new()));
            }
        };
        if platforms.is_empty() {
            self.report.problem(
                dir.path.clone(),
                "metadata.json lists no platform; left alone",
            );
            return Ok((Vec::new(), Vec::new()));
        }
        let mut wanted = Vec::new();
        let mut done = Vec::new();
        for (name, files) in &platforms {
            let Some(platform) = Platform::parse(name) else {
                self.report.skip(
                    dir.path.clone(),
                    format!(
                        "platform {name:?} is not served by this server (only ios and android)"
                    ),
                );
                continue;
            };
            self.listed.insert((dir.path.clone(), platform));
            if self
                .ledger
                .contains_key(&source(UpdateKind::Update, dir, platform))
            {
                done.push(platform);
            } else {
                wanted.push((platform, name.clone(), files.clone()));
            }
        }
        if wanted.is_empty() {
            return Ok((Vec::new(), done));
        }
        let Some(expo_config) = self.expo_config(dir).await? else {
            return Ok((Vec::new(), done));
        };
        let manifest_id = legacy_manifest_id(&metadata);
        let publish_id = derived_id(dir.go_id * 1000, &format!("update:{}", dir.path));
        let mut updates = Vec::new();
        for (platform, name, files) in wanted {
            let planned = match self.planned_files(dir, platform, &name, &files).await? {
                Some(planned) => planned,
                None => continue,
            };
            let mut assets = Vec::new();
            let mut platform_staged = Vec::new();
            let mut broken = None;
            for file in &planned {
                match self.check_file(dir, file).await {
                    Ok(checked) => {
                        assets.push(asset_of(file, &checked));
                        if let Some(blob) = checked.staged {
                            platform_staged.push(blob);
                        }
                    }
                    Err(error) => {
                        broken = Some(error);
                        break;
                    }
                }
            }
            match broken {
                None => {
                    for asset in &assets {
                        self.count_file(&dir.project_id, asset).await?;
                    }
                    staged.extend(platform_staged);
                    let key = source(UpdateKind::Update, dir, platform);
                    updates.push(Update {
                        id: derived_id(dir.go_id * 1000, &key),
                        publish_id: publish_id.clone(),
                        project_id: dir.project_id.clone(),
                        runtime_version: runtime_version.as_str().to_owned(),
                        platform,
                        kind: UpdateKind::Update,
                        branch: BranchName::default_branch(),
                        message: Some(format!("Imported from the Go server ({})", dir.path)),
                        rollout: RolloutPercentage::FULL,
                        published_by: Some(importer()),
                        republished_from: None,
                        manifest_id: manifest_id.clone(),
                        expo_config: expo_config.clone(),
                        assets,
                        created_at,
                    });
                }
                Some(error) => {
                    self.discard(&platform_staged).await;
                    match error {
                        Broken::Partial(reason) => self.report.problem(
                            dir.path.clone(),
                            format!(
                                "{}: partial publish ({reason}); not imported",
                                platform.as_str()
                            ),
                        ),
                        Broken::Source(error) => return Err(error.into()),
                    }
                }
            }
        }
        Ok((updates, done))
    }

    /// The public config to serve: `None` (skip the directory) when it is
    /// missing, `Some(None)` when it cannot be read as an object.
    async fn expo_config(
        &mut self,
        dir: &UpdateDir,
    ) -> Result<Option<Option<String>>, ImportError> {
        let Some(bytes) = self.read_small(dir, "expoConfig.json").await? else {
            self.report.problem(
                dir.path.clone(),
                "no expoConfig.json: the Go server answered 404 for this update, so it was never served; not imported (republish it to serve it)",
            );
            return Ok(None);
        };
        if strip_bom(&bytes).len() != bytes.len() {
            self.report.warn(
                dir.path.clone(),
                "expoConfig.json starts with a byte order mark: the Go server served extra.expoClient as null; this server serves the config",
            );
        }
        match parse_expo_config(&bytes) {
            Ok(config) => Ok(Some(Some(Value::Object(config).to_string()))),
            Err(error) => {
                self.report.warn(
                    dir.path.clone(),
                    format!("{error} The update is served without extra.expoClient (the Go server served null)"),
                );
                Ok(Some(None))
            }
        }
    }

    /// The platform's files: from `index.<platform>.json`, which is what
    /// the Go server served, or rebuilt from `metadata.json` for updates
    /// published before it wrote index files. `None` when the platform is
    /// left out (reported).
    async fn planned_files(
        &mut self,
        dir: &UpdateDir,
        platform: Platform,
        name: &str,
        files: &Value,
    ) -> Result<Option<Vec<PlannedFile>>, ImportError> {
        let index_path = format!("index.{name}.json");
        if dir.files.contains_key(&index_path) {
            let bytes = self.read_small(dir, &index_path).await?.unwrap_or_default();
            return match GoIndex::parse(&bytes) {
                Ok(index) => Ok(Some(
                    index
                        .files()
                        .map(|file| PlannedFile {
                            path: file.path.clone(),
                            file_extension: file.file_extension.clone(),
                            expected: Some((file.hash.clone(), file.key.clone())),
                        })
                        .collect(),
                )),
                Err(error) => {
                    self.report.problem(
                        dir.path.clone(),
                        format!("{}: {error}; not imported", platform.as_str()),
                    );
                    Ok(None)
                }
            };
        }
        if let Some(earlier) = self.indexed_before(dir) {
            // This server wrote index files by then: it wrote this one last
            // and never got there (a publish that failed or is under way),
            // and answered 404 for it.
            self.report.problem(
                dir.path.clone(),
                format!(
                    "{}: partial publish (no {index_path}, which the Go server already wrote for {earlier}); not imported",
                    platform.as_str()
                ),
            );
            return Ok(None);
        }
        match platform_files(name, files) {
            Ok(listed) => {
                self.report.warn(
                    dir.path.clone(),
                    format!(
                        "{}: no {index_path} (published before the Go server wrote index files); rebuilt from metadata.json",
                        platform.as_str()
                    ),
                );
                let bundle = PlannedFile {
                    path: listed.bundle.clone(),
                    file_extension: None,
                    expected: None,
                };
                let assets = listed.assets.iter().map(|(path, ext)| PlannedFile {
                    path: path.clone(),
                    file_extension: Some(format!(".{ext}")),
                    expected: None,
                });
                Ok(Some(std::iter::once(bundle).chain(assets).collect()))
            }
            Err(error) => {
                self.report.problem(
                    dir.path.clone(),
                    format!("{}: {error}; not imported", platform.as_str()),
                );
                Ok(None)
            }
        }
    }

    /// An update directory of the same project, older than `dir`, that has
    /// an index file: the Go server wrote them then, so one without is a
    /// publish that never finished, not one from before index files.
    fn indexed_before(&self, dir: &UpdateDir) -> Option<String> {
        self.indexed
            .get(&dir.project_id)
            .filter(|(go_id, _)| *go_id < dir.go_id)
            .map(|(_, path)| path.clone())
    }

    /// Reads one listed file, checks it against what the Go server
    /// announced, and stages it unless the project has it already.
    async fn check_file(
        &mut self,
        dir: &UpdateDir,
        file: &PlannedFile,
    ) -> Result<CheckedFile, Broken> {
        if !dir.files.contains_key(&file.path) {
            return Err(Broken::Partial(format!("{} is missing", file.path)));
        }
        let path = dir.file_path(&file.path);
        let opened = match self.import.source.tree.open(&path).await {
            Ok(opened) => opened,
            Err(GoSourceError::NotFound(_)) => {
                return Err(Broken::Partial(format!("{} is missing", file.path)));
            }
            Err(other) => return Err(Broken::Source(other)),
        };
        let expected_sha = file
            .expected
            .as_ref()
            .and_then(|(hash, _)| URL_SAFE_NO_PAD.decode(hash).ok())
            .map(hex::encode);
        let target = (
            dir.project_id.clone(),
            expected_sha.clone().unwrap_or_default(),
        );
        let already_stored = match (&expected_sha, &self.import.target.blobs) {
            (Some(sha), Some(blobs)) => {
                self.stored.contains(&target)
                    || blobs
                        .exists(&asset_blob_key(&dir.project_id, sha))
                        .await
                        .unwrap_or(false)
            }
            _ => false,
        };
        let checked = match (
            &self.import.target.blobs,
            already_stored || !self.import.writes(),
        ) {
            (Some(blobs), false) => {
                let staged = blobs
                    .stage(opened.body, self.import.target.max_file_bytes)
                    .await
                    .map_err(|error| match error {
                        BlobError::TooLarge(limit) => Broken::Partial(format!(
                            "{} is larger than MAX_UPLOAD_BYTES ({limit} bytes)",
                            file.path
                        )),
                        BlobError::Body(detail) => Broken::Source(GoSourceError::Read {
                            path: path.clone(),
                            detail,
                        }),
                        other => Broken::Source(GoSourceError::Read {
                            path: path.clone(),
                            detail: format!("storing it failed: {other}"),
                        }),
                    })?;
                CheckedFile {
                    sha256: staged.sha256,
                    md5: staged.md5,
                    size: staged.size,
                    staged: Some(staged),
                }
            }
            _ if opened.size > self.import.target.max_file_bytes => {
                return Err(Broken::Partial(format!(
                    "{} is larger than MAX_UPLOAD_BYTES ({} bytes)",
                    file.path, self.import.target.max_file_bytes
                )));
            }
            _ => digest(opened.body).await.map_err(|detail| {
                Broken::Source(GoSourceError::Read {
                    path: path.clone(),
                    detail,
                })
            })?,
        };
        self.import.progress.file_done(checked.size);
        if let Some((hash, key)) = &file.expected {
            let actual_hash = URL_SAFE_NO_PAD.encode(checked.sha256);
            let actual_key = hex::encode(checked.md5);
            if *hash != actual_hash || *key != actual_key {
                if let (Some(blobs), Some(staged)) = (&self.import.target.blobs, &checked.staged) {
                    blobs.discard(staged).await;
                }
                return Err(Broken::Partial(format!(
                    "{} does not match the hash the Go server announced for it",
                    file.path
                )));
            }
        }
        Ok(checked)
    }

    /// Counts a file of a good platform once per project, unless the
    /// project's updates had it already: the same in a dry run as in a run.
    async fn count_file(
        &mut self,
        project_id: &str,
        asset: &UpdateAsset,
    ) -> Result<(), ImportError> {
        if !self
            .counted
            .insert((project_id.to_owned(), asset.sha256_hex.clone()))
        {
            return Ok(());
        }
        let known = self
            .import
            .target
            .updates
            .known_files(project_id, std::slice::from_ref(&asset.sha256_hex))
            .await?;
        if !known.contains_key(&asset.sha256_hex) {
            self.report.imported.files += 1;
            self.report.imported.bytes += asset.size;
        }
        Ok(())
    }

    /// A small file of a directory; `None` when the listing has no such
    /// file (only regular files are listed: never a link or a pipe).
    async fn read_small(
        &self,
        dir: &UpdateDir,
        relative: &str,
    ) -> Result<Option<Vec<u8>>, ImportError> {
        if !dir.files.contains_key(relative) {
            return Ok(None);
        }
        let path = dir.file_path(relative);
        let path = path.as_str();
        let opened = match self.import.source.tree.open(path).await {
            Ok(opened) => opened,
            Err(GoSourceError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        if opened.size > MAX_SMALL_FILE {
            return Err(ImportError::Source(GoSourceError::Read {
                path: path.to_owned(),
                detail: format!("larger than {MAX_SMALL_FILE} bytes"),
            }));
        }
        let mut body = opened.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| GoSourceError::Read {
                path: path.to_owned(),
                detail: error.to_string(),
            })?;
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(bytes))
    }

    /// Says, loudly, where devices now get something other than the Go
    /// server gave them: its latest directory for a runtime version was
    /// broken, lacked the platform, or was no update at all.
    fn compare_latest(
        &mut self,
        project_id: &str,
        tree: &GoTree,
        served: &BTreeMap<(String, Platform), (u64, UpdateKind)>,
    ) {
        for ((tree_project, runtime_version), go_latest) in &tree.go_latest {
            if tree_project != project_id {
                continue;
            }
            for platform in PLATFORMS {
                let now = served.get(&(runtime_version.clone(), platform));
                if now.is_some_and(|(go_id, _)| go_id == go_latest) {
                    continue;
                }
                let latest_dir = format!("{project_id}/{runtime_version}/{go_latest}");
                let go_served_nothing = !self.listed.contains(&(latest_dir.clone(), platform))
                    && !tree
                        .update_dirs
                        .get(project_id)
                        .into_iter()
                        .flatten()
                        .any(|dir| dir.path == latest_dir && dir.has_rollback);
                let go_had_a_dir = tree
                    .update_dirs
                    .get(project_id)
                    .into_iter()
                    .flatten()
                    .any(|dir| dir.path == latest_dir);
                if now.is_none() && go_served_nothing && go_had_a_dir {
                    // The Go server had nothing for this platform either.
                    continue;
                }
                let instead = match now {
                    Some((go_id, UpdateKind::Update)) => format!(
                        "they now get the update of {project_id}/{runtime_version}/{go_id} instead"
                    ),
                    Some((go_id, UpdateKind::Rollback)) => format!(
                        "they now get the rollback of {project_id}/{runtime_version}/{go_id} instead"
                    ),
                    None => "there is no intact update for them: they get 404 (no update), and keep what they run".to_owned(),
                };
                self.report.problem(
                    latest_dir,
                    format!(
                        "was the Go server's latest for runtime version {runtime_version:?}, but nothing of it is served to {} devices (broken, not an update, or without {}); {instead}",
                        platform.as_str(),
                        platform.as_str()
                    ),
                );
            }
        }
    }

    /// Removes the updates an earlier run imported from directories of this
    /// Go server's projects that are gone (deleting a bad update's
    /// directory was how the Go server pulled it).
    async fn remove_gone(&mut self, tree: &GoTree) -> Result<(), ImportError> {
        let in_tree: HashSet<String> = tree
            .update_dirs
            .values()
            .flatten()
            .flat_map(|dir| {
                PLATFORMS.iter().flat_map(move |platform| {
                    let mut kinds = Vec::new();
                    if dir.has_metadata {
                        kinds.push(source(UpdateKind::Update, dir, *platform));
                    }
                    if dir.has_rollback {
                        kinds.push(source(UpdateKind::Rollback, dir, *platform));
                    }
                    kinds
                })
            })
            .collect();
        let mut gone: Vec<(&String, &String)> = self
            .ledger
            .iter()
            .filter(|(source, _)| {
                let Some((kind, rest)) = source.split_once(':') else {
                    return false;
                };
                let project_id = rest.split('/').next().unwrap_or_default();
                matches!(kind, "update" | "rollback")
                    && self.projects.in_source.contains(project_id)
                    && !in_tree.contains(*source)
            })
            .collect();
        gone.sort();
        if !gone.is_empty() && tree.update_dirs.is_empty() {
            // A wrong --data-dir, a forgotten --s3-bucket, a copy not made
            // yet: an empty tree is never taken as "every update deleted".
            self.report.problem(
                self.import.source.tree.description(),
                format!(
                    "holds no update directory, but {} imported updates came from it: nothing was removed (is this the Go server's tree?)",
                    gone.len()
                ),
            );
            return Ok(());
        }
        // The runtime versions the tree still has, per project.
        let runtimes: HashSet<(&str, &str)> = tree
            .update_dirs
            .values()
            .flatten()
            .map(|dir| (dir.project_id.as_str(), dir.runtime_version.as_str()))
            .collect();
        for (source, update_id) in gone {
            let dir_path = source
                .split_once(':')
                .map_or("", |(_, rest)| rest)
                .rsplit_once('#')
                .map_or("", |(dir, _)| dir);
            let runtime_kept = dir_path
                .split_once('/')
                .and_then(|(project, rest)| {
                    rest.rsplit_once('/')
                        .map(|(runtime, _)| runtimes.contains(&(project, runtime)))
                })
                .unwrap_or(false);
            if !runtime_kept {
                self.report.warn(
                    source.clone(),
                    "gone from the Go tree with its whole runtime version's directory: kept here, in case the tree is incomplete (delete the update here if it was meant)",
                );
                continue;
            }
            if self.import.writes() {
                self.import
                    .target
                    .store
                    .remove_update(update_id, std::slice::from_ref(source))
                    .await?;
            }
            self.report.removed.updates += 1;
            self.report.warn(
                source.clone(),
                "deleted on the Go server since the last import; the update imported from it is deleted here too",
            );
        }
        Ok(())
    }
}

/// `index.<platform>.json`, which the Go server wrote with every publish
/// since 2026-04-15.
fn is_index_file(name: &str) -> bool {
    name.starts_with("index.") && name.ends_with(".json") && !name.contains('/')
}

/// The ledger source of a directory's update or rollback for a platform.
fn source(kind: UpdateKind, dir: &UpdateDir, platform: Platform) -> String {
    format!("{}:{}#{}", kind.as_str(), dir.path, platform.as_str())
}

fn asset_of(file: &PlannedFile, checked: &CheckedFile) -> UpdateAsset {
    let content_type = match &file.file_extension {
        None => content_type_of(None),
        Some(ext) => content_type_of(Some(ext.trim_start_matches('.'))),
    };
    UpdateAsset {
        path: file.path.clone(),
        sha256_hex: hex::encode(checked.sha256),
        hash: URL_SAFE_NO_PAD.encode(checked.sha256),
        key: hex::encode(checked.md5),
        content_type,
        file_extension: file.file_extension.clone(),
        size: checked.size,
        is_launch_asset: file.file_extension.is_none(),
    }
}

/// Reads a body to its end, hashing it.
async fn digest(mut body: ByteStream) -> Result<CheckedFile, String> {
    let (mut sha256, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| error.to_string())?;
        size += chunk.len() as u64;
        sha256.update(&chunk);
        md5.update(&chunk);
    }
    Ok(CheckedFile {
        sha256: sha256.finalize().into(),
        md5: md5.finalize().into(),
        size,
        staged: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_uuid_v7_ordered_by_time_and_stable() {
        let a = derived_id(1_777_646_947_000, "update:p/1.0.0/1777646947#ios");
        let b = derived_id(1_777_646_947_000, "update:p/1.0.0/1777646947#ios");
        let later = derived_id(1_777_646_947_001, "rollback:p/1.0.0/1777646947#ios");
        assert_eq!(a, b);
        assert!(later > a);
        let parsed = uuid::Uuid::parse_str(&a).expect("uuid");
        assert_eq!(parsed.get_version_num(), 7);
        assert!(domain::id::PublishId::parse(&a).is_ok());
    }
}
