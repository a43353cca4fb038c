//! A directory's `metadata.json` made into updates: one per platform it
//! lists that is not imported yet, with its files from the platform's
//! index file (or rebuilt from `metadata.json` for older publishes).

use domain::blob::StagedBlob;
use domain::export::{file_metadata, parse_expo_config, platform_files, strip_bom};
use domain::go_server::{GoIndex, UpdateDir, legacy_manifest_id};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateKind};
use serde_json::Value;

use super::Run;
use super::files::{Broken, PlannedFile, asset_of};
use super::sources::{derived_id, source};
use crate::go_import::types::{ImportError, importer};

impl Run<'_> {
    /// The updates of a directory with `metadata.json` that are not
    /// imported yet, and the platforms that were.
    pub(super) async fn platform_updates(
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
        let publish_id = PublishId::from_trusted(derived_id(
            dir.go_id * 1000,
            &format!("update:{}", dir.path),
        ));
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
                        id: UpdateId::from_trusted(derived_id(dir.go_id * 1000, &key)),
                        publish_id: publish_id.clone(),
                        project_id: ProjectId::from_trusted(dir.project_id.clone()),
                        runtime_version: runtime_version.clone(),
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
}
