//! The background storage collection (`GC_INTERVAL_SECONDS`): blobs of
//! deleted updates and deleted projects disappear by themselves, blobs still
//! referenced never do.

use std::time::Duration;

use e2e::publish::{Export, PublishForm};
use e2e::{TestApp, all_backends, both_backends, str_field};

/// Waits until `done` holds, up to 20 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn blob_keys(app: &TestApp, project_id: &str) -> Vec<String> {
    app.stored_objects_under(&format!("projects/{project_id}/assets/"))
        .into_keys()
        .collect()
}

all_backends!(
    unreferenced_blobs_are_collected_in_the_background,
    env = [("GC_INTERVAL_SECONDS", "1"), ("GC_GRACE_SECONDS", "0")],
    |app| async move {
        let p = app.publisher().await;
        let (owner, project_id, secret) = (p.owner, p.project_id, p.secret);
        let (v1, v2) = (Export::v1(), Export::v2());
        app.publish(&project_id, &secret, &PublishForm::new(&v1))
            .await;
        let second = app
            .publish(&project_id, &secret, &PublishForm::new(&v2))
            .await;
        let v1_keys: Vec<String> = v1.expected_blobs(&project_id).into_keys().collect();
        let v2_only: Vec<String> = v2
            .expected_blobs(&project_id)
            .into_keys()
            .filter(|key| !v1_keys.contains(key))
            .collect();
        assert!(!v2_only.is_empty(), "the fixtures share every file");

        app.delete(
            &format!("/api/projects/{project_id}/updates/{second}"),
            &owner.token,
        )
        .await
        .assert_status(204);
        eventually("v2's own blobs are collected", || {
            let stored = blob_keys(&app, &project_id);
            v2_only.iter().all(|key| !stored.contains(key))
        })
        .await;
        let stored = blob_keys(&app, &project_id);
        for key in &v1_keys {
            assert!(
                stored.contains(key),
                "{key} of the served update was deleted"
            );
        }

        // A deleted project's blobs go too.
        app.delete(&format!("/api/projects/{project_id}"), &owner.token)
            .await
            .assert_status(204);
        eventually("the deleted project's blobs are collected", || {
            blob_keys(&app, &project_id).is_empty()
        })
        .await;
    }
);

all_backends!(
    collection_racing_publishes_never_breaks_an_update,
    env = [("GC_GRACE_SECONDS", "0")],
    |app| async move {
        let p = app.publisher().await;
        let (owner, project_id, secret) = (p.owner, p.project_id, p.secret);
        let v1 = Export::v1();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Collect as fast as possible while the same files are published,
        // deleted (unreferenced, collectable) and published again.
        let collector = {
            let (app_url, token, project_id, stop) = (
                app.url(&format!("/api/projects/{project_id}/storage/gc")),
                owner.token.clone(),
                project_id.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let client = e2e::reqwest::Client::new();
                let mut runs = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let response = client
                        .post(&app_url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200, "gc of {project_id}");
                    runs += 1;
                }
                runs
            })
        };
        for round in 0..8 {
            let update = app
                .publish(&project_id, &secret, &PublishForm::new(&v1))
                .await;
            for platform in ["ios", "android"] {
                let manifest = app.latest_manifest(&project_id, platform, "1.0.0").await;
                let launch = manifest["launchAsset"]["url"].as_str().unwrap().to_owned();
                let mut urls = vec![launch];
                for asset in manifest["assets"].as_array().unwrap() {
                    urls.push(asset["url"].as_str().unwrap().to_owned());
                }
                for url in urls {
                    app.fetch(&url).await.assert_status(200);
                }
            }
            // Published files are referenced: never collected while served.
            for key in v1.expected_blobs(&project_id).keys() {
                assert!(
                    blob_keys(&app, &project_id).contains(key),
                    "round {round}: {key} missing"
                );
            }
            app.delete(
                &format!("/api/projects/{project_id}/updates/{update}"),
                &owner.token,
            )
            .await
            .assert_status(204);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let runs = collector.await.unwrap();
        assert!(runs > 0, "the collector never ran");
    }
);

both_backends!(
    retention_enabled_later_prunes_existing_branches_in_the_background,
    |backend: e2e::Backend| async move {
        let mut app = TestApp::spawn(backend).await;
        let p = app.publisher().await;
        let (owner, project_id, secret) = (p.owner, p.project_id, p.secret);
        let mut published = Vec::new();
        for export in [Export::v1(), Export::v2(), Export::v1()] {
            published.push(
                app.publish(&project_id, &secret, &PublishForm::new(&export))
                    .await,
            );
        }
        let history_path = format!("/api/projects/{project_id}/updates");
        let ids = |app: &TestApp, token: String, path: String| {
            let app_client = app.client.clone();
            let url = app.url(&path);
            async move {
                let body: e2e::serde_json::Value = app_client
                    .get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                body["updates"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| str_field(u, "id"))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            ids(&app, owner.token.clone(), history_path.clone())
                .await
                .len(),
            3
        );

        // Turned on afterwards: the background task prunes what is there.
        app.stop().await;
        app.env
            .insert("RETENTION_KEEP_PER_BRANCH".to_owned(), "1".to_owned());
        app.env
            .insert("GC_INTERVAL_SECONDS".to_owned(), "1".to_owned());
        app.restart().await;
        let mut remaining = Vec::new();
        for _ in 0..100 {
            remaining = ids(&app, owner.token.clone(), history_path.clone()).await;
            if remaining.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            remaining,
            vec![published[2].clone()],
            "kept the newest only"
        );
        let audit = app
            .get(&format!("/api/projects/{project_id}/audit"), &owner.token)
            .await;
        let retention = audit.json["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|event| event["action"] == "update.retention")
            .cloned()
            .unwrap_or_else(|| panic!("no retention event: {}", audit.text));
        assert_eq!(retention["actor"]["type"], "system");
    }
);
