//! `publish`: checks an export, asks the server which of its files it lacks,
//! and uploads only those; the rest are named by their SHA-256, so a second
//! publish that shares most assets with the first sends only the new bytes.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tokio_util::io::ReaderStream;

use crate::api::{Api, Retry, read_json, segment};
use crate::args::PublishArgs;
use crate::error::{CliError, CliResult};
use crate::export::{self, CheckedExport, ExportFile};

/// The most hashes one `assets/missing` request may carry (the server's limit).
const HASHES_PER_QUERY: usize = 10_000;

/// Publishes the export named by `args` (or a fresh `npx expo export`) to
/// `project` with the API key in `api`, and returns the server's answer
/// with what was sent. If the server's storage collection removed a reused
/// file between the question and the publish (409), it asks once more and
/// uploads that file too.
pub async fn publish(api: &Api, project: &str, args: &PublishArgs) -> CliResult<Value> {
    let exported;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            exported = export::run_expo_export(args.platform)?;
            exported.path().to_path_buf()
        }
    };
    let checked = export::check(&dir, args.platform, args.runtime_version.as_deref()).await?;
    match publish_checked(api, project, args, &checked).await {
        Err(CliError::Rejected(message)) if message.starts_with("409") => {
            eprintln!("{message}\nasking the server again which files it lacks");
            publish_checked(api, project, args, &checked).await
        }
        done => done,
    }
}

async fn publish_checked(
    api: &Api,
    project: &str,
    args: &PublishArgs,
    checked: &CheckedExport,
) -> CliResult<Value> {
    let Missing {
        hashes: missing,
        max_upload_bytes,
    } = missing_hashes(api, project, checked).await?;
    let (upload, reuse): (Vec<&ExportFile>, Vec<&ExportFile>) = checked
        .files
        .iter()
        .partition(|file| missing.contains(&file.sha256_hex));
    let upload_bytes: u64 = upload.iter().map(|file| file.size).sum();
    // Said before sending: a server that refuses a body midway closes the
    // connection, and the client may see a broken pipe instead of the 413.
    if let Some(limit) = max_upload_bytes.filter(|limit| upload_bytes > *limit) {
        return Err(CliError::TooLarge(format!(
            "413: the files to upload come to {upload_bytes} bytes, over the server's \
             MAX_UPLOAD_BYTES of {limit}"
        )));
    }
    let platforms: Vec<&str> = checked
        .platforms
        .iter()
        .map(|platform| platform.as_str())
        .collect();
    eprintln!(
        "{} for runtime version {}: {} files, {} in all; uploading {} ({}), {} already on the server",
        platforms.join(" and "),
        checked.runtime_version.as_str(),
        checked.files.len(),
        human_bytes(checked.total_bytes()),
        upload.len(),
        human_bytes(upload_bytes),
        reuse.len()
    );

    let progress = Progress::new(upload.len() as u64, upload_bytes);
    let path = format!("/api/updates/{}/publish", segment(project));
    let response = api
        .send_with_retries(Retry::UnlessApplied, || {
            progress.restart();
            let form = publish_form(args, checked, &upload, &reuse, &progress);
            let api = api.clone();
            let path = path.clone();
            async move {
                let form = form?;
                api.request(Method::POST, &path)
                    .multipart(form)
                    .send()
                    .await
            }
        })
        .await;
    progress.finish();
    let mut body = read_json(response?).await?;

    let manifest_url = format!(
        "{}/api/updates/{}/manifest",
        api.base_url(),
        segment(project)
    );
    if let Value::Object(fields) = &mut body {
        fields.insert(
            "runtimeVersion".into(),
            json!(checked.runtime_version.as_str()),
        );
        fields.insert("manifestUrl".into(), json!(manifest_url));
        fields.insert("uploadedFiles".into(), json!(upload.len()));
        fields.insert("uploadedBytes".into(), json!(upload_bytes));
        fields.insert("reusedFiles".into(), json!(reuse.len()));
        fields.insert(
            "reusedBytes".into(),
            json!(reuse.iter().map(|file| file.size).sum::<u64>()),
        );
    }
    Ok(body)
}

/// How long `--wait-patches` waits for the server's background work.
const PATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Asks for an update's bundle patches until none is pending (or
/// [`PATCH_WAIT`] has passed), and returns the last answer.
pub async fn wait_for_patches(api: &Api, path: &str) -> CliResult<Value> {
    let started = std::time::Instant::now();
    loop {
        let patches = api.get(path).await?;
        let pending = patches["platforms"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|platform| platform["patches"].as_array().into_iter().flatten())
            .any(|patch| patch["state"] == "pending");
        if !pending {
            return Ok(patches);
        }
        if started.elapsed() > PATCH_WAIT {
            eprintln!(
                "bundle patches still being computed after {} s",
                PATCH_WAIT.as_secs()
            );
            return Ok(patches);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// What the server answered to `assets/missing`.
struct Missing {
    /// The hashes among the export's files that the project does not store yet.
    hashes: HashSet<String>,
    /// The server's upload limit, when it says (older servers do not).
    max_upload_bytes: Option<u64>,
}

async fn missing_hashes(api: &Api, project: &str, checked: &CheckedExport) -> CliResult<Missing> {
    let hashes: Vec<&str> = checked
        .files
        .iter()
        .map(|file| file.sha256_hex.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let path = format!("/api/updates/{}/assets/missing", segment(project));
    let mut missing = HashSet::new();
    let mut max_upload_bytes = None;
    for chunk in hashes.chunks(HASHES_PER_QUERY) {
        let answer = api
            .json_with(
                Method::POST,
                &path,
                Some(&json!({ "sha256": chunk })),
                Retry::Always,
            )
            .await?;
        let listed = answer
            .get("missing")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                CliError::Other(
                    "the server's missing-files answer has no `missing` list".to_owned(),
                )
            })?;
        missing.extend(listed.iter().filter_map(Value::as_str).map(str::to_owned));
        max_upload_bytes = answer.get("maxUploadBytes").and_then(Value::as_u64);
    }
    Ok(Missing {
        hashes: missing,
        max_upload_bytes,
    })
}

/// The multipart form: fields, metadata, config, the files to upload as
/// file parts (streamed from disk) and the others as `sha256:<path>` fields.
fn publish_form(
    args: &PublishArgs,
    checked: &CheckedExport,
    upload: &[&ExportFile],
    reuse: &[&ExportFile],
    progress: &Progress,
) -> reqwest::Result<Form> {
    // Field names are export paths, sent as they are: the server reads
    // `assets/<hash>`, not reqwest's default `name*=utf-8''assets%2F<hash>`.
    let mut form = Form::new().percent_encode_noop().text(
        "runtimeVersion",
        checked.runtime_version.as_str().to_owned(),
    );
    if let Some(branch) = &args.branch {
        form = form.text("branch", branch.clone());
    }
    if let Some(message) = &args.message {
        form = form.text("message", message.clone());
    }
    if let Some(rollout) = args.rollout {
        form = form.text("rolloutPercentage", rollout.to_string());
    }
    form = form.part(
        "metadata.json",
        Part::bytes(checked.metadata.clone())
            .file_name("metadata.json")
            .mime_str("application/json")?,
    );
    if let Some(config) = &checked.expo_config {
        form = form.part(
            "expoConfig.json",
            Part::bytes(config.clone())
                .file_name("expoConfig.json")
                .mime_str("application/json")?,
        );
    }
    for file in reuse {
        form = form.text(format!("sha256:{}", file.path), file.sha256_hex.clone());
    }
    for file in upload {
        let stream = file_stream(file, progress.clone());
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), file.size)
            .file_name(file.path.clone())
            .mime_str("application/octet-stream")?;
        form = form.part(file.path.clone(), part);
    }
    Ok(form)
}

/// The file's bytes, read as the request goes out, counted for the progress.
fn file_stream(
    file: &ExportFile,
    progress: Progress,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let location = file.location.clone();
    let path = file.path.clone();
    let size = file.size;
    futures_util::stream::once(async move { tokio::fs::File::open(location).await })
        .map(move |opened| {
            let progress = progress.clone();
            let path = path.clone();
            let mut sent = 0;
            match opened {
                Ok(file) => {
                    if size == 0 {
                        progress.file_done(&path);
                    }
                    ReaderStream::with_capacity(file, 256 * 1024)
                        .inspect(move |chunk| {
                            if let Ok(chunk) = chunk {
                                sent += chunk.len() as u64;
                                progress.add_bytes(chunk.len() as u64);
                                if sent == size {
                                    progress.file_done(&path);
                                }
                            }
                        })
                        .boxed()
                }
                Err(error) => futures_util::stream::once(async move { Err(error) }).boxed(),
            }
        })
        .flatten()
}

/// Upload progress: a bar (files and bytes) when stderr is a terminal, one
/// line per uploaded file otherwise, so CI logs stay readable.
#[derive(Clone)]
struct Progress {
    bar: Option<ProgressBar>,
    files_total: u64,
    bytes_total: u64,
    files_done: Arc<AtomicU64>,
    bytes_done: Arc<AtomicU64>,
}

impl Progress {
    fn new(files_total: u64, bytes_total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(bytes_total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {msg} ({decimal_bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            files_total,
            bytes_total,
            files_done: Arc::default(),
            bytes_done: Arc::default(),
        }
    }

    fn restart(&self) {
        self.files_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(0);
            bar.set_message(format!("0/{} files", self.files_total));
        }
    }

    fn add_bytes(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn file_done(&self, path: &str) {
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.set_message(format!("{done}/{} files", self.files_total)),
            None => eprintln!(
                "uploaded {path} ({done}/{} files, {} of {})",
                self.files_total,
                human_bytes(self.bytes_done.load(Ordering::Relaxed)),
                human_bytes(self.bytes_total)
            ),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes for people: `1.6 MB`, `512 B` (decimal units, as the README's figures).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}
