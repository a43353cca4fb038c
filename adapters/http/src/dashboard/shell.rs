//! The page shell every dashboard answer is drawn in (the inlined CSS and
//! script, pinned by the Content-Security-Policy), the security headers,
//! and the pages that need no session: public pages and plain errors.

use std::sync::LazyLock;

use application::AppError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use super::paths::PREFIX;
use crate::error::classify;

const HTML: &str = "text/html; charset=utf-8";

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

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type(HTML)
        .body(markup.into_string())
}

pub fn shell(title: &str, body: Markup) -> Markup {
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
