//! Allocations on the serving path: an update check answered from the cache
//! allocates nothing beyond the response itself (borrowed cache keys,
//! bodies shared as `Arc`s, signatures made once), whoever asks.
//!
//! A test binary of its own, because it installs a counting global
//! allocator (`tracking-allocator`: the workspace forbids unsafe code, and
//! a `GlobalAlloc` is unsafe to implement). Only allocations on the test's
//! own thread while a measurement runs are counted, and the service runs
//! on a current-thread runtime, so its work happens on that thread. A
//! counted allocation's backtrace is kept, so a failure names the line.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::sync::Once;

use application::test_support::{Harness, TestPublish};
use application::{
    AcceptedEncodings, AssetAnswer, AssetRequest, AssetTarget, IfNoneMatch, ManifestRequest,
    ProtocolVersion, ServeService, SignatureRequest,
};
use domain::id::ProjectId;
use domain::release::{ChannelName, in_rollout};
use domain::update::{ContentEncoding, Platform, RuntimeVersion, Update};
use tracking_allocator::{AllocationGroupId, AllocationRegistry, AllocationTracker, Allocator};

#[global_allocator]
static GLOBAL: Allocator<std::alloc::System> = Allocator::system();

/// Calls measured per case.
const CALLS: u64 = 100;

/// Backtraces kept per measurement: 3, or `ALLOCATION_BACKTRACES`.
fn kept_backtraces() -> u64 {
    static KEPT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *KEPT.get_or_init(|| {
        std::env::var("ALLOCATION_BACKTRACES")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(3)
    })
}

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNTED: Cell<u64> = const { Cell::new(0) };
    static SITES: RefCell<Vec<Backtrace>> = const { RefCell::new(Vec::new()) };
    /// [`kept_backtraces`], read before counting starts.
    static KEPT: Cell<u64> = const { Cell::new(0) };
}

/// Counts this thread's allocations while `COUNTING` is set. The crate calls
/// it with tracking suspended, so what it allocates itself is not counted.
struct CountOnThisThread;

impl AllocationTracker for CountOnThisThread {
    fn allocated(&self, _addr: usize, _size: usize, _wrapped: usize, _group: AllocationGroupId) {
        if COUNTING.get() {
            let counted = COUNTED.get();
            COUNTED.set(counted + 1);
            if counted < KEPT.get() {
                SITES.with_borrow_mut(|sites| sites.push(Backtrace::force_capture()));
            }
        }
    }

    fn deallocated(
        &self,
        _: usize,
        _: usize,
        _: usize,
        _: AllocationGroupId,
        _: AllocationGroupId,
    ) {
    }
}

fn install_counter() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        AllocationRegistry::set_global_tracker(CountOnThisThread).unwrap();
        AllocationRegistry::enable_tracking();
    });
}

/// What [`CALLS`] calls allocated.
struct Measured {
    allocations: u64,
    sites: Vec<String>,
}

impl Measured {
    fn per_call(&self) -> f64 {
        self.allocations as f64 / CALLS as f64
    }

    /// The kept backtraces, cut by [`our_frames`], each distinct one once
    /// with how often it was seen.
    fn report(&self) -> String {
        let mut distinct: Vec<(&str, usize)> = Vec::new();
        for site in &self.sites {
            match distinct.iter_mut().find(|(seen, _)| *seen == site.as_str()) {
                Some((_, count)) => *count += 1,
                None => distinct.push((site, 1)),
            }
        }
        distinct
            .iter()
            .map(|(site, count)| format!("{count} x\n{site}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The frames of a backtrace in this workspace's library sources, with
/// the frame above the first of them (the call that allocated).
fn our_frames(backtrace: &Backtrace) -> String {
    let text = backtrace.to_string();
    // (function, location) pairs; a frame without a location has none.
    let mut frames: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        match (line.trim_start().starts_with("at "), frames.last_mut()) {
            (true, Some(frame)) => frame.1 = line,
            _ => frames.push((line, "")),
        }
    }
    let ours = |location: &str| {
        ["./src/", "/application/src/", "/domain/src/"]
            .iter()
            .any(|dir| location.contains(dir))
    };
    let Some(first) = frames.iter().position(|(_, at)| ours(at)) else {
        return text;
    };
    let kept = frames[first.saturating_sub(1)..]
        .iter()
        .enumerate()
        .filter(|(n, (_, at))| *n == 0 || ours(at))
        .map(|(_, (function, at))| {
            // Without the frame's number, which depends on the caller.
            let function = function
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            format!(
                "  {}\n    {}",
                function.trim_start_matches(": "),
                at.trim_start()
            )
        });
    kept.collect::<Vec<_>>().join("\n")
}

/// Runs `call` [`CALLS`] times, counting this thread's allocations.
async fn measure<F, Fut, T>(mut call: F) -> Measured
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    install_counter();
    KEPT.set(kept_backtraces());
    COUNTED.set(0);
    SITES.with_borrow_mut(Vec::clear);
    COUNTING.set(true);
    for _ in 0..CALLS {
        let answer = call().await;
        drop(answer);
    }
    COUNTING.set(false);
    let sites = SITES.with_borrow_mut(std::mem::take);
    Measured {
        allocations: COUNTED.get(),
        sites: sites.iter().map(our_frames).collect(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

struct World {
    h: Harness,
    /// Wired as the server wires it (with a keyring).
    serve: ServeService,
    /// Signing with the server key only.
    without_keyring: ServeService,
    project_id: ProjectId,
    /// The update the measured device (`device-7`) is served.
    served: Update,
}

/// The device every measured check comes from.
const DEVICE: &str = "device-7";

async fn world() -> World {
    let h = Harness::new();
    let owner = h.store.add_user("owner");
    let project = h.store.add_project(&owner);
    // A partial rollout over a complete one: the device gets one or the
    // other, by its bucket.
    let complete = TestPublish::update(&project.id);
    let complete = complete.store(&h.store, &h.blobs).await;
    let rolling = TestPublish::update(&project.id).rollout(50);
    let rolling = rolling.store(&h.store, &h.blobs).await;
    let chosen = match in_rollout(
        Some(DEVICE),
        rolling[0].publish_id.as_str(),
        rolling[0].rollout,
    ) {
        true => rolling,
        false => complete,
    };
    let served = chosen
        .into_iter()
        .find(|u| u.platform == Platform::Ios)
        .unwrap();
    World {
        serve: h.serve().with_hot_files(64 * 1024 * 1024),
        without_keyring: h.serve_without_keyring(),
        project_id: ProjectId::parse(&project.id).unwrap(),
        h,
        served,
    }
}

impl World {
    fn check(&self, signature: SignatureRequest) -> ManifestRequest {
        ManifestRequest {
            project_id: self.project_id.clone(),
            platform: Platform::Ios,
            runtime_version: RuntimeVersion::parse("1.0.0").unwrap(),
            channel: ChannelName::default_channel(),
            protocol: ProtocolVersion::V1,
            current_update_id: None,
            embedded_update_id: None,
            signature,
            failed_update_ids: Vec::new(),
            fatal_error: false,
            client_id: Some(DEVICE.to_owned()),
            directives_allowed: true,
        }
    }

    fn cases(&self) -> Vec<(&'static str, ManifestRequest)> {
        let running = ManifestRequest {
            current_update_id: Some(self.served.manifest_id.clone()),
            ..self.check(SignatureRequest::AnyKey)
        };
        let anonymous = ManifestRequest {
            client_id: None,
            ..self.check(SignatureRequest::NotRequested)
        };
        vec![
            (
                "unsigned manifest",
                self.check(SignatureRequest::NotRequested),
            ),
            ("signed manifest", self.check(SignatureRequest::AnyKey)),
            (
                "manifest signed by key id",
                self.check(SignatureRequest::Key("main".to_owned())),
            ),
            ("signed noUpdateAvailable", running),
            ("device outside the rollout", anonymous),
        ]
    }
}

/// Warms `serve`'s cache with one call per case, then measures each case;
/// returns a description of every case that allocated.
async fn cached_check_allocations(
    serve: &ServeService,
    cases: &[(&str, ManifestRequest)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for (case, request) in cases {
        let warm = serve.manifest(request).await.unwrap().answer;
        let measured = measure(|| async { serve.manifest(request).await.unwrap() }).await;
        println!(
            "{case} ({}): {} allocations in {CALLS} calls",
            warm.label(),
            measured.allocations
        );
        if measured.allocations > 0 {
            failures.push(format!(
                "{case}: {:.2} allocations per call\n{}",
                measured.per_call(),
                measured.report()
            ));
        }
    }
    failures
}

#[test]
fn a_cached_update_check_allocates_nothing() {
    runtime().block_on(async {
        let w = world().await;
        let failures = cached_check_allocations(&w.serve, &w.cases()).await;
        assert_eq!(
            w.h.signer.calls(),
            2,
            "one manifest and one directive signed"
        );
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    });
}

/// The same without a keyring (a server key only).
#[test]
fn a_cached_update_check_without_a_keyring_allocates_nothing() {
    runtime().block_on(async {
        let w = world().await;
        let failures = cached_check_allocations(&w.without_keyring, &w.cases()).await;
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    });
}

/// Downloads are not held to zero (a body stream is boxed per answer);
/// this prints what a hot file costs, for comparison over time.
#[test]
fn a_hot_file_download_allocates_a_few_times() {
    runtime().block_on(async {
        let w = world().await;
        let bundle = &w.served.assets[0];
        let mut accepted = AcceptedEncodings::default();
        accepted.accept(ContentEncoding::Brotli);
        let request = AssetRequest {
            project_id: w.project_id.clone(),
            target: AssetTarget::OfUpdate {
                update_id: w.served.id.clone(),
                path: bundle.path.clone(),
            },
            accepted_encodings: accepted,
            range: None,
            if_range: None,
            if_none_match: IfNoneMatch::Absent,
            head_only: false,
            patch: None,
        };
        let not_modified = AssetRequest {
            if_none_match: IfNoneMatch::Tags(vec![format!("\"{}\"", bundle.sha256_hex)]),
            ..request.clone()
        };
        for (case, request) in [("hot file", &request), ("not modified", &not_modified)] {
            let warm = w.serve.asset(request).await.unwrap();
            assert!(matches!(
                (case, warm),
                ("hot file", AssetAnswer::Body { .. })
                    | ("not modified", AssetAnswer::NotModified(_))
            ));
            let opens = w.h.blobs.opens();
            let measured = measure(|| async { w.serve.asset(request).await.unwrap() }).await;
            assert_eq!(w.h.blobs.opens(), opens, "served from memory");
            println!(
                "asset, {case}: {:.2} allocations per call\n{}",
                measured.per_call(),
                measured.report()
            );
        }
    });
}
