//! API keys: create, list, rename, revoke, and authenticate a publisher.

use std::sync::Arc;

use chrono::Utc;
use domain::api_key::{ApiKey, KeyName, NewApiKey, looks_like_secret};
use domain::id::{ApiKeyId, ProjectId};
use domain::ports::{ApiKeyStore, MemberStore, SecretGenerator};
use domain::user::User;

use serde_json::json;

use crate::access::{OWNER_FOR_KEYS, authorize, user_actor};
use crate::audit::AuditLog;
use crate::error::{AppError, AppResult, not_found};
use crate::ids::new_id;

/// A key just created, with the secret that is shown this once.
#[derive(Clone)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    pub secret: String,
}

pub struct ApiKeyService {
    keys: Arc<dyn ApiKeyStore>,
    members: Arc<dyn MemberStore>,
    secrets: Arc<dyn SecretGenerator>,
    audit: AuditLog,
}

impl ApiKeyService {
    pub fn new(
        keys: Arc<dyn ApiKeyStore>,
        members: Arc<dyn MemberStore>,
        secrets: Arc<dyn SecretGenerator>,
        audit: AuditLog,
    ) -> Self {
        Self {
            keys,
            members,
            secrets,
            audit,
        }
    }

    /// Creates a key (owners only). Without a name it gets the first free
    /// `key-N`.
    pub async fn create(
        &self,
        actor: &User,
        project_id: &ProjectId,
        name: Option<&str>,
    ) -> AppResult<CreatedApiKey> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_KEYS).await?;
        let name = match name.filter(|n| !n.trim().is_empty()) {
            Some(name) => Some(KeyName::parse(name)?),
            None => None,
        };
        let generated = self.secrets.generate();
        let new_key = NewApiKey {
            id: ApiKeyId::from_trusted(new_id()),
            project_id: project_id.clone(),
            created_by: actor.id.clone(),
            name,
            key_hash: generated.hash,
            key_prefix: generated.prefix,
            created_at: Utc::now(),
        };
        let key = self.keys.insert(&new_key).await?;
        tracing::info!(%project_id, key_id = %key.id, "api key created");
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "key.create",
                json!({ "keyId": key.id.as_str(), "name": key.name, "keyPrefix": key.key_prefix }),
            )
            .await;
        Ok(CreatedApiKey {
            key,
            secret: generated.secret,
        })
    }

    /// The project's keys, without secrets (owners only).
    pub async fn list(&self, actor: &User, project_id: &ProjectId) -> AppResult<Vec<ApiKey>> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_KEYS).await?;
        Ok(self.keys.list(project_id.as_str()).await?)
    }

    pub async fn rename(
        &self,
        actor: &User,
        project_id: &ProjectId,
        key_id: &ApiKeyId,
        name: &str,
    ) -> AppResult<()> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_KEYS).await?;
        let name = KeyName::parse(name)?;
        found_or_404(
            self.keys
                .rename(project_id.as_str(), key_id.as_str(), &name)
                .await?,
        )?;
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "key.rename",
                json!({ "keyId": key_id.as_str(), "name": name.as_str() }),
            )
            .await;
        Ok(())
    }

    /// Revokes (deletes) a key: it stops working at once.
    pub async fn revoke(
        &self,
        actor: &User,
        project_id: &ProjectId,
        key_id: &ApiKeyId,
    ) -> AppResult<()> {
        authorize(self.members.as_ref(), actor, project_id, OWNER_FOR_KEYS).await?;
        found_or_404(
            self.keys
                .delete(project_id.as_str(), key_id.as_str())
                .await?,
        )?;
        tracing::info!(%project_id, %key_id, "api key revoked");
        self.audit
            .record(
                &user_actor(actor),
                project_id,
                "key.revoke",
                json!({ "keyId": key_id.as_str() }),
            )
            .await;
        Ok(())
    }

    /// The key a presented secret belongs to, recording that it was used.
    /// Accepts new `eus_` secrets and the old server's 64-hex secrets.
    pub async fn authenticate(&self, secret: &str) -> AppResult<ApiKey> {
        let refused = || AppError::Unauthenticated("Invalid API key.".to_owned());
        if !looks_like_secret(secret) {
            return Err(refused());
        }
        let hash = self.secrets.hash(secret);
        let key = self.keys.find_by_hash(&hash).await?.ok_or_else(refused)?;
        // The indexed lookup compares digests, not secrets, so its timing
        // tells nothing about the secret; the constant-time check guards
        // against a store that matched loosely (collation, case folding).
        if !self.secrets.hashes_match(&key.key_hash, &hash) {
            return Err(refused());
        }
        let now = Utc::now();
        self.keys.record_use(&key.id, now).await?;
        Ok(ApiKey {
            last_used_at: Some(now),
            ..key
        })
    }
}

fn found_or_404(found: bool) -> AppResult<()> {
    if found {
        Ok(())
    } else {
        Err(not_found::api_key())
    }
}
