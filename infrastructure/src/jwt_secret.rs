//! The JWT signing secret when `JWT_SECRET` is unset: generated once, kept
//! in `DATA_DIR` readable by the owner only, and reused on every restart so
//! sessions survive them.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::config::Secret;

const FILE_NAME: &str = "jwt-secret";

#[derive(Debug, thiserror::Error)]
pub enum JwtSecretError {
    #[error("cannot create the JWT secret file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the JWT secret file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the JWT secret file {path} holds fewer than {min} bytes; delete it to have a new one generated"
    )]
    TooShort { path: PathBuf, min: usize },
}

/// Where the secret came from, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Generated,
    Stored,
}

/// Loads the stored secret, or generates and stores one. The file appears
/// whole or not at all (written under a temporary name, then linked into
/// place), so two instances starting together on one `DATA_DIR` agree, and a
/// crash mid-write never leaves a truncated secret behind.
pub fn load_or_generate(data_dir: &Path) -> Result<(Secret, Origin, PathBuf), JwtSecretError> {
    let path = data_dir.join(FILE_NAME);
    if path.exists() {
        return read_stored(path);
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let fresh = hex::encode(bytes);
    let staging = data_dir.join(format!(".{FILE_NAME}.{}", uuid::Uuid::new_v4().simple()));
    let write_error = |source| JwtSecretError::Write {
        path: path.clone(),
        source,
    };
    let written = write_private(&staging, fresh.as_bytes()).map_err(write_error);
    let linked = written.and_then(|()| fs::hard_link(&staging, &path).map_err(write_error));
    let _ = fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok((Secret::new(fresh), Origin::Generated, path)),
        Err(JwtSecretError::Write { source, .. }) if source.kind() == ErrorKind::AlreadyExists => {
            read_stored(path)
        }
        Err(error) => Err(error),
    }
}

/// Creates `path` readable and writable by the owner only, with `contents`
/// flushed to disk.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn read_stored(path: PathBuf) -> Result<(Secret, Origin, PathBuf), JwtSecretError> {
    let stored = fs::read_to_string(&path).map_err(|source| JwtSecretError::Read {
        path: path.clone(),
        source,
    })?;
    let stored = stored.trim().to_owned();
    if stored.len() < adapter_crypto::MIN_SECRET_BYTES {
        return Err(JwtSecretError::TooShort {
            path,
            min: adapter_crypto::MIN_SECRET_BYTES,
        });
    }
    Ok((Secret::new(stored), Origin::Stored, path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generated_once_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, origin, path) = load_or_generate(dir.path()).expect("generate");
        assert_eq!(origin, Origin::Generated);
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, origin, _) = load_or_generate(dir.path()).expect("reuse");
        assert_eq!(origin, Origin::Stored);
        assert!(first == second);
        let leftovers = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(leftovers, 1, "only the secret file remains");
    }

    #[test]
    fn racing_starts_agree_on_one_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets: Vec<Secret> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| load_or_generate(dir.path()).expect("secret").0))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(secrets.iter().all(|secret| *secret == secrets[0]));
    }
}
