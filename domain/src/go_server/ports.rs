//! The ports of an import from the Go server: its database and its update
//! tree, read and never written, and this server's store, written with a
//! ledger of what was imported so that running the import again adds only
//! what is new.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::rows::GoDatabase;
use super::tree::TreeEntry;
use crate::api_key::ApiKey;
use crate::blob::BlobReader;
use crate::member::Membership;
use crate::ports::StoreResult;
use crate::project::Project;
use crate::update::Update;
use crate::user::User;

/// Why the Go server's data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GoSourceError {
    /// The source cannot be used at all (missing, unreadable, unreachable,
    /// not the Go server's); the text says which, for one line on stderr.
    #[error("{0}")]
    Unusable(String),
    /// One file of the tree is not there (any more).
    #[error("{0} is missing")]
    NotFound(String),
    /// Reading one file failed.
    #[error("reading {path} failed: {detail}")]
    Read { path: String, detail: String },
}

/// The Go server's database (`ota.db` with its WAL), opened read-only.
#[async_trait]
pub trait GoDatabaseSource: Send + Sync {
    /// Every row of its four tables. `Unusable` when the file is no Go
    /// server database.
    async fn read_all(&self) -> Result<GoDatabase, GoSourceError>;
}

/// The Go server's update tree (a directory, or a bucket from its root),
/// read-only.
#[async_trait]
pub trait GoUpdateTree: Send + Sync {
    /// Where it is, for the report.
    fn description(&self) -> String;
    /// Every file (and, where the backend has them, directory), with paths
    /// relative to the tree's root.
    async fn list(&self) -> Result<Vec<TreeEntry>, GoSourceError>;
    /// Opens one file by its path relative to the root.
    async fn open(&self, path: &str) -> Result<BlobReader, GoSourceError>;
}

/// How an imported account is found at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLookup {
    /// Whether its username is found case-insensitively. `false` when
    /// another account already has that name in another case: it is then
    /// found by its exact spelling only, as the Go server found every name.
    pub username_folded: bool,
    /// The same for its email.
    pub email_folded: bool,
}

/// This server's store, as an import writes it. Every write records its
/// sources in the import ledger in the same transaction, so an interrupted
/// import leaves each row either imported and recorded, or neither.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// The ledger: each source imported so far (`user:<id>`, `project:<id>`,
    /// `member:<row id>`, `key:<id>`, `update:<dir>#<platform>`,
    /// `rollback:<dir>#<platform>`), with the id of the row it became.
    async fn ledger(&self) -> StoreResult<HashMap<String, String>>;
    /// Every case-folded username already taken (see
    /// [`crate::user::login_key`]); usernames and emails are unique apart.
    async fn taken_username_keys(&self) -> StoreResult<HashSet<String>>;
    /// Every case-folded email already taken.
    async fn taken_email_keys(&self) -> StoreResult<HashSet<String>>;
    /// Every project slug already taken.
    async fn taken_slugs(&self) -> StoreResult<HashSet<String>>;
    /// Every API-key hash already stored.
    async fn taken_key_hashes(&self) -> StoreResult<HashSet<String>>;
    /// Every membership already stored, by (project id, user id).
    async fn memberships(&self) -> StoreResult<HashMap<(String, String), Membership>>;

    async fn insert_user(&self, user: &User, lookup: LoginLookup, source: &str) -> StoreResult<()>;
    async fn insert_project(&self, project: &Project, source: &str) -> StoreResult<()>;
    async fn insert_membership(
        &self,
        membership: &Membership,
        sources: &[String],
    ) -> StoreResult<()>;
    async fn insert_key(&self, key: &ApiKey, source: &str) -> StoreResult<()>;
    /// Gives a membership an earlier import made the role the Go server now
    /// gives it, and records more Go rows for it (the Go server changed a
    /// role by removing a member and adding them again). `LastOwner` when
    /// it would leave the project without an owner.
    async fn update_membership(
        &self,
        membership: &Membership,
        sources: &[String],
    ) -> StoreResult<()>;
    /// Takes the project's reference lock (see
    /// [`crate::ports::UpdateStore::lock_references`]) to store the updates
    /// of one Go update directory: no collection of the project's blobs
    /// runs until they are committed. `ProjectGone` when there is no such
    /// project.
    async fn lock_for_import(&self, project_id: &str) -> StoreResult<Box<dyn ImportLock>>;

    /// Removes what an earlier import brought and the Go server no longer
    /// has, with its ledger entries: a key revoked there, a membership
    /// removed there (`LastOwner` when it is the project's last owner), an
    /// update directory deleted there (announced to every instance).
    async fn remove_key(&self, key_id: &str, sources: &[String]) -> StoreResult<()>;
    async fn remove_membership(&self, membership_id: &str, sources: &[String]) -> StoreResult<()>;
    async fn remove_update(&self, update_id: &str, sources: &[String]) -> StoreResult<()>;
}

/// A transaction holding a project's reference lock, for an import.
/// Dropping it without `commit` rolls back.
#[async_trait]
pub trait ImportLock: Send {
    /// Stores updates with their ledger sources (one per update, in order).
    async fn insert_updates(&mut self, updates: &[Update], sources: &[String]) -> StoreResult<()>;
    /// Commits and announces the change to every instance.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
