//! The REST API: one poem-openapi operation per route, each a few lines over
//! an application service.

mod accounts;
mod api_keys;
mod audit;
mod insights;
mod members;
mod projects;
mod releases;
mod signing_keys;
mod updates;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::{OpenApiService, Tags};
use serde_json::Value;

use crate::metrics::{self, Metrics, MetricsToken};
use crate::middleware::{
    RouteTable, allow_header, json_errors, limit_body, limit_headers, normalize_empty_json_body,
    request_log,
};
use crate::rate_limit::{self, RateLimits};
use crate::state::HttpSettings;
use crate::{assets, dashboard, ops, protocol};
use application::Services;

/// Largest JSON body the control-plane routes accept.
const MAX_JSON_BODY_BYTES: u64 = 1024 * 1024;

#[derive(Tags)]
enum ApiTags {
    /// Accounts and session tokens.
    Auth,
    /// Projects: the tenant boundary.
    Projects,
    /// Who belongs to a project, and with which role.
    Members,
    /// API keys that release pipelines publish with.
    Keys,
    /// Publishing and serving updates (the Expo Updates protocol).
    Updates,
    /// Branches, channels, rollouts, history, republish and delete.
    Releases,
}

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
);

fn api_service() -> OpenApiService<Apis, ()> {
    let apis = (
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
    );
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
    let route_table = Arc::new(route_table());
    let logged_routes = Arc::clone(&route_table);
    let observed = Arc::clone(&metrics);
    // Uploads may be as large as MAX_UPLOAD_BYTES plus the small form fields
    // and multipart framing; the publish service enforces the exact limit.
    let upload_limit = services.publish.max_upload_bytes().saturating_add(4 << 20);
    let api = api_service();
    let docs = api.swagger_ui();
    Route::new()
        .nest(
            "/",
            api.around(move |next, req| {
                let limit = if is_upload(&req) {
                    upload_limit
                } else {
                    MAX_JSON_BODY_BYTES
                };
                limit_body(next, req, limit)
            }),
        )
        .at("/api/openapi.json", poem::get(openapi_json))
        .nest("/api/docs", docs)
        .at(
            "/api/updates/:project/manifest",
            poem::get(protocol::manifest),
        )
        // HEAD is routed explicitly so the handler sees it (and does not
        // count it as a download); hyper sends no body for HEAD.
        .at(
            "/api/updates/:project/assets",
            poem::get(assets::download).head(assets::download),
        )
        .at("/healthz", ops::healthz)
        .at("/readyz", ops::readyz)
        .at("/metrics", poem::get(metrics::metrics_endpoint))
        .nest(dashboard::PREFIX, dashboard::routes(settings.dashboard))
        .around(dashboard::root_redirect)
        .around(normalize_empty_json_body)
        .around(move |next, req| rate_limit::enforce(next, req, limits.clone()))
        .data(services)
        .data(metrics)
        .data(MetricsToken(settings.metrics_token))
        .catch_all_error(json_errors)
        .around(move |next, req| allow_header(next, req, Arc::clone(&route_table)))
        .around(limit_headers)
        .around(move |next, req| {
            request_log(next, req, Arc::clone(&observed), Arc::clone(&logged_routes))
        })
}

/// The methods of every route: the documented ones from the OpenAPI
/// document, and those it does not describe.
fn route_table() -> RouteTable {
    let document: Value = serde_json::from_str(&openapi_document()).unwrap_or_default();
    let mut routes: Vec<(String, Vec<String>)> = document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, operations)| {
            let mut methods: Vec<String> = operations
                .as_object()
                .into_iter()
                .flatten()
                .map(|(method, _)| method.to_ascii_uppercase())
                .collect();
            if methods.iter().any(|method| method == "GET") {
                methods.push("HEAD".to_owned());
            }
            (path.clone(), methods)
        })
        .collect();
    for path in [
        crate::middleware::MANIFEST_ROUTE,
        crate::middleware::ASSETS_ROUTE,
        "/api/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        routes.push((path.to_owned(), vec!["GET".to_owned(), "HEAD".to_owned()]));
    }
    for (path, methods) in dashboard::ROUTE_TEMPLATES {
        routes.push((
            (*path).to_owned(),
            methods.iter().map(|method| (*method).to_owned()).collect(),
        ));
    }
    RouteTable::new(routes)
}

/// Whether a request is a publish upload, which gets the upload size limit
/// instead of the JSON one.
fn is_upload(req: &poem::Request) -> bool {
    req.method() == poem::http::Method::POST && req.uri().path().ends_with("/publish")
}
