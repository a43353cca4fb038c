//! Projects' own signing keys without cryptography: the store, a sealer and
//! a key factory whose signers are [`FakeSigner`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::Utc;
use domain::ports::{
    Constraint, CryptoError, GeneratedSigningKey, KeySealer, ManifestSigner, SigningKeyFactory,
    SigningKeyStore, StoreError, StoreResult,
};
use domain::signing_key::{SigningKey, SigningKeyId};

use super::ids::ordered_id;
use super::signer::FakeSigner;
use super::store::InMemoryStore;

#[async_trait]
impl SigningKeyStore for InMemoryStore {
    /// `Conflict(SigningKeyId)` when the project has the key id, and
    /// `ProjectGone` without the project; moves the serve epoch.
    async fn insert(&self, key: &SigningKey) -> StoreResult<()> {
        let mut state = self.state();
        if !state.has_project(&key.project_id) {
            return Err(StoreError::ProjectGone);
        }
        let taken = state
            .signing_keys
            .iter()
            .any(|k| k.project_id == key.project_id && k.key_id == key.key_id);
        if taken {
            return Err(StoreError::Conflict(Constraint::SigningKeyId));
        }
        state.signing_keys.push(key.clone());
        self.served_change(true);
        Ok(())
    }

    /// Newest first (by creation time, then id).
    async fn list(&self, project_id: &str) -> StoreResult<Vec<SigningKey>> {
        let mut keys: Vec<SigningKey> = self
            .state()
            .signing_keys
            .iter()
            .filter(|k| k.project_id == project_id)
            .cloned()
            .collect();
        keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(keys)
    }

    async fn delete(&self, project_id: &str, key_id: &SigningKeyId) -> StoreResult<bool> {
        let mut state = self.state();
        let before = state.signing_keys.len();
        state
            .signing_keys
            .retain(|k| !(k.project_id == project_id && k.key_id == *key_id));
        Ok(self.served_change(state.signing_keys.len() < before))
    }
}

impl InMemoryStore {
    /// Stores a key for the project, sealed by [`FakeKeySealer`] as the
    /// keyring expects (its private key names `key_id`, for
    /// [`FakeSigningKeys`]).
    ///
    /// # Panics
    ///
    /// When `key_id` is not a valid key id or the store refuses the key.
    pub fn add_signing_key(&self, project_id: &str, key_id: &str) -> SigningKey {
        let key_id = SigningKeyId::parse(key_id).expect("a valid key id");
        let context = format!("{project_id}/{key_id}");
        let sealed = FakeKeySealer.seal(fake_pem(key_id.as_str()).as_bytes(), &context);
        let key = SigningKey {
            id: ordered_id(),
            project_id: project_id.to_owned(),
            key_id,
            certificate_pem: None,
            sealed_private_key: sealed.expect("the fake sealer seals"),
            created_at: Utc::now(),
            created_by: None,
        };
        let mut state = self.state();
        state.signing_keys.push(key.clone());
        self.served_change(true);
        key
    }
}

/// A private key PEM as [`FakeSigningKeys`] reads it.
fn fake_pem(name: &str) -> String {
    format!("-----BEGIN PRIVATE KEY-----\nfake:{name}\n-----END PRIVATE KEY-----\n")
}

/// A [`KeySealer`] that binds a key to its context without secrecy: the
/// sealed bytes are the context, a NUL, and the plaintext. Opening under
/// another context fails, as authenticated encryption would.
#[derive(Debug, Default, Clone, Copy)]
pub struct FakeKeySealer;

impl KeySealer for FakeKeySealer {
    fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let mut sealed = context.as_bytes().to_vec();
        sealed.push(0);
        sealed.extend_from_slice(plaintext);
        Ok(sealed)
    }

    fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let prefix_len = context.len() + 1;
        match sealed.split_at_checked(context.len()) {
            Some((bound, rest)) if bound == context.as_bytes() && rest.first() == Some(&0) => {
                Ok(sealed[prefix_len..].to_vec())
            }
            _ => Err(CryptoError("sealed under another context".to_owned())),
        }
    }
}

/// A [`SigningKeyFactory`] of [`FakeSigner`]s: a PEM it generated (or
/// [`InMemoryStore::add_signing_key`] stored) opens into a signer for the
/// key id it is given; anything else is refused. A certificate matches the
/// key it was generated with. Counts the signers it made.
#[derive(Debug, Default)]
pub struct FakeSigningKeys {
    generated: AtomicU64,
    opened: AtomicU64,
}

impl FakeSigningKeys {
    /// How many stored keys were opened into signers.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

impl SigningKeyFactory for FakeSigningKeys {
    fn signer(
        &self,
        private_key_pem: &str,
        key_id: &SigningKeyId,
    ) -> Result<Arc<dyn ManifestSigner>, CryptoError> {
        if !private_key_pem.contains("\nfake:") {
            return Err(CryptoError("not a key this fake made".to_owned()));
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(FakeSigner::new(key_id.as_str())))
    }

    fn certificate_matches(
        &self,
        private_key_pem: &str,
        certificate_pem: &str,
    ) -> Result<bool, CryptoError> {
        let name = |pem: &str| {
            pem.lines()
                .find_map(|line| line.strip_prefix("fake:"))
                .map(str::to_owned)
        };
        match name(certificate_pem) {
            Some(certified) => Ok(name(private_key_pem) == Some(certified)),
            None => Err(CryptoError("not a certificate".to_owned())),
        }
    }

    fn generate(
        &self,
        common_name: &str,
        _validity_years: u32,
    ) -> Result<GeneratedSigningKey, CryptoError> {
        let n = self.generated.fetch_add(1, Ordering::Relaxed);
        let name = format!("{common_name}-{n}");
        Ok(GeneratedSigningKey {
            private_key_pem: fake_pem(&name),
            certificate_pem: format!(
                "-----BEGIN CERTIFICATE-----\nfake:{name}\n-----END CERTIFICATE-----\n"
            ),
        })
    }
}
