//! The Expo Updates protocol as devices see it: `GET /api/updates/{projectId}/manifest`
//! (multipart framing, headers, manifest body, directives, content negotiation, rollbacks,
//! code signing, errors) and `GET /api/updates/{projectId}/assets` (the bytes behind every
//! manifest URL), after publishing the real `expo export` fixtures.
//!
//! Multipart bodies are parsed strictly (`e2e::protocol::parse_multipart`); signatures are
//! verified with the `openssl` CLI against the fixture certificate.

use std::collections::BTreeSet;

use e2e::protocol::{
    PRIVATE_KEY_PATH, RawResponse, UpdateCheck, checksums, manifest_hash, openssl_verify,
    parse_signature_header,
};
use e2e::publish::{Export, PublishForm, Publisher, assert_release_answer};
use e2e::reqwest::Url;
use e2e::serde_json::{Value, json};
use e2e::{
    Backend, Storage, TestApp, all_backends, assert_timestamp_millis, assert_uuid, both_backends,
    str_field, uuid_v4,
};

async fn publish(app: &TestApp, p: &Publisher, export: &Export) -> String {
    app.publish(&p.project_id, &p.secret, &PublishForm::new(export))
        .await
}

/// The common response headers of a manifest endpoint answer.
#[track_caller]
fn assert_protocol_headers(response: &RawResponse, protocol: &str) {
    assert_eq!(
        response.header("expo-protocol-version").as_deref(),
        Some(protocol),
        "expo-protocol-version"
    );
    assert_eq!(
        response.header("expo-sfv-version").as_deref(),
        Some("0"),
        "expo-sfv-version"
    );
    assert_eq!(
        response.header("cache-control").as_deref(),
        Some("private, max-age=0"),
        "cache-control"
    );
    assert!(
        response
            .header("vary")
            .is_some_and(|v| !v.trim().is_empty()),
        "no vary header: {:?}",
        response.headers
    );
}

/// Asserts a multipart answer with a `manifest` and an `extensions` part (and nothing
/// else); returns the manifest part JSON.
#[track_caller]
fn manifest_of(response: &RawResponse, protocol: &str) -> Value {
    response.assert_status(200);
    assert_protocol_headers(response, protocol);
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/mixed; boundary="),
        "content-type {content_type:?}"
    );
    let parts = response.multipart();
    let names: Vec<String> = parts.iter().map(|part| part.name()).collect();
    assert_eq!(
        names.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["manifest".to_owned(), "extensions".to_owned()]),
        "parts: {names:?}"
    );
    assert_eq!(names.len(), 2, "parts: {names:?}");
    for part in &parts {
        let content_type = part.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json")
                || content_type.starts_with("application/expo+json"),
            "part {} has content-type {content_type:?}",
            part.name()
        );
    }
    let extensions = parts.iter().find(|p| p.name() == "extensions").unwrap();
    assert_eq!(extensions.json(), json!({ "assetRequestHeaders": {} }));
    let manifest = parts.iter().find(|p| p.name() == "manifest").unwrap();
    assert!(
        manifest.header("expo-signature").is_none(),
        "a signature nobody asked for: {:?}",
        manifest.headers
    );
    manifest.json()
}

/// Asserts a multipart answer holding exactly one `directive` part; returns the part.
#[track_caller]
fn directive_part(response: &RawResponse) -> e2e::protocol::MultipartPart {
    response.assert_status(200);
    assert_protocol_headers(response, "1");
    let parts = response.multipart();
    let names: Vec<String> = parts.iter().map(|part| part.name()).collect();
    assert_eq!(names, ["directive"], "parts: {names:?}");
    let part = parts.into_iter().next().unwrap();
    let content_type = part.header("content-type").unwrap_or_default().to_owned();
    assert!(
        content_type.starts_with("application/json")
            || content_type.starts_with("application/expo+json"),
        "directive content-type {content_type:?}"
    );
    part
}

#[track_caller]
fn directive_of(response: &RawResponse) -> Value {
    let part = directive_part(response);
    assert!(
        part.header("expo-signature").is_none(),
        "a signature nobody asked for: {:?}",
        part.headers
    );
    part.json()
}

/// Asserts that `manifest` is the manifest of `export` for `platform`: shape, hashes, keys,
/// content types, file extensions, `extra.expoClient`, absolute URLs.
#[track_caller]
fn assert_manifest_of(manifest: &Value, export: &Export, platform: &str) {
    let sums = checksums();
    let checksum = |path: &str| {
        sums.get(&format!("{}/{path}", export.name))
            .unwrap_or_else(|| panic!("{path} of {} not in CHECKSUMS.txt", export.name))
            .clone()
    };
    assert_uuid(&manifest["id"]);
    assert_timestamp_millis(&manifest["createdAt"]);
    assert_eq!(
        manifest["runtimeVersion"], export.runtime_version,
        "runtimeVersion"
    );
    assert_eq!(
        manifest["metadata"],
        json!({ "branch": "main" }),
        "metadata"
    );
    let expo_config: Value = serde_json::from_slice(&export.raw("expoConfig.json")).unwrap();
    assert_eq!(
        manifest["extra"]["expoClient"], expo_config,
        "extra.expoClient"
    );

    let launch = &manifest["launchAsset"];
    let bundle = export.bundle(platform);
    let bundle_sum = checksum(&bundle);
    assert_eq!(
        launch["hash"],
        manifest_hash(&export.bytes(&bundle)),
        "launchAsset.hash is not the bundle's"
    );
    assert_eq!(launch["hash"], bundle_sum.sha256_b64url, "launchAsset.hash");
    assert_eq!(launch["key"], bundle_sum.md5_hex, "launchAsset.key");
    assert_eq!(
        launch["contentType"], "application/javascript",
        "launchAsset.contentType"
    );
    assert_absolute_url(&launch["url"]);

    // The platform's assets, without duplicates: (hash, key, fileExtension).
    let expected: BTreeSet<(String, String, String)> =
        export.metadata["fileMetadata"][platform]["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|asset| {
                let path = asset["path"].as_str().unwrap();
                let sum = checksum(path);
                assert_eq!(sum.sha256_b64url, manifest_hash(&export.bytes(path)));
                (
                    sum.sha256_b64url,
                    sum.md5_hex,
                    format!(".{}", asset["ext"].as_str().unwrap()),
                )
            })
            .collect();
    let assets = manifest["assets"]
        .as_array()
        .unwrap_or_else(|| panic!("assets is not an array: {manifest}"));
    let mut actual = BTreeSet::new();
    for asset in assets {
        for field in ["hash", "key", "contentType", "fileExtension", "url"] {
            assert!(asset[field].is_string(), "asset without {field}: {asset}");
        }
        let extension = str_field(asset, "fileExtension");
        assert!(extension.starts_with('.'), "fileExtension {extension:?}");
        let content_type = str_field(asset, "contentType");
        assert!(
            content_type.contains('/'),
            "contentType {content_type:?} is not a MIME type"
        );
        assert_absolute_url(&asset["url"]);
        actual.insert((str_field(asset, "hash"), str_field(asset, "key"), extension));
    }
    assert_eq!(assets.len(), actual.len(), "duplicate assets: {manifest}");
    assert_eq!(actual, expected, "the assets of {platform}");
}

#[track_caller]
fn assert_absolute_url(value: &Value) {
    let url = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a URL string, got {value}"));
    assert!(url.starts_with("http://"), "not an absolute URL: {url:?}");
    Url::parse(url).unwrap_or_else(|e| panic!("{url:?} is not a URL: {e}"));
}

/// Every `(url, hash, contentType)` of a manifest, the launch asset first.
fn manifest_files(manifest: &Value) -> Vec<(String, String, String)> {
    std::iter::once(&manifest["launchAsset"])
        .chain(manifest["assets"].as_array().unwrap())
        .map(|asset| {
            (
                str_field(asset, "url"),
                str_field(asset, "hash"),
                str_field(asset, "contentType"),
            )
        })
        .collect()
}

/// Downloads every file of `manifest`, checking status, hash, content type, length, caching.
async fn assert_downloads(app: &TestApp, manifest: &Value) {
    for (url, hash, content_type) in manifest_files(manifest) {
        assert!(
            url.starts_with(&format!("{}/", app.address)),
            "{url} is not on the server's public URL {}",
            app.address
        );
        let response = app.fetch(&url).await;
        response.assert_status(200);
        assert_eq!(
            manifest_hash(&response.body),
            hash,
            "the bytes of {url} do not match the manifest hash"
        );
        assert_eq!(
            response.header("content-type").as_deref(),
            Some(content_type.as_str()),
            "content-type of {url}"
        );
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string()),
            "content-length of {url}"
        );
        let cache = response.header("cache-control").unwrap_or_default();
        assert!(
            cache.contains("immutable"),
            "cache-control of {url}: {cache:?}"
        );
    }
}

/// The `update` query parameter of an asset URL.
fn update_param(url: &str) -> String {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == "update")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("no update= in {url}"))
}

async fn rollback_with_key(app: &TestApp, p: &Publisher, body: &Value) -> e2e::Response {
    app.post(
        &format!("/api/updates/{}/rollback", p.project_id),
        &p.secret,
        body,
    )
    .await
}

#[track_caller]
fn assert_rollback_created(response: &e2e::Response) -> String {
    let body = assert_release_answer(response);
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body: {}",
        response.text
    );
    str_field(body, "updateId")
}

/// Asserts a `rollBackToEmbedded` directive committed after `after`.
#[track_caller]
fn assert_rollback_directive(directive: &Value, after: chrono::DateTime<chrono::Utc>) {
    assert_eq!(directive["type"], "rollBackToEmbedded", "{directive}");
    let commit_time = assert_timestamp_millis(&directive["parameters"]["commitTime"]);
    assert!(
        commit_time > after,
        "commitTime {commit_time} is not later than the manifest's createdAt {after}"
    );
}

// ---------------------------------------------------------------------------------------------
// Manifests
// ---------------------------------------------------------------------------------------------

all_backends!(manifest_is_a_strict_multipart_answer, |app| async move {
    let p = app.publisher().await;
    let v1 = Export::v1();
    publish(&app, &p, &v1).await;

    for platform in ["ios", "android"] {
        let response = app
            .check(&p.project_id, &UpdateCheck::v1(platform, "1.0.0"))
            .await;
        let manifest = manifest_of(&response, "1");
        assert_manifest_of(&manifest, &v1, platform);
    }
});

all_backends!(query_parameters_replace_headers, |app| async move {
    let p = app.publisher().await;
    let v1 = Export::v1();
    publish(&app, &p, &v1).await;

    let check = UpdateCheck::v1("ios", "1.0.0")
        .platform(None)
        .runtime_version(None)
        .query("platform", "android")
        .query("runtime-version", "1.0.0");
    let manifest = manifest_of(&app.check(&p.project_id, &check).await, "1");
    assert_manifest_of(&manifest, &v1, "android");
});

all_backends!(
    every_manifest_url_serves_its_bytes,
    |backend: Backend, storage: Storage| async move {
        let app = TestApp::spawn_public(backend, storage, &[]).await;
        let p = app.publisher().await;
        publish(&app, &p, &Export::v1()).await;
        let v1_ios = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
        let v1_android = app.latest_manifest(&p.project_id, "android", "1.0.0").await;
        assert_downloads(&app, &v1_ios).await;
        assert_downloads(&app, &v1_android).await;

        publish(&app, &p, &Export::v2()).await;
        let v2_ios = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
        assert_downloads(&app, &v2_ios).await;
        // v1's URLs keep working, with the same bytes.
        assert_downloads(&app, &v1_ios).await;
        assert_downloads(&app, &v1_android).await;
    }
);

all_backends!(the_latest_publish_is_served, |app| async move {
    let p = app.publisher().await;
    let (v1, v2) = (Export::v1(), Export::v2());
    publish(&app, &p, &v1).await;
    let first = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    assert_manifest_of(&first, &v1, "ios");

    publish(&app, &p, &v2).await;
    let ios = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    assert_manifest_of(&ios, &v2, "ios");
    assert_ne!(ios["id"], first["id"], "v2 got v1's manifest id");

    let android = app.latest_manifest(&p.project_id, "android", "1.0.0").await;
    assert_manifest_of(&android, &v2, "android");
    assert_ne!(
        ios["launchAsset"]["hash"], android["launchAsset"]["hash"],
        "ios and android got the same launch asset"
    );

    // The same content again is a new update (as a republish is): devices
    // are told about it, with a new id.
    publish(&app, &p, &v2).await;
    let again = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    assert_ne!(
        again["id"], ios["id"],
        "a new publish of identical content kept the manifest id"
    );
    assert_manifest_of(&again, &v2, "ios");
});

all_backends!(
    the_running_update_gets_no_update_available,
    |app| async move {
        let p = app.publisher().await;
        publish(&app, &p, &Export::v1()).await;
        let manifest = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
        let id = str_field(&manifest, "id");

        let response = app
            .check(&p.project_id, &UpdateCheck::v1("ios", "1.0.0").current(&id))
            .await;
        assert_eq!(
            directive_of(&response),
            json!({ "type": "noUpdateAvailable" })
        );

        // Another current update: the manifest.
        let other = app
            .check(
                &p.project_id,
                &UpdateCheck::v1("ios", "1.0.0").current(&uuid_v4()),
            )
            .await;
        assert_eq!(manifest_of(&other, "1")["id"], manifest["id"]);
    }
);

all_backends!(protocol_0_always_gets_the_manifest, |app| async move {
    let p = app.publisher().await;
    let v1 = Export::v1();
    publish(&app, &p, &v1).await;
    let manifest = app.latest_manifest(&p.project_id, "android", "1.0.0").await;
    let id = str_field(&manifest, "id");

    for check in [
        UpdateCheck::v0("android", "1.0.0"),
        UpdateCheck::v0("android", "1.0.0").current(&id),
        UpdateCheck::v0("android", "1.0.0").protocol(Some("0")),
    ] {
        let response = app.check(&p.project_id, &check).await;
        let served = manifest_of(&response, "0");
        assert_eq!(served["id"], manifest["id"]);
        assert_manifest_of(&served, &v1, "android");
    }
});

all_backends!(
    json_only_clients_get_the_manifest_itself,
    |app| async move {
        let p = app.publisher().await;
        let v1 = Export::v1();
        publish(&app, &p, &v1).await;
        let manifest = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;

        for accept in ["application/expo+json", "application/json"] {
            let response = app
                .check(
                    &p.project_id,
                    &UpdateCheck::v1("ios", "1.0.0").accept(Some(accept)),
                )
                .await;
            response.assert_status(200);
            assert_protocol_headers(&response, "1");
            let content_type = response.header("content-type").unwrap_or_default();
            assert!(
                content_type.starts_with(accept),
                "accept {accept}: content-type {content_type:?}"
            );
            let body = response.json();
            assert_eq!(body, manifest, "accept {accept}");
            assert_manifest_of(&body, &v1, "ios");
        }

        let refused = app
            .check(
                &p.project_id,
                &UpdateCheck::v1("ios", "1.0.0").accept(Some("text/html")),
            )
            .await;
        refused.assert_error(406);
    }
);

// ---------------------------------------------------------------------------------------------
// Rollbacks
// ---------------------------------------------------------------------------------------------

all_backends!(rollback_to_embedded, |app| async move {
    let p = app.publisher().await;
    publish(&app, &p, &Export::v1()).await;
    let manifest = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    let id = str_field(&manifest, "id");
    let created_at = assert_timestamp_millis(&manifest["createdAt"]);

    assert_rollback_created(
        &rollback_with_key(&app, &p, &json!({ "runtimeVersion": "1.0.0" })).await,
    );

    let embedded = uuid_v4();
    let check = UpdateCheck::v1("ios", "1.0.0")
        .current(&id)
        .embedded(&embedded);
    let directive = directive_of(&app.check(&p.project_id, &check).await);
    assert_rollback_directive(&directive, created_at);

    // Already running the embedded update: nothing to do.
    let at_embedded = UpdateCheck::v1("ios", "1.0.0")
        .current(&embedded)
        .embedded(&embedded);
    assert_eq!(
        directive_of(&app.check(&p.project_id, &at_embedded).await),
        json!({ "type": "noUpdateAvailable" })
    );

    // Protocol 0 cannot express a rollback; JSON-only clients cannot get a directive.
    app.check(&p.project_id, &UpdateCheck::v0("ios", "1.0.0").current(&id))
        .await
        .assert_error(404);
    for accept in ["application/json", "application/expo+json"] {
        app.check(&p.project_id, &check.clone().accept(Some(accept)))
            .await
            .assert_error(406);
    }

    // Publishing again rolls forward.
    publish(&app, &p, &Export::v2()).await;
    let forward = manifest_of(&app.check(&p.project_id, &check).await, "1");
    assert_manifest_of(&forward, &Export::v2(), "ios");
});

all_backends!(rollback_of_one_platform, |app| async move {
    let p = app.publisher().await;
    let v1 = Export::v1();
    publish(&app, &p, &v1).await;
    let ios = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    let android = app.latest_manifest(&p.project_id, "android", "1.0.0").await;

    assert_rollback_created(
        &rollback_with_key(
            &app,
            &p,
            &json!({ "runtimeVersion": "1.0.0", "platforms": ["ios"] }),
        )
        .await,
    );

    let ios_check = UpdateCheck::v1("ios", "1.0.0")
        .current(&str_field(&ios, "id"))
        .embedded(&uuid_v4());
    let directive = directive_of(&app.check(&p.project_id, &ios_check).await);
    assert_rollback_directive(&directive, assert_timestamp_millis(&ios["createdAt"]));

    let android_check = UpdateCheck::v1("android", "1.0.0").embedded(&uuid_v4());
    let served = manifest_of(&app.check(&p.project_id, &android_check).await, "1");
    assert_eq!(served["id"], android["id"]);
    assert_manifest_of(&served, &v1, "android");
});

all_backends!(rollback_by_members_only, |app| async move {
    let p = app.publisher_with_member("ci").await;
    publish(&app, &p, &Export::v1()).await;
    let manifest = app.latest_manifest(&p.project_id, "android", "1.0.0").await;
    let path = format!("/api/projects/{}/rollback", p.project_id);
    let body = json!({ "runtimeVersion": "1.0.0" });

    let stranger = app.register_user().await;
    app.post(&path, &stranger.token, &body)
        .await
        .assert_error(403);
    // The stranger's attempt changed nothing.
    let still = manifest_of(
        &app.check(&p.project_id, &UpdateCheck::v1("android", "1.0.0"))
            .await,
        "1",
    );
    assert_eq!(still["id"], manifest["id"]);

    assert_rollback_created(&app.post(&path, &p.member().token, &body).await);
    let check = UpdateCheck::v1("android", "1.0.0")
        .current(&str_field(&manifest, "id"))
        .embedded(&uuid_v4());
    let directive = directive_of(&app.check(&p.project_id, &check).await);
    assert_rollback_directive(&directive, assert_timestamp_millis(&manifest["createdAt"]));
});

// ---------------------------------------------------------------------------------------------
// Code signing
// ---------------------------------------------------------------------------------------------

/// Asserts that `part` carries a valid `expo-signature` over its exact body bytes.
#[track_caller]
fn assert_signed(part: &e2e::protocol::MultipartPart) {
    let header = part.header("expo-signature").unwrap_or_else(|| {
        panic!(
            "no expo-signature on the {} part: {:?}",
            part.name(),
            part.headers
        )
    });
    let members = parse_signature_header(header).unwrap_or_else(|e| {
        panic!("expo-signature {header:?} is not an SFV dictionary of strings: {e}")
    });
    assert_eq!(
        members.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from(["keyid", "sig", "alg"]),
        "expo-signature {header:?}"
    );
    assert_eq!(members["keyid"], "main", "expo-signature {header:?}");
    assert_eq!(
        members["alg"], "rsa-v1_5-sha256",
        "expo-signature {header:?}"
    );
    openssl_verify(&part.body, &members["sig"]).unwrap_or_else(|e| {
        panic!(
            "the signature of the {} part does not verify: {e}\nbody: {}",
            part.name(),
            String::from_utf8_lossy(&part.body)
        )
    });
    // The check is not vacuous: one changed byte fails it.
    let mut tampered = part.body.clone();
    tampered.push(b' ');
    assert!(
        openssl_verify(&tampered, &members["sig"]).is_err(),
        "openssl accepted the signature over different bytes"
    );
}

both_backends!(
    manifests_and_directives_are_signed,
    env = [
        ("PRIVATE_KEY", PRIVATE_KEY_PATH),
        ("PRIVATE_KEY_ID", "main")
    ],
    |app| async move {
        let p = app.publisher().await;
        publish(&app, &p, &Export::v1()).await;

        // Unsigned unless asked.
        let manifest = manifest_of(
            &app.check(&p.project_id, &UpdateCheck::v1("ios", "1.0.0"))
                .await,
            "1",
        );
        let id = str_field(&manifest, "id");

        let signed = app
            .check(&p.project_id, &UpdateCheck::v1("ios", "1.0.0").signed())
            .await;
        signed.assert_status(200);
        let parts = signed.multipart();
        let manifest_part = parts
            .iter()
            .find(|part| part.name() == "manifest")
            .expect("a manifest part");
        assert_signed(manifest_part);
        assert_eq!(manifest_part.json()["id"], manifest["id"]);

        let no_update = app
            .check(
                &p.project_id,
                &UpdateCheck::v1("ios", "1.0.0").current(&id).signed(),
            )
            .await;
        let part = directive_part(&no_update);
        assert_signed(&part);
        assert_eq!(part.json(), json!({ "type": "noUpdateAvailable" }));

        assert_rollback_created(
            &rollback_with_key(&app, &p, &json!({ "runtimeVersion": "1.0.0" })).await,
        );
        let rollback = app
            .check(
                &p.project_id,
                &UpdateCheck::v1("ios", "1.0.0")
                    .current(&id)
                    .embedded(&uuid_v4())
                    .signed(),
            )
            .await;
        let part = directive_part(&rollback);
        assert_signed(&part);
        assert_rollback_directive(
            &part.json(),
            assert_timestamp_millis(&manifest["createdAt"]),
        );

        // Without expo-expect-signature: no signature on the directive either.
        let unsigned = app
            .check(
                &p.project_id,
                &UpdateCheck::v1("ios", "1.0.0")
                    .current(&id)
                    .embedded(&uuid_v4()),
            )
            .await;
        directive_of(&unsigned);
    }
);

both_backends!(signing_without_a_key_is_refused, |app| async move {
    let p = app.publisher().await;
    publish(&app, &p, &Export::v1()).await;
    app.check(&p.project_id, &UpdateCheck::v1("ios", "1.0.0").signed())
        .await
        .assert_error(400);
    // Unsigned checks still work.
    manifest_of(
        &app.check(&p.project_id, &UpdateCheck::v1("ios", "1.0.0"))
            .await,
        "1",
    );
});

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

all_backends!(bad_update_checks_are_json_errors, |app| async move {
    let p = app.publisher().await;
    publish(&app, &p, &Export::rt2()).await;
    publish(&app, &p, &Export::v1()).await;
    let ok = UpdateCheck::v1("ios", "1.0.0");

    app.check(&p.project_id, &ok.clone().platform(None))
        .await
        .assert_error(400);
    app.check(&p.project_id, &ok.clone().platform(Some("web")))
        .await
        .assert_error(400);
    app.check(&p.project_id, &ok.clone().runtime_version(None))
        .await
        .assert_error(400);
    app.check(&p.project_id, &ok.clone().protocol(Some("7")))
        .await
        .assert_error(400);

    app.check(&uuid_v4(), &ok).await.assert_error(404);
    app.check("not-a-uuid", &ok).await.assert_error(404);

    // A runtime version with no update yet (a fresh build): protocol 0
    // can only say 404, and names the runtime versions that have updates;
    // protocol 1 says "no update" (the Android client reports a 404 as a
    // failed check on every launch).
    let message = app
        .check(&p.project_id, &UpdateCheck::v0("ios", "9.9.9"))
        .await
        .assert_error(404);
    assert!(
        message.contains("1.0.0") && message.contains("2.0.0"),
        "the message should list the runtime versions that have updates: {message:?}"
    );
    let fresh_build = ok.clone().runtime_version(Some("9.9.9"));
    let no_update = app.check(&p.project_id, &fresh_build).await;
    assert_eq!(
        directive_part(&no_update).json(),
        json!({ "type": "noUpdateAvailable" })
    );
    // A protocol-1 client that takes only JSON cannot be sent a directive: 204.
    let json_only = app
        .check(&p.project_id, &fresh_build.accept(Some("application/json")))
        .await;
    json_only.assert_status(204);
    assert!(json_only.text().is_empty());
    assert_eq!(
        json_only.header("expo-protocol-version").as_deref(),
        Some("1")
    );

    // The request that works.
    manifest_of(&app.check(&p.project_id, &ok).await, "1");
    let rt2 = app.latest_manifest(&p.project_id, "ios", "2.0.0").await;
    assert_manifest_of(&rt2, &Export::rt2(), "ios");
});

all_backends!(asset_requests_name_real_files_only, |app| async move {
    let p = app.publisher().await;
    let v1 = Export::v1();
    publish(&app, &p, &v1).await;
    let manifest = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    let update = update_param(&str_field(&manifest["launchAsset"], "url"));
    let assets = format!("/api/updates/{}/assets", p.project_id);

    for asset in ["metadata.json", "expoConfig.json", "../../x", "assets/nope"] {
        app.fetch(&format!(
            "{}?update={update}&asset={}",
            app.url(&assets),
            url_encode(asset)
        ))
        .await
        .assert_error(404);
    }
    app.fetch_path(&format!("{assets}?update={update}"))
        .await
        .assert_error(400);

    // Another project of the same owner does not serve this project's update.
    let other = app.create_project(&p.owner.token).await;
    let other_id = str_field(&other, "id");
    let bundle = v1.bundle("ios");
    app.fetch_path(&format!(
        "/api/updates/{other_id}/assets?update={update}&asset={}",
        url_encode(&bundle)
    ))
    .await
    .assert_error(404);

    // The old server's shape: the latest update for a runtime version and platform.
    let old = app
        .fetch_path(&format!(
            "{assets}?asset={}&runtimeVersion=1.0.0&platform=ios",
            url_encode(&bundle)
        ))
        .await;
    old.assert_status(200);
    assert_eq!(old.body, v1.bytes(&bundle), "the old-shape asset bytes");
});

fn url_encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
