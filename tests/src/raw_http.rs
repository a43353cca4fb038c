//! A byte-exact HTTP/1.1 client over TCP: requests are written as given (nothing normalised or
//! encoded: dot segments, percent-encoding, header bytes, framing), and the answer is read
//! while the request is still being sent, so an answer a server sends before it has read the
//! whole body (then closing) is returned where reqwest (hyper) reports a broken pipe.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::publish::{FormPart, Source};
use crate::{Response, TestApp};

/// How long [`RawRequest::send`] waits for an answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// A request written byte for byte as given: nothing is normalised or encoded.
#[derive(Debug, Clone)]
pub struct RawRequest {
    method: String,
    target: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    chunked: bool,
    /// A `Content-Length` to announce instead of the body's length.
    declared_length: Option<u64>,
}

impl RawRequest {
    pub fn new(method: &str, target: impl AsRef<[u8]>) -> RawRequest {
        RawRequest {
            method: method.to_owned(),
            target: target.as_ref().to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            declared_length: None,
        }
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> RawRequest {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    pub fn bearer(self, token: &str) -> RawRequest {
        self.header("Authorization", format!("Bearer {token}"))
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RawRequest {
        self.body = body.into();
        self
    }

    /// Sends the body with `Transfer-Encoding: chunked` (64 KiB chunks).
    pub fn chunked(mut self) -> RawRequest {
        self.chunked = true;
        self
    }

    pub fn declare_length(mut self, length: u64) -> RawRequest {
        self.declared_length = Some(length);
        self
    }

    pub fn bytes(&self, port: u16) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.body.len() + 1024);
        bytes.extend_from_slice(self.method.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(&self.target);
        bytes.extend_from_slice(
            format!(" HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n").as_bytes(),
        );
        for (name, value) in &self.headers {
            bytes.extend_from_slice(name.as_bytes());
            bytes.extend_from_slice(b": ");
            bytes.extend_from_slice(value);
            bytes.extend_from_slice(b"\r\n");
        }
        let has_body = !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PATCH");
        if self.chunked {
            bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for chunk in self.body.chunks(64 * 1024) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
            return bytes;
        }
        if let Some(length) = self.declared_length {
            bytes.extend_from_slice(format!("Content-Length: {length}\r\n").as_bytes());
        } else if has_body {
            bytes.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Sends the request on a new connection while reading the answer (which may come
    /// before the whole body is sent), within [`ANSWER_WITHIN`].
    pub async fn send(&self, app: &TestApp) -> Result<Response, String> {
        exchange(app.port, self.bytes(app.port), ANSWER_WITHIN).await
    }
}

/// Sends `request` on a new connection to `port` while reading the answer, within `within`.
pub async fn exchange(port: u16, request: Vec<u8>, within: Duration) -> Result<Response, String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut reader, mut writer) = stream.into_split();
    // The write half stays open (inside the task's output) until the answer is read: a
    // half-closed connection may make the server drop the request.
    let sending = tokio::spawn(async move {
        for chunk in request.chunks(64 * 1024) {
            if writer.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = writer.flush().await;
        writer
    });
    let answer = read_answer(&mut reader, within).await;
    sending.abort();
    let _ = sending.await;
    answer
}

/// Reads from `reader` until it holds a complete answer (or the connection ends with one),
/// within `within`. The error says what was received.
pub async fn read_answer(
    reader: &mut (impl AsyncRead + Unpin),
    within: Duration,
) -> Result<Response, String> {
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(response) = parse_answer(&buffer, false) {
                return Ok(response);
            }
            match reader.read(&mut chunk).await {
                Ok(0) => {
                    return parse_answer(&buffer, true).ok_or_else(|| {
                        format!(
                            "the connection was closed without a complete answer (received {:?})",
                            preview(&buffer)
                        )
                    });
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    return parse_answer(&buffer, true).ok_or_else(|| {
                        format!(
                            "reading the answer failed: {e} (received {:?})",
                            preview(&buffer)
                        )
                    });
                }
            }
        }
    })
    .await;
    read.unwrap_or_else(|_| {
        Err(format!(
            "no answer within {within:?} (received {:?})",
            preview(&buffer)
        ))
    })
}

/// The first 300 bytes, as text.
pub fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}

/// A complete answer in `buffer`, if there is one: status, headers, body (de-chunked).
pub fn parse_answer(buffer: &[u8], at_eof: bool) -> Option<Response> {
    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let rest = &buffer[end + 4..];
    if (100..200).contains(&status) {
        return parse_answer(rest, at_eof);
    }
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) {
            headers.append(name, value);
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        let mut decoded = Vec::new();
        let mut rest = rest;
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break decoded;
            }
            if rest.len() < size + 2 {
                return None;
            }
            decoded.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if rest.len() < length {
            return None;
        }
        rest[..length].to_vec()
    } else if at_eof {
        rest.to_vec()
    } else {
        return None;
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Response {
        status,
        headers,
        text,
        json,
    })
}

// ---------------------------------------------------------------------------------------------
// Multipart forms streamed from files
// ---------------------------------------------------------------------------------------------

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

/// Sends a `multipart/form-data` POST of `parts` (files streamed from disk; chunked or with a
/// `Content-Length`) while reading the answer; panics when there is no complete answer
/// within 60 s.
pub async fn post_multipart(
    port: u16,
    path: &str,
    headers: &[(String, String)],
    parts: &[FormPart],
    chunked: bool,
) -> Response {
    let (mut reader, sending) = start(port, path, headers, parts, chunked, None).await;
    let answer = read_answer(&mut reader, Duration::from_secs(60)).await;
    sending.abort();
    let sent = sending.await;
    answer.unwrap_or_else(|error| panic!("{error} (sending: {sent:?})"))
}
