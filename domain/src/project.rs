//! Projects: the tenant boundary. Every membership, key and (later) update
//! belongs to exactly one project.

use crate::id::ProjectId;
use chrono::{DateTime, Utc};

use crate::validation::{ValidationError, has_control_chars};

/// A project. Its id is baked into shipped apps (`updates.url`), so it never
/// changes; the name and slug may.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    /// Whether devices still running the update embedded in their build
    /// get patches against its uploaded bundle (see [`crate::embedded`]).
    /// Off unless the owner turns it on.
    pub patch_from_embedded: bool,
}

/// A project's display name: 1 to 100 characters once trimmed, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name must not be empty."));
        }
        if name.chars().count() > Self::MAX_LEN || has_control_chars(name) {
            return Err(ValidationError::new(format!(
                "name must be at most {} characters, without control characters.",
                Self::MAX_LEN
            )));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A project slug: lowercase ASCII letters, digits and `-`, 1 to 64 long.
/// Unique across the server, so it can name a project in URLs and scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if raw.is_empty() || raw.len() > Self::MAX_LEN || !valid_chars {
            return Err(ValidationError::new(format!(
                "slug must be 1 to {} characters of a-z, 0-9 and '-'.",
                Self::MAX_LEN
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_allows_only_lowercase_digits_and_hyphen() {
        assert!(Slug::parse("my-app-2").is_ok());
        for bad in ["", "My App", "UPPER", "a_b", "é", "a/b", &"a".repeat(65)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn name_is_trimmed_and_bounded() {
        assert_eq!(
            ProjectName::parse("  App ").map(ProjectName::into_inner),
            Ok("App".into())
        );
        assert!(ProjectName::parse("   ").is_err());
        assert!(ProjectName::parse("a\nb").is_err());
    }
}
