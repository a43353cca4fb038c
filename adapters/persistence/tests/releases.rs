//! Release management in the store, on SQLite and PostgreSQL: rollout
//! candidates, rollout changes and deletions, history, branch heads, pruning,
//! the reference lock, channels, the audit log, and the migration of updates
//! stored before branches existed.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter_persistence::SqlStore;
use chrono::{SubsecRound, Utc};
use common::{id, on_both, postgres_store, postgres_url, project_with_two_owners, user};
use domain::audit::{Actor, ActorKind, AuditEvent};
use domain::id::{ProjectId, PublishId, UpdateId};
use domain::ports::{
    AuditStore, ChannelStore, Constraint, HistoryQuery, ProjectStore, ServeEpoch, StoreError,
    UpdateStore,
};
use domain::project::Project;
use domain::release::{
    BranchName, BranchSplit, Channel, ChannelName, RolloutCandidate, RolloutPercentage,
};
use domain::update::{Platform, RuntimeVersion, Update, UpdateAsset, UpdateKind};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, Database};

const IOS: &[Platform] = &[Platform::Ios];
const ANDROID: &[Platform] = &[Platform::Android];
const BOTH: &[Platform] = &[Platform::Android, Platform::Ios];

fn branch(name: &str) -> BranchName {
    BranchName::parse(name).unwrap()
}

fn channel_name(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

fn pct(value: i64) -> RolloutPercentage {
    RolloutPercentage::parse(value).unwrap()
}

/// A blob hash unique to `label`.
fn sha(label: &str) -> String {
    format!("{label:0>64}")
}

/// The blob hashes of `update` (see [`update`]).
fn shas_of(update: &Update) -> HashSet<String> {
    update.assets.iter().map(|a| a.sha256_hex.clone()).collect()
}

/// One platform's update of a publish on `main`, fully rolled out, with a
/// launch asset and an image whose blob hashes derive from `label`.
fn update(
    project_id: &ProjectId,
    publish_id: &PublishId,
    runtime: &str,
    platform: Platform,
    label: &str,
) -> Update {
    let asset = |suffix: &str, launch: bool| UpdateAsset {
        path: if launch { "bundle.hbc" } else { "assets/a.png" }.to_owned(),
        sha256_hex: sha(&format!("{label}{suffix}")),
        hash: format!("{label:A>43}"),
        key: format!("{label:0>32}"),
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
        message: None,
        rollout: RolloutPercentage::FULL,
        published_by: None,
        republished_from: None,
        manifest_id: id(),
        expo_config: Some(format!("{{\"name\":\"{label}\"}}")),
        assets: vec![asset("b", true), asset("i", false)],
        // Millisecond precision, as the application stamps updates.
        created_at: Utc::now().trunc_subsecs(3),
    }
}

/// Publishes to `branch` for the platforms (one row each, labelled
/// `{label}-{platform}`) and returns the rows in the order of `platforms`.
async fn publish(
    store: &SqlStore,
    project_id: &ProjectId,
    branch_name: &str,
    runtime: &str,
    platforms: &[Platform],
    rollout: i64,
    label: &str,
) -> Vec<Update> {
    let publish_id = PublishId::from_trusted(id());
    let rows: Vec<Update> = platforms
        .iter()
        .map(|platform| Update {
            branch: branch(branch_name),
            rollout: pct(rollout),
            ..update(
                project_id,
                &publish_id,
                runtime,
                *platform,
                &format!("{label}-{}", platform.as_str()),
            )
        })
        .collect();
    store.insert_publish(&rows).await.unwrap();
    rows
}

async fn project(store: &SqlStore, prefix: &str) -> Project {
    let a = user(store, &format!("{prefix}a")).await;
    let b = user(store, &format!("{prefix}b")).await;
    project_with_two_owners(store, &a, &b).await
}

async fn project_id(store: &SqlStore, prefix: &str) -> ProjectId {
    project(store, prefix).await.id
}

fn candidate(update: &Update) -> RolloutCandidate {
    RolloutCandidate {
        id: update.id.clone(),
        publish_id: update.publish_id.clone(),
        rollout: update.rollout,
    }
}

async fn candidates(
    store: &SqlStore,
    project_id: &ProjectId,
    branch_name: &str,
    runtime: &str,
    platform: Platform,
) -> Vec<RolloutCandidate> {
    let runtime = RuntimeVersion::parse(runtime).expect("runtime version");
    store
        .candidates(project_id, &branch(branch_name), &runtime, platform)
        .await
        .unwrap()
}

/// A history row: the update without its assets.
fn row(update: &Update) -> Update {
    Update {
        assets: Vec::new(),
        ..update.clone()
    }
}

fn rows(updates: &[&Update]) -> Vec<Update> {
    updates.iter().map(|u| row(u)).collect()
}

async fn find(store: &SqlStore, project_id: &ProjectId, update_id: &UpdateId) -> Option<Update> {
    UpdateStore::find(store, project_id, update_id)
        .await
        .unwrap()
}

async fn blobs(store: &SqlStore, project_id: &ProjectId) -> HashSet<String> {
    let mut lock = store.lock_references(project_id).await.unwrap();
    let blobs = lock.referenced_blobs().await.unwrap();
    lock.commit().await.unwrap();
    blobs
}

/// Takes and releases the project's lock.
async fn try_lock(store: &SqlStore, project_id: &ProjectId) -> Result<(), StoreError> {
    store.lock_references(project_id).await?.commit().await
}

// 1. Rollout candidates.

async fn candidates_stop_at_the_newest_full_rollout(store: SqlStore) {
    let pid = project_id(&store, "c").await;
    assert!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios)
            .await
            .is_empty()
    );

    // With only partial rollouts, every one is a candidate.
    let p0 = publish(&store, &pid, "main", "1.0.0", IOS, 5, "p0").await;
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&p0[0])]
    );

    let f1 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "f1").await;
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&f1[1])]
    );
    let f2 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "f2").await;
    let p3 = publish(&store, &pid, "main", "1.0.0", IOS, 10, "p3").await;
    let p4 = publish(&store, &pid, "main", "1.0.0", BOTH, 50, "p4").await;
    // Noise: another branch, runtime version and project, all newer.
    let staging = publish(&store, &pid, "staging", "1.0.0", BOTH, 100, "s5").await;
    let rt2 = publish(&store, &pid, "main", "2.0.0", IOS, 100, "r6").await;
    let other = project_id(&store, "c2").await;
    let foreign = publish(&store, &other, "main", "1.0.0", BOTH, 100, "x7").await;

    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&p4[1]), candidate(&p3[0]), candidate(&f2[1])]
    );
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Android).await,
        vec![candidate(&p4[0]), candidate(&f2[0])]
    );
    assert_eq!(
        candidates(&store, &pid, "staging", "1.0.0", Platform::Ios).await,
        vec![candidate(&staging[1])]
    );
    assert_eq!(
        candidates(&store, &pid, "main", "2.0.0", Platform::Ios).await,
        vec![candidate(&rt2[0])]
    );
    assert!(
        candidates(&store, &pid, "main", "2.0.0", Platform::Android)
            .await
            .is_empty()
    );
    assert!(
        candidates(&store, &pid, "feature/x", "1.0.0", Platform::Ios)
            .await
            .is_empty()
    );
    assert_eq!(
        candidates(&store, &other, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&foreign[1])]
    );

    // A halted rollout (0 %) is still a candidate (devices outside it fall
    // through); completing the newest makes it the only one.
    assert!(
        store
            .set_rollout(&pid, &p3[0].publish_id, pct(0))
            .await
            .unwrap()
    );
    let halted = Update {
        rollout: pct(0),
        ..p3[0].clone()
    };
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&p4[1]), candidate(&halted), candidate(&f2[1])]
    );
    assert!(
        store
            .set_rollout(&pid, &p4[0].publish_id, RolloutPercentage::FULL)
            .await
            .unwrap()
    );
    for (platform, newest) in [(Platform::Android, &p4[0]), (Platform::Ios, &p4[1])] {
        let full = Update {
            rollout: RolloutPercentage::FULL,
            ..newest.clone()
        };
        assert_eq!(
            candidates(&store, &pid, "main", "1.0.0", platform).await,
            vec![candidate(&full)],
            "{platform:?}"
        );
    }
}

// 2. Rollout changes and deletion of a publish.

async fn set_rollout_and_delete_publish_cover_every_platform(store: SqlStore) {
    let pid = project_id(&store, "r").await;
    let other = project_id(&store, "r2").await;
    let kept = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "kept").await;
    let target = publish(&store, &pid, "main", "1.0.0", BOTH, 20, "target").await;
    let publish_id = target[0].publish_id.clone();

    assert!(store.set_rollout(&pid, &publish_id, pct(70)).await.unwrap());
    let expected: Vec<Update> = target
        .iter()
        .map(|u| Update {
            rollout: pct(70),
            ..u.clone()
        })
        .collect();
    assert_eq!(
        store.find_publish(&pid, &publish_id).await.unwrap(),
        expected
    );
    // The same value again is still a known publish.
    assert!(store.set_rollout(&pid, &publish_id, pct(70)).await.unwrap());
    // Unknown publishes, and another project's, are refused and untouched.
    assert!(
        !store
            .set_rollout(&pid, &PublishId::from_trusted(id()), pct(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_rollout(&other, &publish_id, pct(10))
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_publish(&pid, &publish_id).await.unwrap(),
        expected
    );
    assert_eq!(
        store.find_publish(&pid, &kept[0].publish_id).await.unwrap(),
        kept
    );

    // Another project cannot delete it.
    assert!(!store.delete_publish(&other, &publish_id).await.unwrap());
    assert_eq!(
        store.find_publish(&pid, &publish_id).await.unwrap().len(),
        2
    );

    let before = blobs(&store, &pid).await;
    for u in &target {
        assert!(shas_of(u).is_subset(&before));
    }
    assert!(store.delete_publish(&pid, &publish_id).await.unwrap());
    for u in &target {
        assert!(
            find(&store, &pid, &u.id).await.is_none(),
            "{:?}",
            u.platform
        );
    }
    assert!(
        store
            .find_publish(&pid, &publish_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Their asset rows went with them; the other publish's stay.
    let after = blobs(&store, &pid).await;
    let kept_shas: HashSet<String> = kept.iter().flat_map(shas_of).collect();
    assert_eq!(after, kept_shas);
    assert_eq!(find(&store, &pid, &kept[1].id).await.unwrap(), kept[1]);

    assert!(!store.delete_publish(&pid, &publish_id).await.unwrap());
    assert!(!store.set_rollout(&pid, &publish_id, pct(10)).await.unwrap());
}

// 3. History.

async fn history_filters_pages_and_round_trips(store: SqlStore) {
    let pid = project_id(&store, "h").await;
    let alice = Actor {
        kind: ActorKind::User,
        id: id(),
        name: "alice".to_owned(),
    };
    let ci = Actor {
        kind: ActorKind::ApiKey,
        id: id(),
        name: "ci key".to_owned(),
    };
    let store_publish = |rows: Vec<Update>| {
        let store = store.clone();
        async move {
            store.insert_publish(&rows).await.unwrap();
            rows
        }
    };
    let p1 = PublishId::from_trusted(id());
    let h1 = store_publish(
        BOTH.iter()
            .map(|p| Update {
                message: Some("first\nline two".to_owned()),
                published_by: Some(alice.clone()),
                ..update(&pid, &p1, "1.0.0", *p, &format!("h1{}", p.as_str()))
            })
            .collect(),
    )
    .await;
    let p2 = PublishId::from_trusted(id());
    let h2 = store_publish(vec![Update {
        branch: branch("feature/login"),
        rollout: pct(30),
        published_by: Some(ci.clone()),
        ..update(&pid, &p2, "1.0.0", Platform::Ios, "h2")
    }])
    .await;
    let p3 = PublishId::from_trusted(id());
    let h3 = store_publish(vec![Update {
        message: Some("republish".to_owned()),
        republished_from: Some(p1.clone()),
        published_by: Some(ci.clone()),
        ..update(&pid, &p3, "2.0.0", Platform::Android, "h3")
    }])
    .await;
    let p4 = PublishId::from_trusted(id());
    let h4 = store_publish(
        BOTH.iter()
            .map(|p| Update {
                kind: UpdateKind::Rollback,
                ..update(&pid, &p4, "1.0.0", *p, &format!("h4{}", p.as_str()))
            })
            .collect(),
    )
    .await;
    let other = project_id(&store, "h2").await;
    let foreign = publish(&store, &other, "main", "1.0.0", BOTH, 100, "hx").await;

    let history = |query: HistoryQuery| {
        let (store, pid) = (store.clone(), pid.clone());
        async move { store.history(&pid, &query).await.unwrap() }
    };
    let all = HistoryQuery {
        limit_rows: 100,
        ..HistoryQuery::default()
    };
    // Newest publish first; a publish's platforms in name order.
    assert_eq!(
        history(all.clone()).await,
        rows(&[&h4[0], &h4[1], &h3[0], &h2[0], &h1[0], &h1[1]])
    );
    assert_eq!(
        history(HistoryQuery {
            branch: Some(BranchName::default_branch()),
            ..all.clone()
        })
        .await,
        rows(&[&h4[0], &h4[1], &h3[0], &h1[0], &h1[1]])
    );
    assert_eq!(
        history(HistoryQuery {
            branch: Some(branch("feature/login")),
            ..all.clone()
        })
        .await,
        rows(&[&h2[0]])
    );
    assert!(
        history(HistoryQuery {
            branch: Some(branch("nope")),
            ..all.clone()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        history(HistoryQuery {
            runtime_version: Some(RuntimeVersion::parse("2.0.0").unwrap()),
            ..all.clone()
        })
        .await,
        rows(&[&h3[0]])
    );
    assert_eq!(
        history(HistoryQuery {
            platform: Some(Platform::Ios),
            ..all.clone()
        })
        .await,
        rows(&[&h4[1], &h2[0], &h1[1]])
    );
    assert_eq!(
        history(HistoryQuery {
            branch: Some(BranchName::default_branch()),
            runtime_version: Some(RuntimeVersion::parse("1.0.0").unwrap()),
            platform: Some(Platform::Android),
            ..all.clone()
        })
        .await,
        rows(&[&h4[0], &h1[0]])
    );

    // Paging: a row limit, then the cursor of the last publish seen.
    let first_page = history(HistoryQuery {
        limit_rows: 3,
        ..all.clone()
    })
    .await;
    assert_eq!(first_page, rows(&[&h4[0], &h4[1], &h3[0]]));
    let second_page = history(HistoryQuery {
        limit_rows: 3,
        before_publish: Some(first_page[2].publish_id.clone()),
        ..all.clone()
    })
    .await;
    assert_eq!(second_page, rows(&[&h2[0], &h1[0], &h1[1]]));
    assert!(
        history(HistoryQuery {
            before_publish: Some(p1.clone()),
            ..all.clone()
        })
        .await
        .is_empty()
    );
    // The cursor combines with filters.
    assert_eq!(
        history(HistoryQuery {
            platform: Some(Platform::Ios),
            before_publish: Some(p4.clone()),
            limit_rows: 1,
            ..all.clone()
        })
        .await,
        rows(&[&h2[0]])
    );

    // Another project's history is its own.
    assert_eq!(
        store.history(&other, &all).await.unwrap(),
        rows(&[&foreign[0], &foreign[1]])
    );
}

// 4. Branch heads.

async fn branch_heads_are_the_newest_row_per_stream(store: SqlStore) {
    let pid = project_id(&store, "b").await;
    assert!(store.branch_heads(&pid).await.unwrap().is_empty());
    let m1 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "m1").await;
    // A partial rollout is a head too: it is the newest row.
    let m2 = publish(&store, &pid, "main", "1.0.0", IOS, 25, "m2").await;
    let m3 = publish(&store, &pid, "main", "2.0.0", IOS, 100, "m3").await;
    let _s1 = publish(&store, &pid, "staging", "1.0.0", ANDROID, 100, "s1").await;
    let s2 = publish(&store, &pid, "staging", "1.0.0", ANDROID, 100, "s2").await;
    let other = project_id(&store, "b2").await;
    let foreign = publish(&store, &other, "main", "1.0.0", IOS, 100, "bx").await;

    let mut heads = store.branch_heads(&pid).await.unwrap();
    heads.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(heads, rows(&[&m1[0], &m2[0], &m3[0], &s2[0]]));
    assert_eq!(
        store.branch_heads(&other).await.unwrap(),
        rows(&[&foreign[0]])
    );
}

// 5. Pruning.

async fn prune_keeps_what_devices_may_be_served(store: SqlStore) {
    let pid = project_id(&store, "p").await;
    let f1 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "f1").await;
    let f2 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "f2").await;
    let f3 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "f3").await;
    let p4 = publish(&store, &pid, "main", "1.0.0", IOS, 10, "p4").await;
    let p5 = publish(&store, &pid, "main", "1.0.0", IOS, 40, "p5").await;
    let staging = [
        publish(&store, &pid, "staging", "1.0.0", IOS, 100, "s1").await,
        publish(&store, &pid, "staging", "1.0.0", IOS, 100, "s2").await,
    ];
    let rt2 = [
        publish(&store, &pid, "main", "2.0.0", IOS, 100, "r1").await,
        publish(&store, &pid, "main", "2.0.0", IOS, 100, "r2").await,
    ];
    let other = project_id(&store, "p2").await;
    let mut foreign = Vec::new();
    for label in ["x1", "x2", "x3"] {
        foreign.extend(publish(&store, &other, "main", "1.0.0", IOS, 100, label).await);
    }
    let main = BranchName::default_branch();
    let prune = |branch_name: BranchName, runtime: &'static str, platform, keep| {
        let (store, pid) = (store.clone(), pid.clone());
        async move {
            let mut ids = store
                .prune(
                    &pid,
                    &branch_name,
                    &RuntimeVersion::parse(runtime).unwrap(),
                    platform,
                    keep,
                )
                .await
                .unwrap();
            ids.sort();
            ids
        }
    };

    // keep = 1 with two partial rollouts on top: the full update under them
    // is still served, so only the two older full ones go.
    assert_eq!(
        prune(main.clone(), "1.0.0", Platform::Ios, 1).await,
        vec![f1[1].id.clone(), f2[1].id.clone()]
    );
    let servable = vec![candidate(&p5[0]), candidate(&p4[0]), candidate(&f3[1])];
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        servable
    );
    for gone in [&f1[1], &f2[1]] {
        assert!(find(&store, &pid, &gone.id).await.is_none());
    }
    for kept in [&f3[1], &p4[0], &p5[0]] {
        assert_eq!(find(&store, &pid, &kept.id).await.as_ref(), Some(kept));
    }
    // The pruned rows' assets went with them.
    let referenced = blobs(&store, &pid).await;
    for gone in [&f1[1], &f2[1]] {
        assert!(shas_of(gone).is_disjoint(&referenced));
    }
    // Nothing more to prune, even with keep = 0: all that is left is servable.
    assert!(
        prune(main.clone(), "1.0.0", Platform::Ios, 1)
            .await
            .is_empty()
    );
    assert!(
        prune(main.clone(), "1.0.0", Platform::Ios, 0)
            .await
            .is_empty()
    );
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        servable
    );

    // The other streams were untouched by that; pruning one of them is
    // independent.
    for kept in [&f1[0], &f2[0], &f3[0]] {
        assert_eq!(find(&store, &pid, &kept.id).await.as_ref(), Some(kept));
    }
    for kept in staging.iter().chain(&rt2).map(|p| &p[0]) {
        assert_eq!(find(&store, &pid, &kept.id).await.as_ref(), Some(kept));
    }
    for kept in &foreign {
        assert_eq!(find(&store, &other, &kept.id).await.as_ref(), Some(kept));
    }
    assert_eq!(
        prune(main.clone(), "1.0.0", Platform::Android, 2).await,
        vec![f1[0].id.clone()]
    );
    assert!(
        prune(branch("staging"), "1.0.0", Platform::Ios, 5)
            .await
            .is_empty()
    );
    assert_eq!(
        prune(main.clone(), "2.0.0", Platform::Ios, 1).await,
        vec![rt2[0][0].id.clone()]
    );
    assert!(find(&store, &pid, &rt2[1][0].id).await.is_some());
    assert!(
        prune(branch("nothing"), "1.0.0", Platform::Ios, 0)
            .await
            .is_empty()
    );
    assert_eq!(
        store
            .history(
                &other,
                &HistoryQuery {
                    limit_rows: 100,
                    ..HistoryQuery::default()
                }
            )
            .await
            .unwrap()
            .len(),
        3
    );
}

// 6. The reference lock.

async fn the_reference_lock_scopes_and_isolates(store: SqlStore) {
    let pid = project_id(&store, "l").await;
    let other = project_id(&store, "l2").await;
    let empty = project_id(&store, "l3").await;
    let a1 = publish(&store, &pid, "main", "1.0.0", BOTH, 100, "a1").await;
    let b1 = publish(&store, &other, "main", "1.0.0", BOTH, 100, "b1").await;
    let a1_shas: HashSet<String> = a1.iter().flat_map(shas_of).collect();
    let b1_shas: HashSet<String> = b1.iter().flat_map(shas_of).collect();
    assert_eq!(a1_shas.len(), 4);
    assert_eq!(blobs(&store, &pid).await, a1_shas);
    assert_eq!(blobs(&store, &other).await, b1_shas);
    assert!(blobs(&store, &empty).await.is_empty());

    // A publish through the lock: visible inside, invisible outside until
    // the commit.
    let a2 = [update(
        &pid,
        &PublishId::from_trusted(id()),
        "1.0.0",
        Platform::Ios,
        "a2",
    )];
    let mut lock = store.lock_references(&pid).await.unwrap();
    lock.insert_publish(&a2).await.unwrap();
    let inside = lock.referenced_blobs().await.unwrap();
    assert_eq!(inside, a1_shas.union(&shas_of(&a2[0])).cloned().collect());
    assert!(find(&store, &pid, &a2[0].id).await.is_none());
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&a1[1])]
    );
    lock.commit().await.unwrap();
    assert_eq!(find(&store, &pid, &a2[0].id).await.as_ref(), Some(&a2[0]));
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&a2[0])]
    );

    // Dropping the lock without a commit leaves nothing, and releases it.
    let a3 = [
        update(
            &pid,
            &PublishId::from_trusted(id()),
            "1.0.0",
            Platform::Ios,
            "a3",
        ),
        update(
            &pid,
            &PublishId::from_trusted(id()),
            "1.0.0",
            Platform::Android,
            "a3b",
        ),
    ];
    let mut lock = store.lock_references(&pid).await.unwrap();
    lock.insert_publish(&a3).await.unwrap();
    drop(lock);
    for u in &a3 {
        assert!(find(&store, &pid, &u.id).await.is_none());
    }
    let expected: HashSet<String> = a1_shas.union(&shas_of(&a2[0])).cloned().collect();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), blobs(&store, &pid))
            .await
            .expect("the dropped lock was released"),
        expected
    );

    // An empty publish through the store is a no-op.
    store.insert_publish(&[]).await.unwrap();

    // A deleted project cannot be locked.
    ProjectStore::delete(&store, &pid).await.unwrap();
    let deleted = try_lock(&store, &pid).await;
    assert!(
        matches!(deleted, Err(StoreError::ProjectGone)),
        "{deleted:?}"
    );
    let unknown = try_lock(&store, &ProjectId::from_trusted(id())).await;
    assert!(
        matches!(unknown, Err(StoreError::ProjectGone)),
        "{unknown:?}"
    );
    // The other project's blobs are unaffected.
    assert_eq!(blobs(&store, &other).await, b1_shas);
}

/// How long the first lock is held in the waiting tests.
const HOLD: Duration = Duration::from_millis(300);
/// The least wait that shows the second lock queued behind the first.
const WAITED: Duration = Duration::from_millis(250);

/// Takes the project's lock in a task, publishes `rows` through it, signals,
/// holds it for [`HOLD`], then commits.
fn hold_lock(
    store: &Arc<SqlStore>,
    project_id: &ProjectId,
    rows: Vec<Update>,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    let (held, held_rx) = tokio::sync::oneshot::channel();
    let (store, project_id) = (store.clone(), project_id.clone());
    let task = tokio::spawn(async move {
        let mut lock = store.lock_references(&project_id).await.unwrap();
        lock.insert_publish(&rows).await.unwrap();
        held.send(()).unwrap();
        tokio::time::sleep(HOLD).await;
        lock.commit().await.unwrap();
    });
    (task, held_rx)
}

async fn a_second_lock_on_the_project_waits(store: SqlStore) {
    let store = Arc::new(store);
    let pid = project_id(&store, "w").await;
    let late = vec![update(
        &pid,
        &PublishId::from_trusted(id()),
        "1.0.0",
        Platform::Ios,
        "late",
    )];
    let late_shas = shas_of(&late[0]);
    let (task, held) = hold_lock(&store, &pid, late);
    held.await.unwrap();
    let started = Instant::now();
    let mut second = store.lock_references(&pid).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= WAITED, "the second lock waited only {waited:?}");
    // It sees what the first committed.
    assert_eq!(second.referenced_blobs().await.unwrap(), late_shas);
    second.commit().await.unwrap();
    task.await.unwrap();
}

async fn a_lock_on_another_project_does_not_wait(store: SqlStore) {
    let store = Arc::new(store);
    let pid = project_id(&store, "n").await;
    let other = project_id(&store, "n2").await;
    let rows = vec![update(
        &pid,
        &PublishId::from_trusted(id()),
        "1.0.0",
        Platform::Ios,
        "held",
    )];
    let (task, held) = hold_lock(&store, &pid, rows);
    held.await.unwrap();
    let started = Instant::now();
    let mut lock = store.lock_references(&other).await.unwrap();
    let row = update(
        &other,
        &PublishId::from_trusted(id()),
        "1.0.0",
        Platform::Ios,
        "free",
    );
    lock.insert_publish(std::slice::from_ref(&row))
        .await
        .unwrap();
    lock.commit().await.unwrap();
    let took = started.elapsed();
    assert!(took < WAITED, "a lock on another project took {took:?}");
    assert!(!task.is_finished(), "the first lock was no longer held");
    task.await.unwrap();
    assert_eq!(find(&store, &other, &row.id).await, Some(row));
}

// 7. Channels.

fn channel(project_id: &str, name: &str, branch_name: &str, split: Option<(&str, i64)>) -> Channel {
    let now = Utc::now().trunc_subsecs(3);
    Channel {
        project_id: project_id.to_owned(),
        name: channel_name(name),
        branch: branch(branch_name),
        split: split.map(|(b, p)| BranchSplit {
            branch: branch(b),
            percentage: pct(p),
        }),
        created_at: now,
        updated_at: now,
    }
}

async fn channels_insert_save_list_delete(store: SqlStore) {
    let pid = project_id(&store, "ch").await;
    let other = project_id(&store, "ch2").await;
    assert!(ChannelStore::list(&store, &pid).await.unwrap().is_empty());
    assert!(
        ChannelStore::find(&store, &pid, &channel_name("production"))
            .await
            .unwrap()
            .is_none()
    );

    let production = channel(&pid, "production", "main", None);
    ChannelStore::insert(&store, &production).await.unwrap();
    assert_eq!(
        ChannelStore::find(&store, &pid, &production.name)
            .await
            .unwrap(),
        Some(production.clone())
    );
    let again = channel(&pid, "production", "staging", None);
    match ChannelStore::insert(&store, &again).await {
        Err(StoreError::Conflict(constraint)) => assert_eq!(constraint, Constraint::Channel),
        other => panic!("expected a channel conflict, got {other:?}"),
    }
    assert_eq!(
        ChannelStore::find(&store, &pid, &production.name)
            .await
            .unwrap(),
        Some(production.clone())
    );
    // The same name in another project is another channel.
    let elsewhere = channel(&other, "production", "release/1", Some(("main", 5)));
    ChannelStore::insert(&store, &elsewhere).await.unwrap();

    // save_if_unchanged creates when there was nothing…
    let beta = channel(&pid, "beta", "feature/login", Some(("main", 20)));
    assert!(
        ChannelStore::save_if_unchanged(&store, &beta, None)
            .await
            .unwrap()
    );
    // …but not twice: someone else created it first.
    assert!(
        !ChannelStore::save_if_unchanged(&store, &beta, None)
            .await
            .unwrap()
    );
    let stored = ChannelStore::find(&store, &pid, &beta.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, beta);
    // …then replaces the branch and split, keeping the creation time, when
    // based on the stored version.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let repointed = Channel {
        created_at: Utc::now().trunc_subsecs(3),
        ..channel(&pid, "beta", "main", Some(("feature/login", 50)))
    };
    assert!(
        ChannelStore::save_if_unchanged(&store, &repointed, Some(stored.updated_at))
            .await
            .unwrap()
    );
    let saved = ChannelStore::find(&store, &pid, &beta.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        saved,
        Channel {
            created_at: beta.created_at,
            ..repointed.clone()
        }
    );
    // A change based on the old version loses: nothing is overwritten unseen.
    let stale = channel(&pid, "beta", "stale", None);
    assert!(
        !ChannelStore::save_if_unchanged(&store, &stale, Some(stored.updated_at))
            .await
            .unwrap()
    );
    let unsplit = channel(&pid, "beta", "main", None);
    assert!(
        ChannelStore::save_if_unchanged(&store, &unsplit, Some(saved.updated_at))
            .await
            .unwrap()
    );
    let saved = ChannelStore::find(&store, &pid, &beta.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.split, None);
    assert_eq!(saved.branch, branch("main"));
    assert_eq!(saved.updated_at, unsplit.updated_at);

    let zeta = channel(&pid, "zeta", "main", None);
    let alpha = channel(&pid, "alpha", "alpha", Some(("main", 0)));
    ChannelStore::insert(&store, &zeta).await.unwrap();
    assert!(
        ChannelStore::save_if_unchanged(&store, &alpha, None)
            .await
            .unwrap()
    );
    let names: Vec<String> = ChannelStore::list(&store, &pid)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name.as_str().to_owned())
        .collect();
    assert_eq!(names, ["alpha", "beta", "production", "zeta"]);
    assert_eq!(
        ChannelStore::list(&store, &pid).await.unwrap()[0],
        alpha.clone()
    );
    assert_eq!(
        ChannelStore::list(&store, &other).await.unwrap(),
        vec![elsewhere.clone()]
    );

    assert!(
        ChannelStore::delete(&store, &pid, &zeta.name)
            .await
            .unwrap()
    );
    assert!(
        !ChannelStore::delete(&store, &pid, &zeta.name)
            .await
            .unwrap()
    );
    assert!(
        !ChannelStore::delete(&store, &pid, &channel_name("never"))
            .await
            .unwrap()
    );
    assert!(
        ChannelStore::find(&store, &pid, &zeta.name)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ChannelStore::list(&store, &pid).await.unwrap().len(), 3);

    // Deleting the project removes its channels; writing one then fails.
    ProjectStore::delete(&store, &pid).await.unwrap();
    assert!(ChannelStore::list(&store, &pid).await.unwrap().is_empty());
    assert!(
        ChannelStore::find(&store, &pid, &production.name)
            .await
            .unwrap()
            .is_none()
    );
    let orphan = ChannelStore::insert(&store, &channel(&pid, "late", "main", None)).await;
    assert!(matches!(orphan, Err(StoreError::ProjectGone)), "{orphan:?}");
    assert_eq!(
        ChannelStore::list(&store, &other).await.unwrap(),
        vec![elsewhere]
    );
}

// 8. The audit log.

fn event(project_id: &str, action: &str, actor: &Actor) -> AuditEvent {
    AuditEvent {
        id: id(),
        project_id: project_id.to_owned(),
        actor: actor.clone(),
        action: action.to_owned(),
        details: format!("{{\"action\":\"{action}\"}}"),
        created_at: Utc::now().trunc_subsecs(3),
    }
}

async fn audit_lists_newest_first_per_project(store: SqlStore) {
    let pid = project_id(&store, "au").await;
    let other = project_id(&store, "au2").await;
    assert!(
        AuditStore::list(&store, &pid, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let user_actor = Actor {
        kind: ActorKind::User,
        id: id(),
        name: "alice".to_owned(),
    };
    let key_actor = Actor {
        kind: ActorKind::ApiKey,
        id: id(),
        name: "ci".to_owned(),
    };
    let mut events = Vec::new();
    for (n, action) in ["update.publish", "channel.update", "update.rollout"]
        .iter()
        .cycle()
        .take(5)
        .enumerate()
    {
        let actor = if n % 2 == 0 { &user_actor } else { &key_actor };
        let e = event(&pid, action, actor);
        AuditStore::record(&store, &e).await.unwrap();
        // Another project's events interleave.
        AuditStore::record(&store, &event(&other, "update.delete", &key_actor))
            .await
            .unwrap();
        events.push(e);
    }
    let newest_first: Vec<AuditEvent> = events.iter().rev().cloned().collect();
    assert_eq!(
        AuditStore::list(&store, &pid, None, 100).await.unwrap(),
        newest_first
    );
    assert_eq!(
        AuditStore::list(&store, &pid, None, 2).await.unwrap(),
        newest_first[..2]
    );
    assert_eq!(
        AuditStore::list(&store, &pid, Some(&events[3].id), 2)
            .await
            .unwrap(),
        newest_first[2..4]
    );
    assert_eq!(
        AuditStore::list(&store, &pid, Some(&events[1].id), 10)
            .await
            .unwrap(),
        newest_first[4..]
    );
    assert!(
        AuditStore::list(&store, &pid, Some(&events[0].id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let foreign = AuditStore::list(&store, &other, None, 100).await.unwrap();
    assert_eq!(foreign.len(), 5);
    assert!(foreign.iter().all(|e| e.project_id == *other));

    ProjectStore::delete(&store, &pid).await.unwrap();
    assert!(
        AuditStore::list(&store, &pid, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let orphan = AuditStore::record(&store, &event(&pid, "late", &user_actor)).await;
    assert!(matches!(orphan, Err(StoreError::ProjectGone)), "{orphan:?}");
    assert_eq!(
        AuditStore::list(&store, &other, None, 100)
            .await
            .unwrap()
            .len(),
        5
    );
}

// 8b. The serve epoch: every change to what is served moves it, here at
// once and in another instance on the same database within a second.

/// Runs `change` on `a` and checks that `a`'s epoch moved at once and `b`'s
/// (following the shared counter) within a second.
async fn moves_both<F: std::future::Future<Output = ()>>(
    a: &SqlStore,
    b: &SqlStore,
    what: &str,
    change: F,
) {
    let (a_before, b_before) = (a.current(), b.current());
    change.await;
    assert_ne!(
        a.current(),
        a_before,
        "{what}: this instance's epoch did not move"
    );
    let started = Instant::now();
    while b.current() == b_before {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: the other instance's epoch did not move within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn every_served_change_moves_the_epoch_everywhere(a: SqlStore, b: SqlStore) {
    let b = Arc::new(b);
    let follower = tokio::spawn(Arc::clone(&b).follow_changes());
    let pid = project_id(&a, "e").await;
    // Not served: no move (a reader would lose its cache for nothing).
    let unchanged = a.current();
    assert!(
        !a.set_rollout(&pid, &PublishId::from_trusted(id()), pct(50))
            .await
            .unwrap()
    );
    assert!(
        !a.delete_publish(&pid, &PublishId::from_trusted(id()))
            .await
            .unwrap()
    );
    assert!(
        !ChannelStore::delete(&a, &pid, &channel_name("nope"))
            .await
            .unwrap()
    );
    assert_eq!(
        a.current(),
        unchanged,
        "a change of nothing moved the epoch"
    );

    let mut rows = Vec::new();
    moves_both(&a, &b, "publish", async {
        rows = publish(&a, &pid, "main", "1.0.0", IOS, 100, "v1").await;
    })
    .await;
    let publish_id = rows[0].publish_id.clone();
    moves_both(&a, &b, "rollout", async {
        assert!(a.set_rollout(&pid, &publish_id, pct(40)).await.unwrap());
    })
    .await;
    let production = channel(&pid, "production", "main", None);
    moves_both(&a, &b, "channel created", async {
        ChannelStore::insert(&a, &production).await.unwrap();
    })
    .await;
    let repointed = Channel {
        branch: branch("beta"),
        updated_at: production.updated_at + chrono::Duration::milliseconds(1),
        ..production.clone()
    };
    moves_both(&a, &b, "channel repointed", async {
        assert!(
            a.save_if_unchanged(&repointed, Some(production.updated_at))
                .await
                .unwrap()
        );
    })
    .await;
    moves_both(&a, &b, "channel deleted", async {
        assert!(
            ChannelStore::delete(&a, &pid, &channel_name("production"))
                .await
                .unwrap()
        );
    })
    .await;
    for label in ["v2", "v3"] {
        publish(&a, &pid, "main", "1.0.0", IOS, 100, label).await;
    }
    moves_both(&a, &b, "pruned", async {
        let pruned = a
            .prune(
                &pid,
                &branch("main"),
                &RuntimeVersion::parse("1.0.0").unwrap(),
                Platform::Ios,
                1,
            )
            .await
            .unwrap();
        assert_eq!(pruned.len(), 2);
    })
    .await;
    let last = publish(&a, &pid, "main", "1.0.0", IOS, 100, "v4").await;
    moves_both(&a, &b, "publish deleted", async {
        assert!(a.delete_publish(&pid, &last[0].publish_id).await.unwrap());
    })
    .await;
    moves_both(&a, &b, "project deleted", async {
        ProjectStore::delete(&a, &pid).await.unwrap();
    })
    .await;
    follower.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_served_change_moves_the_epoch_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ota.db").display());
    let a = SqlStore::connect(&url).await.unwrap();
    let b = SqlStore::connect(&url).await.unwrap();
    every_served_change_moves_the_epoch_everywhere(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_served_change_moves_the_epoch_everywhere() {
    let url = postgres_url().await;
    let a = SqlStore::connect(&url).await.unwrap();
    let b = SqlStore::connect(&url).await.unwrap();
    every_served_change_moves_the_epoch_everywhere(a, b).await;
}

// 9. Migration from the schema before release management.

/// Undoes `m20261127_000003_releases` by hand, so that the next connect
/// applies it to a database holding updates from the previous schema.
const BACK_TO_THE_UPDATES_SCHEMA: &[&str] = &[
    "DROP TABLE audit_events",
    "DROP TABLE channels",
    "DROP INDEX ix_updates_history",
    "DROP INDEX ix_updates_branch_latest",
    "ALTER TABLE updates DROP COLUMN republished_from",
    "ALTER TABLE updates DROP COLUMN published_by_name",
    "ALTER TABLE updates DROP COLUMN published_by_id",
    "ALTER TABLE updates DROP COLUMN published_by_type",
    "ALTER TABLE updates DROP COLUMN rollout_percentage",
    "ALTER TABLE updates DROP COLUMN message",
    "ALTER TABLE updates DROP COLUMN branch",
    "DELETE FROM seaql_migrations WHERE version = 'm20261127_000003_releases'",
];

async fn old_updates_land_on_main_fully_rolled_out(url: String) {
    let store = SqlStore::connect(&url).await.unwrap();
    let pid = project_id(&store, "m").await;
    store.close().await;

    let db = Database::connect(url.as_str()).await.unwrap();
    for sql in BACK_TO_THE_UPDATES_SCHEMA {
        db.execute_unprepared(sql)
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }
    // An update as the previous schema stored it.
    let old = update(
        &pid,
        &PublishId::from_trusted(id()),
        "1.0.0",
        Platform::Ios,
        "old",
    );
    let insert = Query::insert()
        .into_table(Alias::new("updates"))
        .columns(
            [
                "id",
                "publish_id",
                "project_id",
                "runtime_version",
                "platform",
                "kind",
                "manifest_id",
                "expo_config",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            old.id.to_string().into(),
            old.publish_id.to_string().into(),
            old.project_id.to_string().into(),
            old.runtime_version.to_string().into(),
            old.platform.as_str().into(),
            old.kind.as_str().into(),
            old.manifest_id.clone().into(),
            old.expo_config.clone().into(),
            old.created_at.into(),
        ])
        .to_owned();
    db.execute(&insert).await.unwrap();
    for (position, asset) in old.assets.iter().enumerate() {
        let insert = Query::insert()
            .into_table(Alias::new("update_assets"))
            .columns(
                [
                    "update_id",
                    "position",
                    "is_launch_asset",
                    "path",
                    "sha256_hex",
                    "hash",
                    "key",
                    "content_type",
                    "file_extension",
                    "size",
                ]
                .map(Alias::new),
            )
            .values_panic([
                old.id.to_string().into(),
                i32::try_from(position).unwrap().into(),
                asset.is_launch_asset.into(),
                asset.path.clone().into(),
                asset.sha256_hex.clone().into(),
                asset.hash.clone().into(),
                asset.key.clone().into(),
                asset.content_type.clone().into(),
                asset.file_extension.clone().into(),
                i64::try_from(asset.size).unwrap().into(),
            ])
            .to_owned();
        db.execute(&insert).await.unwrap();
    }
    db.close().await.unwrap();

    let store = SqlStore::connect(&url).await.unwrap();
    let migrated = find(&store, &pid, &old.id).await.unwrap();
    assert_eq!(migrated.branch, BranchName::default_branch());
    assert_eq!(migrated.rollout, RolloutPercentage::FULL);
    assert_eq!(migrated.message, None);
    assert_eq!(migrated.published_by, None);
    assert_eq!(migrated.republished_from, None);
    assert_eq!(migrated, old);
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&old)]
    );
    assert_eq!(
        store
            .history(
                &pid,
                &HistoryQuery {
                    limit_rows: 10,
                    ..HistoryQuery::default()
                }
            )
            .await
            .unwrap(),
        vec![row(&old)]
    );
    assert_eq!(blobs(&store, &pid).await, shas_of(&old));
    // The release tables are back.
    assert!(ChannelStore::list(&store, &pid).await.unwrap().is_empty());
    assert!(
        AuditStore::list(&store, &pid, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // And a new publish sits on top of the old update.
    let new = publish(&store, &pid, "main", "1.0.0", IOS, 30, "new").await;
    assert_eq!(
        candidates(&store, &pid, "main", "1.0.0", Platform::Ios).await,
        vec![candidate(&new[0]), candidate(&old)]
    );
}

on_both!(
    candidates_stop_at_the_newest_full_rollout,
    sqlite_candidates_stop_at_the_newest_full_rollout,
    postgres_candidates_stop_at_the_newest_full_rollout
);
on_both!(
    set_rollout_and_delete_publish_cover_every_platform,
    sqlite_set_rollout_and_delete_publish_cover_every_platform,
    postgres_set_rollout_and_delete_publish_cover_every_platform
);
on_both!(
    history_filters_pages_and_round_trips,
    sqlite_history_filters_pages_and_round_trips,
    postgres_history_filters_pages_and_round_trips
);
on_both!(
    branch_heads_are_the_newest_row_per_stream,
    sqlite_branch_heads_are_the_newest_row_per_stream,
    postgres_branch_heads_are_the_newest_row_per_stream
);
on_both!(
    prune_keeps_what_devices_may_be_served,
    sqlite_prune_keeps_what_devices_may_be_served,
    postgres_prune_keeps_what_devices_may_be_served
);
on_both!(
    the_reference_lock_scopes_and_isolates,
    sqlite_the_reference_lock_scopes_and_isolates,
    postgres_the_reference_lock_scopes_and_isolates
);
on_both!(
    a_second_lock_on_the_project_waits,
    sqlite_a_second_lock_on_the_project_waits,
    postgres_a_second_lock_on_the_project_waits
);
on_both!(
    channels_insert_save_list_delete,
    sqlite_channels_insert_save_list_delete,
    postgres_channels_insert_save_list_delete
);
on_both!(
    audit_lists_newest_first_per_project,
    sqlite_audit_lists_newest_first_per_project,
    postgres_audit_lists_newest_first_per_project
);

/// SQLite has one writer per database, so only PostgreSQL promises this.
#[tokio::test]
async fn postgres_a_lock_on_another_project_does_not_wait() {
    a_lock_on_another_project_does_not_wait(postgres_store().await).await;
}

#[tokio::test]
async fn sqlite_old_updates_land_on_main_fully_rolled_out() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ota.db").display());
    old_updates_land_on_main_fully_rolled_out(url).await;
}

#[tokio::test]
async fn postgres_old_updates_land_on_main_fully_rolled_out() {
    old_updates_land_on_main_fully_rolled_out(postgres_url().await).await;
}
