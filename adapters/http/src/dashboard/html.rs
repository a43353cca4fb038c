//! The shared pieces of a signed-in user's pages: navigation and project
//! tabs, flash messages, empty states, copyable commands and timestamps.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use poem::Response;
use poem::http::StatusCode;

use super::paths::PREFIX;
use super::session::{Flash, Signed, clear_flash};
use super::shell::{html_response, shell};

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

/// Bytes as people read them.
pub fn human(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", bytes as f64 / 1e3),
        _ => format!("{:.2} MB", bytes as f64 / 1e6),
    }
}
