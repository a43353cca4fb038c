//! The login session kept between commands: the server URL and the user's
//! token, in the user's config directory (`$XDG_CONFIG_HOME` or
//! `~/.config` on Linux) with mode 0600, because the token is a credential.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

/// What `login` stores.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    pub url: String,
    pub username: String,
    pub token: String,
}

/// `<config dir>/expo-updates-server/session.json`.
pub fn path() -> CliResult<PathBuf> {
    let dir = dirs::config_dir().ok_or_else(|| {
        CliError::Usage("cannot find a config directory: set HOME or XDG_CONFIG_HOME".to_owned())
    })?;
    Ok(dir.join("expo-updates-server").join("session.json"))
}

/// The stored session, if the user logged in.
pub fn load() -> CliResult<Option<Session>> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| {
            CliError::Usage(format!(
                "{} is damaged; run `expo-updates-server logout` and log in again",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(CliError::Other(format!(
            "cannot read {}: {error}",
            path.display()
        ))),
    }
}

/// Writes the session with mode 0600 (its directory 0700), replacing any
/// earlier one in one rename so a crash never leaves half a file and two
/// logins at once never mix.
pub fn save(session: &Session) -> CliResult<PathBuf> {
    let path = path()?;
    let io = |error: std::io::Error| {
        CliError::Other(format!("cannot write {}: {error}", path.display()))
    };
    let dir = path
        .parent()
        .ok_or_else(|| CliError::Other("bad config path".to_owned()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    // A named temporary file is created with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let bytes =
        serde_json::to_vec_pretty(session).map_err(|error| CliError::Other(error.to_string()))?;
    file.write_all(&bytes).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(&path).map_err(|error| io(error.error))?;
    Ok(path)
}

/// Forgets the session; true when there was one.
pub fn remove() -> CliResult<bool> {
    let path = path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(CliError::Other(format!(
            "cannot remove {}: {error}",
            path.display()
        ))),
    }
}
