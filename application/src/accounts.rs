//! Accounts: registration, login and session tokens.

use std::sync::Arc;

use chrono::Utc;
use domain::id::UserId;
use domain::ports::{PasswordHasher, TokenService, UserStore};
use domain::user::{Email, Password, User, Username};

use crate::error::{AppError, AppResult, missing_parameters};
use crate::ids::new_id;

/// Whether strangers may create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationPolicy {
    Open,
    /// Only the very first account may register (the operator's); everyone
    /// else is added by an administrator of the server.
    FirstUserOnly,
}

/// What a client sends to register.
#[derive(Clone, Default)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
}

/// Never prints the password.
impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("username", &self.username)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A logged-in user with the token that proves it.
#[derive(Clone)]
pub struct Session {
    pub user: User,
    pub token: String,
}

/// Never prints the token.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The most accounts one login's password is tried against.
const MAX_LOGIN_CANDIDATES: usize = 4;

pub struct AccountService {
    users: Arc<dyn UserStore>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenService>,
    policy: RegistrationPolicy,
}

impl AccountService {
    pub fn new(
        users: Arc<dyn UserStore>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
        policy: RegistrationPolicy,
    ) -> Self {
        Self {
            users,
            hasher,
            tokens,
            policy,
        }
    }

    /// Creates an account and logs it in.
    pub async fn register(&self, request: Registration) -> AppResult<Session> {
        if request.username.is_empty() || request.email.is_empty() || request.password.is_empty() {
            return Err(missing_parameters());
        }
        let username = Username::parse(&request.username)?;
        let email = Email::parse(&request.email)?;
        let password = Password::parse(&request.password)?;
        let closed = || AppError::Forbidden("Registration is closed.".to_owned());
        let first_only = self.policy == RegistrationPolicy::FirstUserOnly;
        // A cheap early refusal; `insert_first` below is the atomic check.
        if first_only && self.users.count().await? > 0 {
            return Err(closed());
        }
        let user = User {
            id: UserId::from_trusted(new_id()),
            username: username.as_str().to_owned(),
            email: email.as_str().to_owned(),
            password_hash: self.hasher.hash(&password).await?,
            created_at: Utc::now(),
        };
        if first_only {
            if !self.users.insert_first(&user).await? {
                return Err(closed());
            }
        } else {
            self.users.insert(&user).await?;
        }
        tracing::info!(user_id = %user.id, "user registered");
        self.session_for(user)
    }

    /// Logs in by username or email. Unknown users and wrong passwords get
    /// the same answer after the same amount of work.
    pub async fn login(&self, login: &str, password: &str) -> AppResult<Session> {
        if login.is_empty() || password.is_empty() {
            return Err(missing_parameters());
        }
        // No account name contains control characters; don't ask the store.
        let candidates = if login.chars().any(char::is_control) {
            Vec::new()
        } else {
            self.users.find_by_login(login.trim()).await?
        };
        if candidates.is_empty() {
            self.hasher.burn_equivalent_work(password).await;
            return Err(invalid_credentials());
        }
        // Several accounts only in imported data (a name one account has
        // that another has in another case): the password tells them apart.
        let mut matched = None;
        for candidate in candidates.into_iter().take(MAX_LOGIN_CANDIDATES) {
            if self.hasher.verify(password, &candidate.password_hash).await {
                matched = Some(candidate);
                break;
            }
        }
        let Some(user) = matched else {
            return Err(invalid_credentials());
        };
        self.session_for(user)
    }

    /// The user a session token belongs to. A token for an account that no
    /// longer exists is refused like a forged one.
    pub async fn authenticate(&self, token: &str) -> AppResult<User> {
        let subject = self
            .tokens
            .verify(token)
            .map_err(|error| AppError::Unauthenticated(error.to_string()))?;
        // A token is the client's text until its subject parses as an id.
        let user_id = UserId::parse(&subject)
            .map_err(|_| AppError::Unauthenticated("Token invalid or expired".to_owned()))?;
        self.users
            .find_by_id(user_id.as_str())
            .await?
            .ok_or_else(|| AppError::Unauthenticated("Token invalid or expired".to_owned()))
    }

    fn session_for(&self, user: User) -> AppResult<Session> {
        let token = self.tokens.issue(&user.id)?;
        Ok(Session { user, token })
    }
}

fn invalid_credentials() -> AppError {
    AppError::Unauthenticated("Invalid credentials.".to_owned())
}
