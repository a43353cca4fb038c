//! The two ways to authenticate: a user's session token, and a project's API
//! key (for release pipelines). Both are bearer tokens.

use domain::api_key::ApiKey;
use domain::user::User;
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::error::classify;
use application::Services;

/// A user's session token (JWT HS256 from register or login).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_session")]
pub struct UserAuth(pub User);

/// A project API key (`eus_...`, or a 64-hex key from the old server).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_api_key")]
pub struct ApiKeyAuth(pub ApiKey);

fn services(req: &Request) -> poem::Result<&Services> {
    req.data::<Services>().ok_or_else(|| {
        poem::Error::from_string("services missing", StatusCode::INTERNAL_SERVER_ERROR)
    })
}

fn into_poem_error(error: application::AppError) -> poem::Error {
    let (status, message) = classify(error);
    poem::Error::from_string(message, status)
}

async fn check_session(req: &Request, bearer: Bearer) -> poem::Result<User> {
    services(req)?
        .accounts
        .authenticate(&bearer.token)
        .await
        .map_err(into_poem_error)
}

async fn check_api_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    services(req)?
        .api_keys
        .authenticate(&bearer.token)
        .await
        .map_err(into_poem_error)
}
