//! Bundle diffing as the expo-updates clients speak it: a device one update
//! behind asks for the launch bundle with `A-IM: bsdiff` and the update it
//! runs, and gets a BSDIFF40 patch (`226 IM Used`) that Debian's `bspatch`
//! (the clients vendor the same `bspatch.c`) turns into the new bundle.
//! Everything else gets the full file.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::protocol::RawResponse;
use e2e::publish::{Export, PublishForm};
use e2e::serde_json::Value;
use e2e::{Backend, Storage, TestApp, all_backends, brotli_decoded, str_field};

/// The two fixture exports published in order, and what a device needs.
struct Published {
    /// The v1 manifest a device runs, and the v2 one it downloads.
    running: Value,
    latest: Value,
    /// `/api/updates/{project}/updates/{v2}/patches`, and the key to read it.
    patches_path: String,
    secret: String,
    /// `/api/projects/{project}/updates/{v2}/insights`, and the owner's token.
    insights_path: String,
    owner_token: String,
}

async fn publish_v1_then_v2(app: &TestApp, platform: &str) -> Published {
    let p = app.publisher().await;
    app.publish(&p.project_id, &p.secret, &PublishForm::new(&Export::v1()))
        .await;
    let running = app.latest_manifest(&p.project_id, platform, "1.0.0").await;
    let v2 = app
        .publish(&p.project_id, &p.secret, &PublishForm::new(&Export::v2()))
        .await;
    let latest = app.latest_manifest(&p.project_id, platform, "1.0.0").await;
    Published {
        running,
        latest,
        patches_path: format!("/api/updates/{}/updates/{v2}/patches", p.project_id),
        insights_path: format!("/api/projects/{}/updates/{v2}/insights", p.project_id),
        secret: p.secret,
        owner_token: p.owner.token,
    }
}

impl Published {
    /// What the API says of v2's bundle patches.
    async fn patches(&self, app: &TestApp) -> Value {
        let response = app.get(&self.patches_path, &self.secret).await;
        response.assert_status(200);
        response.json.clone()
    }
}

pub(crate) fn header<'a>(response: &'a RawResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// The launch bundle's download as an Android client sends it, asking for a
/// patch from `running` (a manifest id).
pub(crate) async fn download(
    app: &TestApp,
    latest: &Value,
    running: &str,
    extra: &[(&str, &str)],
) -> RawResponse {
    let url = str_field(&latest["launchAsset"], "url");
    let mut request = app
        .client
        .get(url)
        .header("a-im", "bsdiff")
        .header("expo-current-update-id", running);
    if !extra
        .iter()
        .any(|(name, _)| *name == "expo-requested-update-id")
    {
        request = request.header("expo-requested-update-id", str_field(latest, "id"));
    }
    request = request
        .header("expo-platform", "android")
        .header("expo-runtime-version", "1.0.0")
        .header("accept-encoding", "zstd, br, gzip");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    app.fetch_request(request).await
}

/// Asks until the patch is ready (it is computed in the background).
async fn wait_for_patch(app: &TestApp, published: &Published) -> RawResponse {
    let started = Instant::now();
    let running = str_field(&published.running, "id");
    loop {
        let response = download(app, &published.latest, &running, &[]).await;
        if response.status == 226 {
            return response;
        }
        // The full file meanwhile (or, with presigned redirects, a 302 to it).
        assert!([200, 302].contains(&response.status), "{}", response.status);
        if started.elapsed() > Duration::from_secs(60) {
            panic!("no patch after a minute: {}", published.patches(app).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `bspatch old new patch` (Debian's, Colin Percival's bsdiff 4.3).
pub(crate) fn bspatch(base: &[u8], patch: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("old"), base).unwrap();
    std::fs::write(path("patch"), patch).unwrap();
    let status = Command::new("bspatch")
        .arg(path("old"))
        .arg(path("new"))
        .arg(path("patch"))
        .status()
        .expect("Debian's bspatch (apt-get install bsdiff; scripts/test installs it)");
    assert!(status.success(), "bspatch failed: {status}");
    std::fs::read(Path::new(&path("new"))).unwrap()
}

all_backends!(
    a_device_one_update_behind_downloads_a_patch_that_bspatch_applies,
    |app| async move {
        let published = publish_v1_then_v2(&app, "android").await;
        let running = str_field(&published.running, "id");
        let patched = wait_for_patch(&app, &published).await;
        assert_eq!(header(&patched, "im"), Some("bsdiff"));
        assert_eq!(
            header(&patched, "expo-base-update-id"),
            Some(running.as_str())
        );
        assert_eq!(header(&patched, "cache-control"), Some("private, no-store"));
        assert_eq!(
            header(&patched, "vary"),
            Some("a-im, expo-current-update-id")
        );
        assert_eq!(header(&patched, "content-encoding"), None);
        assert_ne!(
            header(&patched, "content-type"),
            Some("application/vnd.bsdiff"),
            "one Android revision reads that type as 'patch' whatever the status"
        );
        let etag = header(&patched, "etag").expect("an ETag").to_owned();
        assert!(patched.body.starts_with(b"BSDIFF40"));

        // Debian's bspatch turns the running bundle into the new one.
        let v1 = Export::v1().bytes(&Export::v1().bundle("android"));
        let v2 = Export::v2().bytes(&Export::v2().bundle("android"));
        assert_eq!(bspatch(&v1, &patched.body), v2);
        // At most a fifth of the brotli'd bundle.
        let url = str_field(&published.latest["launchAsset"], "url");
        let br = app
            .fetch_request(app.client.get(&url).header("accept-encoding", "br"))
            .await;
        assert_eq!(brotli_decoded(&br.body), v2);
        assert!(
            patched.body.len() * 5 <= br.body.len(),
            "patch {} bytes, brotli {} bytes",
            patched.body.len(),
            br.body.len()
        );

        // A HEAD answers the same headers without a body.
        let head = app
            .fetch_request(
                app.client
                    .head(&url)
                    .header("a-im", "bsdiff")
                    .header("expo-current-update-id", &running),
            )
            .await;
        head.assert_status(226);
        assert_eq!(header(&head, "etag"), Some(etag.as_str()));
        assert_eq!(
            header(&head, "content-length"),
            Some(patched.body.len().to_string().as_str())
        );
        assert!(head.body.is_empty());

        // Anything else: the full file, never an error.
        let full = |response: RawResponse, why: &str| {
            assert_eq!(response.status, 200, "{why}");
            assert_eq!(header(&response, "im"), None, "{why}");
            assert_eq!(
                header(&response, "vary"),
                Some("accept-encoding, a-im, expo-current-update-id"),
                "{why}"
            );
        };
        let latest = &published.latest;
        full(
            download(&app, latest, &str_field(latest, "id"), &[]).await,
            "the base is the update itself",
        );
        full(
            download(&app, latest, "0190aaaa-0000-7000-8000-000000000001", &[]).await,
            "an unknown base",
        );
        full(
            download(&app, latest, "not-an-update-id", &[]).await,
            "a malformed base",
        );
        full(
            download(
                &app,
                latest,
                &running,
                &[("expo-requested-update-id", running.as_str())],
            )
            .await,
            "downloading another update than the URL names",
        );
        let ranged = download(&app, latest, &running, &[("range", "bytes=0-9")]).await;
        ranged.assert_status(206);
        assert_eq!(ranged.body, v2[..10]);
        let plain = app.fetch_request(app.client.get(&url)).await;
        plain.assert_status(200);
        assert_eq!(plain.body, v2);

        // A base of another project: the same bundle, but not this
        // project's update.
        let other = publish_v1_then_v2(&app, "android").await;
        full(
            download(&app, latest, &str_field(&other.running, "id"), &[]).await,
            "a base from another project",
        );

        // What people see: the patch, in the API and in insights.
        let patches = published.patches(&app).await;
        assert_eq!(patches["enabled"], true);
        let platform = |name: &str| {
            patches["platforms"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["platform"] == name)
                .cloned()
                .unwrap()
        };
        let android = platform("android");
        assert_eq!(android["bundleSha256"], e2e::publish::sha256_bytes_hex(&v2));
        let patch = &android["patches"][0];
        assert_eq!(patch["state"], "ready", "{patches}");
        assert_eq!(
            patch["baseBundleSha256"],
            e2e::publish::sha256_bytes_hex(&v1)
        );
        assert_eq!(patch["size"], patched.body.len() as u64);
        assert_eq!(patch["attempts"], 1);
        let full_size = android["fullSize"].as_u64().unwrap();
        assert!(full_size > patched.body.len() as u64 * 5, "{patches}");
        assert_eq!(platform("ios")["patches"][0]["state"], "ready");
        // Another project's key reads none of it.
        let foreign = app.get(&published.patches_path, &other.secret).await;
        foreign.assert_status(403);
        let insights = app
            .get(&published.insights_path, &published.owner_token)
            .await;
        insights.assert_status(200);
        let totals = insights.json["totals"].as_array().unwrap().clone();
        let android = totals.iter().find(|t| t["platform"] == "android").unwrap();
        // One patch download (HEADs and ranges are no downloads), the
        // full downloads after it.
        assert_eq!(android["patchDownloads"], 1, "{android}");
        let downloads = android["launchAssetDownloads"].as_u64().unwrap();
        assert_eq!(android["fullDownloads"], downloads - 1, "{android}");
        let saved = android["bytesSaved"].as_u64().unwrap();
        assert!(saved > full_size / 2, "{android}");
        assert!(android["bytesSent"].as_u64().unwrap() >= patched.body.len() as u64);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_presigned_redirects_a_patch_is_still_served_by_the_server() {
    let app = TestApp::spawn_on(
        Backend::Sqlite,
        Storage::S3,
        &[("S3_PRESIGNED_REDIRECTS", "true")],
    )
    .await;
    let published = publish_v1_then_v2(&app, "ios").await;
    let patched = wait_for_patch(&app, &published).await;
    let v1 = Export::v1().bytes(&Export::v1().bundle("ios"));
    let v2 = Export::v2().bytes(&Export::v2().bundle("ios"));
    assert_eq!(bspatch(&v1, &patched.body), v2);
    // Without a base, the bucket serves the file.
    let url = str_field(&published.latest["launchAsset"], "url");
    let redirect = app.fetch_request(app.client.get(&url)).await;
    redirect.assert_status(302);
    assert_eq!(
        header(&redirect, "vary"),
        Some("accept-encoding, a-im, expo-current-update-id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_patch_bases_0_bundle_diffing_is_off() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PATCH_BASES", "0")]).await;
    let published = publish_v1_then_v2(&app, "android").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = str_field(&published.running, "id");
    let response = download(&app, &published.latest, &running, &[]).await;
    response.assert_status(200);
    assert_eq!(header(&response, "vary"), Some("accept-encoding"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_compute_each_patch_once() {
    let first = TestApp::spawn_on(Backend::Postgres, Storage::S3, &[]).await;
    let second = first.spawn_sharing().await;
    let published = publish_v1_then_v2(&first, "android").await;
    // Both instances serve it once either made it.
    let from_first = wait_for_patch(&first, &published).await;
    let from_second = wait_for_patch(&second, &published).await;
    assert_eq!(from_first.body, from_second.body);
    let rows = first
        .query_strings("SELECT state || ':' || attempts::text FROM patches ORDER BY target_sha256")
        .await;
    assert_eq!(
        rows,
        vec!["ready:1".to_owned(), "ready:1".to_owned()],
        "android and ios, once each"
    );
}

/// With `BEST_COMPRESSION=true` (off by default), a new bundle's brotli and zstd copies are made again at the best
/// levels in the background: smaller, and still the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_bundles_are_recompressed_at_the_best_levels_in_the_background() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("BEST_COMPRESSION", "true")]).await;
    let p = app.publisher().await;
    app.publish(&p.project_id, &p.secret, &PublishForm::new(&Export::v1()))
        .await;
    let manifest = app.latest_manifest(&p.project_id, "android", "1.0.0").await;
    let bundle = Export::v1().bytes(&Export::v1().bundle("android"));
    let project_dir = app
        .data_dir()
        .join(format!("updates/projects/{}/assets", p.project_id));
    let sha = e2e::publish::sha256_bytes_hex(&bundle);
    let copy_size = |suffix: &str| {
        std::fs::metadata(project_dir.join(format!("{sha}.{suffix}")))
            .map(|m| m.len())
            .unwrap()
    };
    let (br_at_publish, zst_at_publish) = (copy_size("br"), copy_size("zst"));
    let started = Instant::now();
    while copy_size("br") == br_at_publish || copy_size("zst") == zst_at_publish {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the copies were not recompressed ({br_at_publish} and {zst_at_publish} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(copy_size("br") < br_at_publish);
    assert!(copy_size("zst") < zst_at_publish);
    // Downloads get the new copies, which are still the bundle.
    let url = str_field(&manifest["launchAsset"], "url");
    for (encoding, decode) in [
        ("br", brotli_decoded as fn(&[u8]) -> Vec<u8>),
        ("zstd", e2e::zstd_decoded),
    ] {
        let copy = app
            .fetch_request(app.client.get(&url).header("accept-encoding", encoding))
            .await;
        copy.assert_status(200);
        assert_eq!(decode(&copy.body), bundle, "{encoding}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wanted_patch_survives_a_crash_and_is_made_by_the_next_instance_that_computes() {
    // This instance computes no patches: the work waits in the database.
    let mut app = TestApp::spawn_with(Backend::Sqlite, &[("PATCH_WORKERS", "0")]).await;
    let published = publish_v1_then_v2(&app, "android").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let patches = published.patches(&app).await;
    for platform in patches["platforms"].as_array().unwrap() {
        assert_eq!(platform["patches"][0]["state"], "pending", "{patches}");
    }
    let running = str_field(&published.running, "id");
    download(&app, &published.latest, &running, &[])
        .await
        .assert_status(200);

    // The server dies without a clean stop; one that computes starts on
    // the same database and storage, and makes the patch.
    app.stop().await;
    app.env.insert("PATCH_WORKERS".to_owned(), "1".to_owned());
    app.restart().await;
    let published = Published {
        // Asset URLs name the server's address, which changed.
        latest: app
            .latest_manifest(&app_project(&published), "android", "1.0.0")
            .await,
        ..published
    };
    let patched = wait_for_patch(&app, &published).await;
    let v1 = Export::v1().bytes(&Export::v1().bundle("android"));
    let v2 = Export::v2().bytes(&Export::v2().bundle("android"));
    assert_eq!(bspatch(&v1, &patched.body), v2);
}

/// The project id of `published`, from its patches path.
fn app_project(published: &Published) -> String {
    published
        .patches_path
        .trim_start_matches("/api/updates/")
        .split('/')
        .next()
        .unwrap()
        .to_owned()
}
