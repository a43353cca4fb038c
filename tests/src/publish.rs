//! Publishing: the real `npx expo export` fixtures (`/work/shared/fixtures`) and a builder
//! for the `multipart/form-data` body of `POST /api/updates/{projectId}/publish`.
//!
//! The form is derived from an export's own `metadata.json`, so tests upload exactly the
//! field names a real export produces; knobs drop, rename or add fields and replace the
//! text and JSON parts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::Digest;

use crate::{Response, TestApp};

/// The success message of a publish.
pub const PUBLISHED_MESSAGE: &str = "Update published successfully";

/// `/work/shared/fixtures`, found from this crate's directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_bytes_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The blob key of a file with SHA-256 `sha256_hex` in `project_id`.
pub fn asset_key(project_id: &str, sha256_hex: &str) -> String {
    format!("projects/{project_id}/assets/{sha256_hex}")
}

/// One `expo export` output directory.
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub dir: PathBuf,
    /// `metadata.json`, parsed.
    pub metadata: Value,
    /// `runtimeVersion` from the export's `expoConfig.json`.
    pub runtime_version: String,
}

impl Export {
    /// Loads `<fixtures>/<name>`.
    pub fn load(name: &str) -> Export {
        let dir = fixtures_dir().join(name);
        let read_json = |file: &str| -> Value {
            let path = dir.join(file);
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("read the fixture {}: {e}", path.display()));
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("the fixture {} is not JSON: {e}", path.display()))
        };
        let metadata = read_json("metadata.json");
        let runtime_version = read_json("expoConfig.json")["runtimeVersion"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}/expoConfig.json has no string runtimeVersion"))
            .to_owned();
        Export {
            name: name.to_owned(),
            dir,
            metadata,
            runtime_version,
        }
    }

    /// runtimeVersion 1.0.0, "Fixture update v1", 4 asset files.
    pub fn v1() -> Export {
        Self::load("expo-sdk56-export-v1")
    }

    /// runtimeVersion 1.0.0, the update after v1: 4 assets shared with v1 plus one more.
    pub fn v2() -> Export {
        Self::load("expo-sdk56-export-v2")
    }

    /// runtimeVersion 2.0.0, v1's assets with new bundles.
    pub fn rt2() -> Export {
        Self::load("expo-sdk56-export-rt2")
    }

    fn file_metadata(&self) -> &serde_json::Map<String, Value> {
        self.metadata["fileMetadata"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: fileMetadata is not an object", self.name))
    }

    /// The platforms listed in `fileMetadata` (key order is not meaningful).
    pub fn platforms(&self) -> Vec<String> {
        self.file_metadata().keys().cloned().collect()
    }

    /// The launch bundle path of `platform`.
    pub fn bundle(&self, platform: &str) -> String {
        self.file_metadata()[platform]["bundle"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no bundle for {platform}", self.name))
            .to_owned()
    }

    /// The distinct bundle paths.
    pub fn bundle_paths(&self) -> BTreeSet<String> {
        self.platforms()
            .iter()
            .map(|platform| self.bundle(platform))
            .collect()
    }

    /// The distinct asset paths (over all platforms).
    pub fn asset_paths(&self) -> BTreeSet<String> {
        self.file_metadata()
            .values()
            .flat_map(|platform| {
                platform["assets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|asset| {
                        asset["path"]
                            .as_str()
                            .expect("an asset has a string path")
                            .to_owned()
                    })
            })
            .collect()
    }

    /// Every distinct path listed in `metadata.json`: bundles and assets.
    pub fn listed_paths(&self) -> BTreeSet<String> {
        let mut paths = self.bundle_paths();
        paths.extend(self.asset_paths());
        paths
    }

    /// The file at `path` (relative to the export root).
    pub fn file(&self, path: &str) -> PathBuf {
        path.split('/')
            .fold(self.dir.clone(), |dir, segment| dir.join(segment))
    }

    pub fn bytes(&self, path: &str) -> Vec<u8> {
        let file = self.file(path);
        std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
    }

    /// Hex SHA-256 of the file at `path`.
    pub fn sha256_hex(&self, path: &str) -> String {
        sha256_bytes_hex(&self.bytes(path))
    }

    /// Where each listed file must be stored after publishing to `project_id`:
    /// blob key → the export path it comes from (one entry per distinct content).
    pub fn expected_blobs(&self, project_id: &str) -> BTreeMap<String, String> {
        self.listed_paths()
            .into_iter()
            .map(|path| (asset_key(project_id, &self.sha256_hex(&path)), path))
            .collect()
    }

    /// The raw bytes of a top-level file of the export (`metadata.json`, `expoConfig.json`).
    pub fn raw(&self, file: &str) -> Vec<u8> {
        self.bytes(file)
    }
}

/// What to send for a JSON part (`metadata.json`, `expoConfig.json`).
#[derive(Debug, Clone)]
pub enum Content {
    /// The export's own file, streamed from disk.
    FromExport,
    /// These bytes instead.
    Bytes(Vec<u8>),
    /// No such field.
    Omit,
}

/// A publish form built from an [`Export`], with knobs. Build it with [`PublishForm::form`].
#[derive(Debug, Clone)]
pub struct PublishForm {
    pub export: Export,
    /// The `runtimeVersion` text field (`None`: not sent).
    pub runtime_version: Option<String>,
    pub metadata: Content,
    pub expo_config: Content,
    /// Listed paths whose file field is not sent.
    pub omitted: BTreeSet<String>,
    /// Listed path → the field name to send its file under instead of the path.
    pub renamed: BTreeMap<String, String>,
    /// Extra file fields (name, bytes), sent after the listed files.
    pub extra: Vec<(String, Vec<u8>)>,
    /// Send every file with an unknown length (the request is sent chunked).
    pub unknown_lengths: bool,
}

impl PublishForm {
    /// Everything the export lists, its `metadata.json` and `expoConfig.json`, and its
    /// runtime version.
    pub fn new(export: &Export) -> PublishForm {
        PublishForm {
            export: export.clone(),
            runtime_version: Some(export.runtime_version.clone()),
            metadata: Content::FromExport,
            expo_config: Content::FromExport,
            omitted: BTreeSet::new(),
            renamed: BTreeMap::new(),
            extra: Vec::new(),
            unknown_lengths: false,
        }
    }

    pub fn runtime_version(mut self, runtime_version: Option<&str>) -> Self {
        self.runtime_version = runtime_version.map(str::to_owned);
        self
    }

    /// Sends `metadata` (serialised) as `metadata.json`.
    pub fn metadata_json(self, metadata: &Value) -> Self {
        self.metadata_bytes(metadata.to_string().into_bytes())
    }

    pub fn metadata_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.metadata = Content::Bytes(bytes.into());
        self
    }

    pub fn without_metadata(mut self) -> Self {
        self.metadata = Content::Omit;
        self
    }

    pub fn expo_config_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.expo_config = Content::Bytes(bytes.into());
        self
    }

    pub fn without_expo_config(mut self) -> Self {
        self.expo_config = Content::Omit;
        self
    }

    /// Does not upload the listed file `path`.
    pub fn without_file(mut self, path: &str) -> Self {
        assert!(
            self.export.listed_paths().contains(path),
            "{path} is not listed in {}",
            self.export.name
        );
        self.omitted.insert(path.to_owned());
        self
    }

    /// Uploads the listed file `path` under the field name `field`.
    pub fn rename_file(mut self, path: &str, field: &str) -> Self {
        assert!(
            self.export.listed_paths().contains(path),
            "{path} is not listed in {}",
            self.export.name
        );
        self.renamed.insert(path.to_owned(), field.to_owned());
        self
    }

    /// Uploads every listed file under its path with `\` instead of `/` (as Windows exports
    /// name them).
    pub fn with_backslashes(mut self) -> Self {
        for path in self.export.listed_paths() {
            let field = path.replace('/', "\\");
            self.renamed.insert(path, field);
        }
        self
    }

    /// Adds a file field that `metadata.json` does not list.
    pub fn extra_file(mut self, field: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.extra.push((field.to_owned(), bytes.into()));
        self
    }

    /// Streams every file without announcing its length (no `Content-Length`).
    pub fn with_unknown_lengths(mut self) -> Self {
        self.unknown_lengths = true;
        self
    }

    /// The file fields sent for listed paths: field name → export path.
    pub fn file_fields(&self) -> BTreeMap<String, String> {
        self.export
            .listed_paths()
            .into_iter()
            .filter(|path| !self.omitted.contains(path))
            .map(|path| {
                let field = self.renamed.get(&path).cloned().unwrap_or(path.clone());
                (field, path)
            })
            .collect()
    }

    /// The parts of the form, in order: `runtimeVersion`, `metadata.json`,
    /// `expoConfig.json`, one file field per listed path, then the extra fields.
    pub fn parts(&self) -> Vec<FormPart> {
        let mut parts = Vec::new();
        if let Some(runtime_version) = &self.runtime_version {
            parts.push(FormPart {
                name: "runtimeVersion".to_owned(),
                file_name: None,
                content_type: None,
                source: Source::Bytes(runtime_version.clone().into_bytes()),
            });
        }
        for (content, file) in [
            (&self.metadata, "metadata.json"),
            (&self.expo_config, "expoConfig.json"),
        ] {
            let source = match content {
                Content::Omit => continue,
                Content::FromExport => Source::File(self.export.dir.join(file)),
                Content::Bytes(bytes) => Source::Bytes(bytes.clone()),
            };
            parts.push(FormPart {
                name: file.to_owned(),
                file_name: Some(file.to_owned()),
                content_type: Some("application/json"),
                source,
            });
        }
        for (field, path) in self.file_fields() {
            let file = self.export.file(&path);
            parts.push(FormPart {
                name: field,
                file_name: Some(file_name_of(&path)),
                content_type: Some("application/octet-stream"),
                source: Source::File(file),
            });
        }
        for (field, bytes) in &self.extra {
            parts.push(FormPart {
                name: field.clone(),
                file_name: Some(file_name_of(field)),
                content_type: Some("application/octet-stream"),
                source: Source::Bytes(bytes.clone()),
            });
        }
        parts
    }

    /// The form for reqwest, file contents streamed from disk.
    ///
    /// Field names are sent verbatim (`name="_expo/static/js/ios/index-….hbc"`), as browsers,
    /// curl and Node's `FormData` send them; reqwest's default would percent-encode the `/`
    /// into an RFC 8187 `name*=` parameter that no real client sends.
    pub async fn form(&self) -> Form {
        let mut form = Form::new().percent_encode_noop();
        for part in self.parts() {
            let mut reqwest_part = match (&part.source, self.unknown_lengths) {
                (Source::File(path), false) => Part::file(path)
                    .await
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
                (Source::File(path), true) => Part::stream(
                    tokio::fs::File::open(path)
                        .await
                        .unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
                ),
                (Source::Bytes(bytes), false) => Part::bytes(bytes.clone()),
                (Source::Bytes(bytes), true) => {
                    let bytes = bytes.clone();
                    let once =
                        futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
                    Part::stream(reqwest::Body::wrap_stream(once))
                }
            };
            if let Some(file_name) = &part.file_name {
                reqwest_part = reqwest_part.file_name(file_name.clone());
            }
            if let Some(content_type) = part.content_type {
                reqwest_part = reqwest_part
                    .mime_str(content_type)
                    .expect("a valid MIME type");
            }
            form = form.part(part.name, reqwest_part);
        }
        form
    }
}

/// The last segment of a path (with `/` or `\`), as a file name.
fn file_name_of(path: &str) -> String {
    path.rsplit(['/', '\\'])
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("file")
        .to_owned()
}

/// One part of a publish form.
#[derive(Debug, Clone)]
pub struct FormPart {
    pub name: String,
    /// `Some` for a file field.
    pub file_name: Option<String>,
    pub content_type: Option<&'static str>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// Streamed from this file.
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl TestApp {
    pub fn publish_path(project_id: &str) -> String {
        format!("/api/updates/{project_id}/publish")
    }

    /// `POST /api/updates/{projectId}/publish` with reqwest, with `Authorization: Bearer <key>`
    /// (none when `key` is `None`).
    ///
    /// reqwest (hyper) only reads the answer once it has sent the whole body: when the server
    /// answers early and closes (401, 403, 413 before reading a large upload) it can report a
    /// broken pipe instead of the answer (seen with this server: `BodyWrite`, EPIPE). Use
    /// [`TestApp::publish_like_curl`] for those; curl itself gets the answer.
    pub async fn publish_raw(
        &self,
        project_id: &str,
        key: Option<&str>,
        form: &PublishForm,
    ) -> Response {
        let mut request = self.client.post(self.url(&Self::publish_path(project_id)));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        self.send(request.multipart(form.form().await)).await
    }

    /// Publishes `form` with the API key `secret`, asserting
    /// `200 {"updateId": "<uuid>", "message": "Update published successfully"}`;
    /// returns the `updateId`.
    pub async fn publish(&self, project_id: &str, secret: &str, form: &PublishForm) -> String {
        let response = self.publish_raw(project_id, Some(secret), form).await;
        response.assert_status(200);
        crate::assert_uuid(&response.json["updateId"]);
        assert_eq!(
            response.json["message"], PUBLISHED_MESSAGE,
            "body: {}",
            response.text
        );
        crate::str_field(&response.json, "updateId")
    }

    /// Like [`TestApp::publish_raw`] but over a plain HTTP/1.1 connection that reads the
    /// answer while it is still sending the body, as curl and browsers do: an answer the
    /// server sends before it has read the whole upload (then closing the connection) is
    /// returned instead of a broken pipe. The body is streamed from the fixture files, with a
    /// `Content-Length`, or chunked when the form has unknown lengths.
    pub async fn publish_like_curl(
        &self,
        project_id: &str,
        key: Option<&str>,
        form: &PublishForm,
    ) -> Response {
        let mut headers = Vec::new();
        if let Some(key) = key {
            headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
        }
        raw_http::post_multipart(
            self.port,
            &Self::publish_path(project_id),
            &headers,
            &form.parts(),
            form.unknown_lengths,
        )
        .await
    }
}

impl TestApp {
    /// Starts publishing `form` but hangs up after `body_bytes` bytes of the body, once the
    /// server has staged something (waits up to 10 s for an object under `staging/`).
    /// Returns whether staging held anything when the connection was dropped.
    pub async fn publish_and_hang_up(
        &self,
        project_id: &str,
        key: &str,
        form: &PublishForm,
        body_bytes: u64,
    ) -> bool {
        let headers = vec![("Authorization".to_owned(), format!("Bearer {key}"))];
        let connection = raw_http::post_multipart_partially(
            self.port,
            &Self::publish_path(project_id),
            &headers,
            &form.parts(),
            body_bytes,
        )
        .await;
        let mut staged = false;
        for _ in 0..100 {
            if !self.stored_objects_under("staging/").is_empty() {
                staged = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        drop(connection);
        staged
    }
}

/// A minimal HTTP/1.1 client that sends a multipart body and reads the answer concurrently.
mod raw_http {
    use std::time::Duration;

    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

    use super::{FormPart, Source};
    use crate::Response;

    const CHUNK: usize = 64 * 1024;

    /// A piece of the body: literal bytes or a file's content.
    enum Segment {
        Bytes(Vec<u8>),
        File(std::path::PathBuf),
    }

    fn segments(parts: &[FormPart], boundary: &str) -> Vec<Segment> {
        let mut segments = Vec::new();
        for part in parts {
            let mut head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
                part.name
            );
            if let Some(file_name) = &part.file_name {
                head.push_str(&format!("; filename=\"{file_name}\""));
            }
            if let Some(content_type) = part.content_type {
                head.push_str(&format!("\r\nContent-Type: {content_type}"));
            }
            head.push_str("\r\n\r\n");
            segments.push(Segment::Bytes(head.into_bytes()));
            segments.push(match &part.source {
                Source::Bytes(bytes) => Segment::Bytes(bytes.clone()),
                Source::File(path) => Segment::File(path.clone()),
            });
            segments.push(Segment::Bytes(b"\r\n".to_vec()));
        }
        segments.push(Segment::Bytes(format!("--{boundary}--\r\n").into_bytes()));
        segments
    }

    fn length(segments: &[Segment]) -> u64 {
        segments
            .iter()
            .map(|segment| match segment {
                Segment::Bytes(bytes) => bytes.len() as u64,
                Segment::File(path) => std::fs::metadata(path)
                    .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
                    .len(),
            })
            .sum()
    }

    async fn write_chunk(
        writer: &mut OwnedWriteHalf,
        bytes: &[u8],
        chunked: bool,
    ) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if chunked {
            writer
                .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
                .await?;
            writer.write_all(bytes).await?;
            writer.write_all(b"\r\n").await
        } else {
            writer.write_all(bytes).await
        }
    }

    /// Writes the request; with `limit`, stops (without ending the body) once that many
    /// body bytes are written. Returns the connection's write half, still open.
    async fn write_request(
        mut writer: OwnedWriteHalf,
        head: String,
        segments: Vec<Segment>,
        chunked: bool,
        limit: Option<u64>,
    ) -> std::io::Result<OwnedWriteHalf> {
        writer.write_all(head.as_bytes()).await?;
        let mut budget = limit.unwrap_or(u64::MAX);
        for segment in segments {
            let mut reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match segment {
                Segment::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes)),
                Segment::File(path) => Box::new(tokio::fs::File::open(&path).await?),
            };
            let mut buffer = vec![0u8; CHUNK];
            loop {
                if budget == 0 {
                    writer.flush().await?;
                    return Ok(writer);
                }
                let wanted = buffer
                    .len()
                    .min(usize::try_from(budget).unwrap_or(usize::MAX));
                let read = reader.read(&mut buffer[..wanted]).await?;
                if read == 0 {
                    break;
                }
                write_chunk(&mut writer, &buffer[..read], chunked).await?;
                budget -= read as u64;
            }
        }
        if chunked {
            writer.write_all(b"0\r\n\r\n").await?;
        }
        writer.flush().await?;
        Ok(writer)
    }

    /// A parsed answer once complete: (status, headers, body).
    fn parse(buffer: &[u8], at_eof: bool) -> Option<(u16, HeaderMap, Vec<u8>)> {
        let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&buffer[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let mut headers = HeaderMap::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            headers.append(
                HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
                HeaderValue::from_str(value.trim()).ok()?,
            );
        }
        let body = &buffer[end + 4..];
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_ascii_lowercase)
        };
        if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            let mut decoded = Vec::new();
            let mut rest = body;
            loop {
                let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
                let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
                let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
                rest = &rest[line_end + 2..];
                if size == 0 {
                    return Some((status, headers, decoded));
                }
                if rest.len() < size + 2 {
                    return None;
                }
                decoded.extend_from_slice(&rest[..size]);
                rest = &rest[size + 2..];
            }
        }
        match header("content-length").and_then(|len| len.parse::<usize>().ok()) {
            Some(len) if body.len() >= len => Some((status, headers, body[..len].to_vec())),
            Some(_) => None,
            None if at_eof => Some((status, headers, body.to_vec())),
            None => None,
        }
    }

    /// Connects and starts sending the request in a task, which ends after `limit` body
    /// bytes (all of them with `None`) and hands back the still open write half.
    async fn start(
        port: u16,
        path: &str,
        headers: &[(String, String)],
        parts: &[FormPart],
        chunked: bool,
        limit: Option<u64>,
    ) -> (
        OwnedReadHalf,
        tokio::task::JoinHandle<std::io::Result<OwnedWriteHalf>>,
    ) {
        let boundary = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let segments = segments(parts, &boundary);
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\n"
        );
        if chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n", length(&segments)));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");

        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the server");
        let (reader, writer) = stream.into_split();
        let sending = tokio::spawn(write_request(writer, head, segments, chunked, limit));
        (reader, sending)
    }

    /// Sends only the first `body_bytes` bytes of the body, then returns the open
    /// connection halves (drop them to hang up).
    pub async fn post_multipart_partially(
        port: u16,
        path: &str,
        headers: &[(String, String)],
        parts: &[FormPart],
        body_bytes: u64,
    ) -> (OwnedReadHalf, OwnedWriteHalf) {
        let (reader, sending) = start(port, path, headers, parts, false, Some(body_bytes)).await;
        let writer = sending
            .await
            .expect("the sending task")
            .expect("sending the start of the body");
        (reader, writer)
    }

    pub async fn post_multipart(
        port: u16,
        path: &str,
        headers: &[(String, String)],
        parts: &[FormPart],
        chunked: bool,
    ) -> Response {
        let (mut reader, sending) = start(port, path, headers, parts, chunked, None).await;

        let mut buffer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), async {
            let mut chunk = vec![0u8; CHUNK];
            loop {
                if let Some(answer) = parse(&buffer, false) {
                    return Ok(answer);
                }
                match reader.read(&mut chunk).await {
                    Ok(0) => {
                        return parse(&buffer, true).ok_or_else(|| {
                            "the server closed the connection before a complete answer".to_owned()
                        });
                    }
                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    Err(e) => {
                        return parse(&buffer, true)
                            .ok_or_else(|| format!("reading the answer failed: {e}"));
                    }
                }
            }
        })
        .await;
        sending.abort();
        let sent = sending.await;
        let (status, headers, body) = match read {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => panic!(
                "{error} (sending: {sent:?}); received {:?}",
                String::from_utf8_lossy(&buffer)
            ),
            Err(_) => panic!("no answer within 60 s (sending: {sent:?})"),
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Response {
            status,
            headers,
            text,
            json,
        }
    }
}
