//! How the HTTP edge is configured, apart from the services behind it.

/// How the HTTP edge behaves, apart from the services behind it.
#[derive(Default)]
pub struct HttpSettings {
    pub rate_limits: crate::rate_limit::RateLimitSettings,
    /// `METRICS_TOKEN`: `/metrics` asks for it as a bearer token when set.
    pub metrics_token: Option<String>,
    /// Counters kept outside the HTTP adapter, exported on `/metrics`.
    pub metrics_sources: Vec<crate::metrics::CounterSource>,
    /// What the web dashboard shows beyond the services' data.
    pub dashboard: crate::dashboard::DashboardSettings,
}
