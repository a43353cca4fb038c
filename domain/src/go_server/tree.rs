//! The Go server's update tree, `<projectId>/<runtimeVersion>/<updateId>/<files>`
//! (under `DATA_DIR/updates`, or at the root of its bucket), read from a
//! flat listing.
//!
//! Runtime versions may contain `/`, so the depth is not fixed: an update
//! directory is one whose name is all digits (the update id, unix seconds)
//! and that holds `metadata.json` or a `rollback` marker; the path between
//! the project directory and it is the runtime version. Whatever lies
//! outside every update directory is stray, reported and left alone.

use std::collections::{BTreeMap, BTreeSet};

/// One entry of a listing of the tree, `/`-separated and relative to its
/// root. Directories need not be listed (S3 has none); listing them lets an
/// empty `rollback` directory count as a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    /// `None` for a directory.
    pub size: Option<u64>,
}

impl TreeEntry {
    pub fn file(path: impl Into<String>, size: u64) -> Self {
        Self {
            path: path.into(),
            size: Some(size),
        }
    }

    pub fn dir(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            size: None,
        }
    }
}

/// One update directory of the Go tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateDir {
    pub project_id: String,
    /// The raw path between the project and the update id (may hold `/`).
    pub runtime_version: String,
    /// The directory name: unix seconds, the update's `createdAt`.
    pub go_id: u64,
    /// The directory, relative to the tree's root.
    pub path: String,
    pub has_metadata: bool,
    pub has_rollback: bool,
    /// The files in it (not in nested update directories), by path relative
    /// to it, with their sizes.
    pub files: BTreeMap<String, u64>,
}

impl UpdateDir {
    /// The tree path of one of its files.
    pub fn file_path(&self, relative: &str) -> String {
        format!("{}/{relative}", self.path)
    }
}

/// Why a part of the tree is left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrayReason {
    /// Files in a directory that is no update directory: a numeric name
    /// without `metadata.json` or `rollback`, or a name that is no update id.
    NotAnUpdateDir,
    /// An update directory right under the project directory: the Go server
    /// wrote these for runtime version `.`, which no app sends.
    AtProjectLevel,
    /// Files outside any project directory.
    OutsideProjects,
}

impl StrayReason {
    pub fn describe(&self) -> &'static str {
        match self {
            Self::NotAnUpdateDir => {
                "neither metadata.json nor a rollback marker (or the name is no update id)"
            }
            Self::AtProjectLevel => {
                "an update directory right under the project directory (runtime version \".\")"
            }
            Self::OutsideProjects => "files outside any project directory",
        }
    }
}

/// A directory of stray files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayDir {
    pub path: String,
    pub project_id: Option<String>,
    pub reason: StrayReason,
    pub files: usize,
}

/// The tree, sorted out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoTree {
    /// By project directory name, oldest first within each runtime version.
    pub update_dirs: BTreeMap<String, Vec<UpdateDir>>,
    pub strays: Vec<StrayDir>,
    /// The directory the Go server served as latest for each (project,
    /// runtime version): the greatest numeric name among the runtime
    /// directory's subdirectories, whatever they hold.
    pub go_latest: BTreeMap<(String, String), u64>,
}

impl GoTree {
    /// Sorts a listing out.
    pub fn classify(entries: &[TreeEntry]) -> Self {
        let mut files: BTreeMap<&str, u64> = BTreeMap::new();
        let mut dirs: BTreeSet<&str> = BTreeSet::new();
        for entry in entries {
            let path = entry.path.trim_matches('/');
            if path.is_empty() {
                continue;
            }
            match entry.size {
                Some(size) => {
                    files.insert(path, size);
                }
                None => {
                    dirs.insert(path);
                }
            }
            let mut ancestor = path;
            while let Some((parent, _)) = ancestor.rsplit_once('/') {
                dirs.insert(parent);
                ancestor = parent;
            }
        }
        let is_update_dir = |dir: &str| {
            let name = dir.rsplit('/').next().unwrap_or(dir);
            dir.contains('/')
                && is_update_id(name)
                && (files.contains_key(format!("{dir}/metadata.json").as_str())
                    || files.contains_key(format!("{dir}/rollback").as_str())
                    || dirs.contains(format!("{dir}/rollback").as_str()))
        };
        let update_dir_paths: BTreeSet<&str> = dirs
            .iter()
            .copied()
            .filter(|dir| is_update_dir(dir))
            .collect();

        let mut tree = GoTree::default();
        let mut by_path: BTreeMap<&str, UpdateDir> = BTreeMap::new();
        for dir in &update_dir_paths {
            let segments: Vec<&str> = dir.split('/').collect();
            let project_id = segments[0].to_owned();
            let name = segments[segments.len() - 1];
            if segments.len() == 2 {
                tree.strays.push(StrayDir {
                    path: (*dir).to_owned(),
                    project_id: Some(project_id),
                    reason: StrayReason::AtProjectLevel,
                    files: 0,
                });
                continue;
            }
            let Ok(go_id) = name.parse::<u64>() else {
                continue;
            };
            by_path.insert(
                dir,
                UpdateDir {
                    project_id,
                    runtime_version: segments[1..segments.len() - 1].join("/"),
                    go_id,
                    path: (*dir).to_owned(),
                    has_metadata: files.contains_key(format!("{dir}/metadata.json").as_str()),
                    has_rollback: files.contains_key(format!("{dir}/rollback").as_str())
                        || dirs.contains(format!("{dir}/rollback").as_str()),
                    files: BTreeMap::new(),
                },
            );
        }

        // Each file belongs to the nearest update directory above it.
        let mut stray_files: BTreeMap<String, usize> = BTreeMap::new();
        for (path, size) in &files {
            let mut owner = None;
            let mut ancestor = *path;
            while let Some((parent, _)) = ancestor.rsplit_once('/') {
                if update_dir_paths.contains(parent) {
                    owner = Some(parent);
                    break;
                }
                ancestor = parent;
            }
            match owner.and_then(|dir| by_path.get_mut(dir).map(|found| (dir, found))) {
                Some((dir, update_dir)) => {
                    let relative = &path[dir.len() + 1..];
                    update_dir.files.insert(relative.to_owned(), *size);
                }
                None if owner.is_some() => {} // inside an update dir at project level
                None => {
                    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
                    *stray_files.entry(parent.to_owned()).or_default() += 1;
                }
            }
        }
        for stray in &mut tree.strays {
            stray.files = files
                .keys()
                .filter(|path| path.starts_with(&format!("{}/", stray.path)))
                .count();
        }
        for (path, count) in stray_files {
            let project_id = path
                .split('/')
                .next()
                .filter(|first| !first.is_empty())
                .map(str::to_owned);
            let reason = if path.contains('/') {
                StrayReason::NotAnUpdateDir
            } else {
                StrayReason::OutsideProjects
            };
            tree.strays.push(StrayDir {
                path,
                project_id,
                reason,
                files: count,
            });
        }

        // What the Go server called latest: the greatest numeric name among
        // the subdirectories of each runtime directory.
        let runtime_dirs: BTreeSet<(String, String)> = by_path
            .values()
            .map(|dir| (dir.project_id.clone(), dir.runtime_version.clone()))
            .collect();
        for (project_id, runtime_version) in runtime_dirs {
            let prefix = format!("{project_id}/{runtime_version}/");
            let latest = dirs
                .range(prefix.as_str()..)
                .take_while(|dir| dir.starts_with(&prefix))
                .filter_map(|dir| dir[prefix.len()..].parse::<u64>().ok())
                .max();
            if let Some(latest) = latest {
                tree.go_latest.insert((project_id, runtime_version), latest);
            }
        }

        for dir in by_path.into_values() {
            tree.update_dirs
                .entry(dir.project_id.clone())
                .or_default()
                .push(dir);
        }
        for dirs in tree.update_dirs.values_mut() {
            dirs.sort_by(|a, b| {
                (a.runtime_version.as_str(), a.go_id).cmp(&(b.runtime_version.as_str(), b.go_id))
            });
        }
        tree
    }
}

/// An update id as the Go server named directories: decimal digits only
/// (unix seconds), at most 19 so that it fits.
fn is_update_id(name: &str) -> bool {
    !name.is_empty() && name.len() <= 19 && name.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(paths: &[&str]) -> Vec<TreeEntry> {
        paths
            .iter()
            .map(|path| match path.strip_suffix('/') {
                Some(dir) => TreeEntry::dir(dir),
                None => TreeEntry::file(*path, 1),
            })
            .collect()
    }

    #[test]
    fn update_dirs_are_found_at_any_depth() {
        let tree = GoTree::classify(&listing(&[
            "p/1.0.0/100/metadata.json",
            "p/1.0.0/100/assets/a",
            "p/1.0.0/200/rollback",
            "p/1.0.0/beta/300/metadata.json",
            "p/2.0.0/400/rollback/",
        ]));
        let dirs = &tree.update_dirs["p"];
        let found: Vec<(&str, u64, bool, bool)> = dirs
            .iter()
            .map(|d| {
                (
                    d.runtime_version.as_str(),
                    d.go_id,
                    d.has_metadata,
                    d.has_rollback,
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("1.0.0", 100, true, false),
                ("1.0.0", 200, false, true),
                ("1.0.0/beta", 300, true, false),
                ("2.0.0", 400, false, true),
            ]
        );
        assert_eq!(
            dirs[0].files.keys().collect::<Vec<_>>(),
            ["assets/a", "metadata.json"]
        );
        assert!(tree.strays.is_empty(), "{:?}", tree.strays);
        assert_eq!(tree.go_latest[&("p".into(), "1.0.0".into())], 200);
    }

    #[test]
    fn stray_files_are_reported_by_directory() {
        let tree = GoTree::classify(&listing(&[
            "p/1.0.0/100/metadata.json",
            "p/1.0.0/999/notes.txt",
            "p/1.0.0/tmp/x",
            "p/50/metadata.json",
            "README",
        ]));
        let strays: Vec<(&str, &StrayReason, usize)> = tree
            .strays
            .iter()
            .map(|s| (s.path.as_str(), &s.reason, s.files))
            .collect();
        assert_eq!(
            strays,
            [
                ("p/50", &StrayReason::AtProjectLevel, 1),
                ("", &StrayReason::OutsideProjects, 1),
                ("p/1.0.0/999", &StrayReason::NotAnUpdateDir, 1),
                ("p/1.0.0/tmp", &StrayReason::NotAnUpdateDir, 1),
            ]
        );
        // The Go server served the junk directory 999 as latest (a 404).
        assert_eq!(tree.go_latest[&("p".into(), "1.0.0".into())], 999);
    }
}
