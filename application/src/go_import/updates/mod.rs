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
//!
//! [`platforms`] turns a directory's `metadata.json` into updates,
//! [`files`] reads and checks their files, [`reconcile`] compares the
//! result with what the Go server served and removes what it deleted.

mod files;
mod platforms;
mod reconcile;
mod sources;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use domain::blob::StagedBlob;
use domain::go_server::{GoTree, UpdateDir, go_update_time};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{
    Platform, RuntimeVersion, Update, UpdateKind, asset_blob_key, is_compressible,
};
use serde_json::json;

use self::sources::{PLATFORMS, derived_id, is_index_file, source};
use super::control_plane::Projects;
use super::report::ImportReport;
use super::types::{GoImport, ImportError, importer};
use crate::precompress::store_file;

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
                    "runtime version {:?} is not one this server accepts (empty, over 255 characters, with control characters, a \\ or an empty, . or .. segment); left alone",
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
            let publish_id = PublishId::from_trusted(derived_id(
                dir.go_id * 1000 + 1,
                &format!("rollback:{}", dir.path),
            ));
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
                    id: UpdateId::from_trusted(id),
                    publish_id: publish_id.clone(),
                    project_id: ProjectId::from_trusted(dir.project_id.clone()),
                    runtime_version: runtime_version.clone(),
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
        let files: BTreeMap<&str, (u64, bool)> = updates
            .iter()
            .flat_map(|update| &update.assets)
            .map(|asset| {
                let compressible = is_compressible(&asset.content_type);
                (asset.sha256_hex.as_str(), (asset.size, compressible))
            })
            .collect();
        let staged_by_hash: HashMap<String, &StagedBlob> = staged
            .iter()
            .map(|blob| (hex::encode(blob.sha256), blob))
            .collect();
        // The staged files are promoted, and every compressible file gets
        // its copies, also one stored by a run killed before it made them
        // (a copy already there is kept).
        for (sha256_hex, (size, compressible)) in &files {
            let key = asset_blob_key(&dir.project_id, sha256_hex);
            let blob = staged_by_hash.get(*sha256_hex).copied();
            store_file(blobs.as_ref(), &key, blob, *size, *compressible).await?;
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
        for (sha256_hex, (size, compressible)) in &files {
            let key = asset_blob_key(&dir.project_id, sha256_hex);
            if blobs.exists(&key).await? {
                continue;
            }
            match staged_by_hash.get(*sha256_hex) {
                Some(blob) => {
                    store_file(blobs.as_ref(), &key, Some(blob), *size, *compressible).await?;
                }
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
}
