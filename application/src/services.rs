//! The application's services as one value: what every driving adapter (the
//! HTTP API, the dashboard, background jobs) reaches the use cases through.

use std::sync::Arc;

use domain::blob::BlobStore;
use domain::ports::HealthProbe;

use crate::accounts::AccountService;
use crate::api_keys::ApiKeyService;
use crate::audit::AuditService;
use crate::bundle_diffing::PatchService;
use crate::insights::InsightService;
use crate::members::MemberService;
use crate::projects::ProjectService;
use crate::publish::PublishService;
use crate::releases::ReleaseService;
use crate::retention::Retention;
use crate::serve::ServeService;
use crate::signing_keys::SigningKeyService;
use crate::storage_gc::GarbageCollector;

/// The application services, shared by every handler. One pointer: cloning
/// it (once per request, into the request's data) is one atomic increment,
/// not one per service.
#[derive(Clone)]
pub struct Services(Arc<ServiceSet>);

impl Services {
    pub fn new(set: ServiceSet) -> Self {
        Self(Arc::new(set))
    }
}

impl std::ops::Deref for Services {
    type Target = ServiceSet;

    fn deref(&self) -> &ServiceSet {
        &self.0
    }
}

/// Every service, built once at start-up.
pub struct ServiceSet {
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
    /// Bundle diffing: the patches wanted, and the work of computing them.
    pub patches: Arc<PatchService>,
    /// `RETENTION_KEEP_PER_BRANCH`, also applied in the background.
    pub retention: Arc<Retention>,
    pub health: Arc<dyn HealthProbe>,
    /// Where update files live (verified reachable at start-up).
    pub blobs: Arc<dyn BlobStore>,
}
