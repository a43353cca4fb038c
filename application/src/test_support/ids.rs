//! Ids and users for fixtures, in creation order.

use std::sync::{Mutex, PoisonError};

use chrono::Utc;

use domain::user::User;

/// A fresh id, greater than every id handed out before in this process
/// (a UUIDv7 of the current time, bumped when the clock has not moved), so
/// fixtures built one after the other are "newer" in that order, as
/// publishes are.
pub fn ordered_id() -> String {
    static LAST: Mutex<u128> = Mutex::new(0);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    let now = uuid::Uuid::now_v7().as_u128();
    *last = now.max(*last + 1);
    uuid::Uuid::from_u128(*last).to_string()
}

/// A user named `username`, with the email `<username>@example.com`.
pub fn test_user(username: &str) -> User {
    User {
        id: domain::id::UserId::from_trusted(ordered_id()),
        username: username.to_owned(),
        email: format!("{username}@example.com"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        created_at: Utc::now(),
    }
}
