//! Test data: unique names, ids and hashes. (The fixture files in `tests/fixtures` are found
//! by `test_support::fixtures`, shared with the other test crates; see `publish` and
//! `protocol`.)

use uuid::Uuid;

fn random_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A fresh `(username, email)` pair.
pub fn unique_identity() -> (String, String) {
    let username = format!("user-{}", random_suffix());
    let email = format!("{username}@example.com");
    (username, email)
}

/// A fresh slug matching `[a-z0-9-]+`.
pub fn unique_slug() -> String {
    format!("app-{}", random_suffix())
}

/// A fresh random UUID (version 4), lower-case with hyphens: a device's client id, an id
/// nothing has.
pub fn uuid_v4() -> String {
    Uuid::new_v4().to_string()
}

/// Hex SHA-256 of `text` (to look for stored key hashes leaking into responses).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}
