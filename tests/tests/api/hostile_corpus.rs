//! A corpus of known-bad requests: path traversal in every spelling, abused multipart
//! uploads, malformed and oversized JSON, hostile header bytes, huge headers, and clients
//! that stall. Each must get a clear 4xx with `{"error": "..."}` (never a 5xx, never a
//! hang), write nothing (the project's updates, channels, members and keys, the owner's
//! projects and the stored objects stay as they were) and leak nothing (no stack trace, no
//! path of the server's filesystem, no file contents).
//!
//! Requests go over raw TCP where a client library would normalise them (dot segments,
//! percent-encoding, header bytes, framing). Every case is checked and the failures are
//! listed together at the end of each scenario. The slow-client cases are in a scenario of
//! their own, so they can be run alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::publish::manifest_id_in;
use e2e::raw_http::{ANSWER_WITHIN, RawRequest, preview, read_answer};
use e2e::serde_json::{Value, json};
use e2e::{Response, TestApp, TestUser, both_backends, list_files, same_json, str_field};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The runtime version of the small export every scenario publishes.
const RV: &str = "1.0.0";

// ---------------------------------------------------------------------------------------------
// Multipart bodies, byte for byte
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Form {
    boundary: String,
    body: Vec<u8>,
}

impl Form {
    fn new() -> Form {
        Form {
            boundary: format!("hostile-{}", uuid::Uuid::new_v4().simple()),
            body: Vec::new(),
        }
    }

    fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// A part with these header lines (each ending in CRLF) and content.
    fn part(mut self, headers: &[u8], content: &[u8]) -> Form {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(headers);
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(content);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    fn text(self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Form {
        self.part(&disposition(name.as_ref(), None), value.as_ref())
    }

    fn file(
        self,
        name: impl AsRef<[u8]>,
        file_name: impl AsRef<[u8]>,
        content: impl AsRef<[u8]>,
    ) -> Form {
        let mut headers = disposition(name.as_ref(), Some(file_name.as_ref()));
        headers.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        self.part(&headers, content.as_ref())
    }

    /// The body with its closing delimiter.
    fn close(mut self) -> Vec<u8> {
        self.body.extend_from_slice(b"--");
        self.body.extend_from_slice(self.boundary.as_bytes());
        self.body.extend_from_slice(b"--\r\n");
        self.body
    }
}

fn disposition(name: &[u8], file_name: Option<&[u8]>) -> Vec<u8> {
    let mut line = b"Content-Disposition: form-data; name=\"".to_vec();
    line.extend_from_slice(name);
    line.push(b'"');
    if let Some(file_name) = file_name {
        line.extend_from_slice(b"; filename=\"");
        line.extend_from_slice(file_name);
        line.push(b'"');
    }
    line.extend_from_slice(b"\r\n");
    line
}

/// A small iOS-only export with unique content: one bundle, one asset.
#[derive(Debug, Clone)]
struct Mini {
    bundle_path: String,
    asset_path: String,
    bundle: Vec<u8>,
    asset: Vec<u8>,
}

impl Mini {
    fn new(bundle_bytes: usize) -> Mini {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let mut bundle = format!("// hostile corpus {tag}\n").into_bytes();
        bundle.resize(bundle_bytes.max(bundle.len()), b'/');
        let mut asset = b"\x89PNG\r\n\x1a\n".to_vec();
        asset.extend_from_slice(tag.as_bytes());
        Mini {
            bundle_path: format!("_expo/static/js/ios/index-{tag}.hbc"),
            asset_path: format!("assets/{tag}"),
            bundle,
            asset,
        }
    }

    fn metadata_listing(&self, bundle: &str, assets: &[&str]) -> Vec<u8> {
        let assets: Vec<Value> = assets
            .iter()
            .map(|path| json!({ "path": path, "ext": "png" }))
            .collect();
        json!({
            "version": 0,
            "bundler": "metro",
            "fileMetadata": { "ios": { "bundle": bundle, "assets": assets } },
        })
        .to_string()
        .into_bytes()
    }

    fn metadata(&self) -> Vec<u8> {
        self.metadata_listing(&self.bundle_path, &[&self.asset_path])
    }

    fn expo_config(&self) -> Vec<u8> {
        json!({ "name": "hostile", "slug": "hostile", "runtimeVersion": RV })
            .to_string()
            .into_bytes()
    }

    /// The complete, valid form, not yet closed (a case may add parts).
    fn form(&self) -> Form {
        self.form_with(&self.metadata(), &self.bundle_path, &self.asset_path)
    }

    /// The form with another `metadata.json`, bundle field name and asset field name.
    fn form_with(&self, metadata: &[u8], bundle_field: &str, asset_field: &str) -> Form {
        Form::new()
            .text("runtimeVersion", RV)
            .file("metadata.json", "metadata.json", metadata)
            .file("expoConfig.json", "expoConfig.json", self.expo_config())
            .file(bundle_field, "index.hbc", &self.bundle)
            .file(asset_field, "asset.png", &self.asset)
    }
}

// ---------------------------------------------------------------------------------------------
// A tenant with one published update
// ---------------------------------------------------------------------------------------------

struct Tenant {
    owner: TestUser,
    project: String,
    key: String,
    mini: Mini,
    /// The iOS update of the publish (what `assets?update=` names).
    ios_update_id: String,
}

impl Tenant {
    async fn new(app: &TestApp) -> Tenant {
        let p = app.publisher_keyed("pipeline").await;
        let (owner, project, key) = (p.owner, p.project_id, p.secret);
        let mini = Mini::new(2048);
        let published = publish_form(app, &project, &key, mini.form())
            .await
            .unwrap_or_else(|e| panic!("publishing the small export: {e}"));
        published.assert_status(200);
        let update_id = str_field(&published.json, "updateId");
        let ios_update_id = manifest_id_in(
            &app.update_detail(&owner.token, &project, &update_id).await,
            "ios",
        );
        Tenant {
            owner,
            project,
            key,
            mini,
            ios_update_id,
        }
    }

    fn publish_path(&self) -> String {
        format!("/api/updates/{}/publish", self.project)
    }
}

/// `POST /api/updates/{project}/publish` of `body` as `content_type` with the key, over raw
/// TCP.
async fn publish_bytes(
    app: &TestApp,
    project: &str,
    key: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Response, String> {
    let mut request = RawRequest::new("POST", format!("/api/updates/{project}/publish"))
        .bearer(key)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    request.send(app).await
}

async fn publish_form(
    app: &TestApp,
    project: &str,
    key: &str,
    form: Form,
) -> Result<Response, String> {
    let content_type = form.content_type();
    publish_bytes(app, project, key, Some(&content_type), form.close()).await
}

/// What a request must not change: the project as its owner sees it, and the stored
/// objects (`staging/` included).
type State = BTreeMap<String, Value>;

async fn state(app: &TestApp, t: &Tenant) -> State {
    let p = &t.project;
    let mut state = BTreeMap::new();
    for (name, path) in [
        ("project", format!("/api/projects/{p}")),
        ("updates", format!("/api/projects/{p}/updates?limit=100")),
        ("channels", format!("/api/projects/{p}/channels")),
        ("members", format!("/api/projects/{p}/users")),
        ("keys", format!("/api/projects/{p}/keys")),
        ("owner's projects", "/api/projects".to_owned()),
    ] {
        let response = app.get(&path, &t.owner.token).await;
        response.assert_status(200);
        let mut json = response.json;
        // A refused publish still authenticated with the key: its last use may move.
        if let Some(keys) = json.as_array_mut().filter(|_| name == "keys") {
            for key in keys {
                if let Some(key) = key.as_object_mut() {
                    key.remove("lastUsedAt");
                }
            }
        }
        state.insert(name.to_owned(), json);
    }
    state.insert("stored objects".to_owned(), json!(app.stored_objects()));
    state
}

fn differences(before: &State, after: &State) -> Vec<String> {
    before
        .iter()
        .filter(|(name, value)| !after.get(*name).is_some_and(|now| same_json(value, now)))
        .map(|(name, value)| {
            let now: String = after[name].to_string().chars().take(600).collect();
            let was: String = value.to_string().chars().take(600).collect();
            format!("{name}: {was} → {now}")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checking answers
// ---------------------------------------------------------------------------------------------

/// The status a hostile request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Any 4xx.
    ClientError,
    /// Any 4xx, or protocol 1's "nothing for you": a value that is odd but
    /// harmless (a runtime version no update has) is answered with the
    /// `noUpdateAvailable` directive, which reaches nothing.
    ClientErrorOrNoUpdate,
    Status(u16),
}

/// The failures of a scenario, reported together at its end.
struct Findings {
    failures: Vec<String>,
    /// Text no answer may contain: the server's paths, traces, database errors, file contents.
    leak_markers: Vec<String>,
}

impl Findings {
    fn new(app: &TestApp) -> Findings {
        let mut leak_markers: Vec<String> = [
            "panicked",
            "backtrace",
            ".rs:",
            "src/",
            "/work/",
            "/root/",
            "/home/",
            "SQLSTATE",
            "sqlx",
            "sea_orm",
            "DbErr",
            "os error",
            "root:x:0:0",
            "[boot loader]",
        ]
        .iter()
        .map(|marker| (*marker).to_owned())
        .collect();
        leak_markers.push(app.data_dir().to_string_lossy().into_owned());
        leak_markers.push(app.blob_root().to_string_lossy().into_owned());
        Findings {
            failures: Vec::new(),
            leak_markers,
        }
    }

    fn fail(&mut self, failure: String) {
        self.failures.push(failure);
    }

    fn leak_in(&self, text: &str) -> Option<&str> {
        self.leak_markers
            .iter()
            .find(|marker| text.contains(marker.as_str()))
            .map(String::as_str)
    }

    /// Checks a refusal: the status, a `{"error": "..."}` body, no leak. Returns whether
    /// the answer was as wanted.
    fn refused(&mut self, context: &str, answer: &Result<Response, String>, want: Want) -> bool {
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                self.fail(format!("{context}: {error}"));
                return false;
            }
        };
        let mut problems = Vec::new();
        let no_update = response.status == 200
            && response.text.contains("{\"type\":\"noUpdateAvailable\"}")
            && !response.text.contains("\"launchAsset\"");
        let status_ok = match want {
            Want::ClientError => (400..500).contains(&response.status),
            Want::ClientErrorOrNoUpdate => (400..500).contains(&response.status) || no_update,
            Want::Status(status) => response.status == status,
        };
        if !status_ok {
            problems.push(format!("expected {want:?}"));
        }
        let message = response
            .json
            .get("error")
            .and_then(Value::as_str)
            .filter(|message| !message.trim().is_empty());
        if message.is_none() && !(want == Want::ClientErrorOrNoUpdate && no_update) {
            problems.push("no {\"error\": \"...\"} body".to_owned());
        }
        if let Some(leak) = self.leak_in(&response.text) {
            problems.push(format!("the answer leaks {leak:?}"));
        }
        if std::env::var_os("HOSTILE_CORPUS_VERBOSE").is_some() {
            eprintln!("{context}: {}", describe(response));
        }
        if problems.is_empty() {
            return true;
        }
        self.fail(format!(
            "{context}: {}; got {}",
            problems.join(", "),
            describe(response)
        ));
        false
    }

    /// Asserts that `before` still holds (waiting up to 2 s for a clean-up that ends just
    /// after the answer); otherwise records the difference and moves `before` on.
    async fn unchanged(&mut self, app: &TestApp, t: &Tenant, before: &mut State, context: &str) {
        let mut now = state(app, t).await;
        for _ in 0..20 {
            if differences(before, &now).is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            now = state(app, t).await;
        }
        self.fail(format!(
            "{context}: something was written: {:#?}",
            differences(before, &now)
        ));
        *before = now;
    }

    fn finish(self, scenario: &str) {
        assert!(
            self.failures.is_empty(),
            "{scenario}: {} failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn describe(response: &Response) -> String {
    let text: String = response.text.chars().take(300).collect();
    format!("HTTP {} {text}", response.status)
}

/// Every file and directory below `dir` whose path contains `marker`.
fn paths_containing(dir: &Path, marker: &str) -> Vec<String> {
    let mut found: Vec<String> = list_files(dir)
        .into_keys()
        .filter(|path| path.contains(marker))
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        found.extend(
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().to_string_lossy().into_owned())
                .filter(|path| path.contains(marker)),
        );
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Path traversal
// ---------------------------------------------------------------------------------------------

/// Traversal spellings as they go on the wire in a URL (all ASCII a URL may carry).
const URL_TRAVERSALS: &[&str] = &[
    "..",
    "../../../../../../etc/passwd",
    "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "..%5c..%5c..%5c..%5cetc%5cpasswd",
    "%2e%2e%5c%2e%2e%5c%2e%2e%5cetc%5cpasswd",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "C:%5cWindows%5cwin.ini",
    "C:%5c",
    "C:/Windows/win.ini",
    "%00",
    "..%00",
    "..%00/etc/passwd",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
    "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "%252e%252e",
    "....//....//....//etc/passwd",
    "%u002e%u002e%u2215etc%u2215passwd",
];

both_backends!(
    traversal_spellings_in_update_requests_are_refused,
    |app| async move {
        let t = Tenant::new(&app).await;
        let mut findings = Findings::new(&app);
        let mut before = state(&app, &t).await;
        let p = &t.project;
        let update = &t.ios_update_id;
        let bundle = &t.mini.bundle_path;

        // Control: the real file is served by both forms of the route.
        for target in [
            format!("/api/updates/{p}/assets?update={update}&asset={bundle}"),
            format!("/api/updates/{p}/assets?asset={bundle}&runtimeVersion={RV}&platform=ios"),
        ] {
            let answer = RawRequest::new("GET", &target).send(&app).await;
            match answer {
                Ok(response) if response.status == 200 => assert!(
                    response.text.as_bytes() == t.mini.bundle.as_slice(),
                    "GET {target} served other bytes"
                ),
                other => panic!("GET {target}: the control request failed: {other:?}"),
            }
        }

        for spelling in URL_TRAVERSALS {
            let places = [
                (
                    "asset=",
                    format!("/api/updates/{p}/assets?update={update}&asset={spelling}"),
                ),
                (
                    "asset= after a real path",
                    format!("/api/updates/{p}/assets?update={update}&asset={bundle}/{spelling}"),
                ),
                (
                    "asset= of the latest",
                    format!(
                        "/api/updates/{p}/assets?asset={spelling}&runtimeVersion={RV}&platform=ios"
                    ),
                ),
                (
                    "update=",
                    format!("/api/updates/{p}/assets?update={spelling}&asset={bundle}"),
                ),
                (
                    "runtimeVersion=",
                    format!(
                        "/api/updates/{p}/assets?asset={bundle}&runtimeVersion={spelling}&platform=ios"
                    ),
                ),
                (
                    "platform=",
                    format!(
                        "/api/updates/{p}/assets?asset={bundle}&runtimeVersion={RV}&platform={spelling}"
                    ),
                ),
                (
                    "the project of an asset request",
                    format!("/api/updates/{spelling}/assets?update={update}&asset={bundle}"),
                ),
                (
                    "the path after /assets",
                    format!("/api/updates/{p}/assets/{spelling}"),
                ),
                (
                    "the project of an update check",
                    format!("/api/updates/{spelling}/manifest?platform=ios&runtime-version={RV}"),
                ),
                (
                    "runtime-version= of an update check",
                    format!("/api/updates/{p}/manifest?platform=ios&runtime-version={spelling}"),
                ),
                (
                    "channel= of an update check",
                    format!(
                        "/api/updates/{p}/manifest?platform=ios&runtime-version={RV}&channel={spelling}"
                    ),
                ),
            ];
            for (place, target) in places {
                let answer = RawRequest::new("GET", &target)
                    .header("expo-protocol-version", "1")
                    .header("accept", "multipart/mixed")
                    .send(&app)
                    .await;
                // Decoded once, a doubly encoded spelling is an odd but
                // harmless runtime version: no update has it.
                let want = match place {
                    "runtime-version= of an update check" => Want::ClientErrorOrNoUpdate,
                    _ => Want::ClientError,
                };
                findings.refused(
                    &format!("{spelling:?} in {place}: GET {target}"),
                    &answer,
                    want,
                );
            }
        }

        // A backslash and a NUL as raw bytes in the request target (not percent-encoded).
        for target in [
            format!("/api/updates/{p}/assets?update={update}&asset=..\\..\\..\\etc\\passwd"),
            format!("/api/updates/{p}/assets?update={update}&asset=C:\\Windows\\win.ini"),
        ] {
            let answer = RawRequest::new("GET", &target).send(&app).await;
            findings.refused(
                &format!("raw backslashes: GET {target}"),
                &answer,
                Want::ClientError,
            );
        }

        findings
            .unchanged(&app, &t, &mut before, "after the traversal requests")
            .await;
        findings.finish("traversal in update requests");
    }
);

both_backends!(traversal_in_publish_paths_is_refused, |app| async move {
    let t = Tenant::new(&app).await;
    let mut findings = Findings::new(&app);
    let mut before = state(&app, &t).await;
    let marker = format!("eus-marker-{}", uuid::Uuid::new_v4().simple());
    let mini = Mini::new(1024);

    // Paths that climb out, are absolute, or carry a NUL or control character, as a
    // client would put them in metadata.json and in field names.
    let hostile: Vec<String> = [
        "..",
        "../{m}",
        "../../../../../../../../tmp/{m}",
        "..\\..\\..\\..\\..\\..\\..\\..\\tmp\\{m}",
        "assets/../../{m}",
        "assets/..\\..\\{m}",
        "assets\\..\\..\\{m}",
        "/tmp/{m}",
        "\\tmp\\{m}",
        "//tmp/{m}",
        "C:\\{m}",
        "C:/{m}",
        "c:{m}",
        "./{m}",
        "assets/./{m}",
        "assets//{m}",
        "assets/{m}/",
        "assets/{m}\u{0}.png",
        "\u{0}",
        "assets/\u{1}{m}",
        "assets/{m}\n",
    ]
    .iter()
    .map(|path| path.replace("{m}", &marker))
    .collect();

    for path in &hostile {
        let cases = [
            (
                "listed as an asset and uploaded under that name",
                mini.form_with(
                    &mini.metadata_listing(&mini.bundle_path, &[path.as_str()]),
                    &mini.bundle_path,
                    path,
                ),
            ),
            (
                "listed as the bundle and uploaded under that name",
                mini.form_with(
                    &mini.metadata_listing(path, &[&mini.asset_path]),
                    path,
                    &mini.asset_path,
                ),
            ),
            (
                "as the field name of a listed asset",
                mini.form_with(&mini.metadata(), &mini.bundle_path, path),
            ),
        ];
        for (how, form) in cases {
            let answer = publish_form(&app, &t.project, &t.key, form).await;
            findings.refused(&format!("path {path:?} {how}"), &answer, Want::Status(400));
            findings
                .unchanged(&app, &t, &mut before, &format!("path {path:?} {how}"))
                .await;
        }
    }

    // Overlong UTF-8 for "../": invalid in metadata.json, and in a field name.
    let overlong = b"\xc0\xae\xc0\xae\xc0\xaf";
    let mut metadata = mini.metadata_listing(&mini.bundle_path, &["@@"]);
    let at = metadata
        .windows(2)
        .position(|w| w == b"@@")
        .expect("the placeholder");
    metadata.splice(at..at + 2, overlong.iter().copied());
    let mut field = overlong.to_vec();
    field.extend_from_slice(marker.as_bytes());
    let cases = [
        (
            "overlong UTF-8 in a metadata.json path",
            Form::new()
                .text("runtimeVersion", RV)
                .file("metadata.json", "metadata.json", &metadata)
                .file(&mini.bundle_path, "index.hbc", &mini.bundle)
                .file(&field, "asset.png", &mini.asset),
        ),
        (
            "overlong UTF-8 as the field name of a listed asset",
            Form::new()
                .text("runtimeVersion", RV)
                .file("metadata.json", "metadata.json", mini.metadata())
                .file(&mini.bundle_path, "index.hbc", &mini.bundle)
                .file(&field, "asset.png", &mini.asset),
        ),
    ];
    for (how, form) in cases {
        let answer = publish_form(&app, &t.project, &t.key, form).await;
        findings.refused(how, &answer, Want::Status(400));
        findings.unchanged(&app, &t, &mut before, how).await;
    }

    // Percent-encodings are not decoded in a publish: to the server they are opaque
    // names of files it stores by content. Refused or accepted, nothing may land
    // anywhere but a content-addressed key.
    for encoded in [
        "%2e%2e/{m}",
        "%2E%2E%2F%2E%2E%2F{m}",
        "..%5c..%5c{m}",
        "%252e%252e%252f{m}",
        "%c0%ae%c0%ae/{m}",
        "..%00/{m}",
    ] {
        let path = encoded.replace("{m}", &marker);
        let mini = Mini::new(1024);
        let form = mini.form_with(
            &mini.metadata_listing(&mini.bundle_path, &[&path]),
            &mini.bundle_path,
            &path,
        );
        let answer = publish_form(&app, &t.project, &t.key, form).await;
        let context = format!("percent-encoded path {path:?}");
        match &answer {
            Ok(response) if response.status == 200 => {
                before = state(&app, &t).await;
            }
            _ => {
                findings.refused(&context, &answer, Want::Status(400));
                findings.unchanged(&app, &t, &mut before, &context).await;
            }
        }
    }

    // File names (`filename=`) are not paths to the server: hostile ones are ignored and
    // the publish stores its files by content.
    let mini = Mini::new(1024);
    let names = format!("../../../../tmp/{marker}");
    let form = Form::new()
        .text("runtimeVersion", RV)
        .file("metadata.json", "/etc/passwd", mini.metadata())
        .file("expoConfig.json", "..\\..\\boot.ini", mini.expo_config())
        .file(&mini.bundle_path, &names, &mini.bundle)
        .file(&mini.asset_path, "C:\\Windows\\win.ini", &mini.asset);
    let answer = publish_form(&app, &t.project, &t.key, form).await;
    match &answer {
        Ok(response) if response.status == 200 => {}
        other => findings.fail(format!(
            "a valid publish with hostile filename= values: expected 200, got {other:?}"
        )),
    }

    // Every stored object is content-addressed in the project, and the marker is
    // nowhere on disk.
    let prefix = format!("projects/{}/assets/", t.project);
    for key in app.stored_objects().keys() {
        let bytes = app.read_object(key).unwrap_or_default();
        let sha = e2e::publish::sha256_bytes_hex(&bytes);
        if key.strip_prefix(&prefix) != Some(sha.as_str()) {
            findings.fail(format!("stored object {key} is not {prefix}<sha256>"));
        }
    }
    let mut places = vec![app.data_dir().to_path_buf(), std::env::temp_dir()];
    if let Some(parent) = app.data_dir().parent() {
        places.push(parent.to_path_buf());
    }
    for place in places {
        let found = paths_containing(&place, &marker);
        if !found.is_empty() {
            findings.fail(format!(
                "files named by a hostile path exist under {}: {found:?}",
                place.display()
            ));
        }
    }
    findings.finish("traversal in publish paths");
});

// ---------------------------------------------------------------------------------------------
// Multipart abuse
// ---------------------------------------------------------------------------------------------

/// A publish case: what it is, its Content-Type, its body, and the answer it must get.
type Case = (String, Option<String>, Vec<u8>, Want);

/// A multipart case that must get 400.
fn form_case(cases: &mut Vec<Case>, name: &str, form: Form) {
    cases.push((
        name.to_owned(),
        Some(form.content_type()),
        form.close(),
        Want::Status(400),
    ));
}

/// JSON nested `depth` deep: `[[[…` or `{"a":{"a":…`, unterminated.
fn nested(depth: usize, object: bool) -> Vec<u8> {
    let opener: &[u8] = if object { b"{\"a\":" } else { b"[" };
    opener.repeat(depth)
}

/// `[[…]]` nested `depth` deep, balanced.
fn balanced(depth: usize) -> Vec<u8> {
    let mut bytes = b"[".repeat(depth);
    bytes.extend(b"]".repeat(depth));
    bytes
}

both_backends!(
    multipart_abuse_is_refused,
    env = [("MAX_UPLOAD_BYTES", "1000000"),],
    |app| async move {
        let t = Tenant::new(&app).await;
        let mut findings = Findings::new(&app);
        let mut before = state(&app, &t).await;
        let m = Mini::new(1024);
        let key = t.key.as_str();
        let p = t.project.as_str();

        let mut bom_metadata = b"\xEF\xBB\xBF".to_vec();
        bom_metadata.extend(m.metadata());

        let mut cases: Vec<Case> = Vec::new();
        let c = &mut cases;

        // Missing fields.
        form_case(
            c,
            "no runtimeVersion",
            Form::new()
                .file("metadata.json", "metadata.json", m.metadata())
                .file(&m.bundle_path, "index.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );
        form_case(
            c,
            "no metadata.json",
            Form::new()
                .text("runtimeVersion", RV)
                .file(&m.bundle_path, "index.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );
        form_case(
            c,
            "the listed bundle missing",
            Form::new()
                .text("runtimeVersion", RV)
                .file("metadata.json", "metadata.json", m.metadata())
                .file(&m.asset_path, "asset.png", &m.asset),
        );
        form_case(c, "no parts at all", Form::new());
        form_case(
            c,
            "an empty runtimeVersion",
            Form::new()
                .text("runtimeVersion", "")
                .file("metadata.json", "metadata.json", m.metadata())
                .file(&m.bundle_path, "index.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );

        // Duplicate fields: which one counts is ambiguous, so neither may.
        form_case(
            c,
            "runtimeVersion twice, with different values",
            m.form().text("runtimeVersion", "2.0.0"),
        );
        form_case(
            c,
            "metadata.json twice, with different contents",
            m.form().file(
                "metadata.json",
                "metadata.json",
                m.metadata_listing(&m.bundle_path, &[]),
            ),
        );
        form_case(
            c,
            "the bundle twice, with different contents",
            m.form().file(&m.bundle_path, "index.hbc", b"other bytes"),
        );

        // Framing.
        let form = m.form();
        let mut unclosed = form.clone().body;
        unclosed.extend_from_slice(b"--");
        unclosed.extend_from_slice(form.boundary.as_bytes());
        c.push((
            "the closing delimiter cut off".to_owned(),
            Some(form.content_type()),
            unclosed,
            Want::Status(400),
        ));
        c.push((
            "no boundary parameter".to_owned(),
            Some("multipart/form-data".to_owned()),
            m.form().close(),
            Want::Status(400),
        ));
        c.push((
            "an empty boundary parameter".to_owned(),
            Some("multipart/form-data; boundary=".to_owned()),
            m.form().close(),
            Want::Status(400),
        ));
        c.push((
            "the wrong boundary".to_owned(),
            Some("multipart/form-data; boundary=not-the-one-in-the-body".to_owned()),
            m.form().close(),
            Want::Status(400),
        ));
        c.push((
            "an empty body".to_owned(),
            Some(Form::new().content_type()),
            Vec::new(),
            Want::Status(400),
        ));
        c.push((
            "a body of garbage".to_owned(),
            Some(Form::new().content_type()),
            (0..4096u32).map(|i| (i * 7 % 251) as u8).collect(),
            Want::Status(400),
        ));
        let mut lf_only = m.form().close();
        lf_only.retain(|b| *b != b'\r');
        c.push((
            "bare LF line ends".to_owned(),
            Some(m.form().content_type()),
            lf_only,
            Want::Status(400),
        ));

        // Many parts.
        let mut many = Form::new();
        for i in 0..10_000 {
            many = many.text(format!("junk-{i}"), "x");
        }
        c.push((
            "10,000 junk text parts and nothing else".to_owned(),
            Some(many.content_type()),
            many.close(),
            Want::Status(400),
        ));
        let mut many = Form::new();
        for i in 0..10_000 {
            many = many.file(format!("junk/{i}"), "junk.bin", format!("{i}"));
        }
        c.push((
            "10,000 small unlisted files and no runtimeVersion".to_owned(),
            Some(many.content_type()),
            many.close(),
            Want::Status(400),
        ));
        let mut many = m.form();
        let sha = "ab".repeat(32);
        for i in 0..10_001 {
            many = many.text(format!("sha256:assets/junk-{i}"), &sha);
        }
        c.push((
            "10,001 files named by hash".to_owned(),
            Some(many.content_type()),
            many.close(),
            Want::Status(400),
        ));

        // Huge part headers.
        let mut headers = disposition(b"metadata.json", Some(b"metadata.json"));
        headers.extend_from_slice(b"X-Padding: ");
        headers.extend(b"a".repeat(1024 * 1024));
        headers.extend_from_slice(b"\r\n");
        let form = Form::new()
            .text("runtimeVersion", RV)
            .part(&headers, &m.metadata())
            .file(&m.bundle_path, "index.hbc", &m.bundle)
            .file(&m.asset_path, "asset.png", &m.asset);
        c.push((
            "a part with 1 MiB of headers".to_owned(),
            Some(form.content_type()),
            form.close(),
            Want::ClientError,
        ));
        let mut headers = disposition(b"metadata.json", Some(b"metadata.json"));
        for i in 0..100 {
            headers.extend_from_slice(format!("X-Header-{i}: {i}\r\n").as_bytes());
        }
        let form = Form::new()
            .text("runtimeVersion", RV)
            .part(&headers, &m.metadata())
            .file(&m.bundle_path, "index.hbc", &m.bundle)
            .file(&m.asset_path, "asset.png", &m.asset);
        c.push((
            "a part with 100 headers".to_owned(),
            Some(form.content_type()),
            form.close(),
            Want::ClientError,
        ));
        let mut name = b"x".repeat(64 * 1024);
        name.extend_from_slice(b"/a.png");
        form_case(
            c,
            "a 64 KiB field name for the listed asset",
            m.form_with(
                &m.metadata(),
                &m.bundle_path,
                &String::from_utf8_lossy(&name),
            ),
        );

        // Invalid UTF-8.
        form_case(
            c,
            "invalid UTF-8 in runtimeVersion",
            Form::new()
                .text("runtimeVersion", b"1.0.\xff")
                .file("metadata.json", "metadata.json", m.metadata())
                .file(&m.bundle_path, "index.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );
        form_case(
            c,
            "invalid UTF-8 in branch",
            m.form().text("branch", b"main\xfe\xff"),
        );
        form_case(
            c,
            "invalid UTF-8 in message",
            m.form().text("message", b"hello \xc3\x28"),
        );
        form_case(
            c,
            "invalid UTF-8 in rolloutPercentage",
            m.form().text("rolloutPercentage", b"5\xff"),
        );
        let mut bad_name = m.bundle_path.clone().into_bytes();
        bad_name.extend_from_slice(b"\xff");
        form_case(
            c,
            "invalid UTF-8 in the field name of the bundle",
            Form::new()
                .text("runtimeVersion", RV)
                .file("metadata.json", "metadata.json", m.metadata())
                .file(&bad_name, "index.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );
        form_case(
            c,
            "invalid UTF-8 in the file name of the bundle",
            Form::new()
                .text("runtimeVersion", RV)
                .file("metadata.json", "metadata.json", m.metadata())
                .file(&m.bundle_path, b"index\xff\xfe.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );
        let mut bad_metadata = m.metadata();
        bad_metadata.extend_from_slice(b" \xff");
        form_case(
            c,
            "invalid UTF-8 in metadata.json",
            m.form_with(&bad_metadata, &m.bundle_path, &m.asset_path),
        );
        form_case(
            c,
            "invalid UTF-8 in expoConfig.json",
            Form::new()
                .text("runtimeVersion", RV)
                .file("metadata.json", "metadata.json", m.metadata())
                .file("expoConfig.json", "expoConfig.json", b"{\"name\":\"\xff\"}")
                .file(&m.bundle_path, "index.hbc", &m.bundle)
                .file(&m.asset_path, "asset.png", &m.asset),
        );

        // Deeply nested JSON.
        for (what, bytes) in [
            ("100,000 [", nested(100_000, false)),
            ("100,000 {\"a\":", nested(100_000, true)),
            ("100,000 balanced [ ]", balanced(100_000)),
        ] {
            form_case(
                c,
                &format!("metadata.json of {what}"),
                m.form_with(&bytes, &m.bundle_path, &m.asset_path),
            );
            form_case(
                c,
                &format!("expoConfig.json of {what}"),
                Form::new()
                    .text("runtimeVersion", RV)
                    .file("metadata.json", "metadata.json", m.metadata())
                    .file("expoConfig.json", "expoConfig.json", &bytes)
                    .file(&m.bundle_path, "index.hbc", &m.bundle)
                    .file(&m.asset_path, "asset.png", &m.asset),
            );
        }

        // Not multipart/form-data.
        for content_type in [
            Some("application/json"),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/mixed; boundary=abc"),
            None,
        ] {
            let body = if content_type == Some("application/x-www-form-urlencoded") {
                format!("runtimeVersion={RV}").into_bytes()
            } else {
                json!({ "runtimeVersion": RV, "metadata.json": "{}" })
                    .to_string()
                    .into_bytes()
            };
            c.push((
                format!("Content-Type {content_type:?}"),
                content_type.map(str::to_owned),
                body,
                Want::Status(400),
            ));
        }

        // Too large: the upload limit is 1,000,000 bytes.
        let big = Mini::new(1_200_000);
        let form = big.form();
        c.push((
            "a bundle over MAX_UPLOAD_BYTES".to_owned(),
            Some(form.content_type()),
            form.close(),
            Want::Status(413),
        ));

        for (name, content_type, body, want) in cases {
            let started = Instant::now();
            let answer = publish_bytes(&app, p, key, content_type.as_deref(), body).await;
            let context = format!("{name} ({:.1} s)", started.elapsed().as_secs_f64());
            findings.refused(&context, &answer, want);
            findings.unchanged(&app, &t, &mut before, &name).await;
        }

        // Over the limit, streamed without a length, and announced but never sent.
        let form = big.form();
        let answer = RawRequest::new("POST", t.publish_path())
            .bearer(key)
            .header("Content-Type", form.content_type())
            .body(form.close())
            .chunked()
            .send(&app)
            .await;
        findings.refused(
            "a chunked upload over MAX_UPLOAD_BYTES",
            &answer,
            Want::Status(413),
        );
        findings
            .unchanged(
                &app,
                &t,
                &mut before,
                "a chunked upload over MAX_UPLOAD_BYTES",
            )
            .await;
        let form = m.form();
        let answer = RawRequest::new("POST", t.publish_path())
            .bearer(key)
            .header("Content-Type", form.content_type())
            .declare_length(1 << 30)
            .body(form.close())
            .send(&app)
            .await;
        findings.refused("Content-Length: 1 GiB", &answer, Want::Status(413));
        findings
            .unchanged(&app, &t, &mut before, "Content-Length: 1 GiB")
            .await;

        // A UTF-8 BOM before metadata.json and expoConfig.json is what Windows tools write;
        // the server strips it (domain::export::strip_bom), as the CLI does: accepted, and
        // the config is served.
        let mut bom_config = b"\xEF\xBB\xBF".to_vec();
        bom_config.extend(m.expo_config());
        let form = Form::new()
            .text("runtimeVersion", RV)
            .file("metadata.json", "metadata.json", &bom_metadata)
            .file("expoConfig.json", "expoConfig.json", &bom_config)
            .file(&m.bundle_path, "index.hbc", &m.bundle)
            .file(&m.asset_path, "asset.png", &m.asset);
        match publish_form(&app, p, key, form).await {
            Ok(response) if response.status == 200 => {
                let manifest = app.latest_manifest(p, "ios", RV).await;
                if manifest["extra"]["expoClient"]["name"] != "hostile" {
                    findings.fail(format!(
                        "BOM-prefixed expoConfig.json: the manifest's extra.expoClient is not \
                         the config: {manifest}"
                    ));
                }
            }
            other => findings.fail(format!(
                "BOM-prefixed metadata.json and expoConfig.json: expected 200, got {other:?}"
            )),
        }

        findings.finish("multipart abuse");
    }
);

// ---------------------------------------------------------------------------------------------
// JSON routes
// ---------------------------------------------------------------------------------------------

/// What a JSON-route case sends: its name, Content-Type, body, whether the body is sent
/// chunked, and the answer it must get.
type JsonCase<'a> = (&'a str, Option<&'a str>, Vec<u8>, bool, Want);

both_backends!(malformed_json_bodies_are_refused, |app| async move {
    let t = Tenant::new(&app).await;
    let mut findings = Findings::new(&app);
    let mut before = state(&app, &t).await;
    let p = &t.project;
    let owner = t.owner.token.clone();
    let update = {
        let history = app.get(&format!("/api/projects/{p}/updates"), &owner).await;
        str_field(&history.json["updates"][0], "id")
    };

    // Route, credentials, and a body it would accept.
    let routes: Vec<(&str, String, Option<String>, Value)> = vec![
        (
            "POST",
            "/api/auth/login".to_owned(),
            None,
            json!({ "login": t.owner.username, "password": t.owner.password }),
        ),
        (
            "POST",
            "/api/auth/register".to_owned(),
            None,
            json!({ "username": "hostile-json", "email": "hostile-json@example.com",
                        "password": "password123" }),
        ),
        (
            "POST",
            "/api/projects".to_owned(),
            Some(owner.clone()),
            json!({ "name": "Hostile", "slug": "hostile-json" }),
        ),
        (
            "PATCH",
            format!("/api/projects/{p}"),
            Some(owner.clone()),
            json!({ "name": "Renamed by a hostile body" }),
        ),
        (
            "POST",
            format!("/api/projects/{p}/channels"),
            Some(owner.clone()),
            json!({ "name": "hostile", "branch": "main" }),
        ),
        (
            "POST",
            format!("/api/projects/{p}/keys"),
            Some(owner.clone()),
            json!({ "name": "hostile" }),
        ),
        (
            "PATCH",
            format!("/api/projects/{p}/updates/{update}"),
            Some(owner.clone()),
            json!({ "rolloutPercentage": 0 }),
        ),
        (
            "POST",
            format!("/api/updates/{p}/assets/missing"),
            Some(t.key.clone()),
            json!({ "sha256": ["ab".repeat(32)] }),
        ),
        (
            "POST",
            format!("/api/updates/{p}/rollback"),
            Some(t.key.clone()),
            json!({ "runtimeVersion": RV }),
        ),
    ];

    let huge = |valid: &Value| -> Vec<u8> {
        let mut object = valid.clone();
        object["padding"] = json!("p".repeat(2 * 1024 * 1024));
        object.to_string().into_bytes()
    };
    for (method, path, token, valid) in &routes {
        let valid_bytes = valid.to_string().into_bytes();
        let mut truncated = valid_bytes.clone();
        truncated.truncate(valid_bytes.len() / 2);
        let mut invalid_utf8 = valid.to_string().into_bytes();
        let at = invalid_utf8
            .iter()
            .rposition(|b| *b == b'"')
            .expect("a string in the body");
        invalid_utf8.splice(at..at, b"\xff\xfe".iter().copied());
        let json_type = Some("application/json");
        let cases: Vec<JsonCase> = vec![
            (
                "100,000 [",
                json_type,
                nested(100_000, false),
                false,
                Want::Status(400),
            ),
            (
                "100,000 {\"a\":",
                json_type,
                nested(100_000, true),
                false,
                Want::Status(400),
            ),
            (
                "100,000 balanced [ ]",
                json_type,
                balanced(100_000),
                false,
                Want::Status(400),
            ),
            (
                "the valid body as text/plain",
                Some("text/plain"),
                valid_bytes.clone(),
                false,
                Want::Status(400),
            ),
            (
                "the valid body as a form",
                Some("application/x-www-form-urlencoded"),
                valid_bytes.clone(),
                false,
                Want::Status(400),
            ),
            (
                "the valid body without a Content-Type",
                None,
                valid_bytes.clone(),
                false,
                Want::Status(400),
            ),
            (
                "invalid UTF-8",
                json_type,
                invalid_utf8,
                false,
                Want::Status(400),
            ),
            (
                "truncated JSON",
                json_type,
                truncated,
                false,
                Want::Status(400),
            ),
            (
                "null",
                json_type,
                b"null".to_vec(),
                false,
                Want::Status(400),
            ),
            (
                "a string",
                json_type,
                b"\"x\"".to_vec(),
                false,
                Want::Status(400),
            ),
            (
                "2 MiB with Content-Length",
                json_type,
                huge(valid),
                false,
                Want::Status(413),
            ),
            (
                "2 MiB chunked",
                json_type,
                huge(valid),
                true,
                Want::Status(413),
            ),
        ];
        for (what, content_type, body, chunked, want) in cases {
            let mut request = RawRequest::new(method, path).body(body);
            if let Some(token) = token {
                request = request.bearer(token);
            }
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            if chunked {
                request = request.chunked();
            }
            let answer = request.send(&app).await;
            let context = format!("{method} {path} with {what}");
            findings.refused(&context, &answer, want);
        }
        let mut request = RawRequest::new(method, path)
            .header("Content-Type", "application/json")
            .declare_length(2 * 1024 * 1024)
            .body(valid.to_string());
        if let Some(token) = token {
            request = request.bearer(token);
        }
        let answer = request.send(&app).await;
        findings.refused(
            &format!("{method} {path} announcing 2 MiB"),
            &answer,
            Want::Status(413),
        );
        findings
            .unchanged(&app, &t, &mut before, &format!("{method} {path}"))
            .await;
    }

    // Nobody was registered by a refused body.
    app.login("hostile-json", "password123")
        .await
        .assert_error(401);
    findings.finish("malformed JSON bodies");
});

// ---------------------------------------------------------------------------------------------
// Headers
// ---------------------------------------------------------------------------------------------

both_backends!(hostile_headers_are_refused, |app| async move {
    let t = Tenant::new(&app).await;
    let mut findings = Findings::new(&app);
    let mut before = state(&app, &t).await;
    let manifest = format!("/api/updates/{}/manifest", t.project);
    let check = |overrides: &[(&str, &[u8])]| {
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("expo-platform".to_owned(), b"ios".to_vec()),
            ("expo-runtime-version".to_owned(), RV.as_bytes().to_vec()),
            ("expo-protocol-version".to_owned(), b"1".to_vec()),
            ("accept".to_owned(), b"multipart/mixed".to_vec()),
        ];
        for (name, value) in overrides {
            headers.retain(|(n, _)| n != name);
            headers.push(((*name).to_owned(), value.to_vec()));
        }
        let mut request = RawRequest::new("GET", &manifest);
        for (name, value) in headers {
            request = request.header(&name, value);
        }
        request
    };

    // Control: the update check works.
    let answer = check(&[]).send(&app).await;
    match &answer {
        Ok(response) if response.status == 200 => {}
        other => panic!("the control update check failed: {other:?}"),
    }

    // Bytes outside visible ASCII (obs-text), which HTTP lets through and a header of
    // the protocol never carries: each header that changes the answer is refused
    // rather than read as absent. (`eas-client-id` is the exception, on purpose: an odd
    // client id is just an id and never an error, see channels_rollouts.rs; one that is
    // not text is read as none.)
    let obs: &[(&str, &[u8])] = &[
        ("expo-runtime-version", b"1.0.0\xff"),
        ("expo-runtime-version", b"\xc0\xae\xc0\xae"),
        ("expo-platform", b"ios\xff"),
        ("expo-channel-name", b"\xffmain"),
        ("expo-channel-name", b"ma\xc3\xafn"),
        ("expo-current-update-id", b"\xc0\xae\xc0\xae"),
        ("expo-embedded-update-id", b"\xc0\xae\xc0\xae"),
        ("expo-protocol-version", b"1\xff"),
        ("expo-expect-signature", b"sig, keyid=\"\xff\""),
    ];
    for value in [
        &b"\xff\xfe\xfd"[..],
        b"00000000-0000-4000-8000-00000000000\xff",
    ] {
        let answer = check(&[("eas-client-id", value)]).send(&app).await;
        match answer {
            Ok(response) if response.status == 200 => {}
            other => panic!("an unreadable eas-client-id must be read as none: {other:?}"),
        }
    }
    for (name, value) in obs {
        let answer = check(&[(*name, *value)]).send(&app).await;
        findings.refused(
            &format!(
                "update check with {name}: {:?}",
                String::from_utf8_lossy(value)
            ),
            &answer,
            Want::Status(400),
        );
    }
    // Garbage where a structured field value belongs (no signing key is configured, so
    // a signature cannot be given whatever the value says).
    for garbage in [
        &b"sig=?;;keyid=((("[..],
        b"\"unterminated",
        b"=",
        b",,,,",
        b"sig=:not base64:",
    ] {
        let answer = check(&[("expo-expect-signature", garbage)])
            .send(&app)
            .await;
        findings.refused(
            &format!(
                "update check with expo-expect-signature: {:?}",
                String::from_utf8_lossy(garbage)
            ),
            &answer,
            Want::Status(400),
        );
    }
    // Huge request headers: refused at the edge (431 or 400), and the server lives on.
    let padding = "a".repeat(100 * 1024);
    let big = "b".repeat(1024 * 1024);
    let mut many = RawRequest::new("GET", "/healthz");
    for i in 0..200 {
        many = many.header(&format!("x-header-{i}"), format!("{i}"));
    }
    let cases = [
        (
            "a 100 KiB header on /healthz",
            RawRequest::new("GET", "/healthz").header("x-padding", &padding),
        ),
        (
            "a 100 KiB header on an update check",
            check(&[("x-padding", padding.as_bytes())]),
        ),
        (
            "a 100 KiB expo-channel-name",
            check(&[("expo-channel-name", padding.as_bytes())]),
        ),
        (
            "a 1 MiB header on /healthz",
            RawRequest::new("GET", "/healthz").header("x-padding", &big),
        ),
        ("200 headers on /healthz", many),
    ];
    for (what, request) in cases {
        match request.send(&app).await {
            Ok(response) if [400, 431].contains(&response.status) => {
                if !response.text.is_empty() {
                    findings.refused(what, &Ok(response), Want::ClientError);
                }
            }
            Ok(response) => findings.fail(format!(
                "{what}: expected 431 (or 400), got {}",
                describe(&response)
            )),
            Err(error) => findings.fail(format!("{what}: {error}")),
        }
        match RawRequest::new("GET", "/healthz").send(&app).await {
            Ok(response) if response.status == 200 => {}
            other => findings.fail(format!("after {what}: /healthz answered {other:?}")),
        }
    }
    // A huge credential is no credential.
    let answer = RawRequest::new("GET", "/api/projects")
        .bearer(&padding)
        .send(&app)
        .await;
    findings.refused("a 100 KiB bearer token", &answer, Want::ClientError);
    findings
        .unchanged(&app, &t, &mut before, "after the hostile headers")
        .await;
    findings.finish("hostile headers");
});

// ---------------------------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------------------------

/// How long a connection may sit without a byte before the server must close it: the
/// server runs with `IDLE_TIMEOUT_SECONDS=5` in these tests.
const IDLE_LIMIT: Duration = Duration::from_secs(8);

/// Reads until the server closes the connection (or the read fails), for at most `limit`;
/// returns how long that took, and what was received.
async fn wait_for_close(stream: &mut TcpStream, limit: Duration) -> Result<Duration, Vec<u8>> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    match closed {
        Ok(()) => Ok(started.elapsed()),
        Err(_) => Err(received),
    }
}

/// A request head sent up to the middle of a header, then nothing.
async fn stalled_head(app: &TestApp) -> Result<Duration, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        .await
        .map_err(|e| e.to_string())?;
    wait_for_close(&mut stream, IDLE_LIMIT + Duration::from_secs(2))
        .await
        .map_err(|received| {
            format!(
                "a request head stalled mid-header: the connection is still open {} s later \
                 (received {:?})",
                (IDLE_LIMIT + Duration::from_secs(2)).as_secs(),
                preview(&received)
            )
        })
}

/// A publish whose body stops after 1 KiB of the announced 100 KiB.
async fn stalled_body(app: &TestApp, t: &Tenant) -> Result<Duration, String> {
    let mini = Mini::new(100 * 1024);
    let form = mini.form();
    let content_type = form.content_type();
    let body = form.close();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        t.publish_path(),
        app.port,
        t.key,
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&body[..1024])
        .await
        .map_err(|e| e.to_string())?;
    wait_for_close(&mut stream, IDLE_LIMIT + Duration::from_secs(2))
        .await
        .map_err(|received| {
            format!(
                "a publish body stalled after 1 KiB: the connection is still open {} s later \
                 (received {:?})",
                (IDLE_LIMIT + Duration::from_secs(2)).as_secs(),
                preview(&received)
            )
        })
}

/// An honest slow upload: 1 KiB every 200 ms for about 5 s, then the answer.
async fn honest_slow_upload(app: &TestApp, t: &Tenant) -> Result<Response, String> {
    let mini = Mini::new(24 * 1024);
    let form = mini.form();
    let content_type = form.content_type();
    let body = form.close();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
         Authorization: Bearer {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        t.publish_path(),
        app.port,
        t.key,
        body.len()
    );
    let stream = TcpStream::connect(("127.0.0.1", app.port))
        .await
        .map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    for chunk in body.chunks(1024) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        writer
            .write_all(chunk)
            .await
            .map_err(|e| format!("the server stopped reading a slow upload: {e}"))?;
    }
    let answer = read_answer(&mut reader, ANSWER_WITHIN).await;
    drop(writer);
    answer
}

both_backends!(
    slow_clients_are_cut_off_but_slow_uploads_finish,
    env = [("IDLE_TIMEOUT_SECONDS", "5")],
    |app| async move {
        let t = Tenant::new(&app).await;
        let mut failures = Vec::new();
        let (head, body, honest) = tokio::join!(
            stalled_head(&app),
            stalled_body(&app, &t),
            honest_slow_upload(&app, &t)
        );
        for (what, outcome) in [("stalled head", head), ("stalled body", body)] {
            match outcome {
                Ok(after) if after <= IDLE_LIMIT => {}
                Ok(after) => failures.push(format!(
                    "{what}: closed only after {:.1} s (limit {IDLE_LIMIT:?})",
                    after.as_secs_f64()
                )),
                Err(error) => failures.push(error),
            }
        }
        match honest {
            Ok(response) if response.status == 200 => {
                e2e::assert_uuid(&response.json["updateId"]);
            }
            Ok(response) => failures.push(format!(
                "an honest slow upload (1 KiB every 200 ms): {}",
                describe(&response)
            )),
            Err(error) => failures.push(format!("an honest slow upload: {error}")),
        }
        // The server still serves others.
        app.get_anon("/healthz").await.assert_status(200);
        assert!(
            failures.is_empty(),
            "slow clients: {} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
);
