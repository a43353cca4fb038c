//! `/metrics` in the Prometheus text format: what operators graph and alert
//! on. Requests, latency and status by route; update checks by project,
//! platform and answer; asset bytes; publishes; and counters the rest of the
//! server keeps (cache hits, database and storage errors), read at scrape
//! time.
//!
//! Route labels are the routes' templates (`/api/projects/{id}/keys`), or
//! `unmatched`, and methods outside the standard set are `OTHER`: a client
//! cannot create label values (and memory) by sending odd paths or methods.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-request counter: all static, so counting a request
/// allocates nothing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

/// Update checks by project: the project id is the one the request carried,
/// moved in, not copied.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ManifestLabels {
    project: String,
    platform: &'static str,
    answer: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EncodingLabels {
    encoding: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// A counter kept elsewhere (an application service, an adapter), read at
/// each scrape.
pub struct CounterSource {
    pub name: &'static str,
    pub help: &'static str,
    pub read: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for CounterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Sources(Vec<CounterSource>);

impl Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for source in &self.0 {
            let counter = ConstCounter::new((source.read)());
            let metric =
                encoder.encode_descriptor(source.name, source.help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// The server's metrics, shared by every request.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    manifests: Family<ManifestLabels, Counter>,
    asset_bytes: Family<EncodingLabels, Counter>,
    publishes: Family<OutcomeLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~3.3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

impl Metrics {
    pub fn new(sources: Vec<CounterSource>) -> Self {
        let mut registry = Registry::with_prefix("expo_updates");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer, by route template",
            latency.clone(),
        );
        let manifests = Family::<ManifestLabels, Counter>::default();
        registry.register(
            "manifest_answers",
            "Update checks answered, by project, platform and answer (update, noUpdateAvailable, rollBackToEmbedded)",
            manifests.clone(),
        );
        let asset_bytes = Family::<EncodingLabels, Counter>::default();
        registry.register(
            "asset_bytes",
            "Asset bytes sent to devices, by content encoding",
            asset_bytes.clone(),
        );
        let publishes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "publishes",
            "Publish requests, by outcome (published, refused, failed)",
            publishes.clone(),
        );
        registry.register_collector(Box::new(Sources(sources)));
        Self {
            registry,
            requests,
            latency,
            manifests,
            asset_bytes,
            publishes,
        }
    }

    /// Records a finished request, with what its handler reported in the
    /// response's extensions.
    pub fn observe_response(
        &self,
        method: &str,
        route: &'static str,
        publish: bool,
        response: &mut poem::Response,
        elapsed: Duration,
    ) {
        let status = response.status().as_u16();
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "OTHER",
        };
        self.observe_request(method, route, status, elapsed);
        if publish {
            self.observe_publish(match status {
                200..=299 => "published",
                400..=499 => "refused",
                _ => "failed",
            });
        }
    }

    pub fn observe_request(
        &self,
        method: &'static str,
        route: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status: status_label(status),
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_manifest(&self, project: String, platform: &'static str, answer: &'static str) {
        self.manifests
            .get_or_create(&ManifestLabels {
                project,
                platform,
                answer,
            })
            .inc();
    }

    pub fn observe_asset_bytes(&self, encoding: &'static str, bytes: u64) {
        self.asset_bytes
            .get_or_create(&EncodingLabels { encoding })
            .inc_by(bytes);
    }

    pub fn observe_publish(&self, outcome: &'static str) {
        self.publishes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        text
    }
}

/// A status code as a static label.
fn status_label(status: u16) -> &'static str {
    static LABELS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| (0..1000).map(|code| code.to_string()).collect());
    LABELS
        .get(usize::from(status))
        .map_or("other", String::as_str)
}

/// `GET /metrics`. With `METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>`.
pub struct MetricsEndpoint {
    metrics: Arc<Metrics>,
    token: Option<String>,
}

impl MetricsEndpoint {
    pub fn new(metrics: Arc<Metrics>, token: Option<String>) -> Self {
        Self { metrics, token }
    }
}

impl poem::Endpoint for MetricsEndpoint {
    type Output = poem::Response;

    async fn call(&self, req: poem::Request) -> poem::Result<poem::Response> {
        use poem::IntoResponse;
        if let Some(expected) = &self.token {
            let presented = req
                .headers()
                .get(poem::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default();
            let matches: bool =
                subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes()).into();
            if !matches {
                return Ok(poem::web::Json(serde_json::json!({
                    "error": "Missing or invalid Authorization header"
                }))
                .with_status(poem::http::StatusCode::UNAUTHORIZED)
                .into_response());
            }
        }
        Ok(poem::Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(self.metrics.render()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_sources() {
        let metrics = Metrics::new(vec![CounterSource {
            name: "cache_hits",
            help: "hits",
            read: Arc::new(|| 7),
        }]);
        metrics.observe_request("GET", "/healthz", 200, Duration::from_millis(2));
        metrics.observe_manifest("p1".to_owned(), "ios", "update");
        let text = metrics.render();
        assert!(text.contains(
            "expo_updates_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"
        ), "{text}");
        assert!(text.contains("expo_updates_cache_hits_total 7"), "{text}");
        assert!(text.contains(
            "expo_updates_manifest_answers_total{project=\"p1\",platform=\"ios\",answer=\"update\"} 1"
        ), "{text}");
    }
}
