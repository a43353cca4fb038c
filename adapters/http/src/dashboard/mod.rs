//! The web dashboard: server-rendered pages for release managers, served by
//! the same binary under `/dashboard`.
//!
//! Every page and action calls the same application services as the REST
//! API, with the same authorization; this module only renders and parses
//! forms. There is no build step: the HTML comes from `maud` templates
//! compiled into the binary, the CSS and the little JavaScript (copy
//! buttons, the rollout slider's read-out) are inlined and pinned by hash
//! in the Content-Security-Policy.
//!
//! Names users choose (channels, signing-key ids) travel in form fields and
//! query strings, never in paths, so no spelling of theirs can reach
//! another route. Server-made ids (members, API keys, updates) are paths.
//!
//! Sessions are the API's own JWTs, kept in an HttpOnly, SameSite=Lax cookie
//! (Secure when the request came over HTTPS). Every state-changing request
//! is a POST carrying a CSRF token derived from the session, and is refused
//! when the browser says it came from another site.

mod audit;
mod auth;
mod channels;
mod confirm;
mod embedded;
mod html;
mod patches;
mod paths;
mod projects;
mod session;
mod settings;
mod shell;
mod signing;
mod team;
mod timeline;
mod updates;

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response};

pub(crate) use paths::PREFIX;
pub use settings::DashboardSettings;

use crate::rate_limit;
use crate::routes::{DeclaredRoute, RouteList};

/// The dashboard's routes, to be nested at [`PREFIX`], and their entries
/// for the route table.
pub(crate) fn routes(settings: DashboardSettings) -> (impl Endpoint, Vec<DeclaredRoute>) {
    let settings = Arc::new(settings);
    let limited = |endpoint| rate_limit::sign_in_page(endpoint, too_many_requests_page);
    let (route, declared) = RouteList::new(PREFIX)
        .get("/", projects::project_list)
        .get_post("/login", auth::sign_in_page, limited(auth::sign_in.boxed()))
        .get_post(
            "/register",
            auth::sign_up_page,
            limited(auth::sign_up.boxed()),
        )
        .post("/logout", auth::sign_out)
        .post("/projects", projects::create_project)
        .get("/projects/{id}", timeline::timeline)
        .get("/projects/{id}/setup", projects::setup_page)
        .post("/projects/{id}/setup/embedded", embedded::switch)
        .post("/projects/{id}/rename", projects::rename_project)
        .post("/projects/{id}/rollback", updates::roll_back)
        .get(
            "/projects/{id}/updates/{update}/patches",
            patches::update_patches,
        )
        .post(
            "/projects/{id}/updates/{update}/rollout",
            updates::change_rollout,
        )
        .post(
            "/projects/{id}/updates/{update}/republish",
            updates::republish,
        )
        .post(
            "/projects/{id}/updates/{update}/delete",
            updates::delete_update,
        )
        .get_post(
            "/projects/{id}/members",
            team::member_list,
            team::add_member,
        )
        .post("/projects/{id}/members/{user}/role", team::change_role)
        .post("/projects/{id}/members/{user}/remove", team::remove_member)
        .get_post("/projects/{id}/keys", team::key_list, team::create_key)
        .post("/projects/{id}/keys/{key}/rename", team::rename_key)
        .post("/projects/{id}/keys/{key}/revoke", team::revoke_key)
        .get("/projects/{id}/channels", channels::channel_list)
        .post("/projects/{id}/channels/point", channels::point_channel)
        .post("/projects/{id}/channels/split", channels::split_channel)
        .post("/projects/{id}/channels/unsplit", channels::end_split)
        .post("/projects/{id}/channels/delete", channels::delete_mapping)
        .get("/projects/{id}/signing-keys", signing::key_page)
        .post(
            "/projects/{id}/signing-keys/generate",
            signing::generate_key,
        )
        .post("/projects/{id}/signing-keys/upload", signing::upload_key)
        .post("/projects/{id}/signing-keys/remove", signing::remove_key)
        .get(
            "/projects/{id}/signing-keys/certificate",
            signing::download_certificate,
        )
        .get("/projects/{id}/audit", audit::audit_log)
        .finish();
    let endpoint = route
        .data(settings)
        .around(same_site_posts_only)
        .after(|result| async move {
            result.map(|response| shell::with_security_headers(response.into_response()))
        });
    (endpoint, declared)
}

/// The page a rate-limited sign-in or registration gets.
fn too_many_requests_page() -> Response {
    shell::plain_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts from your address. Wait a minute and try again.",
    )
}

/// `GET /` sends a browser to the dashboard.
pub(crate) fn root_redirect(req: &Request) -> Option<Response> {
    (req.uri().path() == "/" && matches!(*req.method(), Method::GET | Method::HEAD))
        .then(|| Redirect::see_other(PREFIX).into_response())
}

/// Refuses a POST that the browser says came from another site (Fetch
/// Metadata) or whose `Origin` is not this server. This guards sign-in and
/// registration, which have no session to derive a CSRF token from yet; the
/// forms of a session also carry the token.
async fn same_site_posts_only<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    if req.method() == Method::POST && !session::is_same_origin(&req) {
        return Ok(shell::plain_error(
            StatusCode::FORBIDDEN,
            "This form was sent from another site and was refused.",
        ));
    }
    Ok(match next.call(req).await {
        Ok(response) => response.into_response(),
        Err(error) if error.is_from_response() => error.into_response(),
        Err(error) => {
            let status = error.status();
            let message = match status {
                StatusCode::NOT_FOUND => "There is no such page.".to_owned(),
                StatusCode::METHOD_NOT_ALLOWED => "That page does not take this method.".to_owned(),
                StatusCode::PAYLOAD_TOO_LARGE => "The form was too large.".to_owned(),
                status if status.is_server_error() => {
                    tracing::error!(%error, "dashboard request failed");
                    "Something went wrong on the server.".to_owned()
                }
                _ => format!("The request could not be read: {error}"),
            };
            shell::plain_error(status, &message)
        }
    })
}
