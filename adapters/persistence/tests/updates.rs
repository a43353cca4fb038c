//! The update store on SQLite and PostgreSQL.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use adapter_persistence::SqlStore;
use chrono::{SubsecRound, Utc};
use common::{id, postgres_store, project_with_two_owners, sqlite_store, user};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::ports::{ProjectStore, StoreError, UpdateStore};
use domain::release::{BranchName, RolloutPercentage};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind};

/// The newest fully rolled-out update of branch `main`.
async fn latest(
    store: &SqlStore,
    pid: &ProjectId,
    runtime: &str,
    platform: Platform,
) -> Option<Update> {
    let runtime = RuntimeVersion::parse(runtime).unwrap();
    let candidates = store
        .candidates(pid, &BranchName::default_branch(), &runtime, platform)
        .await
        .unwrap();
    let newest = candidates.into_iter().find(|c| c.rollout.is_complete())?;
    UpdateStore::find(store, pid, &newest.id).await.unwrap()
}

fn update(
    project_id: &ProjectId,
    publish_id: &PublishId,
    runtime: &str,
    platform: Platform,
    label: &str,
) -> Update {
    let asset = |path: &str, launch: bool| UpdateAsset {
        path: path.to_owned(),
        sha256_hex: format!("{:0>64}", label),
        hash: format!("{:A>43}", label),
        key: format!("{:0>32}", label),
        content_type: if launch {
            "application/javascript"
        } else {
            "image/png"
        }
        .to_owned(),
        file_extension: (!launch).then(|| ".png".to_owned()),
        size: 42,
        is_launch_asset: launch,
    };
    Update {
        id: UpdateId::from_trusted(id()),
        publish_id: publish_id.clone(),
        project_id: project_id.clone(),
        runtime_version: RuntimeVersion::parse(runtime).expect("runtime version"),
        platform,
        kind: UpdateKind::Update,
        branch: BranchName::default_branch(),
        message: Some(format!("message {label}")),
        rollout: RolloutPercentage::FULL,
        published_by: None,
        republished_from: None,
        manifest_id: id(),
        expo_config: Some(format!("{{\"name\":\"{label}\"}}")),
        assets: vec![
            asset("bundle.hbc", true),
            asset("assets/a", false),
            asset("assets/b", false),
        ],
        // Millisecond precision, as the application stamps updates.
        created_at: Utc::now().trunc_subsecs(3),
    }
}

async fn latest_is_per_runtime_and_platform(store: SqlStore) {
    let (a, b) = (user(&store, "ua").await, user(&store, "ub").await);
    let project = project_with_two_owners(&store, &a, &b).await;
    let pid = &project.id;
    assert!(latest(&store, pid, "1.0.0", Platform::Ios).await.is_none());

    let first = PublishId::from_trusted(id());
    let v1 = [
        update(pid, &first, "1.0.0", Platform::Ios, "v1ios"),
        update(pid, &first, "1.0.0", Platform::Android, "v1and"),
    ];
    store.insert_publish(&v1).await.unwrap();
    // An iOS-only publish leaves Android alone.
    let second = PublishId::from_trusted(id());
    let v2 = [update(pid, &second, "1.0.0", Platform::Ios, "v2ios")];
    store.insert_publish(&v2).await.unwrap();
    store
        .insert_publish(&[update(
            pid,
            &PublishId::from_trusted(id()),
            "2.0.0",
            Platform::Ios,
            "rt2",
        )])
        .await
        .unwrap();

    let ios = latest(&store, pid, "1.0.0", Platform::Ios).await.unwrap();
    assert_eq!(ios, v2[0]);
    assert_eq!(ios.launch_asset().unwrap().path, "bundle.hbc");
    assert_eq!(ios.assets.len(), 3);
    let android = latest(&store, pid, "1.0.0", Platform::Android)
        .await
        .unwrap();
    assert_eq!(android, v1[1]);
    assert_eq!(
        UpdateStore::find(&store, pid, &v1[0].id)
            .await
            .unwrap()
            .unwrap(),
        v1[0]
    );
    assert!(
        UpdateStore::find(
            &store,
            &ProjectId::parse("0196d1c2-0000-7000-8000-000000000009").unwrap(),
            &v1[0].id,
        )
        .await
        .unwrap()
        .is_none()
    );
    assert_eq!(
        store.runtime_versions(pid, Platform::Ios).await.unwrap(),
        vec![
            RuntimeVersion::parse("2.0.0").unwrap(),
            RuntimeVersion::parse("1.0.0").unwrap()
        ]
    );
    assert_eq!(
        store
            .runtime_versions(pid, Platform::Android)
            .await
            .unwrap(),
        vec![RuntimeVersion::parse("1.0.0").unwrap()]
    );

    // Deleting the project removes its updates; publishing to it then fails cleanly.
    ProjectStore::delete(&store, pid).await.unwrap();
    assert!(
        UpdateStore::find(&store, pid, &v1[0].id)
            .await
            .unwrap()
            .is_none()
    );
    let orphan = store
        .insert_publish(&[update(
            pid,
            &PublishId::from_trusted(id()),
            "1.0.0",
            Platform::Ios,
            "late",
        )])
        .await;
    assert!(matches!(orphan, Err(StoreError::ProjectGone)), "{orphan:?}");
}

async fn a_failed_publish_leaves_nothing(store: SqlStore) {
    let (a, b) = (user(&store, "fa").await, user(&store, "fb").await);
    let project = project_with_two_owners(&store, &a, &b).await;
    let pid = &project.id;
    let publish = PublishId::from_trusted(id());
    let good = update(pid, &publish, "1.0.0", Platform::Ios, "good");
    // The second row reuses the first's id: the transaction must fail whole.
    let mut clash = update(pid, &publish, "1.0.0", Platform::Android, "clash");
    clash.id = good.id.clone();
    assert!(store.insert_publish(&[good, clash]).await.is_err());
    assert!(latest(&store, pid, "1.0.0", Platform::Ios).await.is_none());
    assert!(
        latest(&store, pid, "1.0.0", Platform::Android)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn sqlite_latest_is_per_runtime_and_platform() {
    let (store, _dir) = sqlite_store().await;
    latest_is_per_runtime_and_platform(store).await;
}

#[tokio::test]
async fn postgres_latest_is_per_runtime_and_platform() {
    latest_is_per_runtime_and_platform(postgres_store().await).await;
}

#[tokio::test]
async fn sqlite_a_failed_publish_leaves_nothing() {
    let (store, _dir) = sqlite_store().await;
    a_failed_publish_leaves_nothing(store).await;
}

#[tokio::test]
async fn postgres_a_failed_publish_leaves_nothing() {
    a_failed_publish_leaves_nothing(postgres_store().await).await;
}
