//! The page shell, the shared pieces of every page (navigation, flash
//! messages, confirmations, empty states) and the inlined CSS and script.

use std::sync::LazyLock;

use application::AppError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use super::PREFIX;
use super::session::{Flash, Signed, clear_flash};
use crate::error::classify;

pub const HTML: &str = "text/html; charset=utf-8";

const STYLE: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// The Content-Security-Policy: nothing but this page's own inlined style
/// and script, pinned by hash, and forms that post back here.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = |text: &str| STANDARD.encode(Sha256::digest(text.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        hash(STYLE),
        hash(SCRIPT)
    )
});

/// The headers every dashboard answer carries: pages hold private data, so
/// they are never cached, framed or sniffed.
pub fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The sections of a project, as its tab bar shows them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Updates,
    Setup,
    Channels,
    Members,
    Keys,
    Signing,
    Audit,
}

impl Tab {
    const ALL: [Self; 7] = [
        Self::Updates,
        Self::Setup,
        Self::Channels,
        Self::Members,
        Self::Keys,
        Self::Signing,
        Self::Audit,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Updates => "Updates",
            Self::Setup => "Setup",
            Self::Channels => "Channels",
            Self::Members => "Members",
            Self::Keys => "API keys",
            Self::Signing => "Code signing",
            Self::Audit => "Audit log",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Updates => "",
            Self::Setup => "/setup",
            Self::Channels => "/channels",
            Self::Members => "/members",
            Self::Keys => "/keys",
            Self::Signing => "/signing-keys",
            Self::Audit => "/audit",
        }
    }
}

/// A project page: the project's name and tabs above `body`.
pub struct ProjectPage<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub tab: Tab,
}

/// The path of a project's page.
pub fn project_path(id: &str, tab: Tab) -> String {
    format!("{PREFIX}/projects/{id}{}", tab.path())
}

/// A whole page for a signed-in user.
pub fn page(
    signed: &Signed,
    title: &str,
    project: Option<ProjectPage<'_>>,
    body: Markup,
) -> Response {
    let heading = project.as_ref().map_or(title, |project| project.name);
    let markup = shell(
        title,
        html! {
            header.top {
                a.brand href=(PREFIX) { "expo-updates-server" }
                nav aria-label="Account" {
                    span.who { "Signed in as " strong { (signed.user.username) } }
                    form method="post" action={(PREFIX) "/logout"} {
                        (csrf_field(signed))
                        button.link type="submit" { "Sign out" }
                    }
                }
            }
            main id="main" {
                @if project.is_some() {
                    p.crumbs { a href=(PREFIX) { "Projects" } " / " }
                }
                h1 { (heading) }
                @if let Some(project) = &project {
                    nav.tabs aria-label="Project" {
                        ul {
                            @for tab in Tab::ALL {
                                li {
                                    a href=(project_path(project.id, tab))
                                        aria-current=[(tab == project.tab).then_some("page")] {
                                        (tab.label())
                                    }
                                }
                            }
                        }
                    }
                }
                (flash(signed.flash.as_ref()))
                (body)
            }
        },
    );
    let mut response = html_response(StatusCode::OK, markup);
    if signed.flash.is_some() {
        clear_flash(&mut response, signed.https);
    }
    response
}

/// A page for a signed-out visitor (sign-in, registration).
pub fn public_page(title: &str, body: Markup) -> Response {
    html_response(
        StatusCode::OK,
        shell(
            title,
            html! {
                header.top { a.brand href=(PREFIX) { "expo-updates-server" } }
                main id="main" .narrow { (body) }
            },
        ),
    )
}

/// An error page that needs no session: a status and what happened.
pub fn plain_error(status: StatusCode, message: &str) -> Response {
    with_security_headers(html_response(
        status,
        shell(
            "Error",
            html! {
                header.top { a.brand href=(PREFIX) { "expo-updates-server" } }
                main id="main" .narrow {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p role="alert" { (message) }
                    p { a href=(PREFIX) { "Back to your projects" } }
                }
            },
        ),
    ))
}

/// The page for an application error met while rendering a page.
pub fn error_page(error: AppError) -> Response {
    let (status, message) = classify(error);
    plain_error(status, &message)
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type(HTML)
        .body(markup.into_string())
}

fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · expo-updates-server" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (body)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

fn flash(flash: Option<&Flash>) -> Markup {
    html! {
        @match flash {
            Some(Flash::Done(message)) => p.flash.ok role="status" { (message) },
            Some(Flash::Failed(message)) => p.flash.bad role="alert" { (message) },
            None => {},
        }
    }
}

/// The hidden CSRF field every form of a session carries.
pub fn csrf_field(signed: &Signed) -> Markup {
    html! { input type="hidden" name="csrf" value=(signed.csrf); }
}

/// What a confirmation page asks about.
pub struct Confirmation {
    pub title: &'static str,
    /// Each change, in words, as the user will see it happen.
    pub changes: Vec<String>,
    pub action: String,
    /// The fields to send again, with `confirmed=yes`.
    pub fields: Vec<(&'static str, String)>,
    pub button: &'static str,
    pub cancel: String,
    pub danger: bool,
}

/// A page that names what an action will change and asks to go ahead.
/// Works without JavaScript; the action is taken only by its button.
pub async fn confirm(
    signed: &Signed,
    project_id: &str,
    tab: Tab,
    confirmation: Confirmation,
) -> Response {
    let project = match super::projects::load(signed, project_id).await {
        Ok((_, project)) => project,
        Err(response) => return response,
    };
    page(
        signed,
        confirmation.title,
        Some(ProjectPage {
            id: project_id,
            name: &project.name,
            tab,
        }),
        html! {
            section.card.confirm aria-labelledby="confirm-title" {
                h2 id="confirm-title" { (confirmation.title) }
                ul { @for change in &confirmation.changes { li { (change) } } }
                form method="post" action=(confirmation.action) {
                    (csrf_field(signed))
                    @for (name, value) in &confirmation.fields {
                        input type="hidden" name=(name) value=(value);
                    }
                    input type="hidden" name="confirmed" value="yes";
                    div.actions {
                        button.danger[confirmation.danger] type="submit" autofocus { (confirmation.button) }
                        a.button.secondary href=(confirmation.cancel) { "Cancel" }
                    }
                }
            }
        },
    )
}

/// Whether a form was sent from its confirmation page.
pub fn is_confirmed(field: Option<&str>) -> bool {
    field == Some("yes")
}

/// A block that tells a newcomer what to do next.
pub fn empty_state(title: &str, body: Markup) -> Markup {
    html! {
        section.card.empty {
            h2 { (title) }
            (body)
        }
    }
}

/// A command to copy, with a button that copies it.
pub fn copyable(id: &str, label: &str, text: &str) -> Markup {
    html! {
        div.copyable {
            pre id=(id) tabindex="0" aria-label=(label) { code { (text) } }
            button.secondary type="button" data-copy=(format!("#{id}")) { "Copy" }
        }
    }
}

/// A timestamp as UTC text, with a machine-readable `datetime`.
pub fn time(at: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}
