//! What every request passes through: a request id and one access-log line,
//! JSON bodies for every error, and the old server's tolerance of empty JSON
//! bodies.

use std::sync::Arc;
use std::time::Instant;

use poem::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::metrics::Metrics;

const REQUEST_ID: &str = "x-request-id";

/// Tags the request with an id (the caller's `X-Request-Id` when it is a sane
/// token, else a fresh UUID), returns it in the response, and logs method,
/// path, status and latency in a span carrying it. Headers, the query string
/// and bodies are never logged: they may hold secrets.
///
/// Update checks and downloads (every app launch, every device) are logged
/// at `debug` unless they fail with a 5xx: at `info` the log line cost about
/// a third of the server's capacity on that path. `RUST_LOG=debug` shows them.
pub async fn request_log<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    metrics: Arc<Metrics>,
    routes: Arc<RouteTable>,
) -> poem::Result<Response> {
    let method = req.method().clone();
    let route = routes.template(req.uri().path()).unwrap_or("unmatched");
    let publish = req.method() == Method::POST && req.uri().path().ends_with("/publish");
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let device_traffic = is_device_traffic(req.uri().path());
    let span = if device_traffic {
        tracing::debug_span!(
            "request",
            request_id = %request_id,
            method = %req.method(),
            path = %req.uri().path(),
        )
    } else {
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %req.method(),
            path = %req.uri().path(),
        )
    };
    async move {
        let started = Instant::now();
        let mut response = match next.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        metrics.observe_response(method.as_str(), route, publish, &response, elapsed);
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        if device_traffic && status < 500 {
            tracing::debug!(status, latency_ms, "request served");
        } else {
            tracing::info!(status, latency_ms, "request served");
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// `GET /api/updates/{project}/manifest` and `.../assets`: what devices ask.
fn is_device_traffic(path: &str) -> bool {
    path.starts_with("/api/updates/") && (path.ends_with("/manifest") || path.ends_with("/assets"))
}

fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Leaves handlers' error responses as they are, and turns every other error
/// that escaped a handler (unknown route, wrong method,
/// malformed body, missing credentials, oversized body) into
/// `{"error": "..."}` with its status.
pub async fn json_errors(error: poem::Error) -> Response {
    if error.is_from_response() {
        // A handler's own error response: already `{"error": ...}`.
        return error.into_response();
    }
    // The old server answered an unsupported content type with 400, and
    // clients written against it check for 400.
    let status = match error.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::BAD_REQUEST,
        status => status,
    };
    let message = if error.is::<poem_openapi::error::AuthorizationError>() {
        "Missing or invalid Authorization header".to_owned()
    } else if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(%error, "unhandled error");
        "Internal server error.".to_owned()
    } else {
        match status {
            StatusCode::NOT_FOUND => "Not Found".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => "Method Not Allowed".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE => "Request body too large.".to_owned(),
            _ => error.to_string(),
        }
    };
    poem::web::Json(serde_json::json!({ "error": message }))
        .with_status(status)
        .into_response()
}

/// Refuses a body larger than `max_bytes` with 413: at once when the
/// declared length says so, after reading when a small body is chunked. A
/// chunked upload is cut off at the limit instead (see below).
pub async fn limit_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    max_bytes: u64,
) -> poem::Result<Response> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.parse::<u64>().ok());
    match declared {
        Some(length) if length > max_bytes => {
            return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        Some(_) => {}
        None if max_bytes <= MAX_BUFFERED_BODY_BYTES => {
            // Small bodies (JSON) are read here, so that one past the limit
            // is a 413 like a declared one, not a parse error.
            let mut body = Vec::new();
            req.take_body()
                .into_async_read()
                .take(max_bytes + 1)
                .read_to_end(&mut body)
                .await
                .map_err(|error| poem::Error::new(error, StatusCode::BAD_REQUEST))?;
            if body.len() as u64 > max_bytes {
                return Err(poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE));
            }
            req.set_body(Body::from_vec(body));
        }
        None => {
            // Uploads stream; the publish refuses one over its limit with
            // 413 long before this cut-off is reached.
            let body = req.take_body().into_async_read().take(max_bytes);
            req.set_body(Body::from_async_read(body));
        }
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Bodies up to this size without a declared length are read into memory
/// before the handler runs (see [`limit_body`]).
const MAX_BUFFERED_BODY_BYTES: u64 = 4 * 1024 * 1024;

/// Treats a POST or PATCH with an empty body and no content type as `{}`, as
/// the old server did: a client that omits the body then gets "Missing
/// parameters." (or the defaults) rather than a content-type error.
pub async fn normalize_empty_json_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
) -> poem::Result<Response> {
    let writes = req.method() == Method::POST || req.method() == Method::PATCH;
    let headers = req.headers();
    let empty = match headers.get(CONTENT_LENGTH) {
        Some(length) => length.as_bytes() == b"0",
        None => !headers.contains_key(TRANSFER_ENCODING),
    };
    if writes && empty && !req.headers().contains_key(CONTENT_TYPE) {
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        req.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from_static("2"));
        req.set_body(Body::from_string("{}".to_owned()));
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// The most header bytes (names and values) a request may carry: far above
/// what browsers, the Expo clients and CI tools send (a few KiB), far below
/// what would let a client make the server hold megabytes per connection.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests whose headers exceed [`MAX_HEADER_BYTES`] with 431.
pub async fn limit_headers<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        return Ok(poem::web::Json(serde_json::json!({
            "error": format!("Request headers are larger than {MAX_HEADER_BYTES} bytes."),
        }))
        .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .into_response());
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Every route template with the methods it answers: for the `Allow` header
/// of a 405, and for metrics labels (a template, never a client's path).
///
/// Templates are `&'static str` (the table is built once per server): they
/// label metrics on every request without an allocation.
pub struct RouteTable(Vec<(&'static str, Vec<String>, String)>);

impl RouteTable {
    /// From `(template, methods)` pairs; `{name}` and `:name` segments match
    /// any one segment.
    pub fn new(routes: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self(
            routes
                .into_iter()
                .map(|(template, methods)| {
                    let segments = template
                        .trim_matches('/')
                        .split('/')
                        .map(str::to_owned)
                        .collect();
                    let template: &'static str = Box::leak(template.into_boxed_str());
                    (template, segments, methods.join(", "))
                })
                .collect(),
        )
    }

    /// The template of the route `path` belongs to, if any.
    pub fn template(&self, path: &str) -> Option<&'static str> {
        // What devices ask, without scanning the table.
        if let Some(rest) = path.strip_prefix("/api/updates/")
            && let Some((project, leaf)) = rest.split_once('/')
            && !project.is_empty()
        {
            match leaf {
                "manifest" => return Some(MANIFEST_ROUTE),
                "assets" => return Some(ASSETS_ROUTE),
                _ => {}
            }
        }
        self.matching(path).map(|(template, _, _)| *template)
    }

    fn allowed(&self, path: &str) -> Option<&str> {
        self.matching(path).map(|(_, _, methods)| methods.as_str())
    }

    fn matching(&self, path: &str) -> Option<&(&'static str, Vec<String>, String)> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let is_parameter = |segment: &str| segment.starts_with('{') || segment.starts_with(':');
        // The template with the most literal segments wins, as in routing:
        // `signing-keys/generate` before `signing-keys/{keyId}`.
        self.0
            .iter()
            .filter(|(_, template, _)| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(expected, actual)| is_parameter(expected) || expected == actual)
            })
            .max_by_key(|(_, template, _)| {
                template
                    .iter()
                    .filter(|segment| !is_parameter(segment))
                    .count()
            })
    }
}

/// The update-check route's template.
pub const MANIFEST_ROUTE: &str = "/api/updates/{project}/manifest";
/// The asset route's template.
pub const ASSETS_ROUTE: &str = "/api/updates/{project}/assets";

/// Adds `Allow` to a 405 (RFC 9110 §15.5.6), naming the methods the path
/// answers.
pub async fn allow_header<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    routes: Arc<RouteTable>,
) -> poem::Result<Response> {
    // A cheap clone (shared bytes), read only for a 405.
    let uri = req.uri().clone();
    let mut response = next.call(req).await?.into_response();
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = routes.allowed(uri.path())
        && let Ok(value) = HeaderValue::from_str(methods)
    {
        response
            .headers_mut()
            .insert(poem::http::header::ALLOW, value);
    }
    Ok(response)
}
