//! Identifiers the application draws.

/// A fresh, time-ordered identifier (UUIDv7): unique across instances and
/// sortable by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
