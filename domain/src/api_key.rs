//! Project API keys: the credentials release pipelines publish with.
//!
//! A key's secret is shown once, at creation. The server keeps only its
//! SHA-256 (hex) and an 8-character prefix that lets people tell keys apart.

use chrono::{DateTime, Utc};

use crate::id::{ApiKeyId, ProjectId, UserId};
use crate::validation::{ValidationError, has_control_chars};

/// The prefix every new secret starts with, so secret scanners (and people)
/// recognise a leaked key.
pub const SECRET_PREFIX: &str = "eus_";

/// A stored API key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub project_id: ProjectId,
    /// The user who created the key; `None` once that account is gone.
    pub created_by: Option<UserId>,
    pub name: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key about to be stored. Without a name the store picks the first free
/// default name (see [`first_free_default_name`]) in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub project_id: ProjectId,
    pub created_by: UserId,
    pub name: Option<KeyName>,
    pub key_hash: String,
    pub key_prefix: String,
    pub created_at: DateTime<Utc>,
}

/// A freshly generated secret with what is stored of it.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedSecret {
    /// The full secret: shown to the client once, then forgotten.
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

impl std::fmt::Debug for GeneratedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedSecret")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A key's display name: 1 to 100 characters once trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("Missing parameters."));
        }
        if name.chars().count() > Self::MAX_LEN || has_control_chars(name) {
            return Err(ValidationError::new(format!(
                "name must be at most {} characters, without control characters.",
                Self::MAX_LEN
            )));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when a bearer value has the shape of a key secret: a new one
/// (`eus_` + 64 lowercase hex) or one issued by the old Go server (64
/// lowercase hex). Anything else is refused without a database lookup.
pub fn looks_like_secret(candidate: &str) -> bool {
    let hex = candidate.strip_prefix(SECRET_PREFIX).unwrap_or(candidate);
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The default name for a new unnamed key: `key-N` with the smallest N that
/// no key of the project is already called. Never collides, unlike the old
/// server's `key-` + 8 timestamp characters.
pub fn first_free_default_name<'a>(taken: impl IntoIterator<Item = &'a str>) -> String {
    let taken: std::collections::HashSet<&str> = taken.into_iter().collect();
    (1..)
        .map(|n: u64| format!("key-{n}"))
        .find(|name| !taken.contains(name.as_str()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_both_generations_are_recognised() {
        let hex = "0123456789abcdef".repeat(4);
        assert!(looks_like_secret(&hex));
        assert!(looks_like_secret(&format!("eus_{hex}")));
        assert!(!looks_like_secret(&hex.to_uppercase()));
        assert!(!looks_like_secret(&hex[1..]));
        assert!(!looks_like_secret("eus_"));
    }

    #[test]
    fn default_names_fill_the_first_gap() {
        assert_eq!(first_free_default_name([]), "key-1");
        assert_eq!(first_free_default_name(["key-1", "key-3", "ci"]), "key-2");
    }

    #[test]
    fn key_names_are_trimmed_and_not_empty() {
        assert!(KeyName::parse("  ").is_err());
        assert_eq!(
            KeyName::parse(" ci ").map(|n| n.as_str().to_owned()),
            Ok("ci".into())
        );
    }
}
