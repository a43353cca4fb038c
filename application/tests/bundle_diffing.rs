//! Bundle diffing's rules, without HTTP: which patches a publish wants,
//! what a worker makes of them, and which downloads get a patch, over the
//! in-memory fakes.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::sync::Arc;

use application::bsdiff::verify;
use application::test_support::{Harness, TestPublish};
use application::{
    AcceptedEncodings, AssetAnswer, AssetRequest, AssetTarget, ByteRange, Caller, IfNoneMatch,
    PatchRequest, PatchService, PublishService, RepublishRequest, ServeService,
};
use domain::blob::{BlobReader, BlobStore};
use domain::id::ProjectId;
use domain::patch::{PatchPolicy, PatchState};
use domain::project::Project;
use domain::update::{Platform, Update, asset_blob_key};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

/// A harness with one project, publishing and serving with bundle diffing.
struct World {
    h: Harness,
    patches: Arc<PatchService>,
    publisher: PublishService,
    serve: ServeService,
    project: Project,
    owner: Caller,
}

fn world(policy: PatchPolicy) -> World {
    let h = Harness::new();
    let owner = h.store.add_user("owner");
    let project = h.store.add_project(&owner);
    let patches = Arc::new(h.patch_service(policy));
    World {
        publisher: h.publisher(None).with_patches(Arc::clone(&patches)),
        serve: h.serve().with_patches(h.store.clone()),
        patches,
        project,
        owner: Caller::User(owner),
        h,
    }
}

/// A Hermes-sized stand-in: 200 kB of varied, compressible lines.
fn bundle(version: u32) -> Vec<u8> {
    let mut text = String::new();
    for line in 0..4000u32 {
        let body = if line % 500 == 7 {
            format!("changed in v{version}")
        } else {
            format!("{}", line.wrapping_mul(2_654_435_761))
        };
        text.push_str(&format!(
            "function f{line}(a) {{ return a + \"{body}\"; }}\n"
        ));
    }
    text.into_bytes()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn android(updates: &[Update]) -> &Update {
    updates
        .iter()
        .find(|u| u.platform == Platform::Android)
        .unwrap()
}

async fn bytes_of(reader: BlobReader) -> Vec<u8> {
    let mut body = reader.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    bytes
}

impl World {
    async fn publish(&self, bundle: &[u8]) -> Vec<Update> {
        TestPublish::update(&self.project.id)
            .bundle(bundle)
            .store(&self.h.store, &self.h.blobs)
            .await
    }

    /// Republishes `updates` through the publish service: the publish path
    /// that wants patches.
    async fn republish(&self, updates: &[Update]) -> Vec<Update> {
        let project_id = ProjectId::parse(&self.project.id).unwrap();
        self.publisher
            .republish(
                &self.owner,
                &project_id,
                &updates[0].publish_id,
                &RepublishRequest::default(),
            )
            .await
            .unwrap()
            .updates
    }

    async fn work_all(&self) {
        while self.patches.work_one().await.unwrap() {}
    }

    /// The launch bundle's download of `update`, by a client running the
    /// update with manifest id `running` (when `Some`).
    fn download(&self, update: &Update, running: Option<&str>) -> AssetRequest {
        let bundle = update.launch_asset().unwrap();
        AssetRequest {
            project_id: ProjectId::parse(&self.project.id).unwrap(),
            target: AssetTarget::OfUpdate {
                update_id: update.id.clone(),
                path: bundle.path.clone(),
            },
            accepted_encodings: AcceptedEncodings::default(),
            range: None,
            if_range: None,
            if_none_match: IfNoneMatch::Absent,
            head_only: false,
            patch: running.map(|base| PatchRequest {
                base_manifest_id: base.to_owned(),
                requested_manifest_id: Some(update.manifest_id.clone()),
            }),
        }
    }
}

#[tokio::test]
async fn a_device_one_update_behind_gets_a_verified_patch_and_others_the_file() {
    let w = world(PatchPolicy::default());
    let (v1, v2) = (bundle(1), bundle(2));
    let old = w.publish(&v1).await;
    let running = w.publish(&v2).await;
    // Republishing v1's bundle: the update before it (v2) is the base.
    let new = w.republish(&old).await;
    let wanted = w.h.store.patches();
    assert_eq!(wanted.len(), 1, "one bundle pair, whatever the platforms");
    assert_eq!(wanted[0].key.base_sha256, sha(&v2));
    assert_eq!(wanted[0].key.target_sha256, sha(&v1));
    assert_eq!(wanted[0].state, PatchState::Pending);

    // Before the patch is made, the file.
    let base_id = android(&running).manifest_id.clone();
    let request = w.download(android(&new), Some(&base_id));
    let answer = w.serve.asset(&request).await.unwrap();
    assert!(matches!(answer, AssetAnswer::Body { .. }));

    w.work_all().await;
    let made = w.h.store.patches();
    let PatchState::Ready { size } = made[0].state else {
        panic!("not ready: {:?}", made[0].state);
    };
    assert!(size * 10 < v1.len() as u64, "{size} bytes for a few lines");
    assert_eq!(w.patches.counts().ready, 1);

    let AssetAnswer::Patch {
        etag,
        base_update_id,
        body,
    } = w.serve.asset(&request).await.unwrap()
    else {
        panic!("expected a patch");
    };
    assert_eq!(base_update_id, base_id);
    assert!(etag.contains("bsdiff"));
    let patch = bytes_of(body).await;
    assert_eq!(patch.len() as u64, size);
    assert!(patch.starts_with(b"BSDIFF40"));
    verify(&v2, &patch, &sha(&v1)).unwrap();

    // Everything else: the full file, never an error.
    let full = |request: AssetRequest| {
        let serve = &w.serve;
        async move {
            let answer = serve.asset(&request).await.unwrap();
            assert!(
                matches!(answer, AssetAnswer::Body { .. }),
                "expected the file"
            );
        }
    };
    full(w.download(android(&new), None)).await;
    // A base this server has no patch from (the update itself, an unknown id).
    full(w.download(android(&new), Some(&android(&new).manifest_id))).await;
    full(w.download(android(&new), Some("0190aaaa-0000-7000-8000-000000000001"))).await;
    // The other platform's update is not a base for this one.
    let ios_base = running
        .iter()
        .find(|u| u.platform == Platform::Ios)
        .unwrap();
    full(w.download(android(&new), Some(&ios_base.manifest_id))).await;
    // Downloading some other update than the URL names.
    let mut elsewhere = w.download(android(&new), Some(&base_id));
    elsewhere.patch.as_mut().unwrap().requested_manifest_id = Some(base_id.clone());
    full(elsewhere).await;
    // A range is of the file.
    let mut ranged = w.download(android(&new), Some(&base_id));
    ranged.range = Some(ByteRange::From {
        first: 0,
        last: Some(9),
    });
    full(ranged).await;
    // The client has the file already: 304, as ever.
    let mut cached = w.download(android(&new), Some(&base_id));
    cached.if_none_match = IfNoneMatch::Tags(vec![format!("\"{}\"", sha(&v1))]);
    let answer = w.serve.asset(&cached).await.unwrap();
    assert!(matches!(answer, AssetAnswer::NotModified(_)));
    // A HEAD answers as the GET does.
    let mut head = request.clone();
    head.head_only = true;
    let answer = w.serve.asset(&head).await.unwrap();
    assert!(matches!(answer, AssetAnswer::Patch { .. }));

    // A patch gone from storage (collected with its target): the file.
    w.h.blobs
        .delete_many(&[made[0].key.blob_key()])
        .await
        .unwrap();
    let again = w.serve.asset(&request).await.unwrap();
    assert!(matches!(again, AssetAnswer::Body { .. }));
}

#[tokio::test]
async fn a_full_file_answer_of_a_launch_bundle_varies_by_base() {
    let w = world(PatchPolicy::default());
    let updates = w.publish(&bundle(1)).await;
    let AssetAnswer::Body { representation, .. } = w
        .serve
        .asset(&w.download(android(&updates), None))
        .await
        .unwrap()
    else {
        panic!("expected the file");
    };
    assert!(representation.varies_by_base);
    let plain = w.h.serve();
    let AssetAnswer::Body { representation, .. } = plain
        .asset(&w.download(android(&updates), None))
        .await
        .unwrap()
    else {
        panic!("expected the file");
    };
    assert!(!representation.varies_by_base, "bundle diffing off");
}

#[tokio::test]
async fn bases_are_the_previous_distinct_bundles_of_the_stream_up_to_the_limit() {
    let w = world(PatchPolicy {
        bases: 2,
        max_percent: 50,
    });
    let first = w.publish(&bundle(1)).await;
    w.publish(&bundle(2)).await;
    w.publish(&bundle(3)).await;
    // A republish of v3's bundle on the way (the same bundle is no base).
    w.publish(&bundle(3)).await;
    // Another branch's updates are not what this branch's devices run.
    TestPublish::update(&w.project.id)
        .branch("staging")
        .bundle(&bundle(9))
        .store(&w.h.store, &w.h.blobs)
        .await;
    w.republish(&first).await;
    let mut bases: Vec<String> =
        w.h.store
            .patches()
            .into_iter()
            .map(|p| p.key.base_sha256)
            .collect();
    bases.sort();
    let mut expected = vec![sha(&bundle(3)), sha(&bundle(2))];
    expected.sort();
    assert_eq!(bases, expected);
}

#[tokio::test]
async fn with_bundle_diffing_off_nothing_is_wanted() {
    let w = world(PatchPolicy {
        bases: 0,
        max_percent: 50,
    });
    let old = w.publish(&bundle(1)).await;
    w.publish(&bundle(2)).await;
    w.republish(&old).await;
    assert!(w.h.store.patches().is_empty());
    assert!(!w.patches.work_one().await.unwrap());
}

#[tokio::test]
async fn a_patch_that_saves_too_little_is_not_kept_and_a_missing_base_fails() {
    let w = world(PatchPolicy::default());
    // Unrelated bundles: the patch is about as large as the file.
    let noise = |seed: u64| -> Vec<u8> {
        let mut state = seed;
        (0..50_000)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 33) as u8
            })
            .collect()
    };
    let old = w.publish(&noise(1)).await;
    let running = w.publish(&noise(2)).await;
    let new = w.republish(&old).await;
    w.work_all().await;
    let made = w.h.store.patches();
    assert!(
        matches!(made[0].state, PatchState::NotWorthIt { .. }),
        "{:?}",
        made[0].state
    );
    assert!(!w.h.blobs.exists(&made[0].key.blob_key()).await.unwrap());
    let request = w.download(android(&new), Some(&android(&running).manifest_id));
    let answer = w.serve.asset(&request).await.unwrap();
    assert!(matches!(answer, AssetAnswer::Body { .. }));

    // The base's file is gone before the work starts: failed, not retried.
    let project = w.project.id.clone();
    let third = w.publish(&bundle(3)).await;
    w.republish(&running).await;
    let base = android(&third).launch_asset().unwrap().sha256_hex.clone();
    w.h.blobs
        .delete_many(&[asset_blob_key(&project, &base)])
        .await
        .unwrap();
    w.work_all().await;
    let failed =
        w.h.store
            .patches()
            .into_iter()
            .find(|p| p.key.base_sha256 == base)
            .unwrap();
    assert!(
        matches!(&failed.state, PatchState::Failed { error } if error.contains("base")),
        "{:?}",
        failed.state
    );
    assert_eq!(w.patches.counts().failed, 1);
}

#[tokio::test]
async fn collecting_a_bundle_forgets_its_patches_so_a_later_publish_computes_them_again() {
    let w = world(PatchPolicy::default());
    let old = w.publish(&bundle(1)).await;
    w.publish(&bundle(2)).await;
    let new = w.republish(&old).await;
    w.work_all().await;
    assert!(matches!(
        w.h.store.patches()[0].state,
        PatchState::Ready { .. }
    ));
    // Every update naming the v1 bundle goes; collection removes its file,
    // its copies and its patch, and the patch's record with them.
    let releases = w.h.releases(None);
    for updates in [&old, &new] {
        releases
            .delete(&w.owner, &updates[0].project_id, &updates[0].publish_id)
            .await
            .unwrap();
    }
    let gc = application::GarbageCollector::new(
        w.h.store.clone(),
        w.h.store.clone(),
        w.h.blobs.clone(),
        w.h.audit_log(),
        std::time::Duration::ZERO,
    );
    let report = gc.collect_all().await.unwrap();
    assert!(report.deleted_blobs >= 1, "{report:?}");
    assert!(w.h.store.patches().is_empty(), "{:?}", w.h.store.patches());
}

#[tokio::test]
async fn an_embedded_bundle_is_a_base_once_the_project_opts_in_and_kept_until_deleted() {
    use application::EmbeddedUpload;
    use domain::ports::ProjectStore;

    let w = world(PatchPolicy::default());
    let (embedded, v2) = (bundle(1), bundle(2));
    let project_id = ProjectId::parse(&w.project.id).unwrap();
    let build = "4c1e1a52-8d4b-4b7e-9a55-1f0c6b3e2a01";
    let latest = w.publish(&v2).await;
    let upload = EmbeddedUpload {
        update_id: build.to_owned(),
        runtime_version: "1.0.0".to_owned(),
        platform: "android".to_owned(),
        bundle: Box::pin(futures_util::stream::once({
            let bytes = bytes::Bytes::from(embedded.clone());
            async move { Ok::<_, std::io::Error>(bytes) }
        })),
    };
    let stored = w
        .patches
        .upload_embedded(&w.owner, &project_id, upload)
        .await
        .unwrap();
    assert_eq!(stored.sha256_hex, sha(&embedded));
    // Wanted at upload: from it to the newest update of its runtime
    // version and platform.
    let wanted = w.h.store.patches();
    assert_eq!(wanted.len(), 1, "{wanted:?}");
    assert_eq!(wanted[0].key.base_sha256, sha(&embedded));
    assert_eq!(wanted[0].key.target_sha256, sha(&v2));
    w.work_all().await;

    let request = w.download(android(&latest), Some(build));
    let answer = w.serve.asset(&request).await.unwrap();
    assert!(
        matches!(answer, AssetAnswer::Body { .. }),
        "not opted in: the file"
    );
    let opted_in = Project {
        patch_from_embedded: true,
        ..w.project.clone()
    };
    w.h.store.update(&opted_in).await.unwrap();
    let AssetAnswer::Patch {
        base_update_id,
        body,
        ..
    } = w.serve.asset(&request).await.unwrap()
    else {
        panic!("expected a patch against the embedded bundle");
    };
    assert_eq!(base_update_id, build);
    verify(&embedded, &bytes_of(body).await, &sha(&v2)).unwrap();

    // Storage collection keeps the embedded bundle, no update naming it,
    // until it is deleted.
    let gc = application::GarbageCollector::new(
        w.h.store.clone(),
        w.h.store.clone(),
        w.h.blobs.clone(),
        w.h.audit_log(),
        std::time::Duration::ZERO,
    );
    let key = asset_blob_key(&w.project.id, &sha(&embedded));
    gc.collect_all().await.unwrap();
    assert!(w.h.blobs.exists(&key).await.unwrap());
    w.patches
        .delete_embedded(&w.owner, &project_id, build)
        .await
        .unwrap();
    let answer = w.serve.asset(&request).await.unwrap();
    assert!(
        matches!(answer, AssetAnswer::Body { .. }),
        "deleted: the file"
    );
    gc.collect_all().await.unwrap();
    assert!(!w.h.blobs.exists(&key).await.unwrap());
}
