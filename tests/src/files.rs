//! Files on disk, as tests look at them: directory listings and SQLite files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every regular file below `dir` (recursively): path relative to `dir` with `/` separators
/// → size. Empty when `dir` does not exist.
pub fn list_files(dir: &Path) -> BTreeMap<String, u64> {
    fn walk(dir: &Path, relative: &str, files: &mut BTreeMap<String, u64>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                walk(&entry.path(), &key, files);
            } else if file_type.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.insert(key, size);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, "", &mut files);
    files
}

/// The top-level regular files of `dir`.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read DATA_DIR")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Whether `path` belongs to a SQLite database (the file itself, its WAL/SHM/journal).
pub fn is_sqlite_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let by_name = [".db", ".sqlite", ".sqlite3", "-wal", "-shm", "-journal"]
        .iter()
        .any(|suffix| name.ends_with(suffix));
    let by_magic = std::fs::read(path)
        .map(|bytes| bytes.starts_with(b"SQLite format 3\0"))
        .unwrap_or(false);
    by_name || by_magic
}
