//! The HTTP side of the client: one place that sends requests to the
//! server's documented API, retries what may succeed on a second try, and
//! turns the server's `{"error": "..."}` answers into [`CliError`]s.

use std::future::Future;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::error::{CliError, CliResult};

/// How many times a request is sent before giving up on connection errors
/// and 5xx answers; the waits between tries double from [`FIRST_BACKOFF`].
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// A client for one server, with the credential the command uses.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base_url: String,
    bearer: Option<String>,
}

impl Api {
    pub fn new(base_url: &str, bearer: Option<String>) -> CliResult<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "expo-updates-server-cli/",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .map_err(|error| CliError::Other(format!("cannot start the HTTP client: {error}")))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to `path` (which starts with `/api/`), authenticated.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a JSON request (or none) and returns the JSON answer (`null`
    /// for 204), retrying on connection errors and 5xx.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let response = self
            .send_with_retries(|| {
                let request = self.request(method.clone(), path);
                let request = match body {
                    Some(body) => request.json(body),
                    None => request,
                };
                request.send()
            })
            .await?;
        read_json(response).await
    }

    pub async fn get(&self, path: &str) -> CliResult<Value> {
        self.json(Method::GET, path, None).await
    }

    /// Sends what `send` builds until it gets an answer that is not a 5xx,
    /// or the tries run out. `send` is called once per try, so a streamed
    /// body is built afresh each time.
    pub async fn send_with_retries<F, Fut>(&self, mut send: F) -> CliResult<Response>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = reqwest::Result<Response>>,
    {
        let mut wait = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let failure = match send().await {
                Ok(response) if !response.status().is_server_error() => return Ok(response),
                Ok(response) if attempt == ATTEMPTS => return Err(error_from(response).await),
                Ok(response) => format!("the server answered {}", response.status()),
                Err(error) if attempt == ATTEMPTS => {
                    return Err(CliError::Unavailable(format!(
                        "cannot reach the server at {} after {ATTEMPTS} tries: {}",
                        self.base_url,
                        describe(&error)
                    )));
                }
                Err(error) => describe(&error),
            };
            eprintln!(
                "{failure}; retrying in {:.1} s ({attempt}/{ATTEMPTS})",
                wait.as_secs_f32()
            );
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }
}

/// The answer's JSON body on success, or the error it describes.
pub async fn read_json(response: Response) -> CliResult<Value> {
    if !response.status().is_success() {
        return Err(error_from(response).await);
    }
    if response.status() == StatusCode::NO_CONTENT {
        return Ok(Value::Null);
    }
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| CliError::Unavailable(format!("the answer was cut off: {error}")))?;
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|_| {
        CliError::Other(format!(
            "the server answered {status} with something that is not JSON; is the URL the server's base URL?"
        ))
    })
}

/// Maps an error answer to a [`CliError`], with the server's own message
/// and a hint for the codes a user can act on.
pub async fn error_from(response: Response) -> CliError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let code = status.as_u16();
    match status {
        StatusCode::UNAUTHORIZED => CliError::Denied(format!(
            "{code}: {message} Check the API key (EXPO_UPDATES_API_KEY) or log in again (`expo-updates-server login`)."
        )),
        StatusCode::FORBIDDEN => CliError::Denied(format!(
            "{code}: {message} The credential is valid but not allowed here: an API key only works for its own project, and some changes need the owner role."
        )),
        StatusCode::NOT_FOUND => CliError::NotFound(format!("{code}: {message}")),
        StatusCode::PAYLOAD_TOO_LARGE => CliError::TooLarge(format!(
            "{code}: {message} The server's MAX_UPLOAD_BYTES limits one publish."
        )),
        status if status.is_server_error() => {
            CliError::Unavailable(format!("the server failed ({code}): {message}"))
        }
        status if status.is_client_error() => CliError::Rejected(format!("{code}: {message}")),
        _ => CliError::Other(format!("unexpected answer {code}: {message}")),
    }
}

/// A connection error in a few words, with its cause (reqwest's own
/// message alone says only "error sending request").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a path segment or query value may carry unencoded (RFC 3986's
/// unreserved characters).
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value (a channel name, an id).
pub fn segment(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, UNRESERVED).to_string()
}
