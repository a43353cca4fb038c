//! Users: who may log in, and the rules their names, emails and passwords obey.

use chrono::{DateTime, Utc};

use crate::id::UserId;
use crate::validation::{ValidationError, has_control_chars};

/// A registered account. The password hash is a PHC string (argon2id) and is
/// never shown to anyone, not even in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A username: 1 to 64 characters, no whitespace, no control characters and no
/// `@`, so that a username can never equal somebody else's email address (the
/// old server let an attacker register a victim's email as a username and so
/// block their login by email).
/// The form usernames and emails are unique in, and looked up by at login:
/// case-folded, so `Alice` and `alice` are one name.
pub fn login_key(text: &str) -> String {
    text.to_lowercase()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("username must not be empty."));
        }
        if name.chars().count() > Self::MAX_LEN {
            return Err(ValidationError::new(format!(
                "username must be at most {} characters.",
                Self::MAX_LEN
            )));
        }
        if name.contains('@') || name.chars().any(char::is_whitespace) || has_control_chars(name) {
            return Err(ValidationError::new(
                "username must not contain '@', spaces or control characters.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, checked for a plausible shape (`local@domain.tld`).
/// Deliverability is not our business; typos like a missing `@` are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let email = raw.trim();
        let invalid = || ValidationError::new("email must be a valid email address.");
        if email.is_empty() || email.len() > Self::MAX_LEN || has_control_chars(email) {
            return Err(invalid());
        }
        if email.chars().any(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed at registration: at least 8 characters, and at most
/// 1024 bytes so that hashing it stays cheap.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new(format!(
                "password must be at least {} characters.",
                Self::MIN_CHARS
            )));
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(format!(
                "password must be at most {} bytes.",
                Self::MAX_BYTES
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Never print a password, even in a debug log.
impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rejects_at_sign_spaces_and_empty() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a@b.io").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn email_needs_a_local_part_and_a_dotted_domain() {
        assert!(Email::parse("a@example.com").is_ok());
        for bad in [
            "not-an-email",
            "@x.io",
            "a@",
            "a@io",
            "a@.io",
            "a@x..io",
            "a b@x.io",
            "a@b@x.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn password_bounds() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(1025)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pw").ok()),
            "Some(Password(***))"
        );
    }
}
