//! What the dashboard is configured with.

/// What the dashboard needs beyond the services.
#[derive(Debug, Clone, Default)]
pub struct DashboardSettings {
    /// `PUBLIC_URL`: the address devices use. Without it, the address the
    /// browser used is shown.
    pub public_url: Option<String>,
    /// `ALLOW_REGISTRATION`: whether anyone may create an account.
    pub open_registration: bool,
}
