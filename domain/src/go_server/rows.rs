//! The four tables of the Go server's `ota.db` (`user`, `project`,
//! `project_user`, `key`), as they are: every column is text, nothing is
//! validated, and rows may break every rule this server keeps.

use chrono::{DateTime, TimeZone, Utc};

/// A row of `user`. The password hash is an argon2id PHC string that this
/// server verifies as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct GoUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: Option<String>,
}

/// Never prints the password hash.
impl std::fmt::Debug for GoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A row of `project`. Slugs may repeat; the id is in shipped apps' update
/// URLs and is kept exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoProject {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub created_at: Option<String>,
}

/// A row of `project_user`: duplicates, unknown users and any role string
/// (even `""`) are possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoMembership {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: Option<String>,
    /// SQLite's insertion order: the order the Go server's unordered
    /// lookups returned rows in, so "the first row" means the lowest.
    pub rowid: i64,
}

/// A row of `key`: `key_hash` is the SHA-256 hex of the 64-hex secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoApiKey {
    pub id: String,
    pub project_id: String,
    pub created_by: String,
    pub name: String,
    pub key_hash: String,
    pub key_prefix: String,
    pub created_at: Option<String>,
}

/// Everything the Go server's database holds (there is no table of updates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoDatabase {
    pub users: Vec<GoUser>,
    pub projects: Vec<GoProject>,
    pub memberships: Vec<GoMembership>,
    pub keys: Vec<GoApiKey>,
}

/// When a row was created: its `created_at` (RFC 3339, as the Go server
/// wrote it), else the time in its UUIDv7 id (the Go server's ids are
/// UUIDv7), else `None`.
pub fn row_time(created_at: Option<&str>, id: &str) -> Option<DateTime<Utc>> {
    created_at
        .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
        .map(|time| time.with_timezone(&Utc))
        .or_else(|| uuid_v7_time(id))
}

/// The millisecond timestamp a UUIDv7 carries in its first 48 bits.
fn uuid_v7_time(id: &str) -> Option<DateTime<Utc>> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    let is_v7 = hex.len() == 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && hex.as_bytes().get(12) == Some(&b'7');
    if !is_v7 {
        return None;
    }
    let millis = i64::from_str_radix(hex.get(..12)?, 16).ok()?;
    Utc.timestamp_millis_opt(millis).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_times_come_from_created_at_or_the_uuid_v7_id() {
        let stated = row_time(Some("2026-05-01T14:49:07Z"), "x");
        assert_eq!(
            stated.map(|t| t.to_rfc3339()),
            Some("2026-05-01T14:49:07+00:00".to_owned())
        );
        // 0x019de4a3b1c8 ms = 2026-05-01T...
        let from_id = row_time(None, "019de4a3-b1c8-7000-8000-000000000001");
        assert_eq!(
            from_id.map(|t| t.timestamp_millis()),
            Some(0x019d_e4a3_b1c8)
        );
        assert_eq!(row_time(Some("garbage"), "not-a-uuid"), None);
        assert_eq!(row_time(None, "019de4a3-b1c8-4000-8000-000000000001"), None);
    }
}
