//! `POST /api/updates/{projectId}/publish`: multipart uploads of real `expo export` output,
//! authenticated with a project API key, on every database × blob storage combination.
//!
//! What the server stored is checked from outside the server: the files under
//! `DATA_DIR/updates` (local) or in the s3s-fs bucket directory (S3). Every listed file must
//! end up at `projects/<projectId>/assets/<sha256 hex>` with its exact bytes; nothing may
//! remain under `staging/`; a rejected publish must not add any `projects/...` object.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use e2e::publish::{Export, PublishForm, Publisher, asset_key, sha256_bytes_hex};
use e2e::serde_json::{Value, json};
use e2e::{Backend, Storage, TestApp, all_backends, assert_rfc3339, both_backends};
use e2e::{assert_uuid, str_field};

/// The key every scenario publishes with.
const KEY_NAME: &str = "release pipeline";

/// The stored `projects/...` objects (key → size).
fn project_objects(app: &TestApp) -> BTreeMap<String, u64> {
    app.stored_objects_under("projects/")
}

/// Asserts that nothing is left under `staging/`. The server should clean up before it
/// answers; a short grace period absorbs a clean-up that finishes just after the answer.
async fn assert_no_staging(app: &TestApp, context: &str) {
    for _ in 0..50 {
        if app.stored_objects_under("staging/").is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{context}: objects remain under staging/ 5 s after the answer: {:?}",
        app.stored_objects_under("staging/")
    );
}

/// Asserts that a rejected publish left the `projects/...` objects exactly as they were
/// and nothing under `staging/`.
async fn assert_nothing_kept(app: &TestApp, before: &BTreeMap<String, u64>, context: &str) {
    let after = project_objects(app);
    let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    let removed: Vec<&String> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert!(
        added.is_empty(),
        "{context}: a rejected publish stored objects: {added:?}"
    );
    assert!(
        removed.is_empty(),
        "{context}: a rejected publish removed earlier objects: {removed:?}"
    );
    assert_eq!(&after, before, "{context}: stored objects changed size");
    assert_no_staging(app, context).await;
}

/// Asserts that every file listed by `export` is stored, content addressed, with its exact
/// bytes, in `project_id`.
#[track_caller]
fn assert_export_stored(app: &TestApp, export: &Export, project_id: &str) {
    for (key, path) in export.expected_blobs(project_id) {
        let stored = app.read_object(&key).unwrap_or_else(|| {
            panic!(
                "{}: {path} is not stored at {key}; stored: {:?}",
                export.name,
                app.stored_objects().keys().collect::<Vec<_>>()
            )
        });
        assert!(
            stored == export.bytes(&path),
            "{}: {key} does not hold the bytes of {path} ({} bytes stored, {} expected)",
            export.name,
            stored.len(),
            export.bytes(&path).len()
        );
    }
}

/// Asserts that every object under `projects/<id>/assets/` is named by the SHA-256 of its
/// content (so no content is stored twice) and that there are no other project objects.
#[track_caller]
fn assert_content_addressed(app: &TestApp, project_id: &str) {
    let prefix = format!("projects/{project_id}/assets/");
    for key in project_objects(app).keys() {
        let Some(name) = key.strip_prefix(&prefix) else {
            continue;
        };
        let bytes = app.read_object(key).expect("a listed object can be read");
        assert_eq!(
            name,
            sha256_bytes_hex(&bytes),
            "{key} is not named by the SHA-256 of its content"
        );
    }
}

async fn key_last_used_at(app: &TestApp, publisher: &Publisher, key_id: &str) -> Value {
    let listing = app
        .list_keys(&publisher.owner.token, &publisher.project_id)
        .await;
    listing.assert_status(200);
    listing
        .array()
        .iter()
        .find(|key| key["id"] == key_id)
        .unwrap_or_else(|| panic!("key {key_id} not listed: {}", listing.text))["lastUsedAt"]
        .clone()
}

/// `metadata.json` of `export` with `path` appended to every platform's asset list.
fn metadata_listing_also(export: &Export, path: &str) -> Value {
    let mut metadata = export.metadata.clone();
    for platform in export.platforms() {
        metadata["fileMetadata"][&platform]["assets"]
            .as_array_mut()
            .expect("an asset list")
            .push(json!({ "path": path, "ext": "png" }));
    }
    metadata
}

// ---------------------------------------------------------------------------------------------
// Success
// ---------------------------------------------------------------------------------------------

all_backends!(
    publish_stores_every_listed_file_by_content,
    |app| async move {
        let p = app.publisher_keyed(KEY_NAME).await;
        let v1 = Export::v1();
        assert!(project_objects(&app).is_empty());

        let response = app
            .publish_raw(&p.project_id, Some(&p.secret), &PublishForm::new(&v1))
            .await;
        response.assert_status(200);
        assert_eq!(
            response
                .json
                .as_object()
                .map(|o| o.keys().cloned().collect::<BTreeSet<_>>()),
            Some(BTreeSet::from([
                "updateId".to_owned(),
                "message".to_owned(),
                "branch".to_owned(),
                "platforms".to_owned(),
                "rolloutPercentage".to_owned(),
            ])),
            "body: {}",
            response.text
        );
        assert_uuid(&response.json["updateId"]);
        assert_eq!(response.json["message"], "Update published successfully");

        // 2 bundles + 4 asset files, each at projects/<id>/assets/<sha256>, byte for byte.
        assert_eq!(v1.expected_blobs(&p.project_id).len(), 6);
        assert_export_stored(&app, &v1, &p.project_id);
        assert_content_addressed(&app, &p.project_id);
        for key in project_objects(&app).keys() {
            assert!(
                key.starts_with(&format!("projects/{}/", p.project_id)),
                "{key} stored outside the publishing project"
            );
        }
        assert_no_staging(&app, "after a successful publish").await;
    }
);

all_backends!(publish_marks_the_key_used, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let unused = app
        .create_key(&p.owner.token, &p.project_id, Some("unused"))
        .await;
    let unused_id = str_field(&unused["key"], "id");
    assert_eq!(key_last_used_at(&app, &p, &p.key_id).await, Value::Null);

    app.publish(&p.project_id, &p.secret, &PublishForm::new(&Export::v1()))
        .await;

    let last_used = key_last_used_at(&app, &p, &p.key_id).await;
    assert_ne!(last_used, Value::Null, "lastUsedAt is still null");
    let at = assert_rfc3339(&last_used);
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(
        age.num_seconds().abs() < 300,
        "lastUsedAt {last_used} is not about now"
    );
    assert_eq!(
        key_last_used_at(&app, &p, &unused_id).await,
        Value::Null,
        "another key of the project was marked used"
    );
});

all_backends!(publish_v1_v2_rt2_in_a_row, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let (v1, v2, rt2) = (Export::v1(), Export::v2(), Export::rt2());

    let id1 = app
        .publish(&p.project_id, &p.secret, &PublishForm::new(&v1))
        .await;
    let after_v1 = project_objects(&app);
    let id2 = app
        .publish(&p.project_id, &p.secret, &PublishForm::new(&v2))
        .await;
    let id3 = app
        .publish(&p.project_id, &p.secret, &PublishForm::new(&rt2))
        .await;
    let ids = BTreeSet::from([id1.clone(), id2.clone(), id3.clone()]);
    assert_eq!(
        ids.len(),
        3,
        "updateIds are not distinct: {id1} {id2} {id3}"
    );

    for export in [&v1, &v2, &rt2] {
        assert_export_stored(&app, export, &p.project_id);
    }
    assert_content_addressed(&app, &p.project_id);

    // v1 and v2 share 4 asset files (rt2 shares them too): each is stored once, and the
    // objects v1 stored are still there, unchanged.
    let shared: BTreeSet<String> = v1
        .expected_blobs(&p.project_id)
        .into_keys()
        .filter(|key| v2.expected_blobs(&p.project_id).contains_key(key))
        .collect();
    assert_eq!(shared.len(), 4, "v1 and v2 should share 4 files");
    let after = project_objects(&app);
    for (key, size) in &after_v1 {
        assert_eq!(
            after.get(key),
            Some(size),
            "{key} changed after later publishes"
        );
    }
    let mut expected: BTreeSet<String> = BTreeSet::new();
    for export in [&v1, &v2, &rt2] {
        expected.extend(export.expected_blobs(&p.project_id).into_keys());
    }
    // 6 (v1) + 3 (v2: two bundles, banner) + 2 (rt2: two bundles).
    assert_eq!(expected.len(), 11);
    let stored_assets: BTreeSet<String> = after
        .keys()
        .filter(|key| key.starts_with(&format!("projects/{}/assets/", p.project_id)))
        .cloned()
        .collect();
    assert!(
        expected.is_subset(&stored_assets),
        "missing: {:?}",
        expected.difference(&stored_assets).collect::<Vec<_>>()
    );
    // No content is stored twice anywhere in the project.
    let mut by_content: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in after.keys() {
        let bytes = app.read_object(key).expect("a listed object can be read");
        by_content
            .entry(sha256_bytes_hex(&bytes))
            .or_default()
            .push(key.clone());
    }
    for (hash, keys) in &by_content {
        assert_eq!(
            keys.len(),
            1,
            "content {hash} is stored {} times: {keys:?}",
            keys.len()
        );
    }
    assert_no_staging(&app, "after three publishes").await;
});

all_backends!(concurrent_publishes_of_the_same_export, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let form = PublishForm::new(&v1);

    let responses = futures_util::future::join_all(
        (0..5).map(|_| app.publish_raw(&p.project_id, Some(&p.secret), &form)),
    )
    .await;
    let mut ids = BTreeSet::new();
    for response in &responses {
        response.assert_status(200);
        assert_uuid(&response.json["updateId"]);
        ids.insert(str_field(&response.json, "updateId"));
    }
    assert_eq!(ids.len(), 5, "updateIds are not distinct: {ids:?}");
    assert_export_stored(&app, &v1, &p.project_id);
    assert_content_addressed(&app, &p.project_id);
    assert_eq!(
        project_objects(&app).len(),
        v1.expected_blobs(&p.project_id).len(),
        "concurrent publishes of one export stored extra objects: {:?}",
        project_objects(&app).keys().collect::<Vec<_>>()
    );
    assert_no_staging(&app, "after concurrent publishes").await;
});

// The same form, sent chunked (no Content-Length) by reqwest, and by the curl-like client
// with and without a length: all publish.
all_backends!(chunked_and_plain_uploads_are_accepted, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();

    app.publish(
        &p.project_id,
        &p.secret,
        &PublishForm::new(&v1).with_unknown_lengths(),
    )
    .await;
    for form in [
        PublishForm::new(&v1),
        PublishForm::new(&v1).with_unknown_lengths(),
    ] {
        let response = app
            .publish_like_curl(&p.project_id, Some(&p.secret), &form)
            .await;
        response.assert_status(200);
        assert_uuid(&response.json["updateId"]);
    }
    assert_export_stored(&app, &v1, &p.project_id);
    assert_no_staging(&app, "after chunked publishes").await;
});

all_backends!(backslash_field_names_are_accepted, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let form = PublishForm::new(&v1).with_backslashes();
    assert!(form.file_fields().keys().all(|field| field.contains('\\')));

    app.publish(&p.project_id, &p.secret, &form).await;
    assert_export_stored(&app, &v1, &p.project_id);
    assert_no_staging(&app, "after a publish with backslashes").await;
});

all_backends!(unlisted_file_fields_are_ignored, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let source_map = format!("source map {}", uuid::Uuid::new_v4()).into_bytes();
    let asset_map = format!("{{\"assetmap\": \"{}\"}}", uuid::Uuid::new_v4()).into_bytes();
    let stray = format!("stray {}", uuid::Uuid::new_v4()).into_bytes();
    let form = PublishForm::new(&v1)
        .extra_file(&format!("{}.map", v1.bundle("ios")), source_map.clone())
        .extra_file("assetmap.json", asset_map.clone())
        .extra_file("assets/0123456789abcdef0123456789abcdef", stray.clone());

    app.publish(&p.project_id, &p.secret, &form).await;
    assert_export_stored(&app, &v1, &p.project_id);

    let unlisted: BTreeSet<String> = [&source_map, &asset_map, &stray]
        .iter()
        .map(|bytes| sha256_bytes_hex(bytes))
        .collect();
    for key in app.stored_objects().keys() {
        let bytes = app.read_object(key).expect("a listed object can be read");
        assert!(
            !unlisted.contains(&sha256_bytes_hex(&bytes)),
            "an unlisted field was stored at {key}"
        );
        assert!(
            !unlisted.iter().any(|hash| key.ends_with(hash.as_str())),
            "an unlisted field was stored at {key}"
        );
    }
    assert_no_staging(&app, "after a publish with unlisted fields").await;
});

all_backends!(expo_config_is_optional, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    app.publish(
        &p.project_id,
        &p.secret,
        &PublishForm::new(&v1).without_expo_config(),
    )
    .await;
    assert_export_stored(&app, &v1, &p.project_id);
});

all_backends!(expo_config_with_a_utf8_bom_is_accepted, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend(v1.raw("expoConfig.json"));
    app.publish(
        &p.project_id,
        &p.secret,
        &PublishForm::new(&v1).expo_config_bytes(with_bom),
    )
    .await;
    assert_export_stored(&app, &v1, &p.project_id);
});

all_backends!(
    runtime_version_of_255_characters_is_accepted,
    |app| async move {
        let p = app.publisher_keyed(KEY_NAME).await;
        let long = format!("1.0.0-{}", "a".repeat(255 - "1.0.0-".len()));
        assert_eq!(long.chars().count(), 255);
        app.publish(
            &p.project_id,
            &p.secret,
            &PublishForm::new(&Export::v1()).runtime_version(Some(&long)),
        )
        .await;
    }
);

// S3 with `S3_PREFIX`: every object goes under the prefix, nothing elsewhere in the bucket.
both_backends!(s3_prefix_is_honoured, |backend: Backend| async move {
    let app = TestApp::spawn_on(backend, Storage::S3, &[("S3_PREFIX", "tenant-a/ota")]).await;
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    app.publish(&p.project_id, &p.secret, &PublishForm::new(&v1))
        .await;

    // `blob_root()` is `<bucket>/tenant-a/ota`: the files are there, byte for byte.
    assert_export_stored(&app, &v1, &p.project_id);
    let bucket = app.bucket_objects();
    assert!(!bucket.is_empty());
    for key in bucket.keys() {
        assert!(
            key.starts_with("tenant-a/ota/"),
            "{key} is outside S3_PREFIX; bucket: {:?}",
            bucket.keys().collect::<Vec<_>>()
        );
    }
    for (key, _) in v1.expected_blobs(&p.project_id) {
        assert!(bucket.contains_key(&format!("tenant-a/ota/{key}")), "{key}");
    }
    assert_no_staging(&app, "after a publish under a prefix").await;
});

// ---------------------------------------------------------------------------------------------
// Authentication and authorisation
//
// The server answers these before reading the upload, so they are sent with
// `publish_like_curl`, which reads the answer while still sending (reqwest can report a
// broken pipe instead of the answer).
// ---------------------------------------------------------------------------------------------

all_backends!(publish_without_a_valid_key_is_401, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let form = PublishForm::new(&Export::v1());

    let missing = app.publish_like_curl(&p.project_id, None, &form).await;
    missing.assert_error(401);
    assert_nothing_kept(&app, &BTreeMap::new(), "no Authorization header").await;

    let garbage = app
        .publish_like_curl(
            &p.project_id,
            Some("eus_not-a-real-key-0123456789abcdef"),
            &form,
        )
        .await;
    garbage.assert_error(401);
    assert_nothing_kept(&app, &BTreeMap::new(), "a garbage key").await;

    // A near miss of the real secret.
    let mut near_miss = p.secret.clone();
    let last = near_miss.pop().expect("a non-empty secret");
    near_miss.push(if last == 'a' { 'b' } else { 'a' });
    app.publish_like_curl(&p.project_id, Some(&near_miss), &form)
        .await
        .assert_error(401);

    // The owner's login token is not an API key.
    app.publish_like_curl(&p.project_id, Some(&p.owner.token), &form)
        .await
        .assert_error(401);

    // A revoked key.
    app.delete(
        &format!("/api/projects/{}/keys/{}", p.project_id, p.key_id),
        &p.owner.token,
    )
    .await
    .assert_no_content();
    let revoked = app
        .publish_like_curl(&p.project_id, Some(&p.secret), &form)
        .await;
    revoked.assert_error(401);
    assert_nothing_kept(&app, &BTreeMap::new(), "a revoked key").await;
});

all_backends!(a_key_of_another_project_is_403, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let other = app.create_project(&p.owner.token).await;
    let other_id = str_field(&other, "id");

    let response = app
        .publish_like_curl(&other_id, Some(&p.secret), &PublishForm::new(&Export::v1()))
        .await;
    response.assert_error(403);
    assert_nothing_kept(&app, &BTreeMap::new(), "a key of another project").await;

    // A project that does not exist at all: the key is not one of its keys either.
    let unknown = uuid::Uuid::new_v4().to_string();
    let response = app
        .publish_like_curl(&unknown, Some(&p.secret), &PublishForm::new(&Export::v1()))
        .await;
    response.assert_error(403);
    assert_nothing_kept(&app, &BTreeMap::new(), "an unknown project").await;
});

// ---------------------------------------------------------------------------------------------
// Validation: 400, nothing stored
// ---------------------------------------------------------------------------------------------

/// Sends `form`, asserts `400 {"error": ...}` and that nothing was kept; returns the message.
async fn rejected(app: &TestApp, p: &Publisher, form: &PublishForm, context: &str) -> String {
    let before = project_objects(app);
    let response = app.publish_raw(&p.project_id, Some(&p.secret), form).await;
    assert_eq!(
        response.status, 400,
        "{context}: expected HTTP 400, got {} with body: {}",
        response.status, response.text
    );
    let message = response.assert_error(400);
    assert_nothing_kept(app, &before, context).await;
    message
}

all_backends!(runtime_version_is_required_and_checked, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let form = || PublishForm::new(&v1);

    rejected(&app, &p, &form().runtime_version(None), "no runtimeVersion").await;
    for (bad, context) in [
        ("1.0.0\u{1}", "a control character"),
        ("1.0\n.0", "a newline"),
        ("1.0.0\u{7f}", "DEL"),
    ] {
        rejected(&app, &p, &form().runtime_version(Some(bad)), context).await;
    }
    let too_long = format!("1.0.0-{}", "a".repeat(250));
    assert_eq!(too_long.chars().count(), 256);
    rejected(
        &app,
        &p,
        &form().runtime_version(Some(&too_long)),
        "256 characters",
    )
    .await;
});

all_backends!(metadata_json_is_required_and_checked, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let form = || PublishForm::new(&v1);

    rejected(&app, &p, &form().without_metadata(), "no metadata.json").await;
    rejected(
        &app,
        &p,
        &form().metadata_bytes("{\"version\":0,"),
        "metadata.json is not JSON",
    )
    .await;
    rejected(
        &app,
        &p,
        &form().metadata_bytes("not json at all"),
        "metadata.json is text",
    )
    .await;
    rejected(
        &app,
        &p,
        &form().metadata_json(&json!({"version": 0, "bundler": "metro", "fileMetadata": {}})),
        "fileMetadata is empty",
    )
    .await;
    rejected(
        &app,
        &p,
        &form().metadata_json(&json!({"version": 0, "bundler": "metro"})),
        "fileMetadata is missing",
    )
    .await;

    let mut with_web = v1.metadata.clone();
    with_web["fileMetadata"]["web"] = v1.metadata["fileMetadata"]["ios"].clone();
    rejected(&app, &p, &form().metadata_json(&with_web), "a web platform").await;
});

all_backends!(every_listed_file_must_be_uploaded, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();

    let bundle = v1.bundle("ios");
    let message = rejected(
        &app,
        &p,
        &PublishForm::new(&v1).without_file(&bundle),
        "the iOS bundle is missing",
    )
    .await;
    assert!(
        message.contains(&bundle),
        "the message should name {bundle}: {message}"
    );

    let asset = v1.asset_paths().into_iter().next().expect("an asset");
    let message = rejected(
        &app,
        &p,
        &PublishForm::new(&v1).without_file(&asset),
        "an asset is missing",
    )
    .await;
    assert!(
        message.contains(&asset),
        "the message should name {asset}: {message}"
    );

    // Uploaded under another name is not uploaded.
    let message = rejected(
        &app,
        &p,
        &PublishForm::new(&v1).rename_file(&asset, "assets/renamed"),
        "an asset under another field name",
    )
    .await;
    assert!(
        message.contains(&asset),
        "the message should name {asset}: {message}"
    );
});

all_backends!(unsafe_listed_paths_are_rejected, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    let png = v1.bytes(&v1.asset_paths().into_iter().next().expect("an asset"));

    for (path, context) in [
        ("../escape.png", "a leading .."),
        ("assets/../../escape.png", "a .. segment"),
        ("/etc/escape.png", "a leading /"),
        ("assets//escape.png", "an empty segment"),
    ] {
        // The file is uploaded under that very name: only the path itself is wrong.
        let form = PublishForm::new(&v1)
            .metadata_json(&metadata_listing_also(&v1, path))
            .extra_file(path, png.clone());
        rejected(&app, &p, &form, context).await;
    }

    // A NUL cannot be sent in a field name; listed, it must be refused all the same.
    let form = PublishForm::new(&v1).metadata_json(&metadata_listing_also(&v1, "assets/a\0b"));
    rejected(&app, &p, &form, "a NUL").await;

    // The bundle path too.
    let mut metadata = v1.metadata.clone();
    metadata["fileMetadata"]["ios"]["bundle"] = json!("../index.hbc");
    let form = PublishForm::new(&v1)
        .metadata_json(&metadata)
        .extra_file("../index.hbc", v1.bytes(&v1.bundle("ios")));
    rejected(&app, &p, &form, "a bundle outside the export").await;
});

all_backends!(expo_config_must_be_a_json_object, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    for (bytes, context) in [
        (&b"[1]"[..], "an array"),
        (&b"nope"[..], "not JSON"),
        (&b"\"a string\""[..], "a string"),
        (&b"{\"name\": "[..], "truncated JSON"),
    ] {
        rejected(
            &app,
            &p,
            &PublishForm::new(&v1).expo_config_bytes(bytes),
            context,
        )
        .await;
    }
});

all_backends!(
    a_rejected_publish_keeps_earlier_files_and_adds_none,
    |app| async move {
        let p = app.publisher_keyed(KEY_NAME).await;
        let (v1, v2) = (Export::v1(), Export::v2());
        app.publish(&p.project_id, &p.secret, &PublishForm::new(&v1))
            .await;
        let before = project_objects(&app);

        // v2 without its Android bundle: v2's new banner and iOS bundle must not be kept,
        // and v1's files (4 of them listed by v2 as well) must stay.
        let android = v2.bundle("android");
        let message = rejected(
            &app,
            &p,
            &PublishForm::new(&v2).without_file(&android),
            "v2 without its Android bundle",
        )
        .await;
        assert!(message.contains(&android), "{message}");
        assert_export_stored(&app, &v1, &p.project_id);
        let banner_key = asset_key(
            &p.project_id,
            &v2.sha256_hex("assets/a10dbd2b0b9ce4f2cba7fc564ad24f9a"),
        );
        assert!(
            app.read_object(&banner_key).is_none(),
            "{banner_key} was kept"
        );

        // Then v2 in full succeeds.
        app.publish(&p.project_id, &p.secret, &PublishForm::new(&v2))
            .await;
        assert_export_stored(&app, &v2, &p.project_id);
        assert_export_stored(&app, &v1, &p.project_id);
        assert!(project_objects(&app).len() > before.len());
    }
);

// A client that hangs up mid-upload: its staged files are deleted and nothing is promoted;
// the project can publish again afterwards.
all_backends!(an_interrupted_upload_leaves_nothing, |app| async move {
    let p = app.publisher_keyed(KEY_NAME).await;
    let v1 = Export::v1();
    // Past the first bundle (about 1.59 MB), in the middle of the second.
    let staged = app
        .publish_and_hang_up(&p.project_id, &p.secret, &PublishForm::new(&v1), 2_500_000)
        .await;
    assert!(
        staged,
        "nothing was staged after 2.5 MB of the body: the scenario did not exercise clean-up"
    );
    assert_nothing_kept(&app, &BTreeMap::new(), "after the client hung up").await;

    app.publish(&p.project_id, &p.secret, &PublishForm::new(&v1))
        .await;
    assert_export_stored(&app, &v1, &p.project_id);
    assert_no_staging(&app, "after publishing again").await;
});

// ---------------------------------------------------------------------------------------------
// Size limit: 413
// ---------------------------------------------------------------------------------------------

all_backends!(
    uploads_over_the_limit_are_413,
    env = [("MAX_UPLOAD_BYTES", "1000000")],
    |app| async move {
        let p = app.publisher_keyed(KEY_NAME).await;
        let v1 = Export::v1();

        // With Content-Length (every part has a known length).
        let response = app
            .publish_like_curl(&p.project_id, Some(&p.secret), &PublishForm::new(&v1))
            .await;
        response.assert_error(413);
        assert_nothing_kept(&app, &BTreeMap::new(), "too large, with Content-Length").await;

        // Streamed without a length (chunked): the limit holds all the same.
        let response = app
            .publish_like_curl(
                &p.project_id,
                Some(&p.secret),
                &PublishForm::new(&v1).with_unknown_lengths(),
            )
            .await;
        response.assert_error(413);
        assert_nothing_kept(&app, &BTreeMap::new(), "too large, chunked").await;
    }
);
