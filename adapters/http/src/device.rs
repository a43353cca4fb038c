//! What devices ask on every app launch (update checks and downloads),
//! answered by the edge straight from the route table: the method, the
//! project's rate limit, then the handler, with the services in hand
//! rather than in the request's data.

use application::Services;
use poem::http::{Method, StatusCode};
use poem::{Request, Response};

use crate::device_context::DeviceContext;
use crate::error::json_errors;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::routes::{DeviceRoute, RouteInfo};
use crate::{assets, protocol};

/// The answer to a request on a device route.
pub(crate) async fn answer(
    route: DeviceRoute,
    info: &'static RouteInfo,
    req: &Request,
    services: &Services,
    limits: &RateLimits,
    metrics: &Metrics,
) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return json_errors(poem::Error::from_status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let project = info.param(req.uri().path(), "project").unwrap_or_default();
    if let Some(refused) = limits.refuse_device(project) {
        return refused;
    }
    let context = DeviceContext {
        services,
        metrics,
        project,
    };
    match route {
        DeviceRoute::Manifest => protocol::manifest(req, &context).await,
        DeviceRoute::Asset => assets::download(req, &context).await,
    }
}
