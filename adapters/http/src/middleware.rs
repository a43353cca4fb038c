//! What every request passes through, as one layer ([`Edge`]): the route
//! it matched, a request id and one access-log line, the header limit, JSON
//! bodies for every error, and the old server's tolerance of empty JSON
//! bodies. One layer rather than a stack of `around`s: each layer of poem
//! middleware holds the request and the future of the layer below it, and
//! every update check paid for moving that stack.

use std::sync::Arc;
use std::time::Instant;

use application::Services;
use futures_util::StreamExt;
use poem::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use poem::http::{HeaderName, HeaderValue, Method, StatusCode};
use poem::{Body, Endpoint, IntoResponse, Request, Response};
use tokio::io::AsyncReadExt;
use tracing::Instrument;

use crate::error::json_errors;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::routes::{MatchedRoute, RouteInfo, RouteKind, RouteTable};
use crate::{dashboard, device};

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The outermost endpoint: wraps the server's routes in what every request
/// passes through, and hands the handlers the services and rate limits (in
/// the request's data).
pub(crate) struct Edge<E> {
    pub(crate) inner: E,
    pub(crate) routes: &'static RouteTable,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) services: Services,
    pub(crate) limits: Arc<RateLimits>,
}

impl<E: Endpoint> Endpoint for Edge<E> {
    type Output = Response;

    /// Tags the request with an id (the caller's `X-Request-Id` when it is a
    /// sane token, else a fresh UUID), returns it in the response, and logs
    /// method, path, status and latency in a span carrying it. Headers, the
    /// query string and bodies are never logged: they may hold secrets.
    ///
    /// Update checks and downloads (every app launch, every device) are
    /// logged at `debug` unless they fail with a 5xx: at `info` the log line
    /// cost about a third of the server's capacity on that path.
    /// `RUST_LOG=debug` shows them.
    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let matched = self.routes.matching(req.uri().path());
        let route = matched.map_or("unmatched", |route| route.template);
        let kind = matched.map(|route| route.kind).unwrap_or_default();
        // For the layers below the router; device routes are answered here.
        if let Some(matched) = matched.filter(|route| route.device.is_none()) {
            req.extensions_mut().insert(MatchedRoute(matched));
        }
        let method = req.method().clone();
        let publish = method == Method::POST && kind == RouteKind::Upload;
        let request_id = RequestId::of(&req);
        let device_traffic = kind == RouteKind::Device;
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
            let mut response = self.answer(req, matched).await;
            response
                .headers_mut()
                .insert(REQUEST_ID.clone(), request_id.header_value());
            let status = response.status().as_u16();
            let elapsed = started.elapsed();
            self.metrics
                .observe_response(method.as_str(), route, publish, &mut response, elapsed);
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
}

impl<E: Endpoint> Edge<E> {
    /// The response to `req`, before the request id and the log line.
    async fn answer(&self, req: Request, matched: Option<&'static RouteInfo>) -> Response {
        if let Some(refused) = oversized_headers(&req) {
            return refused;
        }
        let mut response = match matched.and_then(|info| Some((info.device?, info))) {
            Some((route, info)) => {
                device::answer(
                    route,
                    info,
                    &req,
                    &self.services,
                    &self.limits,
                    &self.metrics,
                )
                .await
            }
            None => self.route(req).await,
        };
        // `Allow` on a 405 (RFC 9110 §15.5.6), naming the methods the path
        // answers.
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(route) = matched
            && let Ok(value) = HeaderValue::from_str(route.allowed_methods())
        {
            response.headers_mut().insert(ALLOW, value);
        }
        response
    }
}

impl<E: Endpoint> Edge<E> {
    /// Everything but device traffic: through poem's router, with the
    /// services and limits in the request's data, and every error as JSON.
    async fn route(&self, mut req: Request) -> Response {
        if let Some(redirect) = dashboard::root_redirect(&req) {
            return redirect;
        }
        normalize_empty_json_body(&mut req);
        req.extensions_mut().insert(self.services.clone());
        req.extensions_mut().insert(Arc::clone(&self.limits));
        match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => json_errors(error),
        }
    }
}

/// A request's id: the caller's, or one made for it.
enum RequestId {
    /// The caller's `X-Request-Id`, a sane token.
    Given(HeaderValue),
    Fresh(uuid::Uuid),
}

impl RequestId {
    fn of(req: &Request) -> Self {
        req.headers()
            .get(&REQUEST_ID)
            .filter(|value| is_sane_request_id(value.as_bytes()))
            .map_or_else(
                || Self::Fresh(uuid::Uuid::new_v4()),
                |value| Self::Given(value.clone()),
            )
    }

    fn header_value(&self) -> HeaderValue {
        match self {
            Self::Given(value) => value.clone(),
            Self::Fresh(id) => {
                let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
                HeaderValue::from_bytes(id.hyphenated().encode_lower(&mut text).as_bytes())
                    .unwrap_or_else(|_| HeaderValue::from_static("-"))
            }
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Sane ids are ASCII tokens.
            Self::Given(value) => f.write_str(value.to_str().unwrap_or_default()),
            Self::Fresh(id) => id.hyphenated().fmt(f),
        }
    }
}

fn is_sane_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

/// Refuses a body larger than the route's limit with 413 (`upload_bytes`
/// for uploads, `json_bytes` for the rest): at once when the declared length
/// says so, after reading when a small body is chunked. A chunked upload is
/// cut off at the limit instead (see below).
pub async fn limit_body<E: Endpoint>(
    next: Arc<E>,
    mut req: Request,
    json_bytes: u64,
    upload_bytes: u64,
) -> poem::Result<Response> {
    let max_bytes = match MatchedRoute::of(&req).map(|route| route.kind) {
        Some(RouteKind::Upload) => upload_bytes,
        _ => json_bytes,
    };
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
            // Uploads stream; past the cut-off the body fails rather than
            // ends, so an upload is never stored cut short (the publish
            // refuses one over its own limit with 413 long before this).
            let mut seen = 0u64;
            let body = req.take_body().into_bytes_stream().map(move |chunk| {
                let chunk = chunk?;
                seen += chunk.len() as u64;
                if seen > max_bytes {
                    return Err(std::io::Error::other(format!(
                        "the request body is larger than {max_bytes} bytes"
                    )));
                }
                Ok(chunk)
            });
            req.set_body(Body::from_bytes_stream(body));
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
fn normalize_empty_json_body(req: &mut Request) {
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
}

/// The most header bytes (names and values) a request may carry: far above
/// what browsers, the Expo clients and CI tools send (a few KiB), far below
/// what would let a client make the server hold megabytes per connection.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A 431 for a request whose headers exceed [`MAX_HEADER_BYTES`].
fn oversized_headers(req: &Request) -> Option<Response> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (size > MAX_HEADER_BYTES).then(|| {
        poem::web::Json(serde_json::json!({
            "error": format!("Request headers are larger than {MAX_HEADER_BYTES} bytes."),
        }))
        .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .into_response()
    })
}
