//! Rate limits, applied before a request reaches its handler:
//!
//! - sign-in and registration per client address, so passwords cannot be
//!   guessed at speed and accounts cannot be mass-created;
//! - publishing per project, so one tenant's runaway pipeline cannot fill the
//!   storage or hold the reference lock;
//! - update checks and downloads per project, so one tenant's fleet (or a
//!   client stuck in a loop) takes at most its share of the server and never
//!   starves another tenant's devices.
//!
//! A route is limited by wrapping its endpoint where it is declared
//! ([`sign_in`], [`publish`]); device routes are checked by the edge that
//! answers them ([`RateLimits::refuse_device`]). Each limit is a GCRA bucket per
//! key (governor). A refused request gets
//! 429, `Retry-After` in whole seconds, and `{"error": "..."}`.

use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use poem::http::{HeaderValue, StatusCode};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};
use uuid::Uuid;

use crate::routes::MatchedRoute;

/// How many requests each limit allows; `None` turns a limit off.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimitSettings {
    /// Sign-ins and registrations per client address per minute.
    pub auth_per_minute: Option<NonZeroU32>,
    /// Publishes per project per minute.
    pub publish_per_minute: Option<NonZeroU32>,
    /// Update checks and downloads per project per second.
    pub device_per_second: Option<NonZeroU32>,
    /// Take the client address from the last `X-Forwarded-For` entry (the
    /// one the load balancer in front of the server added) instead of the
    /// socket's peer, which is then the load balancer.
    pub trust_forwarded_for: bool,
}

/// The limiters, shared by every request.
#[derive(Clone)]
pub struct RateLimits {
    auth: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    publish: Option<Arc<DefaultKeyedRateLimiter<u128>>>,
    devices: Option<Arc<DefaultKeyedRateLimiter<u128>>>,
    trust_forwarded_for: bool,
    /// Keys publish buckets by project and credential.
    hasher: std::hash::RandomState,
}

/// The limiters without keeping them alive: the clean-up task ends with
/// the server that owns them.
struct WeakRateLimits {
    auth: Option<Weak<DefaultKeyedRateLimiter<IpAddr>>>,
    publish: Option<Weak<DefaultKeyedRateLimiter<u128>>>,
    devices: Option<Weak<DefaultKeyedRateLimiter<u128>>>,
}

impl WeakRateLimits {
    /// The limiters, while every one that was configured is still alive.
    fn upgrade(&self) -> Option<RateLimits> {
        fn alive<T>(weak: &Option<Weak<T>>) -> Option<Option<Arc<T>>> {
            match weak {
                None => Some(None),
                Some(weak) => weak.upgrade().map(Some),
            }
        }
        Some(RateLimits {
            auth: alive(&self.auth)?,
            publish: alive(&self.publish)?,
            devices: alive(&self.devices)?,
            trust_forwarded_for: false,
            hasher: std::hash::RandomState::new(),
        })
    }
}

/// Which limit a route counts its requests against: declared where the
/// route is, by wrapping its endpoint ([`sign_in`], [`publish`]), or
/// checked by the edge for device routes ([`RateLimits::refuse_device`]).
#[derive(Debug, Clone, Copy)]
enum RateClass {
    /// Per client address.
    SignIn,
    /// Per project and credential.
    Publish,
}

/// The project a route's `{project}` segment names, as a number. Only
/// well-formed ids are counted: anything else is refused by the handler at
/// once, and must not grow the limiter's state.
fn project_of(req: &Request) -> Option<u128> {
    // poem-openapi operations do not see the router's path parameters in
    // their transforms; the matched route reads them from the path.
    let project = match req.raw_path_param("project") {
        Some(project) => project,
        None => MatchedRoute::of(req)?.param(req.uri().path(), "project")?,
    };
    Uuid::try_parse(project).ok().map(|id| id.as_u128())
}

impl RateLimits {
    pub fn new(settings: RateLimitSettings) -> Self {
        // A burst as large as the rate: a whole minute's (or second's)
        // allowance may arrive at once, and then no more until it refills.
        fn per_minute<K: Hash + Eq + Clone>(n: NonZeroU32) -> Arc<DefaultKeyedRateLimiter<K>> {
            Arc::new(RateLimiter::keyed(Quota::per_minute(n)))
        }
        Self {
            auth: settings.auth_per_minute.map(per_minute),
            publish: settings.publish_per_minute.map(per_minute),
            devices: settings
                .device_per_second
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_second(n)))),
            trust_forwarded_for: settings.trust_forwarded_for,
            hasher: std::hash::RandomState::new(),
        }
    }

    /// Forgets keys whose buckets are full again, so the state stays as
    /// small as the set of recently active clients and projects.
    pub fn forget_idle(&self) {
        if let Some(auth) = &self.auth {
            auth.retain_recent();
            auth.shrink_to_fit();
        }
        for limiter in [&self.publish, &self.devices].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Runs [`forget_idle`](Self::forget_idle) every ten seconds for as long
    /// as the limiters are in use.
    pub fn forget_idle_in_background(&self) {
        if self.auth.is_none() && self.publish.is_none() && self.devices.is_none() {
            return;
        }
        let weak = WeakRateLimits {
            auth: self.auth.as_ref().map(Arc::downgrade),
            publish: self.publish.as_ref().map(Arc::downgrade),
            devices: self.devices.as_ref().map(Arc::downgrade),
        };
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(10));
            loop {
                every.tick().await;
                let Some(limits) = weak.upgrade() else {
                    return;
                };
                limits.forget_idle();
            }
        });
    }

    /// How long the caller must wait, when the request is over the limit
    /// of `class`.
    /// The 429 for an update check or download over the limit of the
    /// project its path names (`project`, as sent; one that is not an id is
    /// not counted).
    pub(crate) fn refuse_device(&self, project: &str) -> Option<Response> {
        let project = Uuid::try_parse(project).ok()?.as_u128();
        wait_of(self.devices.as_ref()?.check_key(&project)).map(too_many_requests)
    }

    fn wait_for(&self, req: &Request, class: RateClass) -> Option<Duration> {
        let outcome = match class {
            RateClass::SignIn => self.auth.as_ref()?.check_key(&self.client_address(req)?),
            RateClass::Publish => {
                let project = project_of(req)?;
                // Counted per project *and* credential: requests with a
                // wrong or no key (refused cheaply, before the body is
                // read) cannot use up the allowance of the project's real
                // pipeline.
                let credential = req
                    .headers()
                    .get(poem::http::header::AUTHORIZATION)
                    .map(|value| value.as_bytes())
                    .unwrap_or_default();
                let key = u128::from(self.hasher.hash_one((project, credential)));
                self.publish.as_ref()?.check_key(&key)
            }
        };
        wait_of(outcome)
    }

    fn client_address(&self, req: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(forwarded) = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .next_back()
                .and_then(|value| value.rsplit(',').next())
                .and_then(|entry| parse_forwarded_address(entry.trim()))
        {
            return Some(per_subscriber(forwarded));
        }
        req.remote_addr()
            .as_socket_addr()
            .map(|address| per_subscriber(address.ip()))
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port or (IPv6)
/// in brackets.
fn parse_forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// The address a limit counts: IPv4 as it is, IPv6 by its /64 (one
/// subscriber's network), so rotating through one's own addresses does not
/// reset the allowance.
fn per_subscriber(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

/// Sign-in and registration: limited per client address.
pub(crate) fn sign_in(endpoint: impl Endpoint + 'static) -> impl Endpoint {
    limited(endpoint, RateClass::SignIn, None)
}

/// The dashboard's sign-in and registration forms: limited as [`sign_in`],
/// answered over the limit with the page `render` makes (same status and
/// `Retry-After`).
pub(crate) fn sign_in_page(
    endpoint: impl Endpoint + 'static,
    render: fn() -> Response,
) -> impl Endpoint {
    limited(endpoint, RateClass::SignIn, Some(render))
}

/// Publishing: limited per project and credential.
pub(crate) fn publish(endpoint: impl Endpoint + 'static) -> impl Endpoint {
    limited(endpoint, RateClass::Publish, None)
}

/// Answers 429 with `Retry-After` when the request is over the limit of
/// `class` (the server's [`RateLimits`] are in the request's data), and
/// passes it on otherwise.
fn limited(
    endpoint: impl Endpoint + 'static,
    class: RateClass,
    page: Option<fn() -> Response>,
) -> impl Endpoint {
    endpoint.around(move |next, req| async move {
        let wait = req
            .data::<Arc<RateLimits>>()
            .and_then(|limits| limits.wait_for(&req, class));
        let Some(wait) = wait else {
            return next.call(req).await.map(IntoResponse::into_response);
        };
        let mut response = too_many_requests(wait);
        if let Some(render) = page {
            let retry_after = response.headers().get("retry-after").cloned();
            response = render();
            response.headers_mut().insert(
                "retry-after",
                retry_after.unwrap_or_else(|| HeaderValue::from_static("1")),
            );
        }
        Ok(response)
    })
}

/// How long a refused request must wait; none when it was let through.
fn wait_of<T>(
    outcome: Result<T, governor::NotUntil<governor::clock::QuantaInstant>>,
) -> Option<Duration> {
    outcome
        .err()
        .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

fn too_many_requests(wait: Duration) -> Response {
    // Whole seconds, rounded up, and at least one.
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = poem::web::Json(serde_json::json!({
        "error": format!("Too many requests. Retry in {seconds} s."),
    }))
    .with_status(StatusCode::TOO_MANY_REQUESTS)
    .into_response();
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from(seconds));
    response
}
