//! Asset delivery as CDNs and phones use it: validators and 304s, byte
//! ranges, and the brotli and gzip copies made at publish, on every backend.

use e2e::protocol::RawResponse;
use e2e::publish::{Export, PublishForm};
use e2e::serde_json::Value;
use e2e::{TestApp, all_backends, brotli_decoded, gzip_decoded, str_field, zstd_decoded};

/// What a launch bundle's answer varies on: its encoding, and (bundle
/// diffing being on by default) the update a client runs.
const LAUNCH_VARY: &str = "accept-encoding, a-im, expo-current-update-id";

/// Publishes v1 and returns the iOS manifest.
async fn published_manifest(app: &TestApp) -> Value {
    published(app).await.manifest
}

struct Published {
    owner_token: String,
    project_id: String,
    update_id: String,
    manifest: Value,
}

async fn published(app: &TestApp) -> Published {
    let p = app.publisher().await;
    let update_id = app
        .publish(&p.project_id, &p.secret, &PublishForm::new(&Export::v1()))
        .await;
    let manifest = app.latest_manifest(&p.project_id, "ios", "1.0.0").await;
    Published {
        owner_token: p.owner.token,
        project_id: p.project_id,
        update_id,
        manifest,
    }
}

/// `GET url` with extra request headers.
async fn get(app: &TestApp, url: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut request = app.client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.fetch_request(request).await
}

fn header<'a>(response: &'a RawResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

all_backends!(
    the_launch_asset_is_served_compressed_ranged_and_validated,
    |app| async move {
        let manifest = published_manifest(&app).await;
        let url = str_field(&manifest["launchAsset"], "url");
        let bundle = Export::v1().bytes(&Export::v1().bundle("ios"));

        // No Accept-Encoding: the bytes as published, with a strong validator.
        let plain = get(&app, &url, &[]).await;
        plain.assert_status(200);
        assert_eq!(plain.body, bundle);
        assert_eq!(header(&plain, "content-encoding"), None);
        assert_eq!(header(&plain, "vary"), Some(LAUNCH_VARY));
        assert_eq!(header(&plain, "accept-ranges"), Some("bytes"));
        let etag = header(&plain, "etag").expect("an ETag").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        // Clients since expo-updates 56.0.6 send their runtime version (and
        // the protocol headers) on asset requests too: accepted, whatever
        // its value.
        for runtime_version in ["1.0.0", "9.9.9"] {
            let with_headers = get(
                &app,
                &url,
                &[
                    ("expo-runtime-version", runtime_version),
                    ("expo-platform", "ios"),
                    ("expo-protocol-version", "1"),
                ],
            )
            .await;
            with_headers.assert_status(200);
            assert_eq!(with_headers.body, bundle);
        }

        // Each stored copy for a client that accepts only it; the smallest
        // stored copy for a client that accepts several (Android since
        // expo-updates 56.0.14 sends `zstd, br, gzip`).
        let zstd = get(&app, &url, &[("accept-encoding", "zstd")]).await;
        zstd.assert_status(200);
        assert_eq!(header(&zstd, "content-encoding"), Some("zstd"));
        assert_eq!(zstd_decoded(&zstd.body), bundle);
        let br_only = get(&app, &url, &[("accept-encoding", "br")]).await;
        assert_eq!(header(&br_only, "content-encoding"), Some("br"));
        let gzip_only = get(&app, &url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(header(&gzip_only, "content-encoding"), Some("gzip"));
        let android = get(&app, &url, &[("accept-encoding", "zstd, br, gzip")]).await;
        let sizes = [
            (zstd.body.len(), "zstd"),
            (br_only.body.len(), "br"),
            (gzip_only.body.len(), "gzip"),
        ];
        let smallest = sizes.iter().min().expect("three copies");
        assert_eq!(android.body.len(), smallest.0, "sizes {sizes:?}");
        assert_eq!(header(&android, "content-encoding"), Some(smallest.1));
        // Among brotli and gzip, the smaller (brotli) is sent.
        let br = get(&app, &url, &[("accept-encoding", "gzip, deflate, br")]).await;
        br.assert_status(200);
        assert_eq!(header(&br, "content-encoding"), Some("br"));
        assert_eq!(header(&br, "vary"), Some(LAUNCH_VARY));
        assert!(
            br.body.len() < bundle.len() * 9 / 10,
            "brotli saved too little"
        );
        assert_eq!(brotli_decoded(&br.body), bundle);
        let br_etag = header(&br, "etag").expect("an ETag").to_owned();
        assert_ne!(br_etag, etag, "each encoding has its own validator");
        let gzip = get(&app, &url, &[("accept-encoding", "gzip")]).await;
        gzip.assert_status(200);
        assert_eq!(header(&gzip, "content-encoding"), Some("gzip"));
        assert_eq!(gzip_decoded(&gzip.body), bundle);
        // Refused with q=0: identity.
        let refused = get(&app, &url, &[("accept-encoding", "br;q=0, gzip;q=0")]).await;
        assert_eq!(header(&refused, "content-encoding"), None);
        assert_eq!(refused.body, bundle);

        // HEAD: the same headers, no body.
        let head = app
            .client
            .head(&url)
            .header("accept-encoding", "br")
            .send()
            .await
            .expect("a HEAD request");
        assert_eq!(head.status().as_u16(), 200);
        assert_eq!(
            head.headers().get("etag").and_then(|v| v.to_str().ok()),
            Some(br_etag.as_str())
        );
        assert_eq!(
            head.headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some("br")
        );
        assert!(head.bytes().await.expect("read the HEAD body").is_empty());

        // If-None-Match: 304 with the validator and no body, per representation.
        let not_modified = get(&app, &url, &[("if-none-match", &etag)]).await;
        not_modified.assert_status(304);
        assert!(not_modified.body.is_empty());
        assert_eq!(header(&not_modified, "etag"), Some(etag.as_str()));
        assert!(
            header(&not_modified, "cache-control").is_some_and(|value| value.contains("immutable"))
        );
        let br_not_modified = get(
            &app,
            &url,
            &[
                ("accept-encoding", "br"),
                ("if-none-match", &format!("\"x\", {br_etag}")),
            ],
        )
        .await;
        br_not_modified.assert_status(304);
        let changed = get(&app, &url, &[("if-none-match", "\"something-else\"")]).await;
        changed.assert_status(200);
        assert_eq!(changed.body, bundle);

        // Range: 206 with the uncompressed bytes, even when compression is accepted.
        let size = bundle.len();
        let first = get(
            &app,
            &url,
            &[("range", "bytes=0-99"), ("accept-encoding", "br")],
        )
        .await;
        first.assert_status(206);
        assert_eq!(first.body, &bundle[..100]);
        assert_eq!(header(&first, "content-encoding"), None);
        assert_eq!(
            header(&first, "content-range"),
            Some(format!("bytes 0-99/{size}").as_str())
        );
        assert_eq!(header(&first, "content-length"), Some("100"));
        let tail = get(&app, &url, &[("range", "bytes=-10")]).await;
        tail.assert_status(206);
        assert_eq!(tail.body, &bundle[size - 10..]);
        let rest = get(&app, &url, &[("range", &format!("bytes={}-", size - 5))]).await;
        rest.assert_status(206);
        assert_eq!(rest.body, &bundle[size - 5..]);
        // Past the end: 416 naming the size, as a JSON error.
        let beyond = get(&app, &url, &[("range", &format!("bytes={size}-"))]).await;
        beyond.assert_error(416);
        assert_eq!(
            header(&beyond, "content-range"),
            Some(format!("bytes */{size}").as_str())
        );
        assert_eq!(
            header(&beyond, "cache-control"),
            None,
            "an error must not be cached"
        );
        // Several ranges, or If-Range naming another version: the whole file.
        let several = get(&app, &url, &[("range", "bytes=0-1,5-6")]).await;
        several.assert_status(200);
        assert_eq!(several.body, bundle);
        let stale = get(
            &app,
            &url,
            &[("range", "bytes=0-1"), ("if-range", "\"old\"")],
        )
        .await;
        stale.assert_status(200);
        let fresh = get(&app, &url, &[("range", "bytes=0-1"), ("if-range", &etag)]).await;
        fresh.assert_status(206);

        // The copies are stored beside the files, for the bundles only.
        let copies = app.stored_copies();
        assert_eq!(copies.len(), 6, "zst, br and gz of two bundles: {copies:?}");
        for key in copies.keys() {
            let copy = app.read_object(key).expect("a listed copy can be read");
            let original = app
                .read_object(key.rsplit_once('.').expect("a suffix").0)
                .expect("the copied file is stored");
            let decoded = match key.rsplit_once('.').map(|(_, suffix)| suffix) {
                Some("br") => brotli_decoded(&copy),
                Some("zst") => zstd_decoded(&copy),
                _ => gzip_decoded(&copy),
            };
            assert_eq!(decoded, original, "{key} is not a copy of its file");
        }

        // An image is not compressed again: no copy, no Vary.
        let image = manifest["assets"]
            .as_array()
            .expect("assets")
            .iter()
            .find(|asset| str_field(asset, "contentType") == "image/png")
            .expect("a PNG asset");
        let png = get(
            &app,
            &str_field(image, "url"),
            &[("accept-encoding", "br, gzip")],
        )
        .await;
        png.assert_status(200);
        assert_eq!(header(&png, "content-encoding"), None);
        assert_eq!(header(&png, "vary"), None);
    }
);

all_backends!(
    manifests_point_at_the_asset_url_base,
    env = [("ASSET_URL_BASE", "https://cdn.example.com/ota")],
    |app| async move {
        let manifest = published_manifest(&app).await;
        let url = str_field(&manifest["launchAsset"], "url");
        let path = url
            .strip_prefix("https://cdn.example.com/ota")
            .unwrap_or_else(|| panic!("{url} is not under ASSET_URL_BASE"));
        // The CDN forwards that path to this server, which serves it.
        let served = app.fetch_path(path).await;
        served.assert_status(200);
        assert_eq!(served.body, Export::v1().bytes(&Export::v1().bundle("ios")));
    }
);

/// With `S3_PRESIGNED_REDIRECTS`, the bytes come from the bucket: the server
/// answers with a redirect to a presigned URL that needs no credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_assets_redirect_to_presigned_urls() {
    let app = TestApp::spawn_on(
        e2e::Backend::Sqlite,
        e2e::Storage::S3,
        &[("S3_PRESIGNED_REDIRECTS", "true")],
    )
    .await;
    let manifest = published_manifest(&app).await;
    let url = str_field(&manifest["launchAsset"], "url");
    let bundle = Export::v1().bytes(&Export::v1().bundle("ios"));

    let redirect = get(&app, &url, &[]).await;
    redirect.assert_status(302);
    let location = header(&redirect, "location")
        .expect("a Location")
        .to_owned();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(
        location.contains("response-content-type=application%2Fjavascript"),
        "{location}"
    );
    let from_bucket = get(&app, &location, &[]).await;
    from_bucket.assert_status(200);
    assert_eq!(from_bucket.body, bundle);

    // The compressed copy, labelled as such by the bucket's answer.
    let redirect = get(&app, &url, &[("accept-encoding", "br")]).await;
    redirect.assert_status(302);
    assert_eq!(header(&redirect, "vary"), Some(LAUNCH_VARY));
    let location = header(&redirect, "location")
        .expect("a Location")
        .to_owned();
    assert!(
        location.contains("response-content-encoding=br"),
        "{location}"
    );
    let from_bucket = get(&app, &location, &[]).await;
    from_bucket.assert_status(200);
    assert_eq!(brotli_decoded(&from_bucket.body), bundle);

    // A tampered URL is refused by the bucket.
    let tampered = location.replace(
        "response-content-encoding=br",
        "response-content-encoding=gzip",
    );
    let refused = get(&app, &tampered, &[]).await.status;
    assert!(
        (400..500).contains(&refused),
        "a tampered URL got {refused}"
    );
}

all_backends!(
    compressed_copies_are_collected_with_their_files,
    env = [("GC_GRACE_SECONDS", "0"), ("GC_INTERVAL_SECONDS", "0")],
    |app| async move {
        let p = published(&app).await;
        let (pid, token) = (p.project_id.as_str(), p.owner_token.as_str());
        assert_eq!(app.stored_copies().len(), 6);
        // Referenced: kept, and counted as files, not copies.
        let kept = app
            .post(
                &format!("/api/projects/{pid}/storage/gc"),
                token,
                &e2e::serde_json::json!({}),
            )
            .await;
        kept.assert_status(200);
        assert_eq!(kept.json["deletedBlobs"], 0);
        assert_eq!(kept.json["keptBlobs"], app.stored_objects().len());
        assert_eq!(app.stored_copies().len(), 6);
        // Unreferenced: the files and their copies go.
        app.delete(
            &format!("/api/projects/{pid}/updates/{}", p.update_id),
            token,
        )
        .await
        .assert_status(204);
        let collected = app
            .post(
                &format!("/api/projects/{pid}/storage/gc"),
                token,
                &e2e::serde_json::json!({}),
            )
            .await;
        collected.assert_status(200);
        assert_eq!(collected.json["keptBlobs"], 0);
        assert!(app.stored_copies().is_empty(), "{:?}", app.stored_copies());
        assert!(app.stored_objects_under("projects/").is_empty());
    }
);

// Update checks are answered from memory: a change made behind the
// server's back (straight in the database) is not seen until the server
// itself changes something, which invalidates every cached answer at once.
all_backends!(update_checks_are_cached_until_a_change, |app| async move {
    let p = published(&app).await;
    let pid = p.project_id.as_str();
    let manifest_id = str_field(&p.manifest, "id");
    // Behind the server's back: the update disappears from the database.
    app.execute_sql(&format!("DELETE FROM updates WHERE project_id = '{pid}'"))
        .await;
    let cached = app.latest_manifest(pid, "ios", "1.0.0").await;
    assert_eq!(
        str_field(&cached, "id"),
        manifest_id,
        "not served from the cache"
    );
    // Any change through the server (here a channel) invalidates it.
    app.post(
        &format!("/api/projects/{pid}/channels"),
        &p.owner_token,
        &e2e::serde_json::json!({ "name": "staging", "branch": "main" }),
    )
    .await
    .assert_status(201);
    app.check(pid, &e2e::protocol::UpdateCheck::v0("ios", "1.0.0"))
        .await
        .assert_error(404);
});

all_backends!(
    without_a_cache_every_check_reads_the_database,
    env = [("MANIFEST_CACHE_BYTES", "0")],
    |app| async move {
        let p = published(&app).await;
        let pid = p.project_id.as_str();
        app.execute_sql(&format!("DELETE FROM updates WHERE project_id = '{pid}'"))
            .await;
        app.check(pid, &e2e::protocol::UpdateCheck::v0("ios", "1.0.0"))
            .await
            .assert_error(404);
    }
);

all_backends!(
    a_vanished_copy_falls_back_to_the_file,
    env = [("ASSET_CACHE_BYTES", "0")],
    |app| async move {
        let manifest = published_manifest(&app).await;
        let url = str_field(&manifest["launchAsset"], "url");
        let bundle = Export::v1().bytes(&Export::v1().bundle("ios"));
        let br = get(&app, &url, &[("accept-encoding", "br")]).await;
        assert_eq!(header(&br, "content-encoding"), Some("br"));
        // The copies disappear behind the server's back (it remembers they existed).
        for key in app.stored_copies().keys() {
            let path = key
                .split('/')
                .fold(app.blob_root(), |path, segment| path.join(segment));
            std::fs::remove_file(&path).expect("remove a stored copy");
        }
        let fallback = get(&app, &url, &[("accept-encoding", "br")]).await;
        fallback.assert_status(200);
        assert_eq!(header(&fallback, "content-encoding"), None);
        assert_eq!(fallback.body, bundle);
        let etag = header(&fallback, "etag").expect("an ETag");
        assert!(
            !etag.contains("-br"),
            "{etag} names a copy that was not sent"
        );
    }
);

// A publish holds write locks while it commits; update checks must not wait
// for them. Here a writer holds the updates table (a long publish or a
// migration) while checks run with the cache off, so every one reads the
// database: each must answer at once.
all_backends!(
    a_writer_holding_locks_never_delays_an_update_check,
    env = [("MANIFEST_CACHE_BYTES", "0")],
    |app| async move {
        use sea_orm::{ConnectionTrait, Database, TransactionTrait};
        let p = published(&app).await;
        let pid = p.project_id.as_str();
        let db = Database::connect(app.database_url())
            .await
            .expect("connect to the server's database");
        let writer = db.begin().await.expect("begin a transaction");
        writer
            .execute_unprepared(&format!(
                "UPDATE updates SET message = 'held' WHERE project_id = '{pid}'"
            ))
            .await
            .expect("take the write locks");
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let check = app
                .check(pid, &e2e::protocol::UpdateCheck::v1("ios", "1.0.0"))
                .await;
            check.assert_status(200);
            let took = started.elapsed();
            assert!(
                took < std::time::Duration::from_secs(1),
                "an update check waited {took:?} for a writer"
            );
        }
        writer.rollback().await.expect("roll back");
        db.close().await.expect("close");
    }
);
