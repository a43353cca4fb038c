//! The size of the `IN (...)` lists the stores bind.

/// How many values one `IN (...)` list binds: small enough for any
/// bind-parameter limit (deletes, lookups by id or hash).
pub(crate) const IN_LIST_CHUNK: usize = 500;
