//! Ports: the traits the application drives storage and cryptography through.
//! Adapters implement them; tests may implement them in memory.
//!
//! Every store method is one atomic unit: an implementation that needs several
//! statements runs them in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use std::collections::{HashMap, HashSet};

use crate::api_key::{ApiKey, GeneratedSecret, KeyName, NewApiKey};
use crate::audit::AuditEvent;
use crate::embedded::{EmbeddedBundle, EmbeddedUpdateId};
use crate::fault::{BoxError, Fault};
use crate::id::{ProjectId, PublishId, UpdateId};
use crate::insights::InsightCounts;
use crate::member::{LastOwnerError, MemberProfile, Membership, Role};
use crate::patch::{PatchClaim, PatchKey, PatchRecord, PatchState};
use crate::project::Project;
use crate::release::{BranchName, Channel, ChannelName, RolloutCandidate, RolloutPercentage};
use crate::signing_key::{SigningKey, SigningKeyId};
use crate::update::{Platform, RuntimeVersion, Update};
use crate::user::{Password, User};
use crate::webhook::WebhookSecret;

/// The uniqueness rule a refused write broke: what is taken. A value, not
/// text, so callers match on it and the store adapter names each rule in
/// one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Constraint {
    /// A user's username (case-insensitively).
    Username,
    /// A user's email (case-insensitively).
    Email,
    /// A project's slug.
    Slug,
    /// The user is already a member of the project.
    Membership,
    /// The project's channel of that name already has a mapping.
    Channel,
    /// The project already has a signing key with that key id.
    SigningKeyId,
    /// A row with the same id (a primary key no other rule covers).
    Record,
}

impl Constraint {
    /// What is taken, as clients and the import report have always read
    /// it (`username`, `email`, `slug`, `membership`, `channel`, `keyId`,
    /// `record`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
            Self::Slug => "slug",
            Self::Membership => "membership",
            Self::Channel => "channel",
            Self::SigningKeyId => "keyId",
            Self::Record => "record",
        }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write; the constraint says what is
    /// taken.
    #[error("{0} already exists")]
    Conflict(Constraint),
    /// The project was deleted while the request was being handled.
    #[error("the project no longer exists")]
    ProjectGone,
    /// The change would leave a project without an owner.
    #[error(transparent)]
    LastOwner(#[from] LastOwnerError),
    /// The database could not be reached or answered with an error, or a
    /// row is not one this server wrote. It keeps the driver's error (the
    /// `Fault`'s cause); it reads `storage backend error: ...`, for the
    /// operator's log, never for clients. Made by [`StoreError::backend`].
    #[error(transparent)]
    Backend(Fault),
}

impl StoreError {
    /// A backend failure caused by `cause`: the driver's error, or text
    /// saying what is wrong with a stored row.
    pub fn backend(cause: impl Into<BoxError>) -> Self {
        Self::Backend(Fault::new("storage backend error", cause))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user. Usernames and emails are unique case-insensitively:
    /// `Conflict(Username | Email)` otherwise.
    async fn insert(&self, user: &User) -> StoreResult<()>;
    /// Inserts the user only if there is no user yet, atomically (also
    /// across instances); `Ok(false)` when someone else was first.
    async fn insert_first(&self, user: &User) -> StoreResult<bool>;
    async fn find_by_id(&self, id: &str) -> StoreResult<Option<User>>;
    /// The users a login (username or email) may name, best match first: an
    /// exact email, the email in any case, an exact username, the username
    /// in any case. Usually one; imported data can hold more (see
    /// `go_server::ports::LoginLookup`).
    async fn find_by_login(&self, login: &str) -> StoreResult<Vec<User>>;
    async fn count(&self) -> StoreResult<u64>;
}

#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// Creates the project and its first owner's membership together, or
    /// neither. `Conflict(Slug)` when the slug is taken.
    async fn create_with_owner(&self, project: &Project, owner: &Membership) -> StoreResult<()>;
    async fn find(&self, id: &str) -> StoreResult<Option<Project>>;
    /// The projects a user is a member of, newest first.
    async fn list_for_user(&self, user_id: &str) -> StoreResult<Vec<Project>>;
    /// Saves a changed name or slug. `Conflict(Slug)` when taken.
    async fn update(&self, project: &Project) -> StoreResult<()>;
    /// Deletes the project with its memberships and keys.
    async fn delete(&self, id: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait MemberStore: Send + Sync {
    async fn find(&self, project_id: &str, user_id: &str) -> StoreResult<Option<Membership>>;
    /// `Conflict(Membership)` when the user is already a member.
    async fn insert(&self, membership: &Membership) -> StoreResult<()>;
    /// Members with their profiles, oldest membership first.
    async fn list(&self, project_id: &str) -> StoreResult<Vec<MemberProfile>>;
    /// Changes a role; `Ok(None)` when the user is not a member and
    /// `LastOwner` when the project would lose its last owner.
    async fn change_role(
        &self,
        project_id: &str,
        user_id: &str,
        role: Role,
    ) -> StoreResult<Option<Membership>>;
    /// Removes a member; `Ok(false)` when the user was not a member and
    /// `LastOwner` when the project would lose its last owner.
    async fn remove(&self, project_id: &str, user_id: &str) -> StoreResult<bool>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key, naming it with the first free default name when it has
    /// none.
    async fn insert(&self, key: &NewApiKey) -> StoreResult<ApiKey>;
    /// A project's keys, newest first.
    async fn list(&self, project_id: &str) -> StoreResult<Vec<ApiKey>>;
    /// `Ok(false)` when no key with that id belongs to the project.
    async fn rename(&self, project_id: &str, key_id: &str, name: &KeyName) -> StoreResult<bool>;
    /// `Ok(false)` when no key with that id belongs to the project.
    async fn delete(&self, project_id: &str, key_id: &str) -> StoreResult<bool>;
    async fn find_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKey>>;
    async fn record_use(&self, key_id: &str, at: DateTime<Utc>) -> StoreResult<()>;
}

/// Which updates a history page shows.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub branch: Option<BranchName>,
    pub runtime_version: Option<RuntimeVersion>,
    pub platform: Option<Platform>,
    /// Only publishes older than this publish id (the page cursor).
    pub before_publish: Option<PublishId>,
    /// At most this many rows (one per platform of a publish).
    pub limit_rows: u64,
}

#[async_trait]
pub trait UpdateStore: Send + Sync {
    /// Takes the project's reference lock: until the returned transaction is
    /// committed or dropped, no other publish of the project commits and no
    /// collection of its blobs runs, on any instance. `ProjectGone` when the
    /// project no longer exists.
    async fn lock_references(&self, project_id: &ProjectId) -> StoreResult<Box<dyn ReferenceLock>>;
    /// Stores the updates of one publish (one per platform) in a single
    /// transaction: they become visible together or not at all.
    async fn insert_publish(&self, updates: &[Update]) -> StoreResult<()> {
        let Some(first) = updates.first() else {
            return Ok(());
        };
        let mut lock = self.lock_references(&first.project_id).await?;
        lock.insert_publish(updates).await?;
        lock.commit().await
    }
    /// A branch's updates for a runtime version and platform that a device
    /// may be served, newest first: every update down to and including the
    /// newest fully rolled-out one.
    async fn candidates(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
    ) -> StoreResult<Vec<RolloutCandidate>>;
    /// One update (one platform) of the project, with its assets.
    async fn find(
        &self,
        project_id: &ProjectId,
        update_id: &UpdateId,
    ) -> StoreResult<Option<Update>>;
    /// The updates (one per platform) of one publish, with their assets;
    /// empty when there is no such publish in the project.
    async fn find_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<Vec<Update>>;
    /// History rows, newest publish first, without assets.
    async fn history(
        &self,
        project_id: &ProjectId,
        query: &HistoryQuery,
    ) -> StoreResult<Vec<Update>>;
    /// The newest update of every (branch, runtime version, platform),
    /// without assets.
    async fn branch_heads(&self, project_id: &ProjectId) -> StoreResult<Vec<Update>>;
    /// Changes a publish's rollout on every platform; `Ok(false)` when there
    /// is no such publish.
    async fn set_rollout(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
        rollout: RolloutPercentage,
    ) -> StoreResult<bool>;
    /// Deletes a publish (every platform); `Ok(false)` when there is none.
    async fn delete_publish(
        &self,
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> StoreResult<bool>;
    /// Deletes the updates of a (branch, runtime version, platform) beyond
    /// the newest `keep`, but never one a device may still be served (see
    /// [`candidates`](Self::candidates)). Returns the deleted update ids.
    async fn prune(
        &self,
        project_id: &ProjectId,
        branch: &BranchName,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        keep: u64,
    ) -> StoreResult<Vec<UpdateId>>;
    /// The runtime versions that have updates for a platform, newest first.
    async fn runtime_versions(
        &self,
        project_id: &ProjectId,
        platform: Platform,
    ) -> StoreResult<Vec<RuntimeVersion>>;
    /// Every (project, branch, runtime version, platform) that has updates,
    /// for retention across all of them.
    async fn streams(&self) -> StoreResult<Vec<UpdateStream>>;
    /// The SHA-256 (hex) of the launch bundle of the project's update with
    /// this manifest id (what a device sends as `Expo-Current-Update-ID`)
    /// for the runtime version and platform; `None` when there is none.
    /// Manifest ids are derived from what is served, so the answer for a
    /// found id never changes.
    async fn launch_bundle_of(
        &self,
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        manifest_id: &str,
    ) -> StoreResult<Option<String>>;
    /// The project's uploaded embedded bundles, newest upload first.
    async fn embedded_bundles(&self, project_id: &ProjectId) -> StoreResult<Vec<EmbeddedBundle>>;
    /// The SHA-256 (hex) of the embedded bundle a device running the
    /// embedded update `update_id` has, for this runtime version and
    /// platform; `None` when none was uploaded.
    async fn embedded_bundle_of(
        &self,
        project_id: &ProjectId,
        runtime_version: &RuntimeVersion,
        platform: Platform,
        update_id: &str,
    ) -> StoreResult<Option<String>>;
    /// Which of these files (SHA-256 hex) the project's updates already
    /// have, with what a manifest needs of them: a publish may then name
    /// them by hash instead of uploading them again.
    async fn known_files(
        &self,
        project_id: &ProjectId,
        sha256_hexes: &[String],
    ) -> StoreResult<HashMap<String, KnownFile>>;
}

/// A file a project's updates already reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    /// Lowercase hex MD5 (the manifest `key`).
    pub md5_hex: String,
    pub size: u64,
}

/// The updates of one branch for one runtime version and platform: what
/// "latest" and retention are counted over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStream {
    pub project_id: ProjectId,
    pub branch: BranchName,
    pub runtime_version: RuntimeVersion,
    pub platform: Platform,
}

impl UpdateStream {
    /// The stream an update belongs to.
    pub fn of(update: &Update) -> Self {
        Self {
            project_id: update.project_id.clone(),
            branch: update.branch.clone(),
            runtime_version: update.runtime_version.clone(),
            platform: update.platform,
        }
    }
}

/// The wanted patches and the claims on them, shared by every instance.
#[async_trait]
pub trait PatchStore: Send + Sync {
    /// Records that these patches are wanted; one already known is left as
    /// it is, except one given up on (`failed`), which is wanted afresh: a
    /// bundle gone then stored again (an embedded bundle deleted and
    /// uploaded again) can be diffed once more. A project that no longer
    /// exists wants none.
    async fn want(&self, patches: &[PatchKey], now: DateTime<Utc>) -> StoreResult<()>;
    /// Claims the oldest pending patch that nobody holds (or whose claim
    /// lapsed before `now`) for `instance` until `until`, counting an
    /// attempt; `None` when there is none. Two instances never hold the
    /// same patch at once. A patch past
    /// [`MAX_PATCH_ATTEMPTS`](crate::patch::MAX_PATCH_ATTEMPTS) is marked
    /// failed instead of claimed.
    async fn claim(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<PatchClaim>>;
    /// Records the outcome of `claim`: `Ok(false)` when the claim was lost
    /// meanwhile (lapsed and taken by another instance), and then nothing
    /// is written.
    async fn finish(
        &self,
        claim: &PatchClaim,
        state: &PatchState,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Every patch to `target_sha256` in the project, in any state.
    async fn patches_to(
        &self,
        project_id: &ProjectId,
        target_sha256: &str,
    ) -> StoreResult<Vec<PatchRecord>>;
}

/// A transaction holding a project's reference lock (see
/// [`UpdateStore::lock_references`]). Dropping it without `commit` rolls back.
#[async_trait]
pub trait ReferenceLock: Send {
    /// The SHA-256 (hex) of every blob the project's updates reference.
    async fn referenced_blobs(&mut self) -> StoreResult<HashSet<String>>;
    async fn insert_publish(&mut self, updates: &[Update]) -> StoreResult<()>;
    /// Records, in this transaction, the patches the publish wants (as
    /// [`PatchStore::want`]): they are wanted exactly when the publish is
    /// committed, so a crash between the two cannot forget them.
    async fn want_patches(&mut self, patches: &[PatchKey], now: DateTime<Utc>) -> StoreResult<()>;
    /// Forgets, in this transaction, every patch of the project to these
    /// bundles (SHA-256 hex): collection removed their files, and the
    /// patches with them, so a later publish of one computes them again.
    async fn forget_patches_to(&mut self, target_sha256s: &[String]) -> StoreResult<()>;
    /// Records an embedded bundle whose blob is stored (replacing one with
    /// the same update id): from the commit on, storage collection keeps
    /// its blob as it keeps the updates' files.
    async fn put_embedded_bundle(&mut self, bundle: &EmbeddedBundle) -> StoreResult<()>;
    /// `Ok(false)` when the project had no embedded bundle of that id.
    async fn delete_embedded_bundle(&mut self, update_id: &EmbeddedUpdateId) -> StoreResult<bool>;
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// A project's explicit channels, by name.
    async fn list(&self, project_id: &str) -> StoreResult<Vec<Channel>>;
    async fn find(&self, project_id: &str, name: &ChannelName) -> StoreResult<Option<Channel>>;
    /// `Conflict(Channel)` when the name is taken.
    async fn insert(&self, channel: &Channel) -> StoreResult<()>;
    /// Writes a changed mapping only if the stored one is still the one the
    /// change was based on (`expected`: its `updated_at`, or `None` when
    /// there was none), so concurrent changes never overwrite each other
    /// unseen. `Ok(false)`: someone else changed it first; read and retry.
    async fn save_if_unchanged(
        &self,
        channel: &Channel,
        expected: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    /// `Ok(false)` when the channel had no explicit mapping.
    async fn delete(&self, project_id: &str, name: &ChannelName) -> StoreResult<bool>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first, older than the event id `before` when given.
    async fn list(
        &self,
        project_id: &str,
        before: Option<&str>,
        limit: u64,
    ) -> StoreResult<Vec<AuditEvent>>;
}

/// A number that changes whenever anything a device could be served changes
/// (publish, rollout, channel, deletion), here at once and in every instance
/// sharing the store within a second. Keying cached answers by it makes a
/// change invalidate them everywhere.
pub trait ServeEpoch: Send + Sync {
    fn current(&self) -> u64;
}

/// Readiness: whether the database answers at all.
#[async_trait]
pub trait HealthProbe: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}

/// A failure inside a cryptographic adapter (not a wrong password: that is
/// `Ok(false)`).
#[derive(Debug, thiserror::Error)]
#[error("crypto error: {0}")]
pub struct CryptoError(pub String);

#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A PHC string (argon2id) for the password.
    async fn hash(&self, password: &Password) -> Result<String, CryptoError>;
    /// Whether the password matches the PHC string. A malformed hash is a
    /// mismatch, not an error.
    async fn verify(&self, password: &str, phc: &str) -> bool;
    /// Spends the same work as [`verify`](Self::verify) against no user, so
    /// that a login for an unknown user takes as long as a wrong password.
    async fn burn_equivalent_work(&self, password: &str);
}

/// Why a session token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Token invalid or expired")]
    Invalid,
}

pub trait TokenService: Send + Sync {
    /// A signed session token for the user.
    fn issue(&self, user_id: &str) -> Result<String, CryptoError>;
    /// The user id a valid token was issued for.
    fn verify(&self, token: &str) -> Result<String, TokenError>;
}

/// Signs manifests and directives for Expo code signing.
pub trait ManifestSigner: Send + Sync {
    /// What tells this key's signatures apart from every other key's: the
    /// same body signed by two keys gives two signatures, cached apart.
    fn identity(&self) -> &str;
    /// The `expo-signature` part-header value for exactly these body bytes.
    fn signature_header(&self, body: &[u8]) -> Result<String, CryptoError>;
}

/// Update insights, as counted by each server instance.
/// Signs webhook deliveries as the Standard Webhooks specification says,
/// so receivers verify them with its libraries, and makes their secrets.
pub trait WebhookSigner: Send + Sync {
    /// A new secret: `whsec_` and the base64 of 24 random bytes.
    fn new_secret(&self) -> WebhookSecret;
    /// The `webhook-signature` header for a delivery: `v1,` and the base64
    /// HMAC-SHA256 of `{delivery id}.{unix timestamp}.{body}` under the
    /// secret's key. `Err` for a secret whose key does not decode.
    fn signature(
        &self,
        secret: &WebhookSecret,
        delivery_id: &str,
        timestamp: i64,
        body: &[u8],
    ) -> Result<String, CryptoError>;
}

#[async_trait]
pub trait InsightStore: Send + Sync {
    /// Adds counts to this instance's rows, creating them as needed.
    async fn add(&self, instance_id: &str, counts: &[InsightCounts]) -> StoreResult<()>;
    /// Every instance's rows for a publish.
    async fn for_publish(
        &self,
        project_id: &str,
        publish_id: &str,
    ) -> StoreResult<Vec<InsightCounts>>;
}

/// A project's signing keys.
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Stores a key; `Conflict(SigningKeyId)` when the project already
    /// has one with its key id.
    async fn insert(&self, key: &SigningKey) -> StoreResult<()>;
    /// A project's keys, newest first.
    async fn list(&self, project_id: &str) -> StoreResult<Vec<SigningKey>>;
    /// `Ok(false)` when the project has no key with that key id.
    async fn delete(&self, project_id: &str, key_id: &SigningKeyId) -> StoreResult<bool>;
}

/// Encrypts private keys at rest under the server's master key
/// (`SIGNING_KEY_ENCRYPTION_KEY`), with authenticated encryption bound to
/// what the key belongs to (`context`), so a sealed key moved to another
/// project's row does not open.
pub trait KeySealer: Send + Sync {
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError>;
    fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError>;
}

/// Turns private keys into signers, and makes new ones.
pub trait SigningKeyFactory: Send + Sync {
    /// A signer for a PEM private key (PKCS#1 or PKCS#8, RSA); an `Err`
    /// says, for the client, why the PEM is unusable.
    fn signer(
        &self,
        private_key_pem: &str,
        key_id: &SigningKeyId,
    ) -> Result<std::sync::Arc<dyn ManifestSigner>, CryptoError>;
    /// Whether the certificate (PEM) is for this private key; `Err` when it
    /// is not a certificate at all.
    fn certificate_matches(
        &self,
        private_key_pem: &str,
        certificate_pem: &str,
    ) -> Result<bool, CryptoError>;
    /// A new RSA 2048 key and a self-signed code-signing certificate for it.
    fn generate(
        &self,
        common_name: &str,
        validity_years: u32,
    ) -> Result<GeneratedSigningKey, CryptoError>;
}

/// A generated key pair: the private key is sealed and stored, the
/// certificate is returned to the owner.
pub struct GeneratedSigningKey {
    pub private_key_pem: String,
    pub certificate_pem: String,
}

impl std::fmt::Debug for dyn ManifestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManifestSigner({})", self.identity())
    }
}

pub trait SecretGenerator: Send + Sync {
    /// A new random API-key secret with its hash and prefix.
    fn generate(&self) -> GeneratedSecret;
    /// The stored hash of a presented secret (SHA-256 hex of its ASCII text).
    fn hash(&self, secret: &str) -> String;
    /// Constant-time equality of two hashes.
    fn hashes_match(&self, a: &str, b: &str) -> bool;
}
