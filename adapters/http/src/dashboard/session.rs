//! Who is signed in, read from the session cookie; the CSRF token of their
//! forms; one-shot flash messages; and the redirects between pages.

use std::sync::Arc;

use application::AppError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::user::User;
use poem::http::{StatusCode, header};
use poem::web::Redirect;
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::classify;
use application::Services;

use super::paths::PREFIX;
use super::settings::DashboardSettings;
use super::shell::plain_error;

const SESSION_COOKIE: &str = "eus_session";
const FLASH_COOKIE: &str = "eus_flash";
/// As long as the API's session tokens live (72 h).
const SESSION_SECONDS: u32 = 72 * 3600;
/// The largest form the dashboard reads (a PEM key and certificate fit).
const MAX_FORM_BYTES: usize = 256 * 1024;

/// A one-shot message shown on the next page, after a redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flash {
    Done(String),
    Failed(String),
}

/// A signed-in user and what their pages need: the services, the CSRF
/// token for their forms and a pending flash message.
pub struct Signed {
    pub user: User,
    pub services: Services,
    pub settings: Arc<DashboardSettings>,
    pub csrf: String,
    pub flash: Option<Flash>,
    /// `https://host` or `http://host`, as the browser reached us.
    pub origin: String,
    /// Whether the browser reached us over HTTPS (cookies are then Secure).
    pub https: bool,
}

impl<'a> FromRequest<'a> for Signed {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let services = services(req)?;
        let settings = req
            .data::<Arc<DashboardSettings>>()
            .cloned()
            .unwrap_or_default();
        let Some(token) = cookie(req, SESSION_COOKIE) else {
            return Err(to_login(req));
        };
        let user = match services.accounts.authenticate(&token).await {
            Ok(user) => user,
            Err(AppError::Unauthenticated(_)) => return Err(to_login(req)),
            Err(error) => {
                let (status, message) = classify(error);
                return Err(poem::Error::from_response(plain_error(status, &message)));
            }
        };
        let https = is_https(req);
        Ok(Self {
            user,
            services,
            settings,
            csrf: csrf_token(&token),
            flash: read_flash(req),
            origin: origin(req),
            https,
        })
    }
}

/// A POST from a signed-in user's form: the session, the CSRF token checked,
/// and the form's fields.
pub struct Action<T> {
    pub signed: Signed,
    pub form: T,
}

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<'a, T: DeserializeOwned> FromRequest<'a> for Action<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let signed = Signed::from_request(req, body).await?;
        let bytes = read_form(body).await?;
        let sent: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(unreadable)?;
        if !bool::from(sent.csrf.as_bytes().ct_eq(signed.csrf.as_bytes())) {
            return Err(poem::Error::from_response(plain_error(
                StatusCode::FORBIDDEN,
                "This form has expired or was not sent from the dashboard. Go back, reload the page and try again.",
            )));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(unreadable)?;
        Ok(Self { signed, form })
    }
}

/// A form sent without a session (sign-in, registration).
pub struct PublicForm<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for PublicForm<T> {
    async fn from_request(_req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_form(body).await?;
        Ok(Self(
            serde_urlencoded::from_bytes(&bytes).map_err(unreadable)?,
        ))
    }
}

async fn read_form(body: &mut RequestBody) -> poem::Result<Vec<u8>> {
    let body = body.take()?;
    let bytes = body.into_bytes_limit(MAX_FORM_BYTES).await.map_err(|_| {
        poem::Error::from_response(plain_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form was too large.",
        ))
    })?;
    Ok(bytes.to_vec())
}

fn unreadable(error: serde_urlencoded::de::Error) -> poem::Error {
    poem::Error::from_response(plain_error(
        StatusCode::BAD_REQUEST,
        &format!("The form could not be read: {error}"),
    ))
}

/// The services, put into every request by the router.
pub fn services(req: &Request) -> poem::Result<Services> {
    req.data::<Services>().cloned().ok_or_else(|| {
        poem::Error::from_string("services missing", StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// A signed-out browser goes to the sign-in page, which brings it back.
fn to_login(req: &Request) -> poem::Error {
    let here = req
        .original_uri()
        .path_and_query()
        .map(|path| path.as_str())
        .unwrap_or(PREFIX);
    let target = if req.method() == poem::http::Method::GET && is_local(here) {
        format!(
            "{PREFIX}/login?next={}",
            URL_SAFE_NO_PAD.encode(here.as_bytes())
        )
    } else {
        format!("{PREFIX}/login")
    };
    poem::Error::from_response(Redirect::see_other(target).into_response())
}

/// Where to go after signing in: a dashboard path the `next` parameter
/// names, never another site.
pub fn after_login(next: Option<&str>) -> String {
    next.and_then(|encoded| URL_SAFE_NO_PAD.decode(encoded).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|path| is_local(path))
        .unwrap_or_else(|| PREFIX.to_owned())
}

/// A path inside the dashboard: no scheme, no host, no `//` or `\` tricks.
pub fn is_local(path: &str) -> bool {
    path.starts_with(PREFIX)
        && !path.contains("//")
        && !path.contains('\\')
        && path.bytes().all(|byte| byte.is_ascii_graphic())
}

/// The CSRF token of a session: a hash of its token, which another site can
/// neither read (the cookie is HttpOnly) nor compute.
fn csrf_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"expo-updates-server dashboard csrf\0");
    hasher.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&hasher.finalize()[..24])
}

/// Whether a request came over HTTPS: directly, or behind a proxy that
/// says so (`X-Forwarded-Proto`). `PUBLIC_URL` is not enough: a browser that
/// reached the server over plain HTTP would drop a `Secure` cookie and could
/// never sign in.
fn is_https(req: &Request) -> bool {
    req.uri().scheme_str() == Some("https")
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn origin(req: &Request) -> String {
    let scheme = if is_https(req) { "https" } else { "http" };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("localhost");
    format!("{scheme}://{host}")
}

/// Whether a POST came from this site: a browser's `Sec-Fetch-Site` must not
/// say another site, and an `Origin`, when sent, must be this server as the
/// browser knows it: `PUBLIC_URL`, or the host it asked for (`Host`, or
/// `X-Forwarded-Host` behind a proxy that rewrites `Host`).
pub fn is_same_origin(req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site")
        && (site.as_bytes() == b"cross-site" || site.as_bytes() == b"same-site")
    {
        return false;
    }
    let Some(sent) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    let public_url = req
        .data::<Arc<DashboardSettings>>()
        .and_then(|settings| settings.public_url.as_deref());
    if public_url.is_some_and(|url| origin_of(url).eq_ignore_ascii_case(sent)) {
        return true;
    }
    let Some(sent_host) = sent
        .strip_prefix("https://")
        .or_else(|| sent.strip_prefix("http://"))
    else {
        return false;
    };
    [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name).and_then(|value| value.to_str().ok()))
        .any(|host| host.eq_ignore_ascii_case(sent_host))
}

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |path| &url[..after_scheme + path])
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

fn cookie_attributes(req: &Request) -> &'static str {
    if is_https(req) {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

/// Signs the browser in: the session token in its cookie, then on to `to`.
pub fn start_session(req: &Request, token: &str, to: &str) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Max-Age={SESSION_SECONDS}{}",
        cookie_attributes(req)
    );
    Redirect::see_other(to)
        .with_header(header::SET_COOKIE, cookie)
        .into_response()
}

/// Signs the browser out and shows the sign-in page.
pub fn end_session(req: &Request) -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Max-Age=0{}", cookie_attributes(req));
    Redirect::see_other(format!("{PREFIX}/login"))
        .with_header(header::SET_COOKIE, cookie)
        .into_response()
}

/// Redirects to `to` with a message for the next page.
pub fn redirect_with(req: &Request, to: &str, flash: Flash) -> Response {
    let (kind, message) = match &flash {
        Flash::Done(message) => ("d", message),
        Flash::Failed(message) => ("f", message),
    };
    let value = format!("{kind}{}", URL_SAFE_NO_PAD.encode(message.as_bytes()));
    let cookie = format!(
        "{FLASH_COOKIE}={value}; Max-Age=60{}",
        cookie_attributes(req)
    );
    Redirect::see_other(to)
        .with_header(header::SET_COOKIE, cookie)
        .into_response()
}

/// The outcome of an action: done, or the application's refusal, shown on
/// the page it returns to.
pub fn outcome<T>(
    req: &Request,
    to: &str,
    result: Result<T, AppError>,
    done: impl FnOnce(T) -> String,
) -> Response {
    match result {
        Ok(value) => redirect_with(req, to, Flash::Done(done(value))),
        Err(error) => redirect_with(req, to, Flash::Failed(classify(error).1)),
    }
}

/// Returns to `to` with the application's refusal of an action.
pub fn refused(req: &Request, to: &str, error: AppError) -> Response {
    redirect_with(req, to, Flash::Failed(classify(error).1))
}

fn read_flash(req: &Request) -> Option<Flash> {
    let value = cookie(req, FLASH_COOKIE)?;
    let (kind, encoded) = value.split_at_checked(1)?;
    let message = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).ok()?).ok()?;
    match kind {
        "d" => Some(Flash::Done(message)),
        "f" => Some(Flash::Failed(message)),
        _ => None,
    }
}

/// Clears a flash message once a page has shown it.
pub fn clear_flash(response: &mut Response, req_is_https: bool) {
    let secure = if req_is_https { "; Secure" } else { "" };
    if let Ok(value) =
        format!("{FLASH_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax{secure}").parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dashboard_paths_are_followed_after_sign_in() {
        let encode = |path: &str| URL_SAFE_NO_PAD.encode(path.as_bytes());
        assert_eq!(
            after_login(Some(&encode("/dashboard/projects/x"))),
            "/dashboard/projects/x"
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example",
            "/dashboard//evil.example",
            "/dashboard\\..\\x",
            "/api/projects",
        ] {
            assert_eq!(after_login(Some(&encode(hostile))), "/dashboard");
        }
        assert_eq!(after_login(Some("not base64!")), "/dashboard");
        assert_eq!(after_login(None), "/dashboard");
    }

    #[test]
    fn an_origin_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://ota.example.com/base"),
            "https://ota.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }

    #[test]
    fn the_csrf_token_depends_on_the_session() {
        assert_ne!(csrf_token("a"), csrf_token("b"));
        assert_eq!(csrf_token("a"), csrf_token("a"));
    }
}
