//! The serving rules, without HTTP: `ServeService::manifest` and
//! `ServeService::asset` over the in-memory fakes (`application::test_support`),
//! with real-shaped publishes stored as a publish stores them.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use application::test_support::{ASSET_BASE_URL, FakeSigner, Harness, InMemoryBlobs, TestPublish};
use application::{
    AcceptedEncodings, AppError, AssetAnswer, AssetRequest, AssetTarget, ByteRange, IfNoneMatch,
    ManifestAnswer, ManifestRequest, ProtocolVersion, ServeService, SignatureRequest,
};
use chrono::Utc;
use domain::blob::BlobReader;
use domain::id::ProjectId;
use domain::ports::UpdateStore;
use domain::project::Project;
use domain::release::{BranchName, Channel, ChannelName, RolloutPercentage, in_rollout};
use domain::update::{ContentEncoding, Platform, RuntimeVersion, Update, asset_blob_key};
use futures_util::StreamExt;
use serde_json::Value;

/// A harness with one project and its serving service.
struct World {
    h: Harness,
    serve: ServeService,
    project: Project,
}

fn world() -> World {
    world_with(Harness::new())
}

fn world_with(h: Harness) -> World {
    let owner = h.store.add_user("owner");
    let project = h.store.add_project(&owner);
    let serve = h.serve();
    World { h, serve, project }
}

impl World {
    fn check(&self, platform: Platform) -> ManifestRequest {
        ManifestRequest {
            project_id: ProjectId::parse(&self.project.id).unwrap(),
            platform,
            runtime_version: RuntimeVersion::parse("1.0.0").unwrap(),
            channel: ChannelName::default_channel(),
            protocol: ProtocolVersion::V1,
            current_update_id: None,
            embedded_update_id: None,
            signature: SignatureRequest::NotRequested,
            failed_update_ids: Vec::new(),
            fatal_error: false,
            client_id: None,
            directives_allowed: true,
        }
    }

    fn device_check(&self, client_id: &str) -> ManifestRequest {
        ManifestRequest {
            client_id: Some(client_id.to_owned()),
            ..self.check(Platform::Ios)
        }
    }

    async fn publish(&self, publish: TestPublish) -> Vec<Update> {
        publish.store(&self.h.store, &self.h.blobs).await
    }

    fn new_publish(&self) -> TestPublish {
        TestPublish::update(&self.project.id)
    }

    async fn answer(&self, request: &ManifestRequest) -> ManifestAnswer {
        self.serve.manifest(request).await.unwrap().answer
    }

    /// The manifest `id` a device is sent, or the directive's type.
    async fn served(&self, request: &ManifestRequest) -> String {
        let answer = self.answer(request).await;
        let json = json_of(&answer);
        match answer {
            ManifestAnswer::Update(_) => json["id"].as_str().unwrap().to_owned(),
            _ => json["type"].as_str().unwrap().to_owned(),
        }
    }

    fn download(&self, update: &Update, path: &str) -> AssetRequest {
        AssetRequest {
            project_id: ProjectId::parse(&self.project.id).unwrap(),
            target: AssetTarget::OfUpdate {
                update_id: update.id.clone(),
                path: path.to_owned(),
            },
            accepted_encodings: AcceptedEncodings::default(),
            range: None,
            if_range: None,
            if_none_match: IfNoneMatch::Absent,
            head_only: false,
            patch: None,
        }
    }
}

fn ios(updates: &[Update]) -> &Update {
    updates
        .iter()
        .find(|u| u.platform == Platform::Ios)
        .unwrap()
}

fn json_of(answer: &ManifestAnswer) -> Value {
    serde_json::from_str(&answer.body().expect("a body").json).unwrap()
}

async fn bytes_of(reader: BlobReader) -> Vec<u8> {
    let mut body = reader.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    bytes
}

#[tokio::test]
async fn the_newest_update_of_the_platform_is_served_as_a_manifest() {
    let w = world();
    w.publish(w.new_publish()).await;
    let newest = w.publish(w.new_publish()).await;

    let served = w.serve.manifest(&w.check(Platform::Ios)).await.unwrap();
    let ManifestAnswer::Update(body) = &served.answer else {
        panic!("expected a manifest, got {:?}", served.answer);
    };
    assert_eq!(body.signature, None);
    assert_eq!(&*served.manifest_filters, "branch=\"main\"");
    let manifest: Value = serde_json::from_str(&body.json).unwrap();
    let update = ios(&newest);
    assert_eq!(manifest["id"], update.manifest_id.as_str());
    assert_eq!(manifest["runtimeVersion"], "1.0.0");
    assert_eq!(manifest["metadata"]["branch"], "main");
    assert_eq!(manifest["extra"]["expoClient"]["slug"], "app");
    let launch = &manifest["launchAsset"];
    assert_eq!(launch["hash"], update.assets[0].hash.as_str());
    assert_eq!(launch["contentType"], "application/javascript");
    let url = launch["url"].as_str().unwrap();
    assert!(url.starts_with(ASSET_BASE_URL), "{url}");
    assert!(url.contains(&format!("update={}", update.id)), "{url}");
    assert_eq!(manifest["assets"][0]["fileExtension"], ".png");
    assert_eq!(manifest["assets"][0]["contentType"], "image/png");

    let android = w.served(&w.check(Platform::Android)).await;
    let expected = newest.iter().find(|u| u.platform == Platform::Android);
    assert_eq!(android, expected.unwrap().manifest_id);
}

#[tokio::test]
async fn a_device_running_the_latest_is_told_so_only_where_the_protocol_can_say_it() {
    let w = world();
    let latest = w.publish(w.new_publish()).await;
    let running = ManifestRequest {
        current_update_id: Some(ios(&latest).manifest_id.clone()),
        ..w.check(Platform::Ios)
    };

    let answer = w.answer(&running).await;
    assert!(
        matches!(answer, ManifestAnswer::NoUpdateAvailable(_)),
        "{answer:?}"
    );
    assert_eq!(json_of(&answer)["type"], "noUpdateAvailable");

    let v0 = ManifestRequest {
        protocol: ProtocolVersion::V0,
        ..running.clone()
    };
    assert!(matches!(w.answer(&v0).await, ManifestAnswer::Update(_)));
    let json_only = ManifestRequest {
        directives_allowed: false,
        ..running
    };
    assert!(matches!(
        w.answer(&json_only).await,
        ManifestAnswer::Update(_)
    ));
}

#[tokio::test]
async fn a_runtime_version_without_updates_is_no_update_in_protocol_1_and_a_404_in_protocol_0() {
    let w = world();
    w.publish(w.new_publish()).await;
    let fresh_build = ManifestRequest {
        runtime_version: RuntimeVersion::parse("9.9.9").unwrap(),
        ..w.check(Platform::Ios)
    };
    let answer = w.answer(&fresh_build).await;
    assert!(
        matches!(answer, ManifestAnswer::NoUpdateAvailable(_)),
        "{answer:?}"
    );
    let json_only = ManifestRequest {
        directives_allowed: false,
        ..fresh_build.clone()
    };
    assert_eq!(w.answer(&json_only).await, ManifestAnswer::NoContent);
    // A channel whose branch has nothing yet: the same.
    let empty_channel = ManifestRequest {
        channel: ChannelName::parse("staging").unwrap(),
        ..w.check(Platform::Ios)
    };
    assert!(matches!(
        w.answer(&empty_channel).await,
        ManifestAnswer::NoUpdateAvailable(_)
    ));

    // Protocol 0 cannot say "no update": the 404 names what exists.
    let v0 = ManifestRequest {
        protocol: ProtocolVersion::V0,
        ..fresh_build
    };
    match w.serve.manifest(&v0).await {
        Err(AppError::NotFound(message)) => assert!(message.contains("1.0.0"), "{message}"),
        other => panic!("expected a 404, got {other:?}"),
    }
    // An unknown project stays a 404 in protocol 1.
    let unknown = ManifestRequest {
        project_id: ProjectId::parse("0196d1c2-0000-7000-8000-00000000dead").unwrap(),
        ..w.check(Platform::Ios)
    };
    assert!(matches!(
        w.serve.manifest(&unknown).await,
        Err(AppError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_rollback_sends_devices_to_the_embedded_update() {
    let w = world();
    w.publish(w.new_publish()).await;
    w.publish(TestPublish::rollback(&w.project.id)).await;

    let answer = w.answer(&w.check(Platform::Ios)).await;
    assert!(
        matches!(answer, ManifestAnswer::RollBackToEmbedded(_)),
        "{answer:?}"
    );
    let directive = json_of(&answer);
    assert_eq!(directive["type"], "rollBackToEmbedded");
    assert!(directive["parameters"]["commitTime"].is_string());

    // Already running the embedded update: nothing to do.
    let embedded = "0196d1c2-0000-7000-8000-00000000e3bd".to_owned();
    let on_embedded = ManifestRequest {
        embedded_update_id: Some(embedded.clone()),
        current_update_id: Some(embedded),
        ..w.check(Platform::Ios)
    };
    let answer = w.answer(&on_embedded).await;
    assert!(
        matches!(answer, ManifestAnswer::NoUpdateAvailable(_)),
        "{answer:?}"
    );

    let v0 = ManifestRequest {
        protocol: ProtocolVersion::V0,
        ..w.check(Platform::Ios)
    };
    let refused = w.serve.manifest(&v0).await;
    assert!(matches!(refused, Err(AppError::NotFound(_))), "{refused:?}");
    let json_only = ManifestRequest {
        directives_allowed: false,
        ..w.check(Platform::Ios)
    };
    let refused = w.serve.manifest(&json_only).await;
    assert!(
        matches!(refused, Err(AppError::NotAcceptable(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_partial_rollout_splits_devices_stably_and_the_others_keep_the_previous_update() {
    let w = world();
    let previous = w.publish(w.new_publish()).await;
    let rolling = w.publish(w.new_publish().rollout(50)).await;
    let (old, new) = (ios(&previous), ios(&rolling));

    let mut inside = 0;
    for n in 0..200 {
        let device = format!("device-{n}");
        let first = w.served(&w.device_check(&device)).await;
        let expected = match in_rollout(Some(&device), new.publish_id.as_str(), new.rollout) {
            true => &new.manifest_id,
            false => &old.manifest_id,
        };
        assert_eq!(&first, expected, "{device}");
        // The same device gets the same answer on every check, and on the
        // other platform (the draw is salted by the publish, not the update).
        assert_eq!(w.served(&w.device_check(&device)).await, first);
        let on_android = ManifestRequest {
            platform: Platform::Android,
            ..w.device_check(&device)
        };
        let android_new = rolling.iter().find(|u| u.platform == Platform::Android);
        let got_new_on_android = w.served(&on_android).await == android_new.unwrap().manifest_id;
        assert_eq!(got_new_on_android, first == new.manifest_id, "{device}");
        inside += usize::from(first == new.manifest_id);
    }
    assert!(
        (60..=140).contains(&inside),
        "{inside} of 200 in a 50% rollout"
    );
    // Without a client id a device is outside every partial rollout.
    assert_eq!(w.served(&w.check(Platform::Ios)).await, old.manifest_id);
}

#[tokio::test]
async fn a_device_outside_the_only_rollout_has_no_update() {
    let w = world();
    w.publish(w.new_publish().rollout(1)).await;
    let outside = (0..100)
        .map(|n| format!("device-{n}"))
        .find(|device| {
            let update = w.h.store.updates()[0].clone();
            !in_rollout(Some(device), update.publish_id.as_str(), update.rollout)
        })
        .unwrap();
    let answer = w.answer(&w.device_check(&outside)).await;
    assert!(
        matches!(answer, ManifestAnswer::NoUpdateAvailable(_)),
        "{answer:?}"
    );
    let v0 = ManifestRequest {
        protocol: ProtocolVersion::V0,
        ..w.device_check(&outside)
    };
    assert!(matches!(
        w.serve.manifest(&v0).await,
        Err(AppError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_mapped_channel_serves_its_branch_and_others_their_own_name() {
    let w = world();
    let main = w.publish(w.new_publish()).await;
    let staging = w.publish(w.new_publish().branch("staging")).await;
    let now = Utc::now();
    w.h.store.put_channel(Channel {
        project_id: w.project.id.to_string(),
        name: ChannelName::parse("production").unwrap(),
        branch: BranchName::parse("staging").unwrap(),
        split: None,
        created_at: now,
        updated_at: now,
    });
    let on = |channel: &str| ManifestRequest {
        channel: ChannelName::parse(channel).unwrap(),
        ..w.check(Platform::Ios)
    };

    let production = w.serve.manifest(&on("production")).await.unwrap();
    assert_eq!(
        json_of(&production.answer)["id"],
        ios(&staging).manifest_id.as_str()
    );
    assert_eq!(&*production.manifest_filters, "branch=\"staging\"");
    assert_eq!(w.served(&on("main")).await, ios(&main).manifest_id);
    assert_eq!(w.served(&on("staging")).await, ios(&staging).manifest_id);

    // Protocol 0 can only say 404, naming the branch and what has updates;
    // protocol 1 says "no update".
    assert_eq!(w.served(&on("beta")).await, "noUpdateAvailable");
    let v0 = |request: ManifestRequest| ManifestRequest {
        protocol: ProtocolVersion::V0,
        ..request
    };
    let Err(AppError::NotFound(message)) = w.serve.manifest(&v0(on("beta"))).await else {
        panic!("an unpublished branch has no update");
    };
    assert!(message.contains("\"beta\""), "{message}");
    let other_runtime = ManifestRequest {
        runtime_version: RuntimeVersion::parse("2.0.0").unwrap(),
        ..w.check(Platform::Ios)
    };
    assert_eq!(w.served(&other_runtime).await, "noUpdateAvailable");
    let Err(AppError::NotFound(message)) = w.serve.manifest(&v0(other_runtime)).await else {
        panic!("no update for another runtime version");
    };
    assert!(
        message.contains("\"1.0.0\""),
        "names what has updates: {message}"
    );
}

#[tokio::test]
async fn an_unknown_project_is_not_found() {
    let w = world();
    w.publish(w.new_publish()).await;
    let elsewhere = ManifestRequest {
        project_id: ProjectId::parse("0196d1c2-0000-7000-8000-0000000000ff").unwrap(),
        ..w.check(Platform::Ios)
    };
    let answer = w.serve.manifest(&elsewhere).await;
    assert!(matches!(answer, Err(AppError::NotFound(_))), "{answer:?}");
}

#[tokio::test]
async fn each_body_is_signed_once_whoever_asks() {
    let w = world();
    let latest = w.publish(w.new_publish()).await;
    let signed = ManifestRequest {
        signature: SignatureRequest::AnyKey,
        ..w.check(Platform::Ios)
    };
    for n in 0..50 {
        let request = ManifestRequest {
            client_id: Some(format!("device-{n}")),
            ..signed.clone()
        };
        let answer = w.answer(&request).await;
        let body = answer.body().unwrap();
        let expected = w.h.signer.expected_header(body.json.as_bytes());
        assert_eq!(body.signature.as_deref(), Some(expected.as_str()));
    }
    assert_eq!(w.h.signer.calls(), 1, "one manifest, one signature");

    let by_key_id = ManifestRequest {
        signature: SignatureRequest::Key("main".to_owned()),
        ..signed.clone()
    };
    assert!(
        w.answer(&by_key_id)
            .await
            .body()
            .unwrap()
            .signature
            .is_some()
    );
    let running = ManifestRequest {
        current_update_id: Some(ios(&latest).manifest_id.clone()),
        ..signed.clone()
    };
    for _ in 0..10 {
        let answer = w.answer(&running).await;
        assert!(matches!(answer, ManifestAnswer::NoUpdateAvailable(_)));
        assert!(answer.body().unwrap().signature.is_some());
    }
    assert_eq!(w.h.signer.calls(), 2, "and one for the shared directive");
    assert_eq!(
        w.answer(&w.check(Platform::Ios))
            .await
            .body()
            .unwrap()
            .signature,
        None
    );

    let unknown_key = ManifestRequest {
        signature: SignatureRequest::Key("old".to_owned()),
        ..signed
    };
    let refused = w.serve.manifest(&unknown_key).await;
    assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
}

#[tokio::test]
async fn a_project_key_signs_before_the_server_key_and_is_opened_once() {
    let w = world();
    w.publish(w.new_publish()).await;
    w.h.store.add_signing_key(&w.project.id, "project-2026");
    let any_key = ManifestRequest {
        signature: SignatureRequest::AnyKey,
        ..w.check(Platform::Ios)
    };
    for _ in 0..5 {
        let answer = w.answer(&any_key).await;
        let body = answer.body().unwrap();
        let by_project = FakeSigner::new("project-2026").expected_header(body.json.as_bytes());
        assert_eq!(body.signature.as_deref(), Some(by_project.as_str()));
    }
    let server_key = ManifestRequest {
        signature: SignatureRequest::Key("main".to_owned()),
        ..any_key
    };
    let answer = w.answer(&server_key).await;
    let by_server =
        w.h.signer
            .expected_header(answer.body().unwrap().json.as_bytes());
    assert_eq!(
        answer.body().unwrap().signature.as_deref(),
        Some(by_server.as_str())
    );
    assert_eq!(w.h.signer.calls(), 1);
    assert_eq!(
        w.h.signing_keys.opened(),
        1,
        "the project's keys are cached"
    );
}

#[tokio::test]
async fn a_change_to_what_is_served_is_seen_by_the_next_check() {
    let w = world();
    let first = w.publish(w.new_publish()).await;
    let request = w.check(Platform::Ios);
    assert_eq!(w.served(&request).await, ios(&first).manifest_id);
    assert_eq!(w.served(&request).await, ios(&first).manifest_id);
    let (hits, _) = w.serve.cache_counts();
    assert!(hits > 0, "the second check is answered from the cache");

    let second = w.publish(w.new_publish()).await;
    assert_eq!(w.served(&request).await, ios(&second).manifest_id);

    let store = w.h.store.as_ref();
    let halted = RolloutPercentage::parse(0).unwrap();
    let project = &ProjectId::parse(&w.project.id).unwrap();
    assert!(
        store
            .set_rollout(project, &second[0].publish_id, halted)
            .await
            .unwrap()
    );
    assert_eq!(w.served(&request).await, ios(&first).manifest_id);
    assert!(
        store
            .delete_publish(project, &first[0].publish_id)
            .await
            .unwrap()
    );
    let answer = w.answer(&w.device_check("device-1")).await;
    assert!(
        matches!(answer, ManifestAnswer::NoUpdateAvailable(_)),
        "{answer:?}"
    );
}

#[tokio::test]
async fn assets_are_served_whole_by_range_or_not_at_all_when_unchanged() {
    let w = world();
    let update = ios(&w.publish(w.new_publish()).await).clone();
    let bundle = &update.assets[0];
    let stored =
        w.h.blobs
            .get(&asset_blob_key(&w.project.id, &bundle.sha256_hex));
    let stored = stored.unwrap();
    let whole = w.download(&update, &bundle.path);

    let AssetAnswer::Body {
        representation,
        body,
        range,
    } = w.serve.asset(&whole).await.unwrap()
    else {
        panic!("expected the file");
    };
    assert_eq!(representation.etag, format!("\"{}\"", bundle.sha256_hex));
    assert_eq!(representation.content_type, "application/javascript");
    assert_eq!(representation.encoding, None);
    assert!(representation.immutable);
    assert_eq!(range, None);
    assert_eq!(bytes_of(body).await, stored);

    let unchanged = AssetRequest {
        if_none_match: IfNoneMatch::Tags(vec![format!("\"{}\"", bundle.sha256_hex)]),
        ..whole.clone()
    };
    let answer = w.serve.asset(&unchanged).await.unwrap();
    assert!(matches!(answer, AssetAnswer::NotModified(ref r) if r.etag == representation.etag));

    let ranged = AssetRequest {
        range: Some(ByteRange::From {
            first: 10,
            last: Some(19),
        }),
        ..whole.clone()
    };
    let AssetAnswer::Body { body, range, .. } = w.serve.asset(&ranged).await.unwrap() else {
        panic!("expected a range");
    };
    assert_eq!(range, Some((10..20, bundle.size)));
    assert_eq!(bytes_of(body).await, stored[10..20]);

    let beyond = AssetRequest {
        range: Some(ByteRange::From {
            first: bundle.size,
            last: None,
        }),
        ..whole.clone()
    };
    let answer = w.serve.asset(&beyond).await.unwrap();
    assert!(matches!(answer, AssetAnswer::RangeNotSatisfiable { size } if size == bundle.size));

    let missing = w.download(&update, "assets/none.png");
    assert!(matches!(
        w.serve.asset(&missing).await,
        Err(AppError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_stored_compressed_copy_is_sent_to_clients_that_accept_it() {
    let w = world();
    let update = ios(&w.publish(w.new_publish()).await).clone();
    let (bundle, image) = (&update.assets[0], &update.assets[1]);
    let key =
        |asset: &domain::update::UpdateAsset| asset_blob_key(&w.project.id, &asset.sha256_hex);
    w.h.blobs.put(
        &ContentEncoding::Brotli.blob_key(&key(bundle)),
        &b"brotli bytes"[..],
    );
    w.h.blobs.put(
        &ContentEncoding::Brotli.blob_key(&key(image)),
        &b"brotli png"[..],
    );
    // Smaller than the brotli copy: sent to clients that accept zstd.
    w.h.blobs
        .put(&ContentEncoding::Zstd.blob_key(&key(bundle)), &b"zstd"[..]);
    let accepting = |encodings: &[ContentEncoding], path: &str| {
        let mut accepted = AcceptedEncodings::default();
        for encoding in encodings {
            accepted.accept(*encoding);
        }
        AssetRequest {
            accepted_encodings: accepted,
            ..w.download(&update, path)
        }
    };
    let both = [ContentEncoding::Gzip, ContentEncoding::Brotli];

    let answer = w
        .serve
        .asset(&accepting(&both, &bundle.path))
        .await
        .unwrap();
    let AssetAnswer::Body {
        representation,
        body,
        ..
    } = answer
    else {
        panic!("expected the copy");
    };
    assert_eq!(representation.encoding, Some(ContentEncoding::Brotli));
    assert_eq!(representation.etag, format!("\"{}-br\"", bundle.sha256_hex));
    assert!(representation.varies_by_encoding);
    assert_eq!(bytes_of(body).await, b"brotli bytes");

    for (encodings, path) in [
        (&[ContentEncoding::Gzip][..], &bundle.path), // no gzip copy stored
        (&[][..], &bundle.path),                      // nothing accepted
        (&both[..], &image.path),                     // images are not compressed
    ] {
        let answer = w.serve.asset(&accepting(encodings, path)).await.unwrap();
        let AssetAnswer::Body { representation, .. } = answer else {
            panic!("expected the file");
        };
        assert_eq!(representation.encoding, None, "{encodings:?} {path}");
    }

    // The smallest stored copy the client accepts, whatever the encoding.
    for (encodings, expected) in [
        (&ContentEncoding::ALL[..], ContentEncoding::Zstd),
        (&both[..], ContentEncoding::Brotli),
    ] {
        let answer = w
            .serve
            .asset(&accepting(encodings, &bundle.path))
            .await
            .unwrap();
        let AssetAnswer::Body { representation, .. } = answer else {
            panic!("expected a copy");
        };
        assert_eq!(representation.encoding, Some(expected), "{encodings:?}");
    }
}

#[tokio::test]
async fn only_whole_get_downloads_of_a_bundle_count_as_downloads() {
    let w = world();
    let update = ios(&w.publish(w.new_publish()).await).clone();
    let bundle = w.download(&update, &update.assets[0].path);
    for request in [
        bundle.clone(),
        bundle.clone(),
        AssetRequest {
            head_only: true,
            ..bundle.clone()
        },
        AssetRequest {
            range: Some(ByteRange::Suffix(5)),
            ..bundle.clone()
        },
        w.download(&update, &update.assets[1].path),
    ] {
        w.serve.asset(&request).await.unwrap();
    }
    w.h.insight_service().flush().await.unwrap();
    let downloads: u64 =
        w.h.store
            .insight_rows()
            .iter()
            .map(|(_, c)| c.launch_downloads)
            .sum();
    assert_eq!(downloads, 2);
}

#[tokio::test]
async fn the_latest_form_and_redirects_name_the_same_file() {
    let w = world_with(Harness::with_blobs(
        InMemoryBlobs::new().with_presigned_urls("https://bucket.example.test"),
    ));
    w.publish(w.new_publish()).await;
    let newest = ios(&w.publish(w.new_publish()).await).clone();
    let latest = AssetRequest {
        target: AssetTarget::Latest {
            runtime_version: RuntimeVersion::parse("1.0.0").unwrap(),
            platform: Platform::Ios,
            path: newest.assets[1].path.clone(),
        },
        ..w.download(&newest, "")
    };
    let AssetAnswer::Body { representation, .. } = w.serve.asset(&latest).await.unwrap() else {
        panic!("expected the file");
    };
    assert_eq!(
        representation.etag,
        format!("\"{}\"", newest.assets[1].sha256_hex)
    );
    assert!(
        !representation.immutable,
        "the latest form names other bytes later"
    );

    let redirecting = w.h.serve().with_asset_redirects(true);
    let answer = redirecting
        .asset(&w.download(&newest, &newest.assets[0].path))
        .await;
    let AssetAnswer::Redirect {
        location,
        immutable,
        ..
    } = answer.unwrap()
    else {
        panic!("expected a redirect");
    };
    assert!(immutable);
    assert!(
        location.contains(&newest.assets[0].sha256_hex),
        "{location}"
    );
}
