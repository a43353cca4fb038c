//! The application's services as one value: what every driving adapter (the
//! HTTP API, the dashboard, background jobs) reaches the use cases through.

use std::sync::Arc;

use domain::blob::BlobStore;
use domain::ports::HealthProbe;

use crate::{
    AccountService, ApiKeyService, AuditService, GarbageCollector, InsightService, MemberService,
    ProjectService, PublishService, ReleaseService, Retention, ServeService, SigningKeyService,
};

/// The application services, shared by every handler. Cloning is cheap
/// (every field is an `Arc`).
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
