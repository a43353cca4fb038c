//! Translation of database errors into the domain's store errors, in one place.

use domain::ports::StoreError;
use sea_orm::{DbErr, SqlErr};

/// Maps a database error. A unique violation becomes a `Conflict` naming the
/// field, recognised from the index name in the driver's message (SQLite
/// names the column, PostgreSQL the index; both contain these words).
pub(crate) fn store_error(error: DbErr) -> StoreError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = error.sql_err() {
        let field = if message.contains("username_key") {
            "username"
        } else if message.contains("email_key") {
            "email"
        } else if message.contains("slug") {
            "slug"
        } else if message.contains("signing_keys") {
            "keyId"
        } else if message.contains("project_members") {
            "membership"
        } else {
            "record"
        };
        return StoreError::Conflict { field };
    }
    // Only project rows disappear while requests run (there is no user
    // deletion), so a dangling reference means the project was deleted.
    if let Some(SqlErr::ForeignKeyConstraintViolation(_)) = error.sql_err() {
        return StoreError::ProjectGone;
    }
    backend(error)
}

pub(crate) fn backend(error: DbErr) -> StoreError {
    StoreError::Backend(error.to_string())
}
