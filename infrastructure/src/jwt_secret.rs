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

/// Loads the stored secret, or generates and stores one. Two instances
/// starting together on one `DATA_DIR` agree: only one creates the file.
pub fn load_or_generate(data_dir: &Path) -> Result<(Secret, Origin, PathBuf), JwtSecretError> {
    let path = data_dir.join(FILE_NAME);
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let fresh = hex::encode(bytes);
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut file) => {
            file.write_all(fresh.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|source| JwtSecretError::Write {
                    path: path.clone(),
                    source,
                })?;
            Ok((Secret::new(fresh), Origin::Generated, path))
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
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
        Err(source) => Err(JwtSecretError::Write { path, source }),
    }
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
    }
}
