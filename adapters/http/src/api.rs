//! The REST API: one poem-openapi operation per route, each a few lines over
//! an application service.

mod accounts;
mod api_keys;
mod audit;
mod embedded;
mod insights;
mod members;
mod projects;
mod releases;
mod signing_keys;
mod tags;
mod updates;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt};
use poem_openapi::OpenApiService;
use serde_json::Value;

use crate::metrics::{self, Metrics};
use crate::middleware::{Edge, limit_body};
use crate::rate_limit::RateLimits;
use crate::routes::{DeviceRoute, RouteList, RouteTable};
use crate::state::HttpSettings;
use crate::{dashboard, ops};
use application::Services;

/// Largest JSON body the control-plane routes accept.
const MAX_JSON_BODY_BYTES: u64 = 1024 * 1024;

type Apis = (
    accounts::AccountsApi,
    projects::ProjectsApi,
    members::MembersApi,
    api_keys::ApiKeysApi,
    updates::UpdatesApi,
    releases::ReleasesApi,
    releases::PipelineReleasesApi,
    audit::AuditApi,
    signing_keys::SigningKeysApi,
    insights::InsightsApi,
    embedded::EmbeddedApi,
);

fn api_service() -> OpenApiService<Apis, ()> {
    let apis = Apis::default();
    OpenApiService::new(apis, "expo-updates-server", env!("CARGO_PKG_VERSION")).description(
        "Self-hosted, multi-tenant server for Expo over-the-air updates. \
             Every error response is `{\"error\": \"...\"}`.",
    )
}

/// The OpenAPI document, as served at `/api/openapi.json` and committed in
/// `openapi/openapi.json`.
pub fn openapi_document() -> String {
    mark_optional_properties_nullable(&api_service().spec())
}

/// poem-openapi describes an `Option` field as an optional property that
/// may not be `null`, but the server sends `null` for an absent value (as
/// the Go server did) and accepts `null` in requests. Client generators
/// that check types strictly would reject those answers, so every property
/// a schema does not require is marked `nullable`.
fn mark_optional_properties_nullable(spec: &str) -> String {
    let Ok(mut document) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    let schemas = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut);
    for schema in schemas.into_iter().flat_map(|schemas| schemas.values_mut()) {
        let required: Vec<Value> = schema
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let properties = schema.get_mut("properties").and_then(Value::as_object_mut);
        for (name, property) in properties.into_iter().flatten() {
            if !required
                .iter()
                .any(|field| field.as_str() == Some(name.as_str()))
                && let Some(property) = property.as_object_mut()
            {
                property.insert("nullable".to_owned(), Value::Bool(true));
            }
        }
    }
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| spec.to_owned())
}

/// Serves [`openapi_document`], built once.
#[poem::handler]
fn openapi_json() -> poem::Response {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(openapi_document);
    poem::Response::builder()
        .content_type("application/json; charset=utf-8")
        .body(DOCUMENT.as_str())
}

/// Every route of the server, wrapped in the middleware all requests pass
/// through.
pub fn routes(services: Services, settings: HttpSettings) -> impl Endpoint {
    let limits = RateLimits::new(settings.rate_limits);
    limits.forget_idle_in_background();
    let metrics = Arc::new(Metrics::new(settings.metrics_sources));
    // Uploads may be as large as MAX_UPLOAD_BYTES plus the small form fields
    // and multipart framing; the publish service enforces the exact limit.
    let upload_limit = services.publish.max_upload_bytes().saturating_add(4 << 20);
    let api = api_service();
    let docs = api.swagger_ui();
    let (others, declared) = RouteList::new("")
        .device("/api/updates/{project}/manifest", DeviceRoute::Manifest)
        .device("/api/updates/{project}/assets", DeviceRoute::Asset)
        .get("/api/openapi.json", openapi_json)
        .get("/healthz", ops::healthz)
        .get("/readyz", ops::readyz)
        .get(
            "/metrics",
            metrics::MetricsEndpoint::new(Arc::clone(&metrics), settings.metrics_token),
        )
        .nest(dashboard::PREFIX, dashboard::routes(settings.dashboard))
        .answered_by_middleware("/", &["GET", "HEAD"])
        .finish();
    let table = RouteTable::new(&openapi_document(), declared);
    let inner = others
        .nest(
            "/",
            api.around(move |next, req| limit_body(next, req, MAX_JSON_BODY_BYTES, upload_limit)),
        )
        .nest("/api/docs", docs);
    Edge {
        inner,
        routes: table,
        metrics,
        services,
        limits: Arc::new(limits),
    }
}
