//! Publishing: the real `npx expo export` fixtures ([`Export`], from `tests/fixtures`), a
//! builder for the `multipart/form-data` body of `POST /api/updates/{projectId}/publish`, and
//! the [`Publisher`] a release pipeline is (an owner, their project, an API key of it).
//!
//! The form is derived from an export's own `metadata.json`, so tests upload exactly the
//! field names a real export produces; knobs drop, rename or add fields and replace the
//! text and JSON parts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use reqwest::multipart::{Form, Part};
use serde_json::Value;

pub use test_support::fixtures::{Export, asset_key, fixtures_dir, sha256_bytes_hex};

use crate::{Response, TestApp, TestUser, raw_http, str_field};

impl TestApp {
    /// Waits until no bundle patch of the publish `update_id` is still being
    /// computed (they are made in the background after a publish), read with
    /// the project's API key; returns the last answer.
    pub async fn patches_settled(&self, project_id: &str, secret: &str, update_id: &str) -> Value {
        let path = format!("/api/updates/{project_id}/updates/{update_id}/patches");
        for _ in 0..600 {
            let answer = self.get(&path, secret).await;
            answer.assert_status(200);
            let pending = answer.json["platforms"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|platform| platform["patches"].as_array().into_iter().flatten())
                .any(|patch| patch["state"] == "pending");
            if !pending {
                return answer.json;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the patches of {update_id} were still pending after a minute");
    }
}

/// The success message of a publish.
pub const PUBLISHED_MESSAGE: &str = "Update published successfully";

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
    /// Text fields (name, value) sent before everything else.
    pub fields_first: Vec<(String, Vec<u8>)>,
    /// Text fields (name, value) sent after everything else.
    pub fields_last: Vec<(String, Vec<u8>)>,
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
            fields_first: Vec::new(),
            fields_last: Vec::new(),
            unknown_lengths: false,
        }
    }

    /// Sends the text field `name` (`branch`, `message`, `rolloutPercentage`, …) after the
    /// files; `value` need not be UTF-8.
    pub fn field(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.fields_last.push((name.to_owned(), value.into()));
        self
    }

    /// [`PublishForm::field`] for each of `fields`.
    pub fn fields(self, fields: &[(&str, &str)]) -> Self {
        fields
            .iter()
            .fold(self, |form, (name, value)| form.field(name, *value))
    }

    /// Sends the text field `name` before everything else (before `runtimeVersion`).
    pub fn field_first(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.fields_first.push((name.to_owned(), value.into()));
        self
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

    /// The parts of the form, in order: the [`PublishForm::field_first`] fields,
    /// `runtimeVersion`, `metadata.json`, `expoConfig.json`, one file field per listed path,
    /// the extra files, then the [`PublishForm::field`] fields.
    pub fn parts(&self) -> Vec<FormPart> {
        let text = |(name, value): &(String, Vec<u8>)| FormPart {
            name: name.clone(),
            file_name: None,
            content_type: None,
            source: Source::Bytes(value.clone()),
        };
        let mut parts: Vec<FormPart> = self.fields_first.iter().map(text).collect();
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
        parts.extend(self.fields_last.iter().map(text));
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

// ---------------------------------------------------------------------------------------------
// Who publishes
// ---------------------------------------------------------------------------------------------

/// What a release pipeline publishes as: a registered owner, their project and an API key of
/// it, and (from [`TestApp::publisher_with_member`]) a plain member of the project.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub owner: TestUser,
    pub member: Option<TestUser>,
    pub project_id: String,
    pub key_id: String,
    pub key_name: String,
    /// The API key's secret.
    pub secret: String,
}

impl TestApp {
    /// [`TestApp::publisher_keyed`] with the key named `ci`.
    pub async fn publisher(&self) -> Publisher {
        self.publisher_keyed("ci").await
    }

    /// A registered owner, their new project and an API key of it named `key_name`.
    pub async fn publisher_keyed(&self, key_name: &str) -> Publisher {
        let owner = self.register_user().await;
        let project = self.create_project(&owner.token).await;
        let project_id = str_field(&project, "id");
        self.with_key(owner, None, project_id, key_name).await
    }

    /// An owner, a plain member and their project ([`TestApp::project_with_member`]), and an
    /// API key named `key_name`.
    pub async fn publisher_with_member(&self, key_name: &str) -> Publisher {
        let setup = self.project_with_member().await;
        self.with_key(setup.owner, Some(setup.member), setup.project_id, key_name)
            .await
    }

    async fn with_key(
        &self,
        owner: TestUser,
        member: Option<TestUser>,
        project_id: String,
        key_name: &str,
    ) -> Publisher {
        let created = self
            .create_key(&owner.token, &project_id, Some(key_name))
            .await;
        Publisher {
            key_id: str_field(&created["key"], "id"),
            secret: str_field(&created, "secret"),
            key_name: key_name.to_owned(),
            owner,
            member,
            project_id,
        }
    }
}

impl Publisher {
    /// The member of [`TestApp::publisher_with_member`].
    #[track_caller]
    pub fn member(&self) -> &TestUser {
        self.member
            .as_ref()
            .expect("a publisher with a member (TestApp::publisher_with_member)")
    }

    /// `/api/projects/{id}{rest}`: the members' routes (session token).
    pub fn project_path(&self, rest: &str) -> String {
        format!("/api/projects/{}{rest}", self.project_id)
    }

    /// `/api/updates/{id}{rest}`: the release pipeline's routes (API key).
    pub fn updates_path(&self, rest: &str) -> String {
        format!("/api/updates/{}{rest}", self.project_id)
    }

    /// The owner as an audit log actor.
    pub fn owner_actor(&self) -> Value {
        serde_json::json!({ "type": "user", "id": self.owner.id, "name": self.owner.username })
    }

    /// The member as an audit log actor.
    pub fn member_actor(&self) -> Value {
        let member = self.member();
        serde_json::json!({ "type": "user", "id": member.id, "name": member.username })
    }

    /// The API key as an audit log actor.
    pub fn key_actor(&self) -> Value {
        serde_json::json!({ "type": "apiKey", "id": self.key_id, "name": self.key_name })
    }
}

impl TestApp {
    /// `GET /api/projects/{project_id}/updates/{update_id}` (a member's `token`), asserting
    /// `200`; the update's details.
    pub async fn update_detail(&self, token: &str, project_id: &str, update_id: &str) -> Value {
        let response = self
            .get(
                &format!("/api/projects/{project_id}/updates/{update_id}"),
                token,
            )
            .await;
        response.assert_status(200);
        response.json
    }
}

/// The manifest id devices see for `platform`, from an update's details
/// ([`TestApp::update_detail`]).
#[track_caller]
pub fn manifest_id_in(detail: &Value, platform: &str) -> String {
    let platform_update = detail["platformUpdates"]
        .as_array()
        .unwrap_or_else(|| panic!("no platformUpdates: {detail}"))
        .iter()
        .find(|update| update["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform} update in {detail}"));
    str_field(platform_update, "manifestId")
}

/// The fields of the answer to a publish and to a republish.
pub const RELEASE_FIELDS: [&str; 5] = [
    "updateId",
    "message",
    "branch",
    "platforms",
    "rolloutPercentage",
];

/// Asserts `200` with exactly the [`RELEASE_FIELDS`] and a UUID `updateId`; returns the body.
#[track_caller]
pub fn assert_release_answer(response: &Response) -> &Value {
    response.assert_status(200);
    let keys: BTreeSet<&str> = response
        .json
        .as_object()
        .unwrap_or_else(|| panic!("expected an object: {}", response.text))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(RELEASE_FIELDS),
        "body: {}",
        response.text
    );
    crate::assert_uuid(&response.json["updateId"]);
    &response.json
}
