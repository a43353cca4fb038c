//! `/api/auth`: register, log in, who am I.

use application::Registration;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::tags::ApiTags;
use crate::error::error_responses;
use crate::rate_limit::sign_in as rate_limited_sign_in;
use crate::schema::{LoginRequest, RegisterRequest, SessionBody, UserBody};
use crate::security::UserAuth;
use application::Services;

#[derive(Default)]
pub struct AccountsApi;

#[derive(ApiResponse)]
enum Registered {
    /// The account was created; the token logs it in.
    #[oai(status = 201)]
    Created(Json<SessionBody>),
}

error_responses!(RegisterError {
    /// A field is missing or breaks a rule (email format, password length...).
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Registration is closed (`ALLOW_REGISTRATION=false`).
    Forbidden = 403,
    /// The username or email is taken (compared case-insensitively).
    Conflict = 409,
    /// Too many sign-ins or registrations from this address
    /// (`RATE_LIMIT_AUTH_PER_MINUTE`); `Retry-After` says when to try again.
    TooManyRequests = 429,
});

error_responses!(LoginError {
    /// A field is missing.
    BadRequest = 400,
    /// The body is larger than 1 MiB.
    PayloadTooLarge = 413,
    /// Unknown user or wrong password: the same answer for both.
    Unauthorized = 401,
    /// Too many sign-ins or registrations from this address
    /// (`RATE_LIMIT_AUTH_PER_MINUTE`); `Retry-After` says when to try again.
    TooManyRequests = 429,
});

error_responses!(SessionError {
    /// Missing, invalid or expired session token.
    Unauthorized = 401,
});

#[OpenApi(prefix_path = "/api", tag = "ApiTags::Auth")]
impl AccountsApi {
    /// Create an account
    #[oai(
        path = "/auth/register",
        method = "post",
        transform = "rate_limited_sign_in"
    )]
    async fn register(
        &self,
        services: Data<&Services>,
        body: Json<RegisterRequest>,
    ) -> Result<Registered, RegisterError> {
        let Json(body) = body;
        let request = Registration {
            username: body.username,
            email: body.email,
            password: body.password,
        };
        let session = services.accounts.register(request).await?;
        Ok(Registered::Created(Json(SessionBody {
            user: session.user.into(),
            token: session.token,
        })))
    }

    /// Log in with a username or email
    #[oai(
        path = "/auth/login",
        method = "post",
        transform = "rate_limited_sign_in"
    )]
    async fn login(
        &self,
        services: Data<&Services>,
        body: Json<LoginRequest>,
    ) -> Result<Json<SessionBody>, LoginError> {
        let session = services.accounts.login(&body.login, &body.password).await?;
        Ok(Json(SessionBody {
            user: session.user.into(),
            token: session.token,
        }))
    }

    /// The user a session token belongs to
    #[oai(path = "/auth/me", method = "get")]
    async fn me(&self, auth: UserAuth) -> Result<Json<UserBody>, SessionError> {
        Ok(Json(auth.0.into()))
    }
}
