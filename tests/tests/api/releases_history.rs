//! Release management after publishing: the update history (filters, cursor pagination,
//! details), republishing (rolling back to an earlier update, promoting between branches),
//! percentage rollouts, deleting updates, branch-aware rollbacks to the embedded update,
//! branches, the audit log, storage collection and retention.
//!
//! Everything is checked from the outside: the JSON routes, what devices are served (strict
//! multipart manifests and directives, asset downloads) and what storage holds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::protocol::{RawResponse, UpdateCheck, checksums, manifest_hash};
use e2e::publish::{Export, PUBLISHED_MESSAGE, PublishForm, Publisher};
use e2e::reqwest::{Method, Url};
use e2e::serde_json::{Value, json};
use e2e::{
    Backend, PASSWORD, Response, Storage, TestApp, all_backends, assert_has_fields,
    assert_no_secrets, assert_same, assert_timestamp_millis, assert_uuid, both_backends,
    sha256_hex, str_field, uuid_v4,
};

/// The name of the API key every [`Publisher`] here publishes with.
const KEY_NAME: &str = "release pipeline";

// ---------------------------------------------------------------------------------------------
// A project to release from
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Publishing with a branch, a message and a rollout percentage
// ---------------------------------------------------------------------------------------------

/// Where and how to publish; the defaults send none of the optional fields.
#[derive(Debug, Clone, Copy, Default)]
struct To<'a> {
    branch: Option<&'a str>,
    message: Option<&'a str>,
    rollout: Option<u8>,
}

/// Publishing to `branch`.
fn to(branch: &str) -> To<'_> {
    To {
        branch: Some(branch),
        ..To::default()
    }
}

impl<'a> To<'a> {
    fn message(mut self, message: &'a str) -> Self {
        self.message = Some(message);
        self
    }

    fn rollout(mut self, percentage: u8) -> Self {
        self.rollout = Some(percentage);
        self
    }
}

/// The export's publish form (see `e2e::publish::PublishForm`) preceded by the optional
/// text fields `branch`, `message` and `rolloutPercentage`.
fn release_form(export: &Export, to: To<'_>) -> PublishForm {
    let mut form = PublishForm::new(export);
    if let Some(branch) = to.branch {
        form = form.field_first("branch", branch);
    }
    if let Some(message) = to.message {
        form = form.field_first("message", message);
    }
    if let Some(rollout) = to.rollout {
        form = form.field_first("rolloutPercentage", rollout.to_string());
    }
    form
}

/// Publishes `export` with the release's key, asserting the documented answer; returns the
/// update id.
async fn publish(app: &TestApp, r: &Publisher, export: &Export, to: To<'_>) -> String {
    let response = app
        .publish_raw(&r.project_id, Some(&r.secret), &release_form(export, to))
        .await;
    response.assert_status(200);
    let body = &response.json;
    assert_uuid(&body["updateId"]);
    assert_eq!(
        body["message"], PUBLISHED_MESSAGE,
        "body: {}",
        response.text
    );
    assert_eq!(
        body["branch"],
        to.branch.unwrap_or("main"),
        "body: {}",
        response.text
    );
    assert_eq!(
        body["rolloutPercentage"],
        to.rollout.unwrap_or(100),
        "body: {}",
        response.text
    );
    assert_eq!(
        strings(&body["platforms"]),
        set(&["android", "ios"]),
        "body: {}",
        response.text
    );
    str_field(body, "updateId")
}

/// `POST path` without any body (no content type either).
async fn post_empty(app: &TestApp, path: &str, token: &str) -> Response {
    app.send(app.authed(Method::POST, path, token)).await
}

// ---------------------------------------------------------------------------------------------
// Small JSON helpers
// ---------------------------------------------------------------------------------------------

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// A JSON array of strings, as a set.
#[track_caller]
fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of strings, got {value}"))
        .iter()
        .map(|item| {
            item.as_str()
                .unwrap_or_else(|| panic!("expected a string, got {item}"))
                .to_owned()
        })
        .collect()
}

/// The `id` of each item.
fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| str_field(item, "id")).collect()
}

#[track_caller]
fn items<'a>(response: &'a Response, field: &str) -> &'a Vec<Value> {
    response.json[field]
        .as_array()
        .unwrap_or_else(|| panic!("expected an array {field:?}, got: {}", response.text))
}

/// `path` with `query` appended.
fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{query}")
}

/// The `nextCursor` of a page; `None` when it is null (or absent).
#[track_caller]
fn next_cursor(page: &Value) -> Option<String> {
    match page.get("nextCursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(cursor)) => Some(cursor.clone()),
        Some(other) => panic!("nextCursor is neither a string nor null: {other}"),
    }
}

/// Walks every page of a cursor-paginated listing (`field`: `updates` or `events`) with
/// `limit`, from the first page to the one with a null `nextCursor`. Asserts that every page
/// before the last is full, that no page after a cursor is empty and that no item repeats;
/// returns the items in order.
async fn walk(app: &TestApp, path: &str, token: &str, field: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query = format!("limit={limit}");
        if let Some(cursor) = &cursor {
            query.push_str(&format!("&cursor={cursor}"));
        }
        let response = app.get(&with_query(path, &query), token).await;
        response.assert_status(200);
        let page = items(&response, field).clone();
        assert!(
            page.len() <= limit,
            "{path} limit={limit}: {} items on one page: {}",
            page.len(),
            response.text
        );
        if cursor.is_some() {
            assert!(
                !page.is_empty(),
                "{path} limit={limit}: an empty page after a nextCursor"
            );
        }
        for item in &page {
            let id = str_field(item, "id");
            assert!(
                seen.insert(id.clone()),
                "{path} limit={limit}: {id} appears on two pages"
            );
        }
        all.extend(page.iter().cloned());
        match next_cursor(&response.json) {
            Some(next) => {
                assert_eq!(
                    page.len(),
                    limit,
                    "{path}: a page with a nextCursor is not full: {}",
                    response.text
                );
                cursor = Some(next);
            }
            None => return all,
        }
    }
    panic!("{path} limit={limit}: more than 100 pages");
}

/// The whole audit log, newest first.
async fn audit_log(app: &TestApp, r: &Publisher) -> Vec<Value> {
    walk(
        app,
        &r.project_path("/audit"),
        &r.owner.token,
        "events",
        100,
    )
    .await
}

/// The `(action, details.updateId)` of each `update.*` event, oldest first.
fn update_story(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .rev()
        .filter(|event| str_field(event, "action").starts_with("update."))
        .map(|event| {
            (
                str_field(event, "action"),
                event["details"]["updateId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------------

/// A protocol 1 update check on runtime version 1.0.0, with the headers real clients send, no
/// channel (the default one) and no client id.
fn device(platform: &str) -> UpdateCheck {
    UpdateCheck::v1(platform, "1.0.0")
}

/// What a device was answered.
#[derive(Debug)]
enum Answer {
    Manifest(Value),
    Directive(Value),
    Error(u16, String),
}

impl Answer {
    #[track_caller]
    fn manifest(self) -> Value {
        match self {
            Answer::Manifest(manifest) => manifest,
            other => panic!("expected a manifest, got {other:?}"),
        }
    }

    /// The directive's `type`.
    #[track_caller]
    fn directive(self) -> String {
        match self {
            Answer::Directive(directive) => str_field(&directive, "type"),
            other => panic!("expected a directive, got {other:?}"),
        }
    }
}

async fn ask(app: &TestApp, project_id: &str, device: UpdateCheck) -> Answer {
    let raw = app.check(project_id, &device).await;
    if raw.status != 200 {
        return Answer::Error(raw.status, raw.text());
    }
    let parts = raw.multipart();
    if let Some(part) = parts.iter().find(|part| part.name() == "manifest") {
        return Answer::Manifest(part.json());
    }
    if let Some(part) = parts.iter().find(|part| part.name() == "directive") {
        return Answer::Directive(part.json());
    }
    panic!("neither a manifest nor a directive: {}", raw.text());
}

/// Asks as 200 devices with client ids `device-0` … `device-199`; returns the client ids
/// that were served a manifest (with it), asserting that every other one was told
/// `noUpdateAvailable`.
async fn sample_devices(
    app: &TestApp,
    project_id: &str,
    device: UpdateCheck,
) -> Vec<(String, Value)> {
    let mut served = Vec::new();
    for i in 0..200 {
        let client_id = format!("device-{i}");
        match ask(app, project_id, device.clone().client(&client_id)).await {
            Answer::Manifest(manifest) => served.push((client_id, manifest)),
            Answer::Directive(directive) => assert_eq!(
                directive,
                json!({ "type": "noUpdateAvailable" }),
                "{client_id}"
            ),
            other => panic!("{client_id}: {other:?}"),
        }
    }
    served
}

/// The manifest `hash` of `export`'s launch bundle for `platform`.
fn launch_hash(export: &Export, platform: &str) -> String {
    manifest_hash(&export.bytes(&export.bundle(platform)))
}

/// Asserts that `manifest` launches `export`'s bundle for `platform`.
#[track_caller]
fn assert_content(manifest: &Value, export: &Export, platform: &str) {
    assert_eq!(
        manifest["launchAsset"]["hash"],
        launch_hash(export, platform),
        "the {platform} device did not get {}'s launch asset: {manifest}",
        export.name
    );
}

/// Every `(url, hash)` of a manifest, the launch asset first.
fn manifest_files(manifest: &Value) -> Vec<(String, String)> {
    std::iter::once(&manifest["launchAsset"])
        .chain(manifest["assets"].as_array().into_iter().flatten())
        .map(|asset| (str_field(asset, "url"), str_field(asset, "hash")))
        .collect()
}

/// `GET` a manifest URL on this server (its path and query: the public URL the server puts
/// in manifests need not be reachable from the test).
async fn fetch_url(app: &TestApp, url: &str) -> RawResponse {
    let parsed = Url::parse(url).unwrap_or_else(|e| panic!("{url:?} is not a URL: {e}"));
    let mut path = parsed.path().to_owned();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }
    app.fetch_path(&path).await
}

/// Downloads every file of `manifest`, checking the bytes against the manifest hashes.
async fn assert_downloadable(app: &TestApp, manifest: &Value) {
    for (url, hash) in manifest_files(manifest) {
        let response = fetch_url(app, &url).await;
        response.assert_status(200);
        assert_eq!(
            manifest_hash(&response.body),
            hash,
            "the bytes of {url} do not match the manifest hash"
        );
    }
}

/// Asserts that no file of `manifest` can be downloaded any more.
async fn assert_not_downloadable(app: &TestApp, manifest: &Value) {
    for (url, _) in manifest_files(manifest) {
        let response = fetch_url(app, &url).await;
        assert_eq!(
            response.status,
            404,
            "{url} of a deleted update answered {}: {}",
            response.status,
            if response.status == 200 {
                format!("{} bytes", response.body.len())
            } else {
                response.text()
            }
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Update summaries and details
// ---------------------------------------------------------------------------------------------

/// Asserts the documented fields of an UpdateSummary.
#[track_caller]
fn assert_summary_shape(summary: &Value) {
    assert_has_fields(
        summary,
        &[
            "id",
            "branch",
            "runtimeVersion",
            "platforms",
            "kind",
            "rolloutPercentage",
            "createdAt",
            "publishedBy",
        ],
    );
    assert_uuid(&summary["id"]);
    assert_timestamp_millis(&summary["createdAt"]);
    let kind = str_field(summary, "kind");
    assert!(kind == "update" || kind == "rollback", "kind {kind:?}");
    let platforms = strings(&summary["platforms"]);
    assert!(
        !platforms.is_empty() && platforms.is_subset(&set(&["android", "ios"])),
        "platforms of {summary}"
    );
    assert!(
        summary["rolloutPercentage"]
            .as_u64()
            .is_some_and(|p| p <= 100),
        "rolloutPercentage of {summary}"
    );
    let by = &summary["publishedBy"];
    assert_has_fields(by, &["type", "id", "name"]);
    assert!(
        by["type"] == "user" || by["type"] == "apiKey",
        "publishedBy {by}"
    );
}

/// The `platformUpdates` entry of `platform`.
#[track_caller]
fn platform_update<'a>(detail: &'a Value, platform: &str) -> &'a Value {
    detail["platformUpdates"]
        .as_array()
        .unwrap_or_else(|| panic!("no platformUpdates array in {detail}"))
        .iter()
        .find(|entry| entry["platform"] == platform)
        .unwrap_or_else(|| panic!("no {platform} in platformUpdates of {detail}"))
}

/// The manifest id of `platform` in an update's detail.
#[track_caller]
fn manifest_id(detail: &Value, platform: &str) -> String {
    str_field(platform_update(detail, platform), "manifestId")
}

/// Asserts that a detail lists exactly the files `export`'s `metadata.json` lists per
/// platform, with the right hash, MD5 key, size, content type, extension and launch flag.
#[track_caller]
fn assert_detail_of(detail: &Value, export: &Export) {
    let sums = checksums();
    let platforms: BTreeSet<String> = export.platforms().into_iter().collect();
    let entries = detail["platformUpdates"]
        .as_array()
        .unwrap_or_else(|| panic!("no platformUpdates array in {detail}"));
    let listed_platforms: BTreeSet<String> = entries
        .iter()
        .map(|entry| str_field(entry, "platform"))
        .collect();
    assert_eq!(listed_platforms, platforms, "platformUpdates of {detail}");
    assert_eq!(
        entries.len(),
        platforms.len(),
        "platformUpdates of {detail}"
    );
    assert_eq!(strings(&detail["platforms"]), platforms, "platforms");
    for entry in entries {
        let platform = str_field(entry, "platform");
        assert_uuid(&entry["manifestId"]);
        // path → the extension metadata.json gives it (None: the launch bundle).
        let mut listed: BTreeMap<String, Option<String>> = BTreeMap::new();
        listed.insert(export.bundle(&platform), None);
        for asset in export.metadata["fileMetadata"][&platform]["assets"]
            .as_array()
            .expect("metadata assets")
        {
            listed.insert(str_field(asset, "path"), Some(str_field(asset, "ext")));
        }
        let assets = entry["assets"]
            .as_array()
            .unwrap_or_else(|| panic!("no assets array for {platform}: {entry}"));
        let mut seen = BTreeSet::new();
        for asset in assets {
            let path = str_field(asset, "path");
            assert!(seen.insert(path.clone()), "{path} listed twice: {entry}");
            let ext = listed.get(&path).unwrap_or_else(|| {
                panic!(
                    "{path} is not listed for {platform} in {}'s metadata.json",
                    export.name
                )
            });
            let bytes = export.bytes(&path);
            let sum = sums
                .get(&format!("{}/{path}", export.name))
                .unwrap_or_else(|| panic!("{path} of {} not in CHECKSUMS.txt", export.name));
            assert_eq!(asset["hash"], manifest_hash(&bytes), "hash of {path}");
            assert_eq!(asset["hash"], sum.sha256_b64url.as_str(), "hash of {path}");
            assert_eq!(asset["key"], sum.md5_hex.as_str(), "key of {path}");
            assert_eq!(asset["size"], bytes.len() as u64, "size of {path}");
            assert_eq!(asset["size"], sum.size, "size of {path}");
            assert_eq!(
                asset["isLaunchAsset"],
                ext.is_none(),
                "isLaunchAsset of {path}"
            );
            let content_type = str_field(asset, "contentType");
            match ext {
                None => assert_eq!(content_type, "application/javascript", "bundle {path}"),
                Some(ext) => {
                    assert_eq!(
                        asset["fileExtension"],
                        format!(".{ext}"),
                        "fileExtension of {path}"
                    );
                    assert!(
                        content_type.contains('/'),
                        "contentType {content_type:?} of {path}"
                    );
                }
            }
        }
        assert_eq!(
            seen,
            listed.keys().cloned().collect::<BTreeSet<_>>(),
            "the files of {platform}"
        );
    }
}

/// Asserts that the detail's `platform` entry is what `manifest` serves: same manifest id,
/// and every manifest file described alike.
#[track_caller]
fn assert_detail_serves(detail: &Value, platform: &str, manifest: &Value) {
    let entry = platform_update(detail, platform);
    assert_eq!(
        entry["manifestId"], manifest["id"],
        "manifestId of {platform}"
    );
    let assets = entry["assets"].as_array().expect("assets");
    let launch = std::iter::once((&manifest["launchAsset"], true));
    let others = manifest["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|asset| (asset, false));
    for (file, is_launch) in launch.chain(others) {
        let described = assets
            .iter()
            .find(|asset| asset["hash"] == file["hash"] && asset["isLaunchAsset"] == is_launch)
            .unwrap_or_else(|| panic!("{file} of the manifest is not in the detail: {entry}"));
        assert_eq!(described["key"], file["key"], "{file}");
        assert_eq!(described["contentType"], file["contentType"], "{file}");
        if !is_launch {
            assert_eq!(described["fileExtension"], file["fileExtension"], "{file}");
        }
    }
}

/// The update with `id` in a list of summaries.
#[track_caller]
fn find_update<'a>(updates: &'a [Value], id: &str) -> &'a Value {
    updates
        .iter()
        .find(|update| update["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the history"))
}

async fn detail(app: &TestApp, r: &Publisher, update_id: &str) -> Value {
    app.update_detail(&r.owner.token, &r.project_id, update_id)
        .await
}

/// The ids of a history page (members' route, owner's token) for `query`.
async fn history_ids(app: &TestApp, r: &Publisher, query: &str) -> Vec<String> {
    let response = app
        .get(
            &with_query(&r.project_path("/updates"), query),
            &r.owner.token,
        )
        .await;
    response.assert_status(200);
    ids(items(&response, "updates"))
}

// ---------------------------------------------------------------------------------------------
// 1. History
// ---------------------------------------------------------------------------------------------

both_backends!(history_filters_orders_and_pages, |app| async move {
    let r = app.publisher_with_member(KEY_NAME).await;
    let (v1, v2, rt2) = (Export::v1(), Export::v2(), Export::rt2());
    let p1 = publish(&app, &r, &v1, To::default().message("first")).await;
    let p2 = publish(&app, &r, &v2, To::default().message("second")).await;
    let p3 = publish(&app, &r, &rt2, To::default().message("runtime two")).await;
    let p4 = publish(&app, &r, &v1, to("staging").message("staging candidate")).await;
    let rollback = app
        .post(
            &r.updates_path("/rollback"),
            &r.secret,
            &json!({ "runtimeVersion": "1.0.0", "platforms": ["ios"], "message": "pull ios" }),
        )
        .await;
    rollback.assert_status(200);
    let rb = str_field(&rollback.json, "updateId");
    let republished = app
        .post(
            &r.project_path(&format!("/updates/{p1}/republish")),
            &r.member().token,
            &json!({}),
        )
        .await;
    republished.assert_status(201);
    let rp = str_field(&republished.json, "id");

    let all = [&rp, &rb, &p4, &p3, &p2, &p1].map(String::clone).to_vec();

    // Everything, newest first, on both routes and for any member.
    let history = r.project_path("/updates");
    let page = app.get(&history, &r.owner.token).await;
    page.assert_status(200);
    let updates = items(&page, "updates");
    assert_eq!(ids(updates), all, "newest first: {}", page.text);
    assert_eq!(next_cursor(&page.json), None, "{}", page.text);
    let by_key = app.get(&r.updates_path("/updates"), &r.secret).await;
    by_key.assert_status(200);
    assert_same(&by_key.json, &page.json);
    let by_member = app.get(&history, &r.member().token).await;
    by_member.assert_status(200);
    assert_same(&by_member.json, &page.json);

    let mut previous = None;
    for update in updates {
        assert_summary_shape(update);
        let at = assert_timestamp_millis(&update["createdAt"]);
        if let Some(previous) = previous {
            assert!(at <= previous, "not newest first: {}", page.text);
        }
        previous = Some(at);
    }

    // Each summary tells what was published, by whom, with which message.
    let find = |id: &str| find_update(updates, id);
    let summary = find(&p1);
    assert_eq!(summary["branch"], "main");
    assert_eq!(summary["runtimeVersion"], "1.0.0");
    assert_eq!(strings(&summary["platforms"]), set(&["android", "ios"]));
    assert_eq!(summary["kind"], "update");
    assert_eq!(summary["message"], "first");
    assert_eq!(summary["rolloutPercentage"], 100);
    assert_eq!(summary["publishedBy"], r.key_actor());
    assert_eq!(summary["republishedFrom"], Value::Null);
    assert_eq!(find(&p2)["message"], "second");
    assert_eq!(find(&p3)["runtimeVersion"], "2.0.0");
    assert_eq!(find(&p3)["message"], "runtime two");
    assert_eq!(find(&p4)["branch"], "staging");
    assert_eq!(find(&p4)["message"], "staging candidate");
    let summary = find(&rb);
    assert_eq!(summary["kind"], "rollback");
    assert_eq!(summary["branch"], "main");
    assert_eq!(strings(&summary["platforms"]), set(&["ios"]));
    assert_eq!(summary["message"], "pull ios");
    assert_eq!(summary["publishedBy"], r.key_actor());
    let summary = find(&rp);
    assert_eq!(summary["kind"], "update");
    assert_eq!(summary["branch"], "main");
    assert_eq!(summary["runtimeVersion"], "1.0.0");
    assert_eq!(strings(&summary["platforms"]), set(&["android", "ios"]));
    assert_eq!(summary["message"], format!("Republish of {p1}"));
    assert_eq!(summary["republishedFrom"], p1.as_str());
    assert_eq!(summary["publishedBy"], r.member_actor());
    assert_same(summary, &republished.json);

    // Filters, alone and together.
    let filters: Vec<(&str, Vec<&String>)> = vec![
        ("branch=main", vec![&rp, &rb, &p3, &p2, &p1]),
        ("branch=staging", vec![&p4]),
        ("branch=nowhere", vec![]),
        ("runtimeVersion=2.0.0", vec![&p3]),
        ("runtimeVersion=1.0.0", vec![&rp, &rb, &p4, &p2, &p1]),
        ("runtimeVersion=9.9.9", vec![]),
        ("platform=android", vec![&rp, &p4, &p3, &p2, &p1]),
        ("platform=ios", vec![&rp, &rb, &p4, &p3, &p2, &p1]),
        (
            "branch=main&runtimeVersion=1.0.0&platform=android",
            vec![&rp, &p2, &p1],
        ),
        ("branch=staging&runtimeVersion=2.0.0", vec![]),
    ];
    for (query, expected) in &filters {
        let expected: Vec<String> = expected.iter().map(|id| (*id).clone()).collect();
        assert_eq!(history_ids(&app, &r, query).await, expected, "?{query}");
        let by_key = app
            .get(&with_query(&r.updates_path("/updates"), query), &r.secret)
            .await;
        by_key.assert_status(200);
        assert_eq!(
            ids(items(&by_key, "updates")),
            expected,
            "key route ?{query}"
        );
    }
    let android = app
        .get(&with_query(&history, "platform=android"), &r.owner.token)
        .await;
    for update in items(&android, "updates") {
        assert!(
            strings(&update["platforms"]).contains("android"),
            "platform=android listed {update}"
        );
    }

    // Pagination: every page walk gives the same list, without repeats or gaps.
    for limit in [1, 2, 5, 6, 100] {
        let walked = walk(&app, &history, &r.owner.token, "updates", limit).await;
        assert_eq!(ids(&walked), all, "limit={limit}");
    }
    let walked = walk(
        &app,
        &r.updates_path("/updates?platform=android"),
        &r.secret,
        "updates",
        2,
    )
    .await;
    assert_eq!(ids(&walked), [&rp, &p4, &p3, &p2, &p1].map(String::clone));
    let walked = walk(
        &app,
        &with_query(&history, "branch=main"),
        &r.member().token,
        "updates",
        1,
    )
    .await;
    assert_eq!(ids(&walked), [&rp, &rb, &p3, &p2, &p1].map(String::clone));
    // A page of exactly the remaining updates is the last one.
    let first_two = app
        .get(&with_query(&history, "limit=2"), &r.owner.token)
        .await;
    let cursor = next_cursor(&first_two.json).expect("a cursor after the first 2 of 6");
    let rest = app
        .get(
            &with_query(&history, &format!("limit=4&cursor={cursor}")),
            &r.owner.token,
        )
        .await;
    rest.assert_status(200);
    assert_eq!(ids(items(&rest, "updates")), all[2..].to_vec());
    assert_eq!(next_cursor(&rest.json), None, "{}", rest.text);

    // Bad parameters are JSON 400s, on both routes.
    for query in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "cursor=not-a-cursor",
        "cursor=%27%20OR%201%3D1%20--",
        "platform=web",
        "platform=",
    ] {
        app.get(&with_query(&history, query), &r.owner.token)
            .await
            .assert_error(400);
        app.get(&with_query(&r.updates_path("/updates"), query), &r.secret)
            .await
            .assert_error(400);
    }

    // The detail: the summary plus every file, as metadata.json lists it.
    let d1 = detail(&app, &r, &p1).await;
    for (field, value) in find(&p1).as_object().unwrap() {
        assert_same(&d1[field], value);
    }
    assert_detail_of(&d1, &v1);
    let by_key = app
        .get(&r.updates_path(&format!("/updates/{p1}")), &r.secret)
        .await;
    by_key.assert_status(200);
    assert_same(&by_key.json, &d1);
    let by_member = app
        .get(
            &r.project_path(&format!("/updates/{p1}")),
            &r.member().token,
        )
        .await;
    by_member.assert_status(200);
    assert_same(&by_member.json, &d1);

    // The newest update of 2.0.0 is what devices get, manifest id and files alike.
    let d3 = detail(&app, &r, &p3).await;
    assert_detail_of(&d3, &rt2);
    for platform in ["ios", "android"] {
        let manifest = ask(
            &app,
            &r.project_id,
            device(platform).runtime_version(Some("2.0.0")),
        )
        .await
        .manifest();
        assert_detail_serves(&d3, platform, &manifest);
    }
    assert_detail_of(&detail(&app, &r, &p2).await, &v2);

    // The republish has p1's files under new manifest ids, and android devices get it.
    let drp = detail(&app, &r, &rp).await;
    assert_detail_of(&drp, &v1);
    for platform in ["ios", "android"] {
        assert_ne!(manifest_id(&drp, platform), manifest_id(&d1, platform));
    }
    let android = ask(&app, &r.project_id, device("android")).await.manifest();
    assert_detail_serves(&drp, "android", &android);

    // The rollback's detail: iOS only, no files.
    let drb = detail(&app, &r, &rb).await;
    assert_eq!(drb["kind"], "rollback");
    let entries = drb["platformUpdates"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{drb}");
    assert_eq!(entries[0]["platform"], "ios");
    assert_eq!(entries[0]["assets"], json!([]), "{drb}");

    // Unknown and malformed ids.
    for id in [
        uuid_v4(),
        "not-an-update".to_owned(),
        "00000000-0000-0000-0000-000000000000".to_owned(),
        p1.to_uppercase().replace('-', ""),
    ] {
        app.get(&r.project_path(&format!("/updates/{id}")), &r.owner.token)
            .await
            .assert_error(404);
        app.get(&r.updates_path(&format!("/updates/{id}")), &r.secret)
            .await
            .assert_error(404);
    }

    // Branches: the newest update per (runtime version, platform) of each branch.
    let branches = app
        .get(&r.project_path("/branches"), &r.member().token)
        .await;
    branches.assert_status(200);
    let mut heads = BTreeSet::new();
    let mut names = Vec::new();
    for branch in branches.array() {
        let name = str_field(branch, "name");
        names.push(name.clone());
        let mut streams = BTreeSet::new();
        for head in branch["latest"].as_array().expect("latest") {
            assert_has_fields(
                head,
                &[
                    "updateId",
                    "runtimeVersion",
                    "platform",
                    "kind",
                    "rolloutPercentage",
                    "createdAt",
                ],
            );
            assert_timestamp_millis(&head["createdAt"]);
            assert!(
                streams.insert((
                    str_field(head, "runtimeVersion"),
                    str_field(head, "platform")
                )),
                "two heads for one runtime version and platform in {branch}"
            );
            heads.insert((
                name.clone(),
                str_field(head, "runtimeVersion"),
                str_field(head, "platform"),
                str_field(head, "updateId"),
                str_field(head, "kind"),
            ));
            if head["updateId"] == rp.as_str() {
                assert_eq!(head["message"], format!("Republish of {p1}"));
                assert_eq!(head["rolloutPercentage"], 100);
            }
        }
    }
    names.sort();
    assert_eq!(names, ["main", "staging"], "{}", branches.text);
    let head = |branch: &str, runtime: &str, platform: &str, id: &str| {
        (
            branch.to_owned(),
            runtime.to_owned(),
            platform.to_owned(),
            id.to_owned(),
            "update".to_owned(),
        )
    };
    assert_eq!(
        heads,
        BTreeSet::from([
            head("main", "1.0.0", "ios", &rp),
            head("main", "1.0.0", "android", &rp),
            head("main", "2.0.0", "ios", &p3),
            head("main", "2.0.0", "android", &p3),
            head("staging", "1.0.0", "ios", &p4),
            head("staging", "1.0.0", "android", &p4),
        ]),
        "{}",
        branches.text
    );
    let by_key = app.get(&r.updates_path("/branches"), &r.secret).await;
    by_key.assert_status(200);
    assert_same(&by_key.json, &branches.json);
});

// ---------------------------------------------------------------------------------------------
// 2. The release manager's story
// ---------------------------------------------------------------------------------------------

all_backends!(staging_promotion_rollout_and_rollback, |app| async move {
    let r = app.publisher_with_member(KEY_NAME).await;
    let pid = r.project_id.clone();
    let (v1, v2) = (Export::v1(), Export::v2());
    let staging = device("ios").channel("staging");
    let production = device("ios").channel("production");

    // v1 goes to staging; staging devices get it, production has nothing yet.
    let staging_v1 = publish(&app, &r, &v1, to("staging").message("v1 candidate")).await;
    let on_staging = ask(&app, &pid, staging.clone()).await.manifest();
    assert_content(&on_staging, &v1, "ios");
    assert_eq!(on_staging["metadata"]["branch"], "staging", "{on_staging}");
    let staging_detail = detail(&app, &r, &staging_v1).await;
    assert_eq!(on_staging["id"], manifest_id(&staging_detail, "ios"));
    match ask(&app, &pid, production.clone()).await {
        Answer::Directive(directive) => assert_eq!(directive["type"], "noUpdateAvailable"),
        other => panic!("production has no update yet, got {other:?}"),
    }

    // A member promotes it to production for 10% of the devices.
    let promoted = app
        .post(
            &r.project_path(&format!("/updates/{staging_v1}/republish")),
            &r.member().token,
            &json!({ "branch": "production", "rolloutPercentage": 10, "message": "promote v1" }),
        )
        .await;
    promoted.assert_status(201);
    let summary = &promoted.json;
    assert_summary_shape(summary);
    let prod_v1 = str_field(summary, "id");
    assert_ne!(prod_v1, staging_v1, "a republish is a new update");
    assert_eq!(summary["branch"], "production");
    assert_eq!(summary["runtimeVersion"], "1.0.0");
    assert_eq!(summary["kind"], "update");
    assert_eq!(summary["rolloutPercentage"], 10);
    assert_eq!(summary["message"], "promote v1");
    assert_eq!(summary["republishedFrom"], staging_v1.as_str());
    assert_eq!(summary["publishedBy"], r.member_actor());
    assert_eq!(strings(&summary["platforms"]), set(&["android", "ios"]));
    assert!(
        assert_timestamp_millis(&summary["createdAt"])
            >= assert_timestamp_millis(&staging_detail["createdAt"]),
        "the republish is older than its source"
    );
    let prod_v1_detail = detail(&app, &r, &prod_v1).await;
    assert_detail_of(&prod_v1_detail, &v1);
    let prod_v1_ios = manifest_id(&prod_v1_detail, "ios");
    assert_ne!(prod_v1_ios, manifest_id(&staging_detail, "ios"));

    // A device without a client id is outside any partial rollout; about 10% of the others
    // get v1.
    assert_eq!(
        ask(&app, &pid, production.clone()).await.directive(),
        "noUpdateAvailable"
    );
    let inside = sample_devices(&app, &pid, production.clone()).await;
    assert!(
        (1..=50).contains(&inside.len()),
        "{} of 200 devices got a 10% rollout",
        inside.len()
    );
    for (client_id, manifest) in &inside {
        assert_content(manifest, &v1, "ios");
        assert_eq!(manifest["id"], prod_v1_ios.as_str(), "{client_id}");
        assert_eq!(manifest["metadata"]["branch"], "production");
    }
    // Staging devices are unaffected.
    assert_eq!(
        ask(&app, &pid, staging.clone()).await.manifest()["id"],
        on_staging["id"]
    );

    // Completing the rollout: everyone on production gets v1.
    let patched = app
        .patch(
            &r.project_path(&format!("/updates/{prod_v1}")),
            &r.member().token,
            &json!({ "rolloutPercentage": 100 }),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(patched.json["id"], prod_v1.as_str());
    assert_eq!(patched.json["rolloutPercentage"], 100);
    let everyone = ask(&app, &pid, production.clone()).await.manifest();
    assert_content(&everyone, &v1, "ios");
    assert_eq!(everyone["id"], prod_v1_ios.as_str());
    assert!(
        sample_devices(&app, &pid, production.clone()).await.len() == 200,
        "a 100% rollout left devices out"
    );

    // v2 is published straight to production.
    let prod_v2 = publish(&app, &r, &v2, to("production").message("v2")).await;
    let on_v2 = ask(&app, &pid, production.clone()).await.manifest();
    assert_content(&on_v2, &v2, "ios");
    let v2_ios = str_field(&on_v2, "id");
    assert_content(
        &ask(&app, &pid, device("android").channel("production"))
            .await
            .manifest(),
        &v2,
        "android",
    );
    assert_eq!(
        ask(&app, &pid, staging.clone()).await.manifest()["id"],
        on_staging["id"],
        "staging moved with production"
    );

    // v2 is bad: one call (the pipeline's key, empty body) republishes v1's production
    // update as the newest.
    let rolled = post_empty(
        &app,
        &r.updates_path(&format!("/updates/{prod_v1}/republish")),
        &r.secret,
    )
    .await;
    rolled.assert_status(201);
    let summary = &rolled.json;
    assert_summary_shape(summary);
    let rolled_back = str_field(summary, "id");
    assert!(![&staging_v1, &prod_v1, &prod_v2].contains(&&rolled_back));
    assert_eq!(summary["branch"], "production", "the source's branch");
    assert_eq!(summary["rolloutPercentage"], 100);
    assert_eq!(summary["message"], format!("Republish of {prod_v1}"));
    assert_eq!(summary["republishedFrom"], prod_v1.as_str());
    assert_eq!(summary["publishedBy"], r.key_actor());
    let v2_detail = detail(&app, &r, &prod_v2).await;
    assert!(
        assert_timestamp_millis(&summary["createdAt"])
            >= assert_timestamp_millis(&v2_detail["createdAt"]),
        "the rollback is not newer than v2"
    );
    let rolled_detail = detail(&app, &r, &rolled_back).await;
    assert_detail_of(&rolled_detail, &v1);
    let rolled_ios = manifest_id(&rolled_detail, "ios");

    // Devices on v2 get v1's content under a new manifest id.
    let back = ask(&app, &pid, production.clone().current(&v2_ios))
        .await
        .manifest();
    assert_content(&back, &v1, "ios");
    assert_eq!(
        back["launchAsset"]["hash"],
        on_staging["launchAsset"]["hash"]
    );
    assert_eq!(back["id"], rolled_ios.as_str());
    for old in [&prod_v1_ios, &v2_ios, &str_field(&on_staging, "id")] {
        assert_ne!(
            back["id"],
            old.as_str(),
            "the rollback reused a manifest id"
        );
    }
    assert_downloadable(&app, &back).await;
    // Devices still running the earlier v1 update are told about the new one too.
    let from_old_v1 = ask(&app, &pid, production.clone().current(&prod_v1_ios))
        .await
        .manifest();
    assert_eq!(from_old_v1["id"], rolled_ios.as_str());
    // Devices already on it: nothing new.
    assert_eq!(
        ask(&app, &pid, production.clone().current(&rolled_ios))
            .await
            .directive(),
        "noUpdateAvailable"
    );
    let android = ask(&app, &pid, device("android").channel("production"))
        .await
        .manifest();
    assert_content(&android, &v1, "android");
    assert_eq!(android["id"], manifest_id(&rolled_detail, "android"));

    // The production history, newest first.
    assert_eq!(
        history_ids(&app, &r, "branch=production").await,
        [&rolled_back, &prod_v2, &prod_v1].map(String::clone)
    );

    // Bad republishes and rollout changes.
    let republish = r.project_path(&format!("/updates/{prod_v1}/republish"));
    for body in [
        json!({ "rolloutPercentage": 0 }),
        json!({ "rolloutPercentage": 101 }),
        json!({ "branch": "Not A Branch!" }),
        json!({ "branch": "" }),
    ] {
        app.post(&republish, &r.member().token, &body)
            .await
            .assert_error(400);
    }
    app.post(
        &r.project_path(&format!("/updates/{}/republish", uuid_v4())),
        &r.member().token,
        &json!({}),
    )
    .await
    .assert_error(404);
    app.post(
        &r.updates_path("/updates/not-an-id/republish"),
        &r.secret,
        &json!({}),
    )
    .await
    .assert_error(404);
    for percentage in [-1, 101] {
        app.patch(
            &r.project_path(&format!("/updates/{prod_v1}")),
            &r.member().token,
            &json!({ "rolloutPercentage": percentage }),
        )
        .await
        .assert_error(400);
    }
    app.patch(
        &r.project_path(&format!("/updates/{}", uuid_v4())),
        &r.member().token,
        &json!({ "rolloutPercentage": 50 }),
    )
    .await
    .assert_error(404);
    // Nothing above changed what production devices get.
    assert_eq!(
        ask(&app, &pid, production.clone()).await.manifest()["id"],
        rolled_ios.as_str()
    );

    // The audit log tells exactly this story, in order.
    let events = audit_log(&app, &r).await;
    let actions: Vec<String> = events
        .iter()
        .rev()
        .map(|event| str_field(event, "action"))
        .collect();
    assert_eq!(
        actions,
        [
            "project.create",
            "member.add",
            "key.create",
            "update.publish",
            "update.republish",
            "update.rollout",
            "update.publish",
            "update.republish",
        ],
        "{events:#?}"
    );
    assert_eq!(
        update_story(&events),
        vec![
            ("update.publish".to_owned(), staging_v1.clone()),
            ("update.republish".to_owned(), prod_v1.clone()),
            ("update.rollout".to_owned(), prod_v1.clone()),
            ("update.publish".to_owned(), prod_v2.clone()),
            ("update.republish".to_owned(), rolled_back.clone()),
        ]
    );
    let oldest_first: Vec<&Value> = events.iter().rev().collect();
    let story = &oldest_first[3..];
    assert_eq!(story[0]["actor"], r.key_actor());
    assert_eq!(story[0]["details"]["branch"], "staging");
    assert_eq!(story[1]["actor"], r.member_actor());
    assert_eq!(story[1]["details"]["branch"], "production");
    assert_eq!(story[1]["details"]["republishedFrom"], staging_v1.as_str());
    assert_eq!(story[1]["details"]["rolloutPercentage"], 10);
    assert_eq!(story[2]["actor"], r.member_actor());
    assert_eq!(story[2]["details"]["from"], 10);
    assert_eq!(story[2]["details"]["to"], 100);
    assert_eq!(story[3]["actor"], r.key_actor());
    assert_eq!(story[3]["details"]["branch"], "production");
    assert_eq!(story[4]["actor"], r.key_actor());
    assert_eq!(story[4]["details"]["branch"], "production");
    assert_eq!(story[4]["details"]["republishedFrom"], prod_v1.as_str());
    let mut previous = None;
    for event in &oldest_first {
        let at = assert_timestamp_millis(&event["createdAt"]);
        if let Some(previous) = previous {
            assert!(at >= previous, "the audit log is out of order: {events:#?}");
        }
        previous = Some(at);
    }
});

// ---------------------------------------------------------------------------------------------
// 3. Deleting updates
// ---------------------------------------------------------------------------------------------

all_backends!(
    deleting_the_newest_serves_the_previous_again,
    |app| async move {
        let r = app.publisher_with_member(KEY_NAME).await;
        let pid = r.project_id.clone();
        let (v1, v2) = (Export::v1(), Export::v2());
        let first = publish(&app, &r, &v1, To::default()).await;
        let m1 = ask(&app, &pid, device("ios")).await.manifest();
        let second = publish(&app, &r, &v2, To::default()).await;
        let m2 = ask(&app, &pid, device("ios")).await.manifest();
        assert_content(&m2, &v2, "ios");
        assert_downloadable(&app, &m2).await;
        let path = |id: &str| r.project_path(&format!("/updates/{id}"));

        // A plain member may not delete.
        app.delete(&path(&second), &r.member().token)
            .await
            .assert_forbidden();
        assert_eq!(
            ask(&app, &pid, device("ios")).await.manifest()["id"],
            m2["id"]
        );

        // The owner deletes v2: v1 is served again, to new devices and to those on v2.
        app.delete(&path(&second), &r.owner.token)
            .await
            .assert_no_content();
        let again = ask(&app, &pid, device("ios")).await.manifest();
        assert_eq!(again["id"], m1["id"]);
        assert_content(&again, &v1, "ios");
        let from_v2 = ask(&app, &pid, device("ios").current(&str_field(&m2, "id")))
            .await
            .manifest();
        assert_eq!(from_v2["id"], m1["id"]);
        assert_content(
            &ask(&app, &pid, device("android")).await.manifest(),
            &v1,
            "android",
        );
        // The deleted update's files are gone from its URLs; v1's still download.
        assert_not_downloadable(&app, &m2).await;
        assert_downloadable(&app, &m1).await;

        // Deleting again, or reading it, is a 404; the history no longer lists it.
        app.delete(&path(&second), &r.owner.token)
            .await
            .assert_error(404);
        app.get(&path(&second), &r.owner.token)
            .await
            .assert_error(404);
        app.post(
            &r.project_path(&format!("/updates/{second}/republish")),
            &r.owner.token,
            &json!({}),
        )
        .await
        .assert_error(404);
        assert_eq!(
            history_ids(&app, &r, "").await,
            std::slice::from_ref(&first)
        );
        assert_eq!(
            history_ids(&app, &r, "platform=ios").await,
            std::slice::from_ref(&first)
        );

        // The release pipeline's key may delete too.
        let third = publish(&app, &r, &v2, To::default()).await;
        let m3 = ask(&app, &pid, device("ios")).await.manifest();
        assert_content(&m3, &v2, "ios");
        let key_path = r.updates_path(&format!("/updates/{third}"));
        app.delete(&key_path, &r.secret).await.assert_no_content();
        assert_eq!(
            ask(&app, &pid, device("ios")).await.manifest()["id"],
            m1["id"]
        );
        assert_not_downloadable(&app, &m3).await;
        app.delete(&key_path, &r.secret).await.assert_error(404);
        assert_eq!(
            history_ids(&app, &r, "").await,
            std::slice::from_ref(&first)
        );

        // Unknown and malformed ids.
        for id in [uuid_v4(), "not-an-id".to_owned()] {
            app.delete(&path(&id), &r.owner.token)
                .await
                .assert_error(404);
            app.delete(&r.updates_path(&format!("/updates/{id}")), &r.secret)
                .await
                .assert_error(404);
        }

        // Deleting the last update leaves nothing to serve.
        app.delete(&path(&first), &r.owner.token)
            .await
            .assert_no_content();
        match ask(&app, &pid, device("ios")).await {
            Answer::Directive(directive) => assert_eq!(directive["type"], "noUpdateAvailable"),
            other => panic!("every update is deleted, got {other:?}"),
        }
        // Protocol 0 cannot say "no update": a JSON 404.
        match ask(&app, &pid, UpdateCheck::v0("ios", "1.0.0")).await {
            Answer::Error(404, body) => assert!(body.contains("error"), "{body}"),
            other => panic!("every update is deleted, got {other:?}"),
        }
        assert_not_downloadable(&app, &m1).await;
        assert!(history_ids(&app, &r, "").await.is_empty());

        // The audit log names who deleted what.
        let deletes: Vec<(Value, Value)> = audit_log(&app, &r)
            .await
            .iter()
            .rev()
            .filter(|event| event["action"] == "update.delete")
            .map(|event| (event["details"]["updateId"].clone(), event["actor"].clone()))
            .collect();
        assert_eq!(
            deletes,
            [
                (json!(second), r.owner_actor()),
                (json!(third), r.key_actor()),
                (json!(first), r.owner_actor()),
            ]
        );
    }
);

// ---------------------------------------------------------------------------------------------
// 4. Rollbacks to the embedded update are branch-aware
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_rollback_answer(response: &Response, branch: &str, platforms: &[&str]) -> String {
    response.assert_status(200);
    let body = &response.json;
    assert_uuid(&body["updateId"]);
    assert_eq!(body["branch"], branch, "{}", response.text);
    assert_eq!(
        strings(&body["platforms"]),
        set(platforms),
        "{}",
        response.text
    );
    assert_eq!(body["rolloutPercentage"], 100, "{}", response.text);
    str_field(body, "updateId")
}

both_backends!(rollback_to_embedded_is_per_branch, |app| async move {
    let r = app.publisher_with_member(KEY_NAME).await;
    let pid = r.project_id.clone();
    let v1 = Export::v1();
    publish(&app, &r, &v1, To::default()).await;
    publish(&app, &r, &v1, to("staging")).await;
    let main_ios = str_field(&ask(&app, &pid, device("ios")).await.manifest(), "id");
    let main_android = str_field(&ask(&app, &pid, device("android")).await.manifest(), "id");
    let staging_ios = str_field(
        &ask(&app, &pid, device("ios").channel("staging"))
            .await
            .manifest(),
        "id",
    );
    let staging_android = str_field(
        &ask(&app, &pid, device("android").channel("staging"))
            .await
            .manifest(),
        "id",
    );
    let embedded = uuid_v4();

    // The pipeline rolls staging back.
    let staging_rollback = assert_rollback_answer(
        &app.post(
            &r.updates_path("/rollback"),
            &r.secret,
            &json!({ "runtimeVersion": "1.0.0", "branch": "staging", "message": "bad build" }),
        )
        .await,
        "staging",
        &["ios", "android"],
    );
    for (platform, current) in [("ios", &staging_ios), ("android", &staging_android)] {
        let device = device(platform)
            .channel("staging")
            .current(current)
            .embedded(&embedded);
        assert_eq!(
            ask(&app, &pid, device).await.directive(),
            "rollBackToEmbedded",
            "staging {platform}"
        );
    }
    // main is untouched, with or without an explicit channel.
    for device in [
        device("ios").current(&main_ios).embedded(&embedded),
        device("ios")
            .channel("main")
            .current(&main_ios)
            .embedded(&embedded),
        device("android").current(&main_android).embedded(&embedded),
    ] {
        assert_eq!(
            ask(&app, &pid, device.clone()).await.directive(),
            "noUpdateAvailable",
            "{device:?}"
        );
    }
    assert_eq!(
        ask(&app, &pid, device("ios")).await.manifest()["id"],
        main_ios.as_str()
    );

    // History and branches show it on staging only.
    let staging_history = app
        .get(&r.project_path("/updates?branch=staging"), &r.owner.token)
        .await;
    staging_history.assert_status(200);
    let newest = &items(&staging_history, "updates")[0];
    assert_eq!(newest["id"], staging_rollback.as_str());
    assert_eq!(newest["kind"], "rollback");
    assert_eq!(newest["message"], "bad build");
    assert_eq!(newest["publishedBy"], r.key_actor());
    let main_history = app
        .get(&r.project_path("/updates?branch=main"), &r.owner.token)
        .await;
    assert!(
        items(&main_history, "updates")
            .iter()
            .all(|update| update["kind"] == "update"),
        "{}",
        main_history.text
    );
    let branches = app
        .get(&r.project_path("/branches"), &r.member().token)
        .await;
    branches.assert_status(200);
    for branch in branches.array() {
        let kind = if branch["name"] == "staging" {
            "rollback"
        } else {
            "update"
        };
        for head in branch["latest"].as_array().unwrap() {
            assert_eq!(head["kind"], kind, "{}", branches.text);
        }
    }

    // A member rolls main back on Android only.
    let main_rollback = assert_rollback_answer(
        &app.post(
            &r.project_path("/rollback"),
            &r.member().token,
            &json!({ "runtimeVersion": "1.0.0", "branch": "main", "platforms": ["android"] }),
        )
        .await,
        "main",
        &["android"],
    );
    assert_eq!(
        ask(
            &app,
            &pid,
            device("android").current(&main_android).embedded(&embedded)
        )
        .await
        .directive(),
        "rollBackToEmbedded"
    );
    assert_eq!(
        ask(&app, &pid, device("ios").current(&main_ios))
            .await
            .directive(),
        "noUpdateAvailable"
    );
    assert_eq!(
        ask(
            &app,
            &pid,
            device("ios")
                .channel("staging")
                .current(&staging_ios)
                .embedded(&embedded)
        )
        .await
        .directive(),
        "rollBackToEmbedded"
    );

    // Without a branch: main.
    let default_rollback = assert_rollback_answer(
        &app.post(
            &r.updates_path("/rollback"),
            &r.secret,
            &json!({ "runtimeVersion": "1.0.0", "platforms": ["ios"] }),
        )
        .await,
        "main",
        &["ios"],
    );
    assert_eq!(
        ask(
            &app,
            &pid,
            device("ios").current(&main_ios).embedded(&embedded)
        )
        .await
        .directive(),
        "rollBackToEmbedded"
    );

    // Invalid branches are refused.
    for branch in ["Not A Branch!", "../main", "-x"] {
        app.post(
            &r.updates_path("/rollback"),
            &r.secret,
            &json!({ "runtimeVersion": "1.0.0", "branch": branch }),
        )
        .await
        .assert_error(400);
    }

    // The audit log records each rollback with its branch.
    let rollbacks: Vec<(Value, Value)> = audit_log(&app, &r)
        .await
        .iter()
        .rev()
        .filter(|event| event["action"] == "update.rollback")
        .map(|event| {
            (
                event["details"]["updateId"].clone(),
                event["details"]["branch"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rollbacks,
        [
            (json!(staging_rollback), json!("staging")),
            (json!(main_rollback), json!("main")),
            (json!(default_rollback), json!("main")),
        ]
    );
});

// ---------------------------------------------------------------------------------------------
// 5. Storage collection
// ---------------------------------------------------------------------------------------------

#[track_caller]
fn assert_gc_report(response: &Response, deleted: usize, freed: u64, kept: usize) {
    response.assert_status(200);
    assert_eq!(
        response.json,
        json!({ "deletedBlobs": deleted, "freedBytes": freed, "keptBlobs": kept }),
        "storage collection report"
    );
}

/// The blob keys an export stores in a project.
fn blob_keys(export: &Export, project_id: &str) -> BTreeSet<String> {
    export.expected_blobs(project_id).into_keys().collect()
}

all_backends!(
    collection_deletes_exactly_the_unreferenced_blobs,
    env = [("GC_GRACE_SECONDS", "0"), ("GC_INTERVAL_SECONDS", "0")],
    |app| async move {
        let r = app.publisher_with_member(KEY_NAME).await;
        let pid = r.project_id.clone();
        let (v1, v2) = (Export::v1(), Export::v2());
        let prefix = format!("projects/{pid}/assets/");
        let gc = r.project_path("/storage/gc");
        let v1_blobs = blob_keys(&v1, &pid);
        let v2_blobs = blob_keys(&v2, &pid);
        let only_v2: BTreeSet<String> = v2_blobs.difference(&v1_blobs).cloned().collect();
        let all: BTreeSet<String> = v1_blobs.union(&v2_blobs).cloned().collect();
        assert!(
            !only_v2.is_empty() && v1_blobs.intersection(&v2_blobs).next().is_some(),
            "the fixtures should share some files and differ in others"
        );

        publish(&app, &r, &v1, To::default()).await;
        let second = publish(&app, &r, &v2, To::default()).await;
        // v2's bundle patches (from v1's bundles) are stored with v2's files.
        app.patches_settled(&pid, &r.secret, &second).await;
        let before = app.stored_objects_under(&prefix);
        assert_eq!(
            before.keys().cloned().collect::<BTreeSet<_>>(),
            all,
            "stored after two publishes"
        );
        // Bundles also have their brotli and gzip copies, freed with them.
        let copies = app.stored_copies();

        // Everything is referenced: nothing to do.
        assert_gc_report(
            &post_empty(&app, &gc, &r.owner.token).await,
            0,
            0,
            all.len(),
        );
        assert_eq!(app.stored_objects_under(&prefix), before);

        // A republish of v2 (on another branch) keeps v2's files after v2 is deleted.
        let copy = app
            .post(
                &r.updates_path(&format!("/updates/{second}/republish")),
                &r.secret,
                &json!({ "branch": "beta" }),
            )
            .await;
        copy.assert_status(201);
        let copy = str_field(&copy.json, "id");
        app.delete(
            &r.project_path(&format!("/updates/{second}")),
            &r.owner.token,
        )
        .await
        .assert_no_content();
        assert_gc_report(
            &post_empty(&app, &gc, &r.owner.token).await,
            0,
            0,
            all.len(),
        );
        assert_eq!(app.stored_objects_under(&prefix), before);
        let beta = ask(&app, &pid, device("ios").channel("beta"))
            .await
            .manifest();
        assert_content(&beta, &v2, "ios");
        assert_downloadable(&app, &beta).await;

        // Once no update references them, exactly v2's own files go.
        app.delete(&r.updates_path(&format!("/updates/{copy}")), &r.secret)
            .await
            .assert_no_content();
        let freed: u64 = only_v2.iter().map(|key| before[key]).sum::<u64>()
            + copies
                .iter()
                .filter(|(copy, _)| {
                    only_v2
                        .iter()
                        .any(|key| copy.starts_with(&format!("{key}.")))
                })
                .map(|(_, size)| size)
                .sum::<u64>();
        assert_gc_report(
            &post_empty(&app, &gc, &r.owner.token).await,
            only_v2.len(),
            freed,
            v1_blobs.len(),
        );
        let after = app.stored_objects_under(&prefix);
        let expected: BTreeMap<String, u64> = before
            .iter()
            .filter(|(key, _)| v1_blobs.contains(*key))
            .map(|(key, size)| (key.clone(), *size))
            .collect();
        assert_eq!(after, expected, "what storage holds after the collection");
        for (key, path) in v1.expected_blobs(&pid) {
            assert_eq!(
                app.read_object(&key).as_deref(),
                Some(v1.bytes(&path).as_slice()),
                "{key} ({path}) changed"
            );
        }
        // v1 is still complete for devices.
        for platform in ["ios", "android"] {
            let manifest = ask(&app, &pid, device(platform)).await.manifest();
            assert_content(&manifest, &v1, platform);
            assert_downloadable(&app, &manifest).await;
        }

        // Again: nothing left to delete.
        assert_gc_report(
            &post_empty(&app, &gc, &r.owner.token).await,
            0,
            0,
            v1_blobs.len(),
        );
        assert_eq!(app.stored_objects_under(&prefix), expected);

        // Owners only.
        post_empty(&app, &gc, &r.member().token)
            .await
            .assert_forbidden();
        let stranger = app.register_user().await;
        post_empty(&app, &gc, &stranger.token)
            .await
            .assert_permission_denied();
        post_empty(&app, &gc, &r.secret).await.assert_error(401);

        // Each collection is in the audit log.
        let reports: Vec<Value> = audit_log(&app, &r)
            .await
            .iter()
            .rev()
            .filter(|event| event["action"] == "storage.gc")
            .map(|event| {
                assert_eq!(event["actor"], r.owner_actor());
                event["details"]["deletedBlobs"].clone()
            })
            .collect();
        assert_eq!(
            reports,
            [json!(0), json!(0), json!(only_v2.len()), json!(0)]
        );
    }
);

all_backends!(
    fresh_blobs_are_kept_by_default,
    env = [("GC_INTERVAL_SECONDS", "0")],
    |app| async move {
        let r = app.publisher_with_member(KEY_NAME).await;
        let pid = r.project_id.clone();
        let (v1, v2) = (Export::v1(), Export::v2());
        publish(&app, &r, &v1, To::default()).await;
        let second = publish(&app, &r, &v2, To::default()).await;
        app.delete(
            &r.project_path(&format!("/updates/{second}")),
            &r.owner.token,
        )
        .await
        .assert_no_content();
        let prefix = format!("projects/{pid}/assets/");
        let before = app.stored_objects_under(&prefix);
        let all = blob_keys(&v1, &pid).union(&blob_keys(&v2, &pid)).count();
        assert_eq!(before.len(), all);

        // Unreferenced, but younger than the default hour of grace.
        assert_gc_report(
            &post_empty(&app, &r.project_path("/storage/gc"), &r.owner.token).await,
            0,
            0,
            all,
        );
        assert_eq!(app.stored_objects_under(&prefix), before);
    }
);

all_backends!(
    a_deleted_projects_blobs_are_collected_in_the_background,
    |backend: Backend, storage: Storage| async move {
        let mut app = TestApp::spawn_on(
            backend,
            storage,
            &[("GC_GRACE_SECONDS", "0"), ("GC_INTERVAL_SECONDS", "0")],
        )
        .await;
        let a = app.publisher_with_member(KEY_NAME).await;
        let b = app.publisher_with_member(KEY_NAME).await;
        let v1 = Export::v1();
        publish(&app, &a, &v1, To::default()).await;
        publish(&app, &b, &v1, To::default()).await;
        let a_prefix = format!("projects/{}/", a.project_id);
        let b_prefix = format!("projects/{}/", b.project_id);
        assert!(!app.stored_objects_under(&a_prefix).is_empty());
        let b_before = app.stored_objects_under(&b_prefix);
        assert_eq!(b_before.len(), blob_keys(&v1, &b.project_id).len());

        app.delete(&format!("/api/projects/{}", a.project_id), &a.owner.token)
            .await
            .assert_no_content();
        // The deleted project's collection route answers as for any unknown project.
        post_empty(&app, &a.project_path("/storage/gc"), &a.owner.token)
            .await
            .assert_permission_denied();

        // The background collection removes what the deleted project left, and only that.
        app.env
            .insert("GC_INTERVAL_SECONDS".to_owned(), "1".to_owned());
        app.restart().await;
        let mut left = app.stored_objects_under(&a_prefix);
        for _ in 0..150 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = app.stored_objects_under(&a_prefix);
        }
        assert!(
            left.is_empty(),
            "the deleted project's blobs remain 15 s later: {left:?}"
        );
        app.get_anon("/readyz").await.assert_status(200);
        assert_eq!(app.stored_objects_under(&b_prefix), b_before);
        for platform in ["ios", "android"] {
            let manifest = ask(&app, &b.project_id, device(platform)).await.manifest();
            assert_content(&manifest, &v1, platform);
            assert_downloadable(&app, &manifest).await;
        }
        assert_gc_report(
            &post_empty(&app, &b.project_path("/storage/gc"), &b.owner.token).await,
            0,
            0,
            b_before.len(),
        );
    }
);

// ---------------------------------------------------------------------------------------------
// 6. Retention
// ---------------------------------------------------------------------------------------------

both_backends!(
    retention_keeps_the_newest_per_branch,
    env = [("RETENTION_KEEP_PER_BRANCH", "2")],
    |app| async move {
        let r = app.publisher_with_member(KEY_NAME).await;
        let pid = r.project_id.clone();
        let (v1, v2) = (Export::v1(), Export::v2());

        let a = publish(&app, &r, &v1, To::default()).await;
        let b = publish(&app, &r, &v2, To::default()).await;
        assert_eq!(history_ids(&app, &r, "").await, [b.clone(), a.clone()]);
        let c = publish(&app, &r, &v1, To::default()).await;
        assert_eq!(history_ids(&app, &r, "").await, [c.clone(), b.clone()]);
        for platform in ["ios", "android"] {
            assert_eq!(
                history_ids(&app, &r, &format!("platform={platform}")).await,
                [c.clone(), b.clone()],
                "{platform}"
            );
        }
        app.get(&r.project_path(&format!("/updates/{a}")), &r.owner.token)
            .await
            .assert_error(404);
        let served = ask(&app, &pid, device("ios")).await.manifest();
        assert_eq!(
            served["id"],
            manifest_id(&detail(&app, &r, &c).await, "ios")
        );

        // Retention is recorded.
        let events = audit_log(&app, &r).await;
        let retention: Vec<&Value> = events
            .iter()
            .filter(|event| event["action"] == "update.retention")
            .collect();
        assert_eq!(retention.len(), 1, "{events:#?}");
        assert_eq!(retention[0]["details"]["branch"], "main");
        assert_eq!(retention[0]["details"]["keepPerBranch"], 2);

        // A complete update beneath partial rollouts is kept: devices outside them get it.
        let full = publish(&app, &r, &v1, to("beta")).await;
        let first_partial = publish(&app, &r, &v2, to("beta").rollout(10)).await;
        let second_partial = publish(&app, &r, &v2, to("beta").rollout(10)).await;
        assert_eq!(
            history_ids(&app, &r, "branch=beta").await,
            [second_partial.clone(), first_partial.clone(), full.clone()]
        );
        let beta = device("ios").channel("beta");
        let outside = ask(&app, &pid, beta.clone()).await.manifest();
        assert_content(&outside, &v1, "ios");
        assert_eq!(
            outside["id"],
            manifest_id(&detail(&app, &r, &full).await, "ios")
        );
        let mut inside = 0;
        for i in 0..200 {
            let client_id = format!("device-{i}");
            let manifest = ask(&app, &pid, beta.clone().client(&client_id))
                .await
                .manifest();
            if manifest["launchAsset"]["hash"] == launch_hash(&v2, "ios") {
                inside += 1;
            } else {
                assert_eq!(manifest["id"], outside["id"], "{client_id}");
            }
        }
        assert!(
            (1..=100).contains(&inside),
            "{inside} of 200 devices are inside two 10% rollouts"
        );
        // Other branches keep their own count.
        assert_eq!(history_ids(&app, &r, "branch=main").await, [c.clone(), b]);

        // A complete update on top: nothing beneath it can be served any more.
        let done = publish(&app, &r, &v2, to("beta")).await;
        assert_eq!(
            history_ids(&app, &r, "branch=beta").await,
            [done.clone(), second_partial]
        );
        for gone in [&full, &first_partial] {
            app.get(&r.project_path(&format!("/updates/{gone}")), &r.owner.token)
                .await
                .assert_error(404);
        }
        let now = ask(&app, &pid, beta.clone()).await.manifest();
        assert_content(&now, &v2, "ios");
        assert_eq!(
            now["id"],
            manifest_id(&detail(&app, &r, &done).await, "ios")
        );
    }
);

both_backends!(
    retention_refuses_to_keep_nothing,
    |backend: Backend| async move {
        for value in ["0", "abc", "-1"] {
            match TestApp::try_spawn(backend, &[("RETENTION_KEEP_PER_BRANCH", value)]).await {
                Ok(_) => panic!("the server started with RETENTION_KEEP_PER_BRANCH={value:?}"),
                Err(error) => assert!(
                    error.contains("RETENTION_KEEP_PER_BRANCH"),
                    "RETENTION_KEEP_PER_BRANCH={value:?}: the error does not name it: {error}"
                ),
            }
        }
        let app = TestApp::try_spawn(backend, &[("RETENTION_KEEP_PER_BRANCH", "1")])
            .await
            .unwrap_or_else(|e| panic!("RETENTION_KEEP_PER_BRANCH=1 is valid: {e}"));
        app.get_anon("/readyz").await.assert_status(200);
    }
);

// ---------------------------------------------------------------------------------------------
// 7. Tenancy
// ---------------------------------------------------------------------------------------------

both_backends!(other_projects_get_nothing, |app| async move {
    let a = app.publisher_with_member(KEY_NAME).await;
    let b = app.publisher_with_member(KEY_NAME).await;
    let v1 = Export::v1();
    let a_message = "a-confidential-release-note";
    let a_update = publish(&app, &a, &v1, to("a-only").message(a_message)).await;
    let a_detail = detail(&app, &a, &a_update).await;
    let a_manifest = manifest_id(&a_detail, "ios");
    publish(&app, &b, &v1, To::default()).await;
    let a_history = app.get(&a.project_path("/updates"), &a.owner.token).await;
    let a_branches = app.get(&a.project_path("/branches"), &a.owner.token).await;

    // B's owner and B's key on A's routes.
    let user = &b.owner.token;
    let key = &b.secret;
    let update = format!("/updates/{a_update}");
    let republish = format!("/updates/{a_update}/republish");
    let rollback_body = json!({ "runtimeVersion": "1.0.0", "branch": "a-only" });
    let republish_body = json!({ "branch": "a-only" });
    let rollout_body = json!({ "rolloutPercentage": 1 });
    let as_user: Vec<(&str, Response)> = vec![
        ("history", app.get(&a.project_path("/updates"), user).await),
        ("detail", app.get(&a.project_path(&update), user).await),
        (
            "branches",
            app.get(&a.project_path("/branches"), user).await,
        ),
        (
            "republish",
            app.post(&a.project_path(&republish), user, &republish_body)
                .await,
        ),
        (
            "rollout",
            app.patch(&a.project_path(&update), user, &rollout_body)
                .await,
        ),
        ("delete", app.delete(&a.project_path(&update), user).await),
        (
            "rollback",
            app.post(&a.project_path("/rollback"), user, &rollback_body)
                .await,
        ),
        ("audit", app.get(&a.project_path("/audit"), user).await),
        (
            "storage gc",
            post_empty(&app, &a.project_path("/storage/gc"), user).await,
        ),
    ];
    for (what, response) in &as_user {
        assert_eq!(
            (response.status, response.json["error"].as_str()),
            (403, Some("Permission denied.")),
            "another project's user, {what}: HTTP {} {}",
            response.status,
            response.text
        );
    }
    let as_key: Vec<(&str, Response)> = vec![
        ("history", app.get(&a.updates_path("/updates"), key).await),
        ("detail", app.get(&a.updates_path(&update), key).await),
        ("branches", app.get(&a.updates_path("/branches"), key).await),
        (
            "republish",
            app.post(&a.updates_path(&republish), key, &republish_body)
                .await,
        ),
        (
            "rollout",
            app.patch(&a.updates_path(&update), key, &rollout_body)
                .await,
        ),
        ("delete", app.delete(&a.updates_path(&update), key).await),
        (
            "rollback",
            app.post(&a.updates_path("/rollback"), key, &rollback_body)
                .await,
        ),
    ];
    for (what, response) in &as_key {
        assert_eq!(
            response.status, 403,
            "another project's key, {what}: {}",
            response.text
        );
        response.assert_error(403);
    }

    // A's update id under B's own project: not found.
    let as_own: Vec<(&str, Response)> = vec![
        ("user detail", app.get(&b.project_path(&update), user).await),
        (
            "user republish",
            app.post(&b.project_path(&republish), user, &json!({}))
                .await,
        ),
        (
            "user rollout",
            app.patch(&b.project_path(&update), user, &rollout_body)
                .await,
        ),
        (
            "user delete",
            app.delete(&b.project_path(&update), user).await,
        ),
        ("key detail", app.get(&b.updates_path(&update), key).await),
        (
            "key republish",
            app.post(&b.updates_path(&republish), key, &json!({})).await,
        ),
        (
            "key rollout",
            app.patch(&b.updates_path(&update), key, &rollout_body)
                .await,
        ),
        (
            "key delete",
            app.delete(&b.updates_path(&update), key).await,
        ),
    ];
    for (what, response) in &as_own {
        assert_eq!(
            response.status, 404,
            "A's update in B's project, {what}: {}",
            response.text
        );
        response.assert_error(404);
    }

    // None of these answers carries A's data.
    for (what, response) in as_user.iter().chain(&as_key).chain(&as_own) {
        for secret in [a_message, "a-only", a_manifest.as_str(), a.key_id.as_str()] {
            assert!(
                !response.text.contains(secret),
                "{what} answered A's {secret:?}: {}",
                response.text
            );
        }
    }
    let b_history = app.get(&b.project_path("/updates"), user).await;
    b_history.assert_status(200);
    assert!(!b_history.text.contains(&a_update), "{}", b_history.text);
    let b_branches = app.get(&b.updates_path("/branches"), key).await;
    b_branches.assert_status(200);
    assert!(!b_branches.text.contains("a-only"), "{}", b_branches.text);

    // Without credentials: 401.
    for path in [
        a.project_path("/updates"),
        a.updates_path("/updates"),
        a.project_path("/audit"),
    ] {
        app.get_anon(&path).await.assert_error(401);
    }

    // A is exactly as it was.
    let history_after = app.get(&a.project_path("/updates"), &a.owner.token).await;
    assert_same(&history_after.json, &a_history.json);
    let branches_after = app.get(&a.project_path("/branches"), &a.owner.token).await;
    assert_same(&branches_after.json, &a_branches.json);
    assert_same(&detail(&app, &a, &a_update).await, &a_detail);
    let served = ask(&app, &a.project_id, device("ios").channel("a-only"))
        .await
        .manifest();
    assert_eq!(served["id"], a_manifest.as_str());
    let actions: Vec<String> = audit_log(&app, &a)
        .await
        .iter()
        .rev()
        .map(|event| str_field(event, "action"))
        .collect();
    assert_eq!(
        actions,
        [
            "project.create",
            "member.add",
            "key.create",
            "update.publish"
        ]
    );
});

// ---------------------------------------------------------------------------------------------
// 8. The audit log
// ---------------------------------------------------------------------------------------------

both_backends!(
    audit_log_pages_for_owners_without_secrets,
    |app| async move {
        let r = app.publisher_with_member(KEY_NAME).await; // project.create, member.add, key.create
        let keys = r.project_path("/keys");
        let owner = &r.owner.token;
        app.patch(
            &format!("{keys}/{}", r.key_id),
            owner,
            &json!({ "name": "ci renamed" }),
        )
        .await
        .assert_no_content(); // key.rename
        app.patch(
            &r.project_path(""),
            owner,
            &json!({ "name": "Renamed project" }),
        )
        .await
        .assert_status(200); // project.update
        let temporary = app.create_key(owner, &r.project_id, Some("temp")).await; // key.create
        let temporary_id = str_field(&temporary["key"], "id");
        let temporary_secret = str_field(&temporary, "secret");
        app.delete(&format!("{keys}/{temporary_id}"), owner)
            .await
            .assert_no_content(); // key.revoke
        let third = app.register_user().await;
        app.add_member(owner, &r.project_id, &third.id, "member")
            .await; // member.add
        app.delete(&r.project_path(&format!("/users/{}", third.id)), owner)
            .await
            .assert_no_content(); // member.remove
        let published = publish(&app, &r, &Export::v1(), To::default().message("audited")).await; // update.publish

        // Owners only.
        let audit = r.project_path("/audit");
        app.get(&audit, &r.member().token).await.assert_forbidden();
        app.get(&audit, &third.token)
            .await
            .assert_permission_denied();
        app.get(&audit, &r.secret).await.assert_error(401);

        app.patch(
            &r.project_path(&format!("/users/{}", r.member().id)),
            owner,
            &json!({ "role": "owner" }),
        )
        .await
        .assert_status(200); // member.role

        // Newest first, and every page walk gives the same list.
        let all = audit_log(&app, &r).await;
        let actions: Vec<String> = all.iter().map(|event| str_field(event, "action")).collect();
        assert_eq!(
            actions,
            [
                "member.role",
                "update.publish",
                "member.remove",
                "member.add",
                "key.revoke",
                "key.create",
                "project.update",
                "key.rename",
                "key.create",
                "member.add",
                "project.create",
            ],
            "{all:#?}"
        );
        for limit in [1, 2, 3, 11] {
            let walked = walk(&app, &audit, owner, "events", limit).await;
            assert_eq!(ids(&walked), ids(&all), "limit={limit}");
        }
        // The promoted member reads the same log.
        let walked = walk(&app, &audit, &r.member().token, "events", 2).await;
        assert_eq!(ids(&walked), ids(&all));

        // Each event names who did what, to what.
        let mut previous = None;
        for event in &all {
            assert_has_fields(event, &["id", "action", "actor", "details", "createdAt"]);
            assert_uuid(&event["id"]);
            let at = assert_timestamp_millis(&event["createdAt"]);
            if let Some(previous) = previous {
                assert!(at <= previous, "not newest first: {all:#?}");
            }
            previous = Some(at);
            let expected_actor = if event["action"] == "update.publish" {
                json!({ "type": "apiKey", "id": r.key_id, "name": "ci renamed" })
            } else {
                r.owner_actor()
            };
            assert_eq!(event["actor"], expected_actor, "{event}");
        }
        let details = |i: usize| &all[i]["details"];
        assert_eq!(details(0)["userId"], r.member().id.as_str());
        assert_eq!(details(0)["role"], "owner");
        assert_eq!(details(1)["updateId"], published.as_str());
        assert_eq!(details(1)["branch"], "main");
        assert_eq!(details(1)["message"], "audited");
        assert_eq!(details(2)["userId"], third.id.as_str());
        assert_eq!(details(3)["userId"], third.id.as_str());
        assert_eq!(details(4)["keyId"], temporary_id.as_str());
        assert_eq!(details(5)["keyId"], temporary_id.as_str());
        assert_eq!(details(7)["keyId"], r.key_id.as_str());
        assert_eq!(details(7)["name"], "ci renamed");
        assert_eq!(details(8)["keyId"], r.key_id.as_str());
        assert_eq!(details(9)["userId"], r.member().id.as_str());

        // Bad page parameters.
        for query in ["limit=0", "limit=abc", "cursor=not-a-cursor", "cursor=1"] {
            app.get(&with_query(&audit, query), owner)
                .await
                .assert_error(400);
        }

        // No secret anywhere in it.
        let page = app.get(&with_query(&audit, "limit=100"), owner).await;
        page.assert_status(200);
        let (key_hash, temporary_hash) = (sha256_hex(&r.secret), sha256_hex(&temporary_secret));
        for secret in [
            r.secret.as_str(),
            temporary_secret.as_str(),
            key_hash.as_str(),
            temporary_hash.as_str(),
            PASSWORD,
            r.owner.token.as_str(),
            r.member().token.as_str(),
        ] {
            assert!(
                !page.text.contains(secret),
                "the audit log contains a secret: {}",
                page.text
            );
        }
        assert_no_secrets(&page.json);
    }
);
