//! The Expo Updates protocol from the device's side: update checks
//! (`GET /api/updates/{projectId}/manifest`) with the headers real clients send, a strict
//! `multipart/mixed` parser (CRLF everywhere, one `content-type` per part, closing delimiter
//! followed by CRLF, as the iOS and Android clients require), asset downloads as raw bytes,
//! the fixture checksums, and an independent signature check with the `openssl` CLI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use sha2::Digest;

pub use test_support::fixtures::{CERTIFICATE_PATH, Checksum, PRIVATE_KEY_PATH, checksums};

use crate::TestApp;

/// The `accept` header real iOS and Android clients send.
pub const CLIENT_ACCEPT: &str = "multipart/mixed,application/expo+json,application/json";

/// The `expo-expect-signature` header of a client configured with keyid `main`.
pub const EXPECT_SIGNATURE: &str = r#"sig, keyid="main", alg="rsa-v1_5-sha256""#;

/// The fixture certificate matching [`PRIVATE_KEY_PATH`].
pub fn certificate_path() -> PathBuf {
    PathBuf::from(CERTIFICATE_PATH)
}

/// Unpadded base64url SHA-256 of `bytes`: the manifest `hash` of a file.
pub fn manifest_hash(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

/// An update check, as a device sends it.
#[derive(Debug, Clone)]
pub struct UpdateCheck {
    pub platform: Option<String>,
    pub runtime_version: Option<String>,
    /// `expo-protocol-version` (`None`: not sent, i.e. protocol 0).
    pub protocol: Option<String>,
    pub accept: Option<String>,
    pub current_update_id: Option<String>,
    pub embedded_update_id: Option<String>,
    pub expect_signature: bool,
    /// The `expo-expect-signature` value when it is not [`EXPECT_SIGNATURE`].
    pub expect_signature_value: Option<String>,
    /// `expo-channel-name` (`None`: not sent, the default channel).
    pub channel: Option<String>,
    /// `eas-client-id`, the device's stable id (rollouts place devices by it).
    pub client_id: Option<String>,
    /// Query parameters (the fallbacks for clients that cannot set headers).
    pub query: Vec<(String, String)>,
    /// More request headers, sent after the others (any bytes a header may hold).
    pub headers: Vec<(String, HeaderValue)>,
}

impl UpdateCheck {
    /// A protocol 1 check with the real clients' `accept`.
    pub fn v1(platform: &str, runtime_version: &str) -> UpdateCheck {
        UpdateCheck {
            platform: Some(platform.to_owned()),
            runtime_version: Some(runtime_version.to_owned()),
            protocol: Some("1".to_owned()),
            accept: Some(CLIENT_ACCEPT.to_owned()),
            current_update_id: None,
            embedded_update_id: None,
            expect_signature: false,
            expect_signature_value: None,
            channel: None,
            client_id: None,
            query: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A protocol 0 check: no `expo-protocol-version` header.
    pub fn v0(platform: &str, runtime_version: &str) -> UpdateCheck {
        UpdateCheck {
            protocol: None,
            ..Self::v1(platform, runtime_version)
        }
    }

    pub fn protocol(mut self, protocol: Option<&str>) -> Self {
        self.protocol = protocol.map(str::to_owned);
        self
    }

    pub fn platform(mut self, platform: Option<&str>) -> Self {
        self.platform = platform.map(str::to_owned);
        self
    }

    pub fn runtime_version(mut self, runtime_version: Option<&str>) -> Self {
        self.runtime_version = runtime_version.map(str::to_owned);
        self
    }

    pub fn accept(mut self, accept: Option<&str>) -> Self {
        self.accept = accept.map(str::to_owned);
        self
    }

    pub fn current(mut self, id: &str) -> Self {
        self.current_update_id = Some(id.to_owned());
        self
    }

    pub fn embedded(mut self, id: &str) -> Self {
        self.embedded_update_id = Some(id.to_owned());
        self
    }

    pub fn signed(mut self) -> Self {
        self.expect_signature = true;
        self
    }

    /// Asks for a signature with this `expo-expect-signature` value.
    pub fn signed_with(mut self, expect_signature: &str) -> Self {
        self.expect_signature = true;
        self.expect_signature_value = Some(expect_signature.to_owned());
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// From a device on `channel` (`expo-channel-name`).
    pub fn channel(mut self, channel: &str) -> Self {
        self.channel = Some(channel.to_owned());
        self
    }

    /// From the device `client_id` (`eas-client-id`).
    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// With the request header `name: value` as well.
    pub fn header(mut self, name: &str, value: HeaderValue) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }
}

/// A fully read response with its raw body bytes.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The single value of header `name`, if any (panics when it is repeated).
    #[track_caller]
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<_> = self.headers.get_all(name).iter().collect();
        assert!(
            values.len() <= 1,
            "the response header {name} is repeated: {values:?}"
        );
        values
            .first()
            .map(|v| v.to_str().expect("an ASCII header value").to_owned())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics when it is not).
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "expected HTTP {expected}, got {} with body: {}",
            self.status,
            self.text()
        );
        self
    }

    /// Asserts `status` with a JSON body `{"error": "<non-empty string>"}`; returns the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16) -> String {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "an error should be JSON, got content-type {content_type:?}: {}",
            self.text()
        );
        let json = self.json();
        let message = json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("expected {{\"error\": \"...\"}}, got {json}"));
        assert!(!message.trim().is_empty(), "empty error message: {json}");
        message.to_owned()
    }

    /// The parts of a `multipart/mixed` body, checked strictly (see [`parse_multipart`]).
    #[track_caller]
    pub fn multipart(&self) -> Vec<MultipartPart> {
        let content_type = self
            .header("content-type")
            .unwrap_or_else(|| panic!("no content-type; body: {}", self.text()));
        parse_multipart(&content_type, &self.body).unwrap_or_else(|e| {
            panic!(
                "malformed multipart body ({e}); content-type {content_type:?}, body: {:?}",
                self.text()
            )
        })
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct MultipartPart {
    /// Header name (lower-cased) → value, in order.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
}

impl MultipartPart {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The `name` parameter of `content-disposition`.
    pub fn name(&self) -> String {
        let disposition = self.header("content-disposition").unwrap_or_default();
        disposition_name(disposition).unwrap_or_default()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the {} part is not JSON ({e}): {}",
                self.name(),
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

fn disposition_name(disposition: &str) -> Option<String> {
    disposition.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("name")).then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses a `multipart/mixed` body the strict way: a `boundary` parameter; the body starts
/// with `--boundary\r\n` and ends with `\r\n--boundary--\r\n`; parts are separated by
/// `\r\n--boundary\r\n`; every header line ends with CRLF (no bare LF) and the header block
/// ends with an empty line; each part has exactly one `content-type` and one
/// `content-disposition` with a `name` parameter; no part body contains the delimiter.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<MultipartPart>, String> {
    let (media, params) = content_type
        .split_once(';')
        .ok_or("no parameters in the content-type")?;
    if !media.trim().eq_ignore_ascii_case("multipart/mixed") {
        return Err(format!("media type {media:?} is not multipart/mixed"));
    }
    let boundary = params
        .split(';')
        .find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_owned())
        })
        .ok_or("no boundary parameter")?;
    if boundary.is_empty() || boundary.len() > 70 || boundary.ends_with(' ') {
        return Err(format!("invalid boundary {boundary:?}"));
    }
    let open = format!("--{boundary}\r\n");
    let close = format!("\r\n--{boundary}--\r\n");
    let separator = format!("\r\n--{boundary}\r\n");
    let delimiter = format!("\r\n--{boundary}");
    if !body.starts_with(open.as_bytes()) {
        return Err(format!("the body does not start with {open:?}"));
    }
    if !body.ends_with(close.as_bytes()) {
        return Err(format!("the body does not end with {close:?}"));
    }
    if body.len() < open.len() + close.len() - 2 {
        return Err("the body is too short".to_owned());
    }
    let mut rest = &body[open.len()..body.len() - close.len()];
    let mut raw_parts = Vec::new();
    loop {
        match find(rest, separator.as_bytes()) {
            Some(at) => {
                raw_parts.push(&rest[..at]);
                rest = &rest[at + separator.len()..];
            }
            None => {
                raw_parts.push(rest);
                break;
            }
        }
    }
    let mut parts = Vec::new();
    for raw in raw_parts {
        let end = find(raw, b"\r\n\r\n").ok_or("a part has no empty line after its headers")?;
        let head = std::str::from_utf8(&raw[..end]).map_err(|_| "part headers are not UTF-8")?;
        let part_body = raw[end + 4..].to_vec();
        if find(&part_body, delimiter.as_bytes()).is_some() {
            return Err("a part body contains the delimiter".to_owned());
        }
        let mut headers = Vec::new();
        for line in head.split("\r\n") {
            if line.contains('\n') || line.contains('\r') {
                return Err(format!("bare CR or LF in the part header {line:?}"));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("not a header line: {line:?}"))?;
            if name.is_empty() || name.trim() != name {
                return Err(format!("bad header name in {line:?}"));
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let count = |wanted: &str| headers.iter().filter(|(name, _)| name == wanted).count();
        if count("content-type") != 1 {
            return Err(format!(
                "a part must have exactly one content-type, it has {}: {head:?}",
                count("content-type")
            ));
        }
        if count("content-disposition") != 1 {
            return Err(format!(
                "a part must have exactly one content-disposition: {head:?}"
            ));
        }
        let part = MultipartPart {
            headers,
            body: part_body,
        };
        if disposition_name(part.header("content-disposition").unwrap_or_default())
            .is_none_or(|name| name.is_empty())
        {
            return Err(format!(
                "content-disposition without a name parameter: {head:?}"
            ));
        }
        parts.push(part);
    }
    Ok(parts)
}

/// The members of an `expo-signature` SFV dictionary whose values are all strings
/// (`keyid="main", sig="...", alg="..."`).
pub fn parse_signature_header(header: &str) -> Result<BTreeMap<String, String>, String> {
    let mut members = BTreeMap::new();
    for member in header.split(',') {
        let (key, value) = member
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("member {member:?} has no value"))?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("member {member:?} is not an SFV string"))?;
        if members.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(format!("member {key:?} is repeated"));
        }
    }
    Ok(members)
}

/// Verifies `signature_b64` (standard base64) over `body` with the fixture certificate's
/// public key, using the `openssl` command-line tool (an implementation independent of the
/// server's). Returns openssl's output on failure.
pub fn openssl_verify(body: &[u8], signature_b64: &str) -> Result<(), String> {
    openssl_verify_with(body, signature_b64, &certificate_path())
}

/// Like [`openssl_verify`], with the public key of the certificate (PEM) at `certificate`.
pub fn openssl_verify_with(
    body: &[u8],
    signature_b64: &str,
    certificate: &std::path::Path,
) -> Result<(), String> {
    let signature = STANDARD
        .decode(signature_b64)
        .map_err(|e| format!("sig is not standard base64: {e}"))?;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let public_key = dir.path().join("pub.pem");
    let signature_file = dir.path().join("sig.bin");
    let body_file = dir.path().join("body.json");
    std::fs::write(&signature_file, &signature).expect("write sig.bin");
    std::fs::write(&body_file, body).expect("write body.json");
    let extracted = Command::new("openssl")
        .arg("x509")
        .arg("-in")
        .arg(certificate)
        .args(["-pubkey", "-noout", "-out"])
        .arg(&public_key)
        .output()
        .expect("run openssl x509");
    if !extracted.status.success() {
        return Err(format!(
            "openssl x509 failed: {}",
            String::from_utf8_lossy(&extracted.stderr)
        ));
    }
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&public_key)
        .arg("-signature")
        .arg(&signature_file)
        .arg(&body_file)
        .output()
        .expect("run openssl dgst");
    let stdout = String::from_utf8_lossy(&verified.stdout);
    if verified.status.success() && stdout.contains("Verified OK") {
        Ok(())
    } else {
        Err(format!(
            "openssl dgst -verify: {} {}",
            stdout,
            String::from_utf8_lossy(&verified.stderr)
        ))
    }
}

impl TestApp {
    pub fn manifest_path(project_id: &str) -> String {
        format!("/api/updates/{project_id}/manifest")
    }

    /// Sends an update check for `project_id`.
    pub async fn check(&self, project_id: &str, check: &UpdateCheck) -> RawResponse {
        let mut request = self
            .client
            .get(self.url(&Self::manifest_path(project_id)))
            .query(&check.query);
        let headers = [
            ("expo-platform", check.platform.as_deref()),
            ("expo-runtime-version", check.runtime_version.as_deref()),
            ("expo-protocol-version", check.protocol.as_deref()),
            ("accept", check.accept.as_deref()),
            ("expo-current-update-id", check.current_update_id.as_deref()),
            (
                "expo-embedded-update-id",
                check.embedded_update_id.as_deref(),
            ),
            ("expo-channel-name", check.channel.as_deref()),
            ("eas-client-id", check.client_id.as_deref()),
            (
                "expo-expect-signature",
                check.expect_signature.then_some(
                    check
                        .expect_signature_value
                        .as_deref()
                        .unwrap_or(EXPECT_SIGNATURE),
                ),
            ),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        for (name, value) in &check.headers {
            request = request.header(name.as_str(), value.clone());
        }
        self.fetch_request(request).await
    }

    /// `GET` an absolute URL (e.g. an asset URL from a manifest).
    pub async fn fetch(&self, url: &str) -> RawResponse {
        self.fetch_request(self.client.get(url)).await
    }

    /// `GET` a path of this server.
    pub async fn fetch_path(&self, path: &str) -> RawResponse {
        self.fetch(&self.url(path)).await
    }

    pub async fn fetch_request(&self, request: reqwest::RequestBuilder) -> RawResponse {
        let response = request.send().await.expect("the HTTP request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .expect("read the response body")
            .to_vec();
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// A protocol 1 check that must answer a `manifest` part (plus `extensions`); returns
    /// the manifest JSON.
    pub async fn latest_manifest(
        &self,
        project_id: &str,
        platform: &str,
        runtime_version: &str,
    ) -> Value {
        let response = self
            .check(project_id, &UpdateCheck::v1(platform, runtime_version))
            .await;
        response.assert_status(200);
        let parts = response.multipart();
        parts
            .iter()
            .find(|part| part.name() == "manifest")
            .unwrap_or_else(|| panic!("no manifest part in {:?}", response.text()))
            .json()
    }
}

impl TestApp {
    /// Starts a server that knows its own address: a free port chosen up front, `PORT` set
    /// to it and `PUBLIC_URL=http://127.0.0.1:<port>`, so the absolute URLs in manifests
    /// are reachable. (With the harness default `PORT=0` the server cannot know its port
    /// when it builds its public URL.) Retries with another port if the chosen one was
    /// taken in between.
    pub async fn spawn_public(
        backend: crate::Backend,
        storage: crate::Storage,
        extra_env: &[(&str, &str)],
    ) -> TestApp {
        let mut errors = Vec::new();
        for _ in 0..5 {
            let port = test_support::free_port();
            let port_text = port.to_string();
            let public_url = format!("http://127.0.0.1:{port}");
            let mut env = vec![
                ("PORT", port_text.as_str()),
                ("PUBLIC_URL", public_url.as_str()),
            ];
            env.extend_from_slice(extra_env);
            match TestApp::try_spawn_on(backend, storage, &env).await {
                Ok(app) => {
                    assert_eq!(app.port, port, "the server did not listen on PORT");
                    return app;
                }
                Err(error) => errors.push(error),
            }
        }
        panic!("the server failed to start on a chosen port: {errors:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_multipart;

    const CT: &str = "multipart/mixed; boundary=b1";

    fn part(name: &str) -> String {
        format!(
            "content-type: application/json\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{{}}"
        )
    }

    #[test]
    fn accepts_well_formed_bodies() {
        let body = format!(
            "--b1\r\n{}\r\n--b1\r\n{}\r\n--b1--\r\n",
            part("manifest"),
            part("extensions")
        );
        let parts = parse_multipart(CT, body.as_bytes()).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name(), "manifest");
        assert_eq!(parts[1].name(), "extensions");
        assert_eq!(parts[1].body, b"{}");
    }

    #[test]
    fn rejects_sloppy_framing() {
        let good = part("manifest");
        let bad = [
            // no CRLF after the close delimiter
            format!("--b1\r\n{good}\r\n--b1--"),
            // bare LF line ends
            format!("--b1\r\n{}\r\n--b1--\r\n", good.replace("\r\n", "\n")),
            // two content-types
            format!("--b1\r\ncontent-type: application/json\r\n{good}\r\n--b1--\r\n"),
            // no name
            "--b1\r\ncontent-type: application/json\r\ncontent-disposition: form-data\r\n\r\n{}\r\n--b1--\r\n".to_owned(),
            // transport padding after the delimiter
            format!("--b1 \r\n{good}\r\n--b1--\r\n"),
        ];
        for body in bad {
            assert!(
                parse_multipart(CT, body.as_bytes()).is_err(),
                "accepted {body:?}"
            );
        }
        let good_body = format!("--b1\r\n{good}\r\n--b1--\r\n");
        assert!(parse_multipart("multipart/mixed", good_body.as_bytes()).is_err());
    }
}
