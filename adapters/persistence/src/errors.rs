//! Translation of database errors into the domain's store errors, in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use domain::ports::{Constraint, StoreError};
use sea_orm::{DbErr, SqlErr};

/// Maps a database error. A unique violation becomes a `Conflict` naming the
/// constraint, recognised from the driver's message (SQLite names the table
/// and columns, PostgreSQL the index; both contain these words): the one
/// place that knows the schema's names for them.
pub(crate) fn store_error(error: DbErr) -> StoreError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = error.sql_err() {
        let constraint = if message.contains("username_key") {
            Constraint::Username
        } else if message.contains("email_key") {
            Constraint::Email
        } else if message.contains("slug") {
            Constraint::Slug
        } else if message.contains("signing_keys") {
            Constraint::SigningKeyId
        } else if message.contains("project_members") {
            Constraint::Membership
        } else if message.contains("channels") {
            Constraint::Channel
        } else {
            Constraint::Record
        };
        return StoreError::Conflict(constraint);
    }
    // Only project rows disappear while requests run (there is no user
    // deletion), so a dangling reference means the project was deleted.
    if let Some(SqlErr::ForeignKeyConstraintViolation(_)) = error.sql_err() {
        return StoreError::ProjectGone;
    }
    backend(error)
}

pub(crate) fn backend(error: DbErr) -> StoreError {
    BACKEND_ERRORS.fetch_add(1, Ordering::Relaxed);
    StoreError::backend(error)
}

/// Database errors (not refusals such as a taken name) since start-up.
static BACKEND_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many database operations failed since start-up, for `/metrics`.
pub fn backend_error_count() -> u64 {
    BACKEND_ERRORS.load(Ordering::Relaxed)
}
