//! HTTP adapter: the REST API as poem-openapi operations over the application
//! services, the OpenAPI document and UI, health probes, the web dashboard,
//! and the edge every request passes through (route table, request id,
//! access log, JSON errors), which answers device traffic (update checks and
//! downloads) itself.

mod api;
mod assets;
mod dashboard;
mod device;
mod device_context;
mod error;
mod ids;
mod metrics;
mod middleware;
mod ops;
mod protocol;
mod rate_limit;
mod routes;
mod schema;
mod security;
mod state;

pub use api::{openapi_document, routes};
pub use dashboard::DashboardSettings;
pub use metrics::CounterSource;
pub use rate_limit::RateLimitSettings;
pub use state::HttpSettings;
