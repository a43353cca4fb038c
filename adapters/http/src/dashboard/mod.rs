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
mod html;
mod projects;
mod session;
mod signing;
mod team;
mod updates;

use std::sync::Arc;

use poem::http::{Method, StatusCode};
use poem::web::Redirect;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, post};

pub use session::DashboardSettings;

/// The dashboard's routes, to be nested at [`PREFIX`].
pub fn routes(settings: DashboardSettings) -> impl Endpoint {
    let settings = Arc::new(settings);
    Route::new()
        .at("/", get(projects::project_list))
        .at("/login", get(auth::sign_in_page).post(auth::sign_in))
        .at("/register", get(auth::sign_up_page).post(auth::sign_up))
        .at("/logout", post(auth::sign_out))
        .at("/projects", post(projects::create_project))
        .at("/projects/:id", get(updates::timeline))
        .at("/projects/:id/setup", get(projects::setup_page))
        .at("/projects/:id/rename", post(projects::rename_project))
        .at("/projects/:id/rollback", post(updates::roll_back))
        .at(
            "/projects/:id/updates/:update/rollout",
            post(updates::change_rollout),
        )
        .at(
            "/projects/:id/updates/:update/republish",
            post(updates::republish),
        )
        .at(
            "/projects/:id/updates/:update/delete",
            post(updates::delete_update),
        )
        .at(
            "/projects/:id/members",
            get(team::member_list).post(team::add_member),
        )
        .at("/projects/:id/members/:user/role", post(team::change_role))
        .at(
            "/projects/:id/members/:user/remove",
            post(team::remove_member),
        )
        .at(
            "/projects/:id/keys",
            get(team::key_list).post(team::create_key),
        )
        .at("/projects/:id/keys/:key/rename", post(team::rename_key))
        .at("/projects/:id/keys/:key/revoke", post(team::revoke_key))
        .at("/projects/:id/channels", get(channels::channel_list))
        .at(
            "/projects/:id/channels/point",
            post(channels::point_channel),
        )
        .at(
            "/projects/:id/channels/split",
            post(channels::split_channel),
        )
        .at("/projects/:id/channels/unsplit", post(channels::end_split))
        .at(
            "/projects/:id/channels/delete",
            post(channels::delete_mapping),
        )
        .at("/projects/:id/signing-keys", get(signing::key_page))
        .at(
            "/projects/:id/signing-keys/generate",
            post(signing::generate_key),
        )
        .at(
            "/projects/:id/signing-keys/upload",
            post(signing::upload_key),
        )
        .at(
            "/projects/:id/signing-keys/remove",
            post(signing::remove_key),
        )
        .at(
            "/projects/:id/signing-keys/certificate",
            get(signing::download_certificate),
        )
        .at("/projects/:id/audit", get(audit::audit_log))
        .data(settings)
        .around(same_site_posts_only)
        .after(|result| async move {
            result.map(|response| html::with_security_headers(response.into_response()))
        })
}

/// The dashboard's routes as templates, for the access log, the metrics
/// and `Allow` (kept beside [`routes`], which they mirror).
pub const ROUTE_TEMPLATES: &[(&str, &[&str])] = &[
    ("/", &["GET", "HEAD"]),
    ("/dashboard", &["GET", "HEAD"]),
    ("/dashboard/login", &["GET", "HEAD", "POST"]),
    ("/dashboard/register", &["GET", "HEAD", "POST"]),
    ("/dashboard/logout", &["POST"]),
    ("/dashboard/projects", &["POST"]),
    ("/dashboard/projects/{id}", &["GET", "HEAD"]),
    ("/dashboard/projects/{id}/setup", &["GET", "HEAD"]),
    ("/dashboard/projects/{id}/rename", &["POST"]),
    ("/dashboard/projects/{id}/rollback", &["POST"]),
    (
        "/dashboard/projects/{id}/updates/{update}/rollout",
        &["POST"],
    ),
    (
        "/dashboard/projects/{id}/updates/{update}/republish",
        &["POST"],
    ),
    (
        "/dashboard/projects/{id}/updates/{update}/delete",
        &["POST"],
    ),
    ("/dashboard/projects/{id}/members", &["GET", "HEAD", "POST"]),
    ("/dashboard/projects/{id}/members/{user}/role", &["POST"]),
    ("/dashboard/projects/{id}/members/{user}/remove", &["POST"]),
    ("/dashboard/projects/{id}/keys", &["GET", "HEAD", "POST"]),
    ("/dashboard/projects/{id}/keys/{key}/rename", &["POST"]),
    ("/dashboard/projects/{id}/keys/{key}/revoke", &["POST"]),
    ("/dashboard/projects/{id}/channels", &["GET", "HEAD"]),
    ("/dashboard/projects/{id}/channels/point", &["POST"]),
    ("/dashboard/projects/{id}/channels/split", &["POST"]),
    ("/dashboard/projects/{id}/channels/unsplit", &["POST"]),
    ("/dashboard/projects/{id}/channels/delete", &["POST"]),
    ("/dashboard/projects/{id}/signing-keys", &["GET", "HEAD"]),
    ("/dashboard/projects/{id}/signing-keys/generate", &["POST"]),
    ("/dashboard/projects/{id}/signing-keys/upload", &["POST"]),
    ("/dashboard/projects/{id}/signing-keys/remove", &["POST"]),
    (
        "/dashboard/projects/{id}/signing-keys/certificate",
        &["GET", "HEAD"],
    ),
    ("/dashboard/projects/{id}/audit", &["GET", "HEAD"]),
];

/// Where the dashboard lives.
pub const PREFIX: &str = "/dashboard";

/// The page a rate-limited sign-in or registration gets.
pub fn too_many_requests_page() -> Response {
    html::plain_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts from your address. Wait a minute and try again.",
    )
}

/// `GET /` sends a browser to the dashboard; everything else passes.
pub async fn root_redirect<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    if req.uri().path() == "/" && matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(Redirect::see_other(PREFIX).into_response());
    }
    next.call(req).await.map(IntoResponse::into_response)
}

/// Refuses a POST that the browser says came from another site (Fetch
/// Metadata) or whose `Origin` is not this server. This guards sign-in and
/// registration, which have no session to derive a CSRF token from yet; the
/// forms of a session also carry the token.
async fn same_site_posts_only<E: Endpoint>(next: Arc<E>, req: Request) -> poem::Result<Response> {
    if req.method() == Method::POST && !session::is_same_origin(&req) {
        return Ok(html::plain_error(
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
            html::plain_error(status, &message)
        }
    })
}
