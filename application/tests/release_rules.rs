//! The release rules, without HTTP: `ReleaseService` (rollouts, channels,
//! history, deletion) and `PublishService::{republish, rollback}` over the
//! in-memory fakes, checked by what devices are then served.
#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use application::test_support::{Harness, TestPublish};
use application::{
    AppError, Caller, ChannelChange, HistoryRequest, ManifestAnswer, ManifestRequest, NewChannel,
    Patch, ProtocolVersion, ReleaseService, RepublishRequest, RollbackRequest, ServeService,
    SignatureRequest,
};
use chrono::{Duration, Utc};
use domain::id::{ProjectId, PublishId};
use domain::member::Role;
use domain::ports::ChannelStore;
use domain::project::Project;
use domain::release::{BranchName, ChannelName};
use domain::update::{Platform, RuntimeVersion, Update};
use domain::user::User;
use serde_json::Value;

struct World {
    h: Harness,
    releases: ReleaseService,
    serve: ServeService,
    project: Project,
    project_id: ProjectId,
    owner: Caller,
}

fn world(keep: Option<u64>) -> World {
    let h = Harness::new();
    let owner = h.store.add_user("owner");
    let project = h.store.add_project(&owner);
    World {
        releases: h.releases(keep),
        serve: h.serve(),
        project_id: ProjectId::parse(&project.id).unwrap(),
        owner: Caller::User(owner),
        project,
        h,
    }
}

fn publish_id(updates: &[Update]) -> PublishId {
    updates[0].publish_id.clone()
}

fn ios(updates: &[Update]) -> &Update {
    updates
        .iter()
        .find(|u| u.platform == Platform::Ios)
        .unwrap()
}

impl World {
    async fn publish(&self, publish: TestPublish) -> Vec<Update> {
        publish.store(&self.h.store, &self.h.blobs).await
    }

    fn new_publish(&self) -> TestPublish {
        TestPublish::update(&self.project.id)
    }

    fn member(&self, name: &str, role: Role) -> Caller {
        let user: User = self.h.store.add_user(name);
        self.h.store.add_member(&self.project.id, &user, role);
        Caller::User(user)
    }

    /// What a device on `channel` is served: a manifest id or a directive
    /// type, or the error's kind.
    async fn served(&self, channel: &str, platform: Platform, device: Option<&str>) -> String {
        let request = ManifestRequest {
            project_id: self.project_id.clone(),
            platform,
            runtime_version: RuntimeVersion::parse("1.0.0").unwrap(),
            channel: ChannelName::parse(channel).unwrap(),
            protocol: ProtocolVersion::V1,
            current_update_id: None,
            embedded_update_id: None,
            signature: SignatureRequest::NotRequested,
            failed_update_ids: Vec::new(),
            fatal_error: false,
            client_id: device.map(str::to_owned),
            directives_allowed: true,
        };
        match self.serve.manifest(&request).await {
            Ok(served) => {
                let json: Value =
                    serde_json::from_str(&served.answer.body().expect("a body").json).unwrap();
                match served.answer {
                    ManifestAnswer::Update(_) => json["id"].as_str().unwrap().to_owned(),
                    _ => json["type"].as_str().unwrap().to_owned(),
                }
            }
            Err(AppError::NotFound(_)) => "not found".to_owned(),
            Err(other) => panic!("{other:?}"),
        }
    }

    async fn latest_on_main(&self) -> String {
        self.served("main", Platform::Ios, Some("device-1")).await
    }
}

#[tokio::test]
async fn a_rollout_change_moves_devices_and_halting_sends_them_back() {
    let w = world(None);
    let stable = w.publish(w.new_publish()).await;
    let canary = w.publish(w.new_publish().rollout(1)).await;
    let id = publish_id(&canary);
    // Devices without a client id are outside every partial rollout.
    let anonymous = || w.served("main", Platform::Ios, None);
    assert_eq!(anonymous().await, ios(&stable).manifest_id);

    let group = w
        .releases
        .set_rollout(&w.owner, &w.project_id, &id, 100)
        .await
        .unwrap();
    assert_eq!(group.rollout.value(), 100);
    assert!(group.updates.iter().all(|u| u.rollout.value() == 100));
    assert_eq!(group.platforms, vec![Platform::Android, Platform::Ios]);
    assert_eq!(anonymous().await, ios(&canary).manifest_id);

    w.releases
        .set_rollout(&w.owner, &w.project_id, &id, 0)
        .await
        .unwrap();
    for n in 0..20 {
        let device = format!("device-{n}");
        let served = w.served("main", Platform::Ios, Some(&device)).await;
        assert_eq!(served, ios(&stable).manifest_id, "halted: nobody gets it");
    }
    let rollouts: Vec<Value> =
        w.h.store
            .audit_events(&w.project.id)
            .iter()
            .filter(|e| e.action == "update.rollout")
            .map(|e| serde_json::from_str(&e.details).unwrap())
            .collect();
    assert_eq!(rollouts.len(), 2);
    assert_eq!(
        (&rollouts[0]["from"], &rollouts[0]["to"]),
        (&1.into(), &100.into())
    );

    let refused = w
        .releases
        .set_rollout(&w.owner, &w.project_id, &id, 101)
        .await;
    assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
    let unknown = PublishId::parse("0196d1c2-0000-7000-8000-0000000000aa").unwrap();
    let refused = w
        .releases
        .set_rollout(&w.owner, &w.project_id, &unknown, 50)
        .await;
    assert!(matches!(refused, Err(AppError::NotFound(_))), "{refused:?}");
}

#[tokio::test]
async fn completing_a_rollout_prunes_what_no_device_can_be_served_any_more() {
    let w = world(Some(1));
    let old = w.publish(w.new_publish()).await;
    let stable = w.publish(w.new_publish()).await;
    let canary = w.publish(w.new_publish().rollout(30)).await;
    assert_eq!(w.h.store.updates().len(), 6, "nothing pruned yet");

    let id = publish_id(&canary);
    w.releases
        .set_rollout(&w.owner, &w.project_id, &id, 100)
        .await
        .unwrap();
    let left: Vec<PublishId> =
        w.h.store
            .updates()
            .into_iter()
            .map(|u| u.publish_id)
            .collect();
    assert_eq!(
        left,
        vec![id.clone(), id.clone()],
        "only the completed rollout stays"
    );
    let actions = w.h.store.audit_actions(&w.project.id);
    assert!(
        actions.contains(&"update.retention".to_owned()),
        "{actions:?}"
    );
    assert!(!left.contains(&old[0].publish_id) && !left.contains(&stable[0].publish_id));
}

#[tokio::test]
async fn a_channel_split_sends_a_stable_share_of_devices_to_the_rollout_branch() {
    let w = world(None);
    let main = w.publish(w.new_publish()).await;
    let next = w.publish(w.new_publish().branch("next")).await;
    let channel = NewChannel {
        name: "production".to_owned(),
        branch: "main".to_owned(),
        rollout_branch: Some("next".to_owned()),
        rollout_percentage: Some(30),
    };
    let created = w
        .releases
        .create_channel(&w.owner, &w.project_id, &channel)
        .await
        .unwrap();

    let mut on_next = 0;
    for n in 0..200 {
        let device = format!("device-{n}");
        let served = w.served("production", Platform::Ios, Some(&device)).await;
        let expected = match created.branch_for(Some(&device)).as_str() {
            "next" => &ios(&next).manifest_id,
            _ => &ios(&main).manifest_id,
        };
        assert_eq!(&served, expected, "{device}");
        on_next += usize::from(served == ios(&next).manifest_id);
    }
    assert!((25..=100).contains(&on_next), "{on_next} of 200 at 30%");

    let duplicate = w
        .releases
        .create_channel(&w.owner, &w.project_id, &channel)
        .await;
    assert!(
        matches!(duplicate, Err(AppError::Conflict(_))),
        "{duplicate:?}"
    );
    let to_itself = NewChannel {
        name: "beta".to_owned(),
        rollout_branch: Some("main".to_owned()),
        ..channel.clone()
    };
    let refused = w
        .releases
        .create_channel(&w.owner, &w.project_id, &to_itself)
        .await;
    assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
    let half = NewChannel {
        name: "beta".to_owned(),
        rollout_percentage: None,
        ..channel
    };
    let refused = w
        .releases
        .create_channel(&w.owner, &w.project_id, &half)
        .await;
    assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
}

#[tokio::test]
async fn repointing_and_deleting_a_channel_change_what_its_devices_get() {
    let w = world(None);
    let main = w.publish(w.new_publish()).await;
    let next = w.publish(w.new_publish().branch("next")).await;
    let served = || w.served("production", Platform::Ios, Some("device-1"));
    assert_eq!(
        served().await,
        "noUpdateAvailable",
        "no branch named production"
    );

    let repoint = ChannelChange {
        branch: Some("main".to_owned()),
        ..ChannelChange::default()
    };
    let channel = w
        .releases
        .change_channel(&w.owner, &w.project_id, "production", &repoint)
        .await
        .unwrap();
    assert_eq!(channel.branch.as_str(), "main");
    assert_eq!(served().await, ios(&main).manifest_id);

    let complete_split = ChannelChange {
        rollout_branch: Patch::Set("next".to_owned()),
        rollout_percentage: Patch::Set(100),
        ..ChannelChange::default()
    };
    w.releases
        .change_channel(&w.owner, &w.project_id, "production", &complete_split)
        .await
        .unwrap();
    assert_eq!(served().await, ios(&next).manifest_id);
    let clear = ChannelChange {
        rollout_branch: Patch::Clear,
        ..ChannelChange::default()
    };
    let channel = w
        .releases
        .change_channel(&w.owner, &w.project_id, "production", &clear)
        .await
        .unwrap();
    assert_eq!((channel.branch.as_str(), channel.split), ("main", None));
    assert_eq!(served().await, ios(&main).manifest_id);

    w.releases
        .delete_channel(&w.owner, &w.project_id, "production")
        .await
        .unwrap();
    assert_eq!(served().await, "noUpdateAvailable");
    let again = w
        .releases
        .delete_channel(&w.owner, &w.project_id, "production")
        .await;
    assert!(matches!(again, Err(AppError::NotFound(_))), "{again:?}");
    let actions = w.h.store.audit_actions(&w.project.id);
    assert_eq!(
        actions,
        [
            "channel.update",
            "channel.update",
            "channel.update",
            "channel.delete"
        ]
    );
}

#[tokio::test]
async fn a_channel_write_based_on_a_stale_read_is_refused() {
    let w = world(None);
    let repoint = ChannelChange {
        branch: Some("main".to_owned()),
        ..ChannelChange::default()
    };
    let first = w
        .releases
        .change_channel(&w.owner, &w.project_id, "production", &repoint)
        .await
        .unwrap();
    let mut stale = first.clone();
    stale.branch = BranchName::parse("next").unwrap();
    stale.updated_at = first.updated_at + Duration::seconds(1);
    let store = w.h.store.as_ref();
    let earlier = Some(first.updated_at - Duration::seconds(1));
    assert!(!store.save_if_unchanged(&stale, earlier).await.unwrap());
    assert!(
        !store.save_if_unchanged(&stale, None).await.unwrap(),
        "already exists"
    );
    assert!(
        store
            .save_if_unchanged(&stale, Some(first.updated_at))
            .await
            .unwrap()
    );
    let name = ChannelName::parse("production").unwrap();
    let stored = ChannelStore::find(store, &w.project.id, &name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.branch.as_str(), stored.created_at),
        ("next", first.created_at)
    );
    assert!(stored.updated_at > Utc::now() - Duration::minutes(1));
}

#[tokio::test]
async fn only_owners_delete_and_deleting_the_latest_serves_the_one_before() {
    let w = world(None);
    let before = w.publish(w.new_publish()).await;
    let latest = w.publish(w.new_publish()).await;
    let id = publish_id(&latest);
    let member = w.member("member", Role::Member);
    let stranger = Caller::User(w.h.store.add_user("stranger"));

    let refused = w.releases.delete(&member, &w.project_id, &id).await;
    assert!(
        matches!(refused, Err(AppError::Forbidden(_))),
        "{refused:?}"
    );
    let refused = w.releases.delete(&stranger, &w.project_id, &id).await;
    assert!(
        matches!(refused, Err(AppError::Forbidden(_))),
        "{refused:?}"
    );
    let refused = w
        .releases
        .set_rollout(&stranger, &w.project_id, &id, 10)
        .await;
    assert!(
        matches!(refused, Err(AppError::Forbidden(_))),
        "{refused:?}"
    );
    assert_eq!(w.latest_on_main().await, ios(&latest).manifest_id);

    w.releases
        .set_rollout(&member, &w.project_id, &id, 100)
        .await
        .unwrap();
    w.releases
        .delete(&w.owner, &w.project_id, &id)
        .await
        .unwrap();
    assert_eq!(w.latest_on_main().await, ios(&before).manifest_id);
    let gone = w.releases.get(&w.owner, &w.project_id, &id).await;
    assert!(matches!(gone, Err(AppError::NotFound(_))), "{gone:?}");
}

#[tokio::test]
async fn history_pages_publishes_newest_first_and_branches_show_their_heads() {
    let w = world(None);
    let first = w.publish(w.new_publish().message("first")).await;
    let second = w.publish(w.new_publish().message("second")).await;
    let next = w.publish(w.new_publish().branch("next")).await;

    let page = |cursor: Option<String>| HistoryRequest {
        limit: Some(2),
        cursor,
        ..HistoryRequest::default()
    };
    let one = w
        .releases
        .history(&w.owner, &w.project_id, &page(None))
        .await
        .unwrap();
    let ids: Vec<String> = one
        .updates
        .iter()
        .map(|g| g.publish_id.to_string())
        .collect();
    assert_eq!(
        ids,
        [
            next[0].publish_id.to_string(),
            second[0].publish_id.to_string()
        ]
    );
    assert_eq!(one.updates[1].message.as_deref(), Some("second"));
    assert_eq!(one.updates[0].platforms, [Platform::Android, Platform::Ios]);
    assert!(
        one.updates
            .iter()
            .flat_map(|g| &g.updates)
            .all(|u| u.assets.is_empty())
    );
    let two = w
        .releases
        .history(&w.owner, &w.project_id, &page(one.next_cursor))
        .await;
    let two = two.unwrap();
    assert_eq!(two.updates.len(), 1);
    assert_eq!(two.updates[0].publish_id, first[0].publish_id);
    assert_eq!(two.next_cursor, None);

    let branches = w.releases.branches(&w.owner, &w.project_id).await.unwrap();
    let names: Vec<&str> = branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["main", "next"]);
    assert!(
        branches[0]
            .latest
            .iter()
            .all(|u| u.publish_id == second[0].publish_id)
    );
    assert_eq!(branches[0].latest.len(), 2, "one head per platform");
}

#[tokio::test]
async fn a_republish_is_a_new_update_with_the_old_content() {
    let w = world(None);
    let good = w.publish(w.new_publish()).await;
    let bad = w.publish(w.new_publish()).await;
    assert_eq!(w.latest_on_main().await, ios(&bad).manifest_id);

    let publisher = w.h.publisher(None);
    let request = RepublishRequest::default();
    let source = publish_id(&good);
    let again = publisher
        .republish(&w.owner, &w.project_id, &source, &request)
        .await
        .unwrap();
    let served = w.latest_on_main().await;
    let republished = ios(&again.updates);
    assert_eq!(served, republished.manifest_id);
    assert_ne!(
        served,
        ios(&good).manifest_id,
        "new to devices that ran it before"
    );
    assert_eq!(republished.assets, ios(&good).assets);
    assert_eq!(
        republished.republished_from.as_ref(),
        Some(&good[0].publish_id)
    );

    let to_next = RepublishRequest {
        branch: Some("next".to_owned()),
        rollout_percentage: Some(0),
        ..RepublishRequest::default()
    };
    let refused = publisher
        .republish(&w.owner, &w.project_id, &source, &to_next)
        .await;
    assert!(matches!(refused, Err(AppError::Invalid(_))), "{refused:?}");
}

#[tokio::test]
async fn a_rollback_sends_the_platforms_it_names_to_the_embedded_update() {
    let w = world(None);
    let live = w.publish(w.new_publish()).await;
    let publisher = w.h.publisher(None);
    let request = RollbackRequest {
        runtime_version: "1.0.0".to_owned(),
        platforms: Some(vec!["ios".to_owned()]),
        ..RollbackRequest::default()
    };
    publisher
        .rollback(&w.owner, &w.project_id, &request)
        .await
        .unwrap();
    assert_eq!(w.latest_on_main().await, "rollBackToEmbedded");
    let android = w.served("main", Platform::Android, Some("device-1")).await;
    let live_android = live
        .iter()
        .find(|u| u.platform == Platform::Android)
        .unwrap();
    assert_eq!(android, live_android.manifest_id);

    let everywhere = RollbackRequest {
        platforms: None,
        ..request
    };
    publisher
        .rollback(&w.owner, &w.project_id, &everywhere)
        .await
        .unwrap();
    let android = w.served("main", Platform::Android, Some("device-1")).await;
    assert_eq!(android, "rollBackToEmbedded");
    let actions = w.h.store.audit_actions(&w.project.id);
    assert_eq!(actions, ["update.rollback", "update.rollback"]);
}
