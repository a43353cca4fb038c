//! The background storage collection (`GC_INTERVAL_SECONDS`): blobs of
//! deleted updates and deleted projects disappear by themselves, blobs still
//! referenced never do.

use std::time::Duration;

use e2e::publish::{Export, PublishForm};
use e2e::{TestApp, all_backends, str_field};

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
        let owner = app.register_user().await;
        let project = app.create_project(&owner.token).await;
        let project_id = str_field(&project, "id");
        let secret = str_field(
            &app.create_key(&owner.token, &project_id, Some("ci")).await,
            "secret",
        );
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
