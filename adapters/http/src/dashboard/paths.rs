//! Where the dashboard lives.

/// The path every dashboard route is nested under.
pub const PREFIX: &str = "/dashboard";
