//! What handlers reach the application through.

use std::sync::Arc;

use application::{AccountService, ApiKeyService, MemberService, ProjectService};
use domain::ports::HealthProbe;

/// The application services, shared by every handler.
#[derive(Clone)]
pub struct Services {
    pub accounts: Arc<AccountService>,
    pub projects: Arc<ProjectService>,
    pub members: Arc<MemberService>,
    pub api_keys: Arc<ApiKeyService>,
    pub health: Arc<dyn HealthProbe>,
}
