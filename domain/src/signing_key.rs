//! Per-project code-signing keys.
//!
//! A project may sign its manifests with keys of its own instead of the
//! server's `PRIVATE_KEY`, so tenants do not share one identity. The private
//! key is stored sealed with the server's master key and is never returned;
//! the certificate (what the app embeds) is public.
//!
//! Rotation: the newest key signs requests that name no key id, while an
//! older key keeps signing for the apps that ask for it by `keyid`, until an
//! owner removes it.

use chrono::{DateTime, Utc};

use crate::validation::ValidationError;

/// The `keyid` of a signing key, as the app's `codeSigningMetadata.keyid`
/// names it and `expo-signature` repeats it: 1 to 64 printable ASCII
/// characters, without quotes or backslashes (it is written inside an SFV
/// string).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SigningKeyId(String);

impl SigningKeyId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !valid {
            return Err(ValidationError::new(format!(
                "keyId must be 1 to {} printable ASCII characters, without spaces, quotes or backslashes.",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SigningKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored signing key. `sealed_private_key` is the PKCS#8 PEM encrypted
/// under the server's master key; only the crypto adapter can open it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// A UUID: a key removed and added again under the same key id is a new
    /// key, and signatures cached for the old one are never reused.
    pub id: String,
    pub project_id: String,
    pub key_id: SigningKeyId,
    /// PEM of the certificate the app embeds, when it is known (always for
    /// generated keys; for uploaded keys when the owner sent it).
    pub certificate_pem: Option<String>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// The user who added it; `None` once that account is gone.
    pub created_by: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// The key that signs an answer, among a project's keys (newest first) and
/// the server's own key.
///
/// - A request that names a `keyid` gets the project key with that id, or
///   else the server key when its id matches; any other id is unknown.
/// - A request that names none gets the project's newest key, or else the
///   server key.
pub fn choose_signing_key<'a, K>(
    project_keys: &'a [(SigningKeyId, K)],
    server_key: Option<&'a (SigningKeyId, K)>,
    requested: Option<&str>,
) -> Result<Option<&'a K>, UnknownKeyId> {
    match requested {
        None => Ok(project_keys.first().or(server_key).map(|(_, key)| key)),
        Some(requested) => project_keys
            .iter()
            .chain(server_key)
            .find(|(id, _)| id.as_str() == requested)
            .map(|(_, key)| Some(key))
            .ok_or(UnknownKeyId),
    }
}

/// The `keyid` a device asked for matches no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown keyid")]
pub struct UnknownKeyId;

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> SigningKeyId {
        SigningKeyId::parse(raw).expect("valid key id")
    }

    #[test]
    fn key_ids_are_sfv_safe() {
        assert!(SigningKeyId::parse("main").is_ok());
        assert!(SigningKeyId::parse("root-2026.11").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é", &"k".repeat(65), "a\u{0}"] {
            assert!(SigningKeyId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_newest_project_key_signs_unless_another_is_named() {
        let project = [(id("new"), 2), (id("old"), 1)];
        let server = (id("main"), 0);
        assert_eq!(
            choose_signing_key(&project, Some(&server), None),
            Ok(Some(&2))
        );
        assert_eq!(
            choose_signing_key(&project, Some(&server), Some("old")),
            Ok(Some(&1))
        );
        assert_eq!(
            choose_signing_key(&project, Some(&server), Some("main")),
            Ok(Some(&0))
        );
        assert_eq!(
            choose_signing_key(&project, Some(&server), Some("other")),
            Err(UnknownKeyId)
        );
        assert_eq!(choose_signing_key(&[], Some(&server), None), Ok(Some(&0)));
        assert_eq!(choose_signing_key::<i32>(&[], None, None), Ok(None));
        assert_eq!(
            choose_signing_key::<i32>(&[], None, Some("root")),
            Err(UnknownKeyId)
        );
    }
}
