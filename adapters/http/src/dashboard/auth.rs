//! Signing in, registering and signing out, with the API's own accounts.

use std::sync::Arc;

use application::{AppError, Registration};
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::paths::PREFIX;
use super::session::{Action, PublicForm, after_login, end_session, services, start_session};
use super::settings::DashboardSettings;
use super::shell::public_page;
use crate::error::classify;

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub fn sign_in_page(Query(query): Query<NextQuery>) -> Response {
    login_view(None, "", query.next.as_deref())
}

#[handler]
pub async fn sign_in(req: &Request, PublicForm(form): PublicForm<LoginForm>) -> Response {
    let services = match services(req) {
        Ok(services) => services,
        Err(error) => return error.into_response(),
    };
    match services.accounts.login(&form.login, &form.password).await {
        Ok(session) => start_session(req, &session.token, &after_login(form.next.as_deref())),
        Err(error) => login_view(Some(error), &form.login, form.next.as_deref()),
    }
}

fn login_view(error: Option<AppError>, login: &str, next: Option<&str>) -> Response {
    let failure = error.map(classify);
    let mut response = public_page(
        "Sign in",
        html! {
            h1 { "Sign in" }
            (error_message(failure.as_ref()))
            form.card method="post" action={(PREFIX) "/login"} {
                @if let Some(next) = next { input type="hidden" name="next" value=(next); }
                p {
                    label for="login" { "Username or email" }
                    input id="login" type="text" name="login" value=(login) autocomplete="username" required autofocus;
                }
                p {
                    label for="password" { "Password" }
                    input id="password" type="password" name="password" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
            p { "New here? " a href={(PREFIX) "/register"} { "Create an account" } }
        },
    );
    if let Some((status, _)) = failure {
        response.set_status(status);
    }
    response
}

#[handler]
pub fn sign_up_page(Data(settings): Data<&Arc<DashboardSettings>>) -> Response {
    register_view(settings, None, "", "")
}

#[handler]
pub async fn sign_up(
    req: &Request,
    Data(settings): Data<&Arc<DashboardSettings>>,
    PublicForm(form): PublicForm<RegisterForm>,
) -> Response {
    let services = match services(req) {
        Ok(services) => services,
        Err(error) => return error.into_response(),
    };
    let registration = Registration {
        username: form.username.clone(),
        email: form.email.clone(),
        password: form.password,
    };
    match services.accounts.register(registration).await {
        Ok(session) => start_session(req, &session.token, PREFIX),
        Err(error) => register_view(settings, Some(error), &form.username, &form.email),
    }
}

fn register_view(
    settings: &DashboardSettings,
    error: Option<AppError>,
    username: &str,
    email: &str,
) -> Response {
    let failure = error.map(classify);
    let mut response = public_page(
        "Create an account",
        html! {
            h1 { "Create an account" }
            @if !settings.open_registration {
                p.hint { "Registration is closed on this server: only its first account can be created here. Ask a project owner to add you once you have an account." }
            }
            (error_message(failure.as_ref()))
            form.card method="post" action={(PREFIX) "/register"} {
                p {
                    label for="username" { "Username" }
                    input id="username" type="text" name="username" value=(username) autocomplete="username" required autofocus;
                }
                p {
                    label for="email" { "Email" }
                    input id="email" type="email" name="email" value=(email) autocomplete="email" required;
                }
                p {
                    label for="password" { "Password" }
                    input id="password" type="password" name="password" autocomplete="new-password" required minlength="8" aria-describedby="password-hint";
                    span.hint id="password-hint" { "At least 8 characters." }
                }
                button type="submit" { "Create account" }
            }
            p { "Already have an account? " a href={(PREFIX) "/login"} { "Sign in" } }
        },
    );
    if let Some((status, _)) = failure {
        response.set_status(status);
    }
    response
}

fn error_message(failure: Option<&(StatusCode, String)>) -> Markup {
    html! {
        @if let Some((_, message)) = failure {
            p.flash.bad role="alert" { (message) }
        }
    }
}

#[handler]
pub fn sign_out(req: &Request, _action: Action<NoFields>) -> Response {
    end_session(req)
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}
