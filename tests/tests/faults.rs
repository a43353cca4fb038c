//! Fault injection against the in-process server: the database or the S3 service cut off
//! behind a TCP proxy ([`e2e::proxy::Proxy`]), and a full disk (a small tmpfs mounted as the
//! local blob directory).
//!
//! What must hold while a backend is down: devices keep getting the update checks the server
//! already holds in memory, everything else is answered `503 {"error": ...}` (a full disk:
//! `507`) promptly, never `500`, never a hang and never a half-made update; once the backend
//! is back, the server recovers by itself.
//!
//! Nothing here skips: PostgreSQL unreachable fails the test, and so does a failing `mount`.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::protocol::{RawResponse, UpdateCheck};
use e2e::proxy::Proxy;
use e2e::publish::{Export, PublishForm, Publisher};
use e2e::s3::S3Server;
use e2e::serde_json::{Value, json};
use e2e::{Backend, PgDatabase, Storage, TestApp, both_backends, list_files, str_field};

const DATABASE_UNAVAILABLE: &str = "The database is unavailable; try again shortly.";
const STORAGE_UNAVAILABLE: &str = "Storage is unavailable; try again shortly.";
const STORAGE_FULL_PREFIX: &str = "The server's storage is full";

/// How long an answer may take while a backend is down (the server waits at most 5 s for a
/// database connection).
const FAILING_ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// How long the server may take to notice that a backend is back.
const RECOVERY_WITHIN: Duration = Duration::from_secs(15);

/// The ids in the project's update history (`GET /api/projects/{id}/updates`), newest first.
async fn history(app: &TestApp, tenant: &Publisher) -> Vec<String> {
    let response = app
        .get(
            &format!("/api/projects/{}/updates", tenant.project_id),
            &tenant.owner.token,
        )
        .await;
    response.assert_status(200);
    response.json["updates"]
        .as_array()
        .unwrap_or_else(|| panic!("no updates array: {}", response.text))
        .iter()
        .map(|update| str_field(update, "id"))
        .collect()
}

/// The path (with query) of an absolute URL the server handed out, to request it from this
/// server whatever host name it put in the URL.
fn path_of(url: &str) -> String {
    let start = url
        .find("/api/")
        .unwrap_or_else(|| panic!("not a URL of this server: {url}"));
    url[start..].to_owned()
}

/// Polls `/readyz` until it answers 200, failing after [`RECOVERY_WITHIN`]; returns how long
/// it took.
async fn wait_until_ready(app: &TestApp) -> Duration {
    let started = Instant::now();
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(5), app.get_anon("/readyz")).await;
        if let Ok(response) = &attempt
            && response.status == 200
        {
            assert_eq!(
                response.json,
                json!({"status": "ready", "database": "ok", "storage": "ok"}),
                "{}",
                response.text
            );
            return started.elapsed();
        }
        assert!(
            started.elapsed() < RECOVERY_WITHIN,
            "/readyz not 200 within {RECOVERY_WITHIN:?} after the backend came back; last: {:?}",
            attempt.map(|response| response.text)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts a 503 from `/readyz` naming `down` as unavailable and the other backend ok.
#[track_caller]
fn assert_not_ready(response: &e2e::Response, down: &str) {
    let message = response.assert_error(503);
    let up = if down == "database" {
        "storage"
    } else {
        "database"
    };
    assert_eq!(response.json[down], "unavailable", "{}", response.text);
    assert_eq!(response.json[up], "ok", "{}", response.text);
    assert!(
        message.to_lowercase().contains(down),
        "the error should name the {down}: {message:?}"
    );
}

/// Asserts `503 {"error": message}` with a JSON content type.
#[track_caller]
fn assert_unavailable(response: &RawResponse, message: &str) {
    assert_eq!(response.assert_error(503), message);
}

/// The manifest id of a protocol-1 update check that must succeed.
#[track_caller]
fn manifest_of(response: &RawResponse) -> Value {
    response.assert_status(200);
    response
        .multipart()
        .iter()
        .find(|part| part.name() == "manifest")
        .unwrap_or_else(|| panic!("no manifest part: {}", response.text()))
        .json()
}

// -------------------------------------------------------------------------------------------
// The database goes away
// -------------------------------------------------------------------------------------------

/// How a backend fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Connections are closed, new ones refused ([`Proxy::cut`]): a crashed host.
    Cut,
    /// Connections stay open but nothing passes ([`Proxy::stall`]): a network partition,
    /// a host that froze.
    Stall,
}

impl Fault {
    fn start(self, proxy: &Proxy) {
        match self {
            Fault::Cut => proxy.cut(),
            Fault::Stall => proxy.stall(),
        }
    }
}

/// How long a request may take while a backend is down before the test gives up on it (an
/// answer later than [`FAILING_ANSWER_WITHIN`] is already a failure, recorded to be reported
/// with the others).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// One request while a backend is down: how long it took and how many connections it
/// opened through the proxy (while cut, each attempt is a new connection).
struct Outcome<T> {
    answer: T,
    took: Duration,
    attempts: u64,
}

/// Runs `request`, failing the test after [`GIVE_UP_AFTER`], and records an answer later
/// than [`FAILING_ANSWER_WITHIN`] in `problems`.
async fn while_down<T>(
    what: &str,
    proxy: &Proxy,
    problems: &mut Vec<String>,
    request: impl std::future::Future<Output = T>,
) -> Outcome<T> {
    let before = proxy.accepted_connections();
    let started = Instant::now();
    let answer = tokio::time::timeout(GIVE_UP_AFTER, request)
        .await
        .unwrap_or_else(|_| {
            panic!("{what}: no answer within {GIVE_UP_AFTER:?} while the backend is down")
        });
    let took = started.elapsed();
    let attempts = proxy.accepted_connections() - before;
    eprintln!("{what} while the backend is down: {took:?}, {attempts} connections to it");
    if took > FAILING_ANSWER_WITHIN {
        problems.push(format!(
            "{what} took {took:?} while the backend was down ({attempts} connections to \
             it); an answer is due within {FAILING_ANSWER_WITHIN:?}"
        ));
    }
    Outcome {
        answer,
        took,
        attempts,
    }
}

/// PostgreSQL behind the proxy, then `fault`. A stream (project, channel, runtime version,
/// platform) already loaded is served from memory during the outage; one never loaded, the
/// API, a publish and `/readyz` answer 503 within the 5 s connection wait (plus slack);
/// once the proxy forwards again, the pool reconnects by itself.
async fn database_fault(fault: Fault) {
    let database = PgDatabase::create().await;
    let mut url = e2e::reqwest::Url::parse(&database.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Proxy::start(&target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.port())).unwrap();
    // `Backend::Postgres` so the harness knows the server is on PostgreSQL; the database it
    // creates is left unused: `DATABASE_URL` points at `database` through the proxy.
    let app = TestApp::spawn_on(
        Backend::Postgres,
        Storage::Local,
        &[("DATABASE_URL", url.as_str()), ("GC_INTERVAL_SECONDS", "0")],
    )
    .await;
    let tenant = app.publisher().await;
    let project_id = tenant.project_id.clone();
    let v1 = app
        .publish(
            &project_id,
            &tenant.secret,
            &PublishForm::new(&Export::v1()),
        )
        .await;
    // A stream with an update that no device asks for before the outage.
    let rt2 = app
        .publish(
            &project_id,
            &tenant.secret,
            &PublishForm::new(&Export::rt2()),
        )
        .await;
    assert_ne!(v1, rt2);

    // Loaded once, and again once the publishes' epoch bumps have settled (each publish
    // announces itself to other instances in a task of its own), so the answer is cached
    // under the epoch the outage will find.
    let loaded = UpdateCheck::v1("ios", "1.0.0");
    let never_loaded = UpdateCheck::v1("ios", "2.0.0");
    let before = manifest_of(&app.check(&project_id, &loaded).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(manifest_of(&app.check(&project_id, &loaded).await), before);
    assert!(
        proxy.live_connections() > 0,
        "the server is not using the proxy"
    );

    fault.start(&proxy);
    // Slow answers are collected and reported at the end, so that one does not hide the
    // others.
    let mut problems = Vec::new();

    // The loaded stream: served from memory, the same manifest.
    let cached = while_down(
        "the loaded stream",
        &proxy,
        &mut problems,
        app.check(&project_id, &loaded),
    )
    .await;
    assert_eq!(
        manifest_of(&cached.answer),
        before,
        "the loaded stream changed during the outage"
    );

    // A stream never loaded needs the database: 503, promptly.
    let unloaded = while_down(
        "a never-loaded stream",
        &proxy,
        &mut problems,
        app.check(&project_id, &never_loaded),
    )
    .await;
    assert_unavailable(&unloaded.answer, DATABASE_UNAVAILABLE);

    let ready = while_down("/readyz", &proxy, &mut problems, app.get_anon("/readyz")).await;
    assert_not_ready(&ready.answer, "database");

    let projects = while_down(
        "GET /api/projects",
        &proxy,
        &mut problems,
        app.get("/api/projects", &tenant.owner.token),
    )
    .await;
    assert_eq!(projects.answer.assert_error(503), DATABASE_UNAVAILABLE);

    // A publish cannot authorise its key: 503 too, before anything is stored.
    let published = while_down(
        "a publish",
        &proxy,
        &mut problems,
        app.publish_like_curl(
            &project_id,
            Some(&tenant.secret),
            &PublishForm::new(&Export::v2()),
        ),
    )
    .await;
    assert_eq!(published.answer.assert_error(503), DATABASE_UNAVAILABLE);
    assert_eq!(
        app.stored_objects_under("staging/"),
        Default::default(),
        "the refused publish left files in staging"
    );

    // The failed load did not disturb what was cached.
    let cached_again = while_down(
        "the loaded stream, again",
        &proxy,
        &mut problems,
        app.check(&project_id, &loaded),
    )
    .await;
    assert_eq!(manifest_of(&cached_again.answer), before);

    proxy.restore();
    let took = wait_until_ready(&app).await;
    eprintln!("/readyz 200 again {took:?} after the restore");

    // The stream never loaded is served now (poll: the pool may still hold a dead
    // connection or two).
    let restored = Instant::now();
    let served = loop {
        let response = app.check(&project_id, &never_loaded).await;
        if response.status == 200 {
            break manifest_of(&response);
        }
        assert_unavailable(&response, DATABASE_UNAVAILABLE);
        assert!(
            restored.elapsed() < RECOVERY_WITHIN,
            "the never-loaded stream is still 503 {RECOVERY_WITHIN:?} after the restore"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(served["runtimeVersion"], "2.0.0", "{served}");
    assert_eq!(manifest_of(&app.check(&project_id, &loaded).await), before);
    let projects = app.get("/api/projects", &tenant.owner.token).await;
    projects.assert_status(200);
    assert_eq!(history(&app, &tenant).await, vec![rt2, v1]);
    drop(app);
    drop(proxy);
    drop(database);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The database host goes away: connections closed, new ones refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_serves_loaded_streams_and_recovers() {
    database_fault(Fault::Cut).await;
}

/// The database stops answering (a partition): connections open, nothing passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_hang_serves_loaded_streams_and_recovers() {
    database_fault(Fault::Stall).await;
}

// -------------------------------------------------------------------------------------------
// The S3 service goes away
// -------------------------------------------------------------------------------------------

/// Connections `/readyz` may open to a dead S3 service: its one HEAD request and the two
/// quick retries (100 ms, 200 ms) every S3 request gets.
const PROBE_ATTEMPTS: u64 = 3;

/// A server on S3 storage reached through a proxy; the S3 server and the proxy must outlive
/// the app (declare them first).
///
/// The app is spawned as `Storage::Local` so that the harness starts no S3 server of its
/// own; the environment points it at `s3` through `proxy` (`STORAGE_TYPE=s3`). Read stored
/// objects from `s3.bucket_dir()`, not with the app's blob helpers.
async fn spawn_on_proxied_s3(backend: Backend, s3: &S3Server, proxy: &Proxy) -> TestApp {
    let endpoint = format!("http://127.0.0.1:{}", proxy.port());
    let mut env: Vec<(String, String)> = s3
        .env()
        .into_iter()
        .filter(|(key, _)| key != "S3_ENDPOINT")
        .collect();
    env.push(("S3_ENDPOINT".to_owned(), endpoint));
    env.push(("GC_INTERVAL_SECONDS".to_owned(), "0".to_owned()));
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    TestApp::spawn_on(backend, Storage::Local, &env).await
}

both_backends!(
    storage_outage_answers_503_and_recovers,
    |backend: Backend| async move {
        let s3 = S3Server::start().await;
        let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://")).await;
        let app = spawn_on_proxied_s3(backend, &s3, &proxy).await;
        let tenant = app.publisher().await;
        let project_id = tenant.project_id.clone();
        let v1 = Export::v1();
        let v1_id = app
            .publish(&project_id, &tenant.secret, &PublishForm::new(&v1))
            .await;
        let ios = manifest_of(
            &app.check(&project_id, &UpdateCheck::v1("ios", "1.0.0"))
                .await,
        );
        let android = manifest_of(
            &app.check(&project_id, &UpdateCheck::v1("android", "1.0.0"))
                .await,
        );
        // The iOS bundle is downloaded once (it may now be in the hot-file cache); the
        // Android bundle never is.
        let ios_bundle = path_of(ios["launchAsset"]["url"].as_str().unwrap());
        let android_bundle = path_of(android["launchAsset"]["url"].as_str().unwrap());
        let downloaded = app.fetch_path(&ios_bundle).await;
        downloaded.assert_status(200);
        assert_eq!(downloaded.body, v1.bytes(&v1.bundle("ios")));
        let objects_before = list_files(&s3.bucket_dir());

        proxy.cut();
        // Slow answers are collected and reported at the end, so that one does not hide
        // the others.
        let mut problems = Vec::new();

        let ready = while_down("/readyz", &proxy, &mut problems, app.get_anon("/readyz")).await;
        assert_not_ready(&ready.answer, "storage");
        // The storage probe is one HEAD request: a readiness check must answer at once
        // (orchestrators give it a second or so), not after a retry loop.
        if ready.attempts > PROBE_ATTEMPTS {
            problems.push(format!(
                "/readyz tried S3 {} times over {:?} while it was down; the probe is one \
                 HEAD request (at most {PROBE_ATTEMPTS} connections)",
                ready.attempts, ready.took
            ));
        }

        let never_downloaded = while_down(
            "a never-downloaded bundle",
            &proxy,
            &mut problems,
            app.fetch_path(&android_bundle),
        )
        .await;
        assert_unavailable(&never_downloaded.answer, STORAGE_UNAVAILABLE);

        // The bundle downloaded before: from memory, or 503; never a 500 or wrong bytes.
        let hot = while_down(
            "a downloaded bundle",
            &proxy,
            &mut problems,
            app.fetch_path(&ios_bundle),
        )
        .await;
        match hot.answer.status {
            200 => {
                assert_eq!(hot.answer.body, v1.bytes(&v1.bundle("ios")));
                assert_eq!(hot.attempts, 0, "a download served from memory went to S3");
            }
            _ => assert_unavailable(&hot.answer, STORAGE_UNAVAILABLE),
        }

        let published = while_down(
            "a publish",
            &proxy,
            &mut problems,
            app.publish_like_curl(
                &project_id,
                Some(&tenant.secret),
                &PublishForm::new(&Export::v2()),
            ),
        )
        .await;
        assert_eq!(published.answer.assert_error(503), STORAGE_UNAVAILABLE);
        assert_eq!(
            history(&app, &tenant).await,
            vec![v1_id.clone()],
            "the failed publish is visible"
        );

        // Update checks need the database only: answered, without a word to S3.
        for (platform, manifest) in [("ios", &ios), ("android", &android)] {
            let check = while_down(
                "an update check",
                &proxy,
                &mut problems,
                app.check(&project_id, &UpdateCheck::v1(platform, "1.0.0")),
            )
            .await;
            assert_eq!(&manifest_of(&check.answer), manifest, "{platform}");
            assert_eq!(check.attempts, 0, "an update check went to S3");
        }

        proxy.restore();
        let took = wait_until_ready(&app).await;
        eprintln!("/readyz 200 again {took:?} after the storage came back");
        let android_download = app.fetch_path(&android_bundle).await;
        android_download.assert_status(200);
        assert_eq!(android_download.body, v1.bytes(&v1.bundle("android")));
        assert_eq!(
            list_files(&s3.bucket_dir()),
            objects_before,
            "the failed publish left objects in the bucket"
        );
        // Publishing works again.
        let v2_id = app
            .publish(
                &project_id,
                &tenant.secret,
                &PublishForm::new(&Export::v2()),
            )
            .await;
        assert_eq!(history(&app, &tenant).await, vec![v2_id, v1_id]);
        drop(app);
        drop(proxy);
        drop(s3);
        assert!(problems.is_empty(), "{problems:#?}");
    }
);

// -------------------------------------------------------------------------------------------
// The disk fills up
// -------------------------------------------------------------------------------------------

/// A tmpfs mounted at a directory, unmounted on drop (also when the test panics).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            mounted.status.success(),
            "mount -t tmpfs at {} failed (this test needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&mounted.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Bytes free on the file system, from `df`.
    fn available(&self) -> u64 {
        let output = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.dir)
            .output()
            .expect("run df");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected df output: {output:?}"))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.dir).status();
        if !unmounted.is_ok_and(|status| status.success()) {
            // Still busy (a file the server had open): detach it now, freed when released.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

const TMPFS_BYTES: u64 = 2 * 1024 * 1024;

/// A tiny export (a few hundred bytes in all): two bundles and one shared asset.
fn tiny_export(dir: &Path) -> Export {
    let write = |path: &str, bytes: &[u8]| {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    };
    let metadata = json!({
        "version": 0,
        "bundler": "metro",
        "fileMetadata": {
            "ios": {
                "bundle": "_expo/static/js/ios/index-tiny.hbc",
                "assets": [{"path": "assets/tiny", "ext": "png"}]
            },
            "android": {
                "bundle": "_expo/static/js/android/index-tiny.hbc",
                "assets": [{"path": "assets/tiny", "ext": "png"}]
            }
        }
    });
    write("metadata.json", metadata.to_string().as_bytes());
    write("expoConfig.json", &Export::v1().raw("expoConfig.json"));
    write("_expo/static/js/ios/index-tiny.hbc", b"tiny ios bundle");
    write(
        "_expo/static/js/android/index-tiny.hbc",
        b"tiny android bundle",
    );
    write("assets/tiny", b"\x89PNG tiny asset");
    // An absolute path replaces the fixtures directory in `Export::load`.
    Export::load(dir.to_str().unwrap())
}

both_backends!(
    full_disk_answers_507_and_leaves_nothing,
    |backend: Backend| async move {
        // Declared in this order so they drop in reverse: the server, then the mount, then
        // the directory.
        let data = tempfile::tempdir().unwrap();
        let blobs = data.path().join("updates");
        let tmpfs = Tmpfs::mount(&blobs, "2m");
        let app = TestApp::spawn_on(
            backend,
            Storage::Local,
            &[
                ("DATA_DIR", data.path().to_str().unwrap()),
                ("GC_INTERVAL_SECONDS", "0"),
            ],
        )
        .await;
        let tenant = app.publisher().await;
        let project_id = tenant.project_id.clone();
        let free_at_start = tmpfs.available();
        let v1 = Export::v1();
        let v1_bytes: u64 = v1
            .listed_paths()
            .iter()
            .map(|path| std::fs::metadata(v1.file(path)).unwrap().len())
            .sum();
        assert!(
            v1_bytes > free_at_start && free_at_start <= TMPFS_BYTES,
            "v1 ({v1_bytes} bytes) must not fit in {free_at_start} free bytes"
        );

        let full = app
            .publish_like_curl(&project_id, Some(&tenant.secret), &PublishForm::new(&v1))
            .await;
        let message = full.assert_error(507);
        assert!(
            message.starts_with(STORAGE_FULL_PREFIX),
            "507 message: {message:?}"
        );
        assert!(
            history(&app, &tenant).await.is_empty(),
            "a failed publish is listed"
        );
        let manifest = app
            .check(&project_id, &UpdateCheck::v1("ios", "1.0.0"))
            .await;
        if manifest.status == 200 {
            assert!(
                manifest
                    .multipart()
                    .iter()
                    .all(|part| part.name() != "manifest"),
                "a failed publish is served: {}",
                manifest.text()
            );
        }
        // Everything the failed publish wrote is gone at once (no start-up or sweep needed):
        // staging is empty, nothing was promoted, and the space is free again.
        assert_eq!(
            list_files(&blobs),
            Default::default(),
            "the failed publish left files behind"
        );
        let free_after = tmpfs.available();
        assert!(
            free_after >= free_at_start,
            "space not given back: {free_after} free after, {free_at_start} before"
        );

        // A publish that fits then succeeds.
        let small_dir = tempfile::tempdir().unwrap();
        let small = tiny_export(small_dir.path());
        let small_id = app
            .publish(&project_id, &tenant.secret, &PublishForm::new(&small))
            .await;
        assert_eq!(history(&app, &tenant).await, vec![small_id]);
        let served = manifest_of(
            &app.check(&project_id, &UpdateCheck::v1("ios", "1.0.0"))
                .await,
        );
        let bundle = app
            .fetch_path(&path_of(served["launchAsset"]["url"].as_str().unwrap()))
            .await;
        bundle.assert_status(200);
        assert_eq!(bundle.body, b"tiny ios bundle");
        let stored: Vec<String> = list_files(&blobs).into_keys().collect();
        assert!(
            stored
                .iter()
                .all(|key| key.starts_with(&format!("projects/{project_id}/assets/"))),
            "unexpected files: {stored:?}"
        );
        assert_eq!(small.expected_blobs(&project_id).len(), 3);
        for key in small.expected_blobs(&project_id).keys() {
            assert!(stored.contains(key), "{key} missing from {stored:?}");
        }
        drop(app);
        drop(tmpfs);
        drop(data);
    }
);
