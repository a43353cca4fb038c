//! The one table of routes: every route the server answers, with the
//! methods it takes and what it is (device traffic, an upload), for the
//! access log, the metrics labels, `Allow` and the body limits.
//!
//! The REST API's routes come from its OpenAPI document (so from the
//! operations themselves: an operation whose body is `multipart/form-data`
//! is an upload); every other route is declared with [`RouteList`], which
//! registers it with poem and records it here in one step. Rate limits are
//! middleware attached to the endpoints where they are declared (see
//! `rate_limit`).

use poem::endpoint::BoxEndpoint;
use poem::{Endpoint, EndpointExt, Request, Route, RouteMethod};
use serde_json::Value;

/// What a route is, beyond its template and methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum RouteKind {
    /// The control plane, the dashboard, probes: bodies up to 1 MiB.
    #[default]
    Control,
    /// What devices ask (update checks, downloads): logged at `debug`.
    Device,
    /// A publish or another file upload (`multipart/form-data` or
    /// `application/octet-stream`): bodies up to the upload limit, counted
    /// in metrics.
    Upload,
}

/// The routes devices ask on every app launch. They are answered by the
/// edge straight from the table (see `device`), not through poem's router:
/// the router's matching, boxing and request data cost a fifth of an update
/// check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceRoute {
    /// `GET /api/updates/{project}/manifest`
    Manifest,
    /// `GET /api/updates/{project}/assets`
    Asset,
}

/// One route of the table.
#[derive(Debug)]
pub(crate) struct RouteInfo {
    /// `/api/projects/{id}`: the label metrics and logs use.
    pub template: &'static str,
    pub kind: RouteKind,
    /// Set for device routes, which the edge answers itself.
    pub device: Option<DeviceRoute>,
    segments: Vec<String>,
    /// `GET, HEAD, POST`: the `Allow` header of a 405.
    methods: String,
}

/// The route a request matched, put in its extensions by the access log
/// (the outermost middleware) so that later layers need not match again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatchedRoute(pub &'static RouteInfo);

impl MatchedRoute {
    /// The matched route of `req`, if it matched one.
    pub(crate) fn of(req: &Request) -> Option<&'static RouteInfo> {
        req.extensions().get::<Self>().map(|matched| matched.0)
    }
}

/// Every route template with the methods it answers. Built once per server
/// and kept for its lifetime, so templates label metrics on every request
/// without an allocation.
pub(crate) struct RouteTable {
    /// Device routes first.
    routes: Vec<RouteInfo>,
    devices: usize,
}

impl RouteTable {
    /// The API's routes from its OpenAPI document, then `others`.
    pub(crate) fn new(openapi_document: &str, others: Vec<DeclaredRoute>) -> &'static Self {
        let document: Value = serde_json::from_str(openapi_document).unwrap_or_default();
        let mut routes: Vec<DeclaredRoute> = document["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, operations)| {
                let operations = operations.as_object().into_iter().flatten();
                let mut declared = DeclaredRoute::new(path.clone(), RouteKind::Control);
                for (method, operation) in operations {
                    let method = method.to_ascii_uppercase();
                    if method == "GET" {
                        declared.methods.push("GET".to_owned());
                        declared.methods.push("HEAD".to_owned());
                    } else {
                        declared.methods.push(method);
                    }
                    let content = operation.pointer("/requestBody/content");
                    let uploads = ["multipart/form-data", "application/octet-stream"];
                    if uploads
                        .iter()
                        .any(|kind| content.and_then(|c| c.get(kind)).is_some())
                    {
                        declared.kind = RouteKind::Upload;
                    }
                }
                declared
            })
            .collect();
        routes.extend(others);
        routes.sort_by_key(|route| route.kind != RouteKind::Device);
        let devices = routes
            .iter()
            .filter(|route| route.kind == RouteKind::Device)
            .count();
        let routes = routes
            .into_iter()
            .map(|route| RouteInfo {
                segments: route
                    .template
                    .trim_matches('/')
                    .split('/')
                    .map(str::to_owned)
                    .collect(),
                template: Box::leak(route.template.into_boxed_str()),
                kind: route.kind,
                device: route.device,
                methods: route.methods.join(", "),
            })
            .collect();
        Box::leak(Box::new(Self { routes, devices }))
    }

    /// The route `path` belongs to, if any: the template with the most
    /// literal segments wins, as in routing (`signing-keys/generate` before
    /// `signing-keys/{keyId}`).
    pub(crate) fn matching(&'static self, path: &str) -> Option<&'static RouteInfo> {
        // The path's segments, split once; no route has more.
        let mut segments = [""; MAX_SEGMENTS];
        let mut count = 0;
        for segment in path.trim_matches('/').split('/') {
            *segments.get_mut(count)? = segment;
            count += 1;
        }
        let segments = &segments[..count];
        let matches = |route: &&RouteInfo| {
            route.segments.len() == segments.len()
                && route
                    .segments
                    .iter()
                    .zip(segments)
                    .all(|(expected, actual)| is_parameter(expected) || expected == actual)
        };
        // What devices ask (every app launch) is looked up first; no other
        // route has the same shape, so the first match is the match.
        if let Some(device) = self.routes[..self.devices].iter().find(matches) {
            return Some(device);
        }
        self.routes[self.devices..]
            .iter()
            .filter(matches)
            .max_by_key(|route| {
                route
                    .segments
                    .iter()
                    .filter(|segment| !is_parameter(segment))
                    .count()
            })
    }
}

/// More segments than any route has.
const MAX_SEGMENTS: usize = 16;

fn is_parameter(segment: &str) -> bool {
    segment.starts_with('{')
}

impl RouteInfo {
    pub(crate) fn allowed_methods(&self) -> &str {
        &self.methods
    }

    /// The segment of `path` (a path this route matched) at the template's
    /// `{name}`.
    pub(crate) fn param<'p>(&self, path: &'p str, name: &str) -> Option<&'p str> {
        let position = self.segments.iter().position(|segment| {
            segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) == Some(name)
        })?;
        path.trim_matches('/').split('/').nth(position)
    }
}

/// A route as declared, before it joins the table.
pub(crate) struct DeclaredRoute {
    template: String,
    methods: Vec<String>,
    kind: RouteKind,
    device: Option<DeviceRoute>,
}

impl DeclaredRoute {
    fn new(template: String, kind: RouteKind) -> Self {
        Self {
            template,
            methods: Vec::new(),
            kind,
            device: None,
        }
    }
}

/// Declares routes: each call registers the endpoint with poem and records
/// the route for the [`RouteTable`]. Templates are written `{name}`.
pub(crate) struct RouteList {
    prefix: &'static str,
    route: Route,
    declared: Vec<DeclaredRoute>,
}

impl RouteList {
    /// Routes whose templates start with `prefix` once nested there.
    pub(crate) fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            route: Route::new(),
            declared: Vec::new(),
        }
    }

    /// A page or resource read with `GET` (and `HEAD`).
    pub(crate) fn get(self, template: &str, endpoint: impl Endpoint + 'static) -> Self {
        self.add(
            template,
            RouteKind::Control,
            poem::get(boxed(endpoint)),
            &["GET", "HEAD"],
        )
    }

    /// A form or action sent with `POST`.
    pub(crate) fn post(self, template: &str, endpoint: impl Endpoint + 'static) -> Self {
        self.add(
            template,
            RouteKind::Control,
            poem::post(boxed(endpoint)),
            &["POST"],
        )
    }

    /// A page with a form that posts back to it.
    pub(crate) fn get_post(
        self,
        template: &str,
        get: impl Endpoint + 'static,
        post: impl Endpoint + 'static,
    ) -> Self {
        let methods = poem::get(boxed(get)).post(boxed(post));
        self.add(
            template,
            RouteKind::Control,
            methods,
            &["GET", "HEAD", "POST"],
        )
    }

    /// Device traffic, answered for `GET` and `HEAD` alike by the edge
    /// (hyper sends no body for HEAD; the handler sees a HEAD and does not
    /// count it as a download). Not registered with poem's router.
    pub(crate) fn device(mut self, template: &str, route: DeviceRoute) -> Self {
        let mut declared =
            DeclaredRoute::new(format!("{}{template}", self.prefix), RouteKind::Device);
        declared.methods = vec!["GET".to_owned(), "HEAD".to_owned()];
        declared.device = Some(route);
        self.declared.push(declared);
        self
    }

    /// Routes declared with their own [`RouteList`] (with `prefix`), as one
    /// endpoint under `prefix`.
    pub(crate) fn nest(
        mut self,
        prefix: &str,
        nested: (impl Endpoint + 'static, Vec<DeclaredRoute>),
    ) -> Self {
        let (endpoint, declared) = nested;
        self.route = self.route.nest(prefix, boxed(endpoint));
        self.declared.extend(declared);
        self
    }

    /// A route answered by middleware before routing (so not registered
    /// here), recorded for the table.
    pub(crate) fn answered_by_middleware(mut self, template: &str, methods: &[&str]) -> Self {
        let mut declared =
            DeclaredRoute::new(format!("{}{template}", self.prefix), RouteKind::Control);
        declared.methods = methods.iter().map(|name| (*name).to_owned()).collect();
        self.declared.push(declared);
        self
    }

    fn add(
        mut self,
        template: &str,
        kind: RouteKind,
        methods: RouteMethod,
        names: &[&str],
    ) -> Self {
        self.route = self.route.at(poem_path(template), methods);
        // A prefix's own page is labelled by the prefix (`/dashboard`).
        let full = match (self.prefix, template) {
            ("", _) | (_, "/") if !self.prefix.is_empty() => self.prefix.to_owned(),
            _ => format!("{}{template}", self.prefix),
        };
        let mut declared = DeclaredRoute::new(full, kind);
        declared.methods = names.iter().map(|name| (*name).to_owned()).collect();
        self.declared.push(declared);
        self
    }

    /// The poem routes and the table entries.
    pub(crate) fn finish(self) -> (Route, Vec<DeclaredRoute>) {
        (self.route, self.declared)
    }
}

/// `/projects/{id}` as poem's router writes it: `/projects/:id`.
fn poem_path(template: &str) -> String {
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

fn boxed(endpoint: impl Endpoint + 'static) -> BoxEndpoint<'static> {
    endpoint.map_to_response().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_become_poem_paths() {
        assert_eq!(
            poem_path("/projects/{id}/keys/{key}"),
            "/projects/:id/keys/:key"
        );
        assert_eq!(poem_path("/"), "/");
    }

    #[test]
    fn the_most_literal_template_wins() {
        let others = RouteList::new("")
            .get("/a/{x}", poem::endpoint::make_sync(|_| "x"))
            .get("/a/b", poem::endpoint::make_sync(|_| "b"))
            .finish()
            .1;
        let table = RouteTable::new("{}", others);
        let matched = table.matching("/a/b").map(|route| route.template);
        assert_eq!(matched, Some("/a/b"));
        let matched = table.matching("/a/c").map(|route| route.template);
        assert_eq!(matched, Some("/a/{x}"));
        assert!(table.matching("/a/b/c").is_none());
        let route = table.matching("/a/c").expect("a route");
        assert_eq!(route.param("/a/c", "x"), Some("c"));
        assert_eq!(route.param("/a/c", "y"), None);
    }
}
