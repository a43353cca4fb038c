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
            // A redirect would turn a POST into a GET (and may have sent a
            // password in clear text already): report it instead.
            .redirect(reqwest::redirect::Policy::none())
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
    /// for 204). Reads (GET) and changes that set an absolute value (PATCH)
    /// are retried on any connection error or 5xx; other changes only when
    /// they cannot have been applied (see [`Retry`]).
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let retry = if method == Method::GET || method == Method::PATCH {
            Retry::Always
        } else {
            Retry::UnlessApplied
        };
        self.json_with(method, path, body, retry).await
    }

    /// [`Api::json`] with an explicit retry policy, for a POST that is safe
    /// to repeat (a question such as `assets/missing`).
    pub async fn json_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> CliResult<Value> {
        let response = self
            .send_with_retries(retry, || {
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
    /// or the tries run out, as far as `retry` allows. `send` is called once
    /// per try, so a streamed body is built afresh each time.
    pub async fn send_with_retries<F, Fut>(&self, retry: Retry, mut send: F) -> CliResult<Response>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = reqwest::Result<Response>>,
    {
        let mut wait = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let last = attempt == ATTEMPTS;
            let failure = match send().await {
                Ok(response) if !response.status().is_server_error() => return Ok(response),
                Ok(response) if last || !retry.may_repeat_after(response.status()) => {
                    return Err(error_from(response).await);
                }
                Ok(response) => format!("the server answered {}", response.status()),
                Err(error) if error.is_body() || error.is_builder() => {
                    return Err(CliError::Other(format!(
                        "the request could not be sent: {}",
                        describe(&error)
                    )));
                }
                Err(error) if last => {
                    return Err(CliError::Unavailable(format!(
                        "cannot reach the server at {} after {ATTEMPTS} tries: {}",
                        self.base_url,
                        describe(&error)
                    )));
                }
                Err(error) if !error.is_connect() && retry == Retry::UnlessApplied => {
                    return Err(CliError::Unavailable(format!(
                        "the connection to {} broke before the answer came ({}); the change may \
                         or may not have been applied, so it is not sent again: check (e.g. \
                         `updates list`) before retrying",
                        self.base_url,
                        describe(&error)
                    )));
                }
                Err(error) => describe(&error),
            };
            eprintln!(
                "{failure}; retrying in {:.1} s (try {attempt} of {ATTEMPTS})",
                wait.as_secs_f32()
            );
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
        }
    }
}

/// When a failed request may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Repeating it changes nothing more (reads, questions, setting a value).
    Always,
    /// A change such as a publish: sent again only when it never reached
    /// the server (the connection was refused) or the server said it is
    /// unavailable (503); a broken connection or any other 5xx may come
    /// after the change was applied, and repeating it would apply it twice
    /// (a second update, a second key).
    UnlessApplied,
}

impl Retry {
    fn may_repeat_after(self, status: StatusCode) -> bool {
        self == Self::Always || status == StatusCode::SERVICE_UNAVAILABLE
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
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect());
    let code = status.as_u16();
    match status {
        StatusCode::UNAUTHORIZED => CliError::Denied(format!(
            "{code}: {message} Check the credentials: the API key (EXPO_UPDATES_API_KEY), or the login (`expo-updates-server login`)."
        )),
        StatusCode::FORBIDDEN => CliError::Denied(format!(
            "{code}: {message} The credential is valid but not allowed here: an API key only works for its own project, and some changes need the owner role."
        )),
        StatusCode::NOT_FOUND => CliError::NotFound(format!("{code}: {message}")),
        StatusCode::PAYLOAD_TOO_LARGE => CliError::TooLarge(format!(
            "{code}: {message} The server's MAX_UPLOAD_BYTES limits one publish."
        )),
        status if status.is_redirection() => CliError::Usage(format!(
            "the server redirected ({code}) to {}; use that URL as EXPO_UPDATES_URL",
            location.as_deref().unwrap_or("another address")
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

#[cfg(test)]
mod tests {
    #![expect(
        clippy::unwrap_used,
        reason = "a test fails loudly on a value it did not expect"
    )]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers each request with the next status in `statuses`
    /// (the last one repeated), counting the requests.
    async fn scripted_server(statuses: &'static [u16]) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let index = count.fetch_add(1, Ordering::SeqCst);
                let status = statuses[index.min(statuses.len() - 1)];
                let mut request = vec![0; 4096];
                let _ = socket.read(&mut request).await;
                let body = if status == 200 {
                    r#"{"ok":true}"#
                } else {
                    r#"{"error":"Storage is unavailable."}"#
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
            }
        });
        (url, served)
    }

    #[tokio::test]
    async fn a_5xx_is_retried_until_the_server_recovers() {
        let (url, served) = scripted_server(&[503, 502, 200]).await;
        let api = Api::new(&url, None).unwrap();
        let answer = api.get("/api/keys/current").await.unwrap();
        assert_eq!(answer["ok"], true);
        assert_eq!(served.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_server_that_keeps_failing_gives_up_after_the_last_try() {
        let (url, served) = scripted_server(&[500]).await;
        let api = Api::new(&url, None).unwrap();
        match api.get("/api/keys/current").await {
            Err(CliError::Unavailable(message)) => {
                assert!(message.contains("500"), "{message}");
                assert!(message.contains("Storage is unavailable."), "{message}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert_eq!(served.load(Ordering::SeqCst), ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_change_is_sent_again_only_when_it_cannot_have_been_applied() {
        // A 502 may come after the publish was committed: not repeated.
        let (url, served) = scripted_server(&[502, 200]).await;
        let api = Api::new(&url, None).unwrap();
        let answer = api.json(Method::POST, "/api/projects", None).await;
        assert!(
            matches!(answer, Err(CliError::Unavailable(_))),
            "{answer:?}"
        );
        assert_eq!(served.load(Ordering::SeqCst), 1);
        // A 503 says the server did nothing: repeated.
        let (url, served) = scripted_server(&[503, 200]).await;
        let api = Api::new(&url, None).unwrap();
        assert!(api.json(Method::POST, "/api/projects", None).await.is_ok());
        assert_eq!(served.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_4xx_is_not_retried() {
        let (url, served) = scripted_server(&[409]).await;
        let api = Api::new(&url, None).unwrap();
        assert!(matches!(
            api.get("/api/keys/current").await,
            Err(CliError::Rejected(_))
        ));
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }
}
