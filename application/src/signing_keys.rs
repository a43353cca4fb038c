//! Per-project code-signing keys: owners add (upload or generate), list and
//! remove them; the serving path loads them as signers.
//!
//! Private keys are sealed under the server's master key before they reach
//! the store and are never returned; a generated key's certificate is.

use std::sync::Arc;

use chrono::Utc;
use domain::id::ProjectId;
use domain::ports::{KeySealer, ManifestSigner, MemberStore, SigningKeyFactory, SigningKeyStore};
use domain::signing_key::{SigningKey, SigningKeyId};
use domain::user::User;
use serde_json::json;

use crate::access::{Need, OWNER_FOR_KEYS, authorize, user_actor};
use crate::audit::AuditLog;
use crate::error::{AppError, AppResult, not_found};
use crate::ids::new_id;

/// The common name of a generated certificate when the owner gives none.
const DEFAULT_COMMON_NAME: &str = "expo-updates-server";

/// How long a generated certificate is valid when the owner does not say.
const DEFAULT_VALIDITY_YEARS: u32 = 10;

/// Keys one project may hold: rotation needs two or three; every key is
/// opened whenever the project's signers are reloaded.
const MAX_KEYS_PER_PROJECT: usize = 10;

/// What a server without `SIGNING_KEY_ENCRYPTION_KEY` answers about project
/// keys: the setting that is missing.
const NOT_CONFIGURED: &str =
    "Per-project signing keys need SIGNING_KEY_ENCRYPTION_KEY on the server.";

/// Parses a project key's id; `generate` names the route that makes keys.
fn project_key_id(raw: &str) -> AppResult<SigningKeyId> {
    if raw == "generate" {
        return Err(AppError::Invalid(
            "keyId \"generate\" is reserved; choose another.".to_owned(),
        ));
    }
    Ok(SigningKeyId::parse(raw)?)
}

/// What an owner sends to add a key.
pub enum NewSigningKey {
    /// A key the owner already has (and whose certificate the app embeds).
    Upload {
        key_id: String,
        private_key_pem: String,
        certificate_pem: Option<String>,
    },
    /// A key the server makes, with a self-signed certificate.
    Generate {
        key_id: String,
        common_name: Option<String>,
        validity_years: Option<u32>,
    },
}

/// The keys a project signs with, as signers, newest first.
pub type ProjectSigners = Vec<(SigningKeyId, Arc<dyn ManifestSigner>)>;

/// Opens stored keys into signers: shared by the management service and
/// the serving path.
#[derive(Clone)]
pub struct Keyring {
    store: Arc<dyn SigningKeyStore>,
    sealer: Option<Arc<dyn KeySealer>>,
    factory: Arc<dyn SigningKeyFactory>,
}

impl Keyring {
    /// `sealer` is `None` when the server has no `SIGNING_KEY_ENCRYPTION_KEY`:
    /// project keys can then be neither added nor used.
    pub fn new(
        store: Arc<dyn SigningKeyStore>,
        sealer: Option<Arc<dyn KeySealer>>,
        factory: Arc<dyn SigningKeyFactory>,
    ) -> Self {
        Self {
            store,
            sealer,
            factory,
        }
    }

    /// The master key's sealer, to open stored keys with. A server without
    /// one cannot sign for projects that have keys: to their devices that
    /// is the server's failing (503), not their request's.
    fn opener(&self) -> AppResult<&dyn KeySealer> {
        self.sealer
            .as_deref()
            .ok_or_else(|| AppError::Unavailable(NOT_CONFIGURED.to_owned()))
    }

    /// The master key's sealer, to seal a key an owner adds. Adding one to a
    /// server without a master key conflicts with how the server is set up
    /// (409): the answer says what the operator must set.
    fn sealer_for_adding(&self) -> AppResult<&dyn KeySealer> {
        self.sealer
            .as_deref()
            .ok_or_else(|| AppError::Conflict(NOT_CONFIGURED.to_owned()))
    }

    /// A project's keys as signers, newest first. A key that does not open
    /// (the master key changed) makes every signed answer of the project
    /// unavailable rather than signed by the wrong key.
    pub async fn project_signers(&self, project_id: &str) -> AppResult<ProjectSigners> {
        let keys = self.store.list(project_id).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sealer = self.opener()?;
        keys.into_iter()
            .map(|key| {
                let pem = sealer
                    .open(&key.sealed_private_key, &seal_context(&key.project_id, &key.key_id))
                    .map_err(|error| {
                        tracing::error!(project_id, key_id = %key.key_id, %error, "signing key unusable");
                        AppError::Unavailable(format!(
                            "The project's signing key {} cannot be used; the server operator must check SIGNING_KEY_ENCRYPTION_KEY.",
                            key.key_id
                        ))
                    })?;
                let pem = String::from_utf8(pem)
                    .map_err(|error| AppError::fault("a stored key is not UTF-8", error))?;
                let signer = self.factory.signer(&pem, &key.key_id)?;
                Ok((key.key_id, with_identity(signer, key.id)))
            })
            .collect()
    }
}

/// A signer whose cache identity is the stored key's id, so that a key
/// removed and added again under the same key id never reuses signatures.
fn with_identity(signer: Arc<dyn ManifestSigner>, identity: String) -> Arc<dyn ManifestSigner> {
    struct Named {
        inner: Arc<dyn ManifestSigner>,
        identity: String,
    }
    impl ManifestSigner for Named {
        fn identity(&self) -> &str {
            &self.identity
        }
        fn signature_header(&self, body: &[u8]) -> Result<String, domain::ports::CryptoError> {
            self.inner.signature_header(body)
        }
    }
    Arc::new(Named {
        inner: signer,
        identity,
    })
}

/// What a sealed key is bound to: its project and key id.
fn seal_context(project_id: &str, key_id: &SigningKeyId) -> String {
    format!("{project_id}/{key_id}")
}

pub struct SigningKeyService {
    keyring: Keyring,
    members: Arc<dyn MemberStore>,
    audit: AuditLog,
}

impl SigningKeyService {
    pub fn new(keyring: Keyring, members: Arc<dyn MemberStore>, audit: AuditLog) -> Self {
        Self {
            keyring,
            members,
            audit,
        }
    }

    /// Whether the server can store project keys at all (it has a master
    /// key), so a client can say so before anyone tries.
    pub fn is_configured(&self) -> bool {
        self.keyring.sealer.is_some()
    }

    /// Adds a key (owners only). It signs from now on for devices that name
    /// no key id; older keys keep signing for devices that name theirs. On a
    /// server without a master key: `Conflict`, naming the setting.
    pub async fn add(
        &self,
        actor: &User,
        project_id: &ProjectId,
        new_key: NewSigningKey,
    ) -> AppResult<SigningKey> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_KEYS).await?;
        let sealer = self.keyring.sealer_for_adding()?;
        if self.keyring.store.list(project_id.as_str()).await?.len() >= MAX_KEYS_PER_PROJECT {
            return Err(AppError::Conflict(format!(
                "A project holds at most {MAX_KEYS_PER_PROJECT} signing keys; remove one first."
            )));
        }
        let factory = self.keyring.factory.as_ref();
        let (key_id, private_key_pem, certificate_pem, generated) = match new_key {
            NewSigningKey::Upload {
                key_id,
                private_key_pem,
                certificate_pem,
            } => {
                let key_id = project_key_id(&key_id)?;
                factory
                    .signer(&private_key_pem, &key_id)
                    .map_err(|error| AppError::Invalid(error.0))?;
                let certificate_pem = certificate_pem.filter(|pem| !pem.trim().is_empty());
                if let Some(certificate) = &certificate_pem {
                    let matches = factory
                        .certificate_matches(&private_key_pem, certificate)
                        .map_err(|error| AppError::Invalid(error.0))?;
                    if !matches {
                        return Err(AppError::Invalid(
                            "certificate is not for privateKey: apps embedding it would reject every signature."
                                .to_owned(),
                        ));
                    }
                }
                (key_id, private_key_pem, certificate_pem, false)
            }
            NewSigningKey::Generate {
                key_id,
                common_name,
                validity_years,
            } => {
                let key_id = project_key_id(&key_id)?;
                let common_name = common_name.unwrap_or_else(|| DEFAULT_COMMON_NAME.to_owned());
                let validity_years = validity_years.unwrap_or(DEFAULT_VALIDITY_YEARS);
                if !(1..=100).contains(&validity_years) {
                    return Err(AppError::Invalid(
                        "validityYears must be 1 to 100.".to_owned(),
                    ));
                }
                if common_name.trim().is_empty() || common_name.chars().count() > 64 {
                    return Err(AppError::Invalid(
                        "commonName must be 1 to 64 characters.".to_owned(),
                    ));
                }
                let pair = factory.generate(&common_name, validity_years)?;
                (
                    key_id,
                    pair.private_key_pem,
                    Some(pair.certificate_pem),
                    true,
                )
            }
        };
        let sealed_private_key = sealer.seal(
            private_key_pem.as_bytes(),
            &seal_context(project_id.as_str(), &key_id),
        )?;
        let key = SigningKey {
            id: new_id(),
            project_id: project_id.to_string(),
            key_id,
            certificate_pem,
            sealed_private_key,
            created_at: Utc::now(),
            created_by: Some(actor.id.to_string()),
        };
        self.keyring
            .store
            .insert(&key)
            .await
            .map_err(|error| match error {
                domain::ports::StoreError::Conflict(_) => AppError::Conflict(format!(
                    "The project already has a signing key with keyId {}.",
                    key.key_id
                )),
                other => other.into(),
            })?;
        tracing::info!(%project_id, key_id = %key.key_id, generated, "signing key added");
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "signingKey.add",
                json!({ "keyId": key.key_id.as_str(), "generated": generated }),
            )
            .await;
        Ok(key)
    }

    /// The project's keys, newest first, without private keys (members).
    pub async fn list(&self, actor: &User, project_id: &ProjectId) -> AppResult<Vec<SigningKey>> {
        authorize(self.members.as_ref(), actor, project_id, Need::Read).await?;
        Ok(self.keyring.store.list(project_id.as_str()).await?)
    }

    /// Removes a key (owners only): devices that name it get a 400 from now
    /// on, so remove it once every build embedding its certificate is gone.
    pub async fn remove(
        &self,
        actor: &User,
        project_id: &ProjectId,
        key_id: &SigningKeyId,
    ) -> AppResult<()> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_KEYS).await?;
        if !self
            .keyring
            .store
            .delete(project_id.as_str(), key_id)
            .await?
        {
            return Err(not_found::signing_key());
        }
        tracing::info!(%project_id, key_id = %key_id, "signing key removed");
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "signingKey.remove",
                json!({ "keyId": key_id.as_str() }),
            )
            .await;
        Ok(())
    }
}
