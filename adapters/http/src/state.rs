//! What handlers reach the application through.

use std::sync::Arc;

use application::{
    AccountService, ApiKeyService, AuditService, GarbageCollector, InsightService, MemberService,
    ProjectService, PublishService, ReleaseService, Retention, ServeService, SigningKeyService,
};
use domain::blob::BlobStore;
use domain::ports::HealthProbe;

/// The application services, shared by every handler.
#[derive(Clone)]
pub struct Services {
    pub accounts: Arc<AccountService>,
    pub projects: Arc<ProjectService>,
    pub members: Arc<MemberService>,
    pub api_keys: Arc<ApiKeyService>,
    pub publish: Arc<PublishService>,
    pub serve: Arc<ServeService>,
    pub releases: Arc<ReleaseService>,
    pub audit: Arc<AuditService>,
    pub signing_keys: Arc<SigningKeyService>,
    pub insights: Arc<InsightService>,
    pub gc: Arc<GarbageCollector>,
    /// `RETENTION_KEEP_PER_BRANCH`, also applied in the background.
    pub retention: Arc<Retention>,
    pub health: Arc<dyn HealthProbe>,
    /// Where update files live (verified reachable at start-up).
    pub blobs: Arc<dyn BlobStore>,
}

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
