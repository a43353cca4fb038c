//! Update insights: checks, unique devices, launch-asset downloads and
//! failures reported by devices, per update, platform and day; and the
//! automatic halt of a rollout whose devices fail.

use e2e::protocol::{CLIENT_ACCEPT, RawResponse};
use e2e::publish::{Export, PublishForm};
use e2e::serde_json::{Value, json};
use e2e::{TestApp, both_backends, str_field};

/// An update check from device `client_id`, with extra headers.
async fn device_check(
    app: &TestApp,
    project: &str,
    client_id: &str,
    extra: &[(&str, &str)],
) -> RawResponse {
    let mut request = app
        .client
        .get(app.url(&TestApp::manifest_path(project)))
        .header("expo-platform", "ios")
        .header("expo-runtime-version", "1.0.0")
        .header("expo-protocol-version", "1")
        .header("accept", CLIENT_ACCEPT)
        .header("eas-client-id", client_id);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    app.fetch_request(request).await
}

/// The manifest a check answered with.
fn manifest(answer: &RawResponse) -> Value {
    answer.assert_status(200);
    answer
        .multipart()
        .iter()
        .find(|part| part.name() == "manifest")
        .map(|part| part.json())
        .unwrap_or_else(|| panic!("no manifest: {}", answer.text()))
}

async fn insights(app: &TestApp, token: &str, project: &str, update: &str) -> Value {
    let response = app
        .get(
            &format!("/api/projects/{project}/updates/{update}/insights"),
            token,
        )
        .await;
    response.assert_status(200);
    response.json
}

both_backends!(
    insights_count_checks_devices_downloads_and_failures,
    |app| async move {
        let setup = app.project_with_member().await;
        let project = setup.project_id.clone();
        let owner = setup.owner.token.as_str();
        let key = str_field(&app.create_key(owner, &project, None).await, "secret");
        let update = app
            .publish(&project, &key, &PublishForm::new(&Export::v1()))
            .await;

        // Four devices check, one of them twice.
        let mut manifest_id = String::new();
        for device in ["d1", "d2", "d3", "d4", "d1"] {
            let served = manifest(&device_check(&app, &project, device, &[]).await);
            manifest_id = str_field(&served, "id");
        }
        let served = manifest(&device_check(&app, &project, "d5", &[]).await);
        // Two whole downloads of the bundle; a range and a HEAD are not downloads.
        let bundle_url = str_field(&served["launchAsset"], "url");
        for _ in 0..2 {
            app.fetch(&bundle_url).await.assert_status(200);
        }
        let ranged = app
            .fetch_request(app.client.get(&bundle_url).header("range", "bytes=0-9"))
            .await;
        ranged.assert_status(206);
        app.fetch_request(app.client.head(&bundle_url))
            .await
            .assert_status(200);
        // Failures: one device lists it among its recent failures (twice),
        // another crashes on it.
        let failed = format!("\"{manifest_id}\"");
        for _ in 0..2 {
            device_check(
                &app,
                &project,
                "d2",
                &[("expo-recent-failed-update-ids", failed.as_str())],
            )
            .await
            .assert_status(200);
        }
        device_check(
            &app,
            &project,
            "d3",
            &[
                ("expo-current-update-id", manifest_id.as_str()),
                ("expo-fatal-error", "TypeError: undefined is not a function"),
            ],
        )
        .await
        .assert_status(200);
        // Malformed telemetry is ignored, never a failed check.
        device_check(
            &app,
            &project,
            "d4",
            &[("expo-recent-failed-update-ids", "(((")],
        )
        .await
        .assert_status(200);

        // A member reads them: by day and platform, and per platform in total.
        let body = insights(&app, &setup.member.token, &project, &update).await;
        assert_eq!(body["updateId"], update.as_str());
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        let days = body["days"].as_array().expect("days");
        assert_eq!(days.len(), 1, "{body}");
        let day = &days[0];
        assert_eq!(day["day"], today.as_str());
        assert_eq!(day["platform"], "ios");
        // 6 answered checks, plus the 4 telemetry checks of devices running it.
        assert_eq!(day["checks"], 10, "{body}");
        assert_eq!(day["uniqueDevices"], 5, "{body}");
        assert_eq!(day["launchAssetDownloads"], 2, "{body}");
        assert_eq!(day["failureReports"], 3, "{body}");
        assert_eq!(day["failedDevices"], 2, "{body}");
        let totals = body["totals"].as_array().expect("totals");
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0]["checks"], 10);
        assert!(totals[0]["day"].is_null());

        // Strangers, other projects' ids and unknown updates get nothing.
        let stranger = app.register_user().await;
        app.get(
            &format!("/api/projects/{project}/updates/{update}/insights"),
            &stranger.token,
        )
        .await
        .assert_error(403);
        app.get(
            &format!(
                "/api/projects/{project}/updates/{}/insights",
                uuid::Uuid::now_v7()
            ),
            owner,
        )
        .await
        .assert_error(404);
        app.get(
            &format!("/api/projects/{project}/updates/not-an-id/insights"),
            owner,
        )
        .await
        .assert_error(404);
    }
);

both_backends!(
    insights_are_written_periodically_and_survive_a_crash,
    |backend: e2e::Backend| async move {
        let mut app = TestApp::spawn_with(backend, &[("INSIGHTS_WRITE_SECONDS", "1")]).await;
        let owner = app.register_user().await;
        let project = str_field(&app.create_project(&owner.token).await, "id");
        let key = str_field(
            &app.create_key(&owner.token, &project, None).await,
            "secret",
        );
        let update = app
            .publish(&project, &key, &PublishForm::new(&Export::v1()))
            .await;
        for device in ["a", "b"] {
            device_check(&app, &project, device, &[])
                .await
                .assert_status(200);
        }
        // Counted in memory and written every INSIGHTS_WRITE_SECONDS: a
        // crash (the harness aborts the server) loses at most that much.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        app.restart().await;
        device_check(&app, &project, "c", &[])
            .await
            .assert_status(200);
        let body = insights(&app, &owner.token, &project, &update).await;
        assert_eq!(body["totals"][0]["checks"], 3, "{body}");
        assert_eq!(body["totals"][0]["uniqueDevices"], 3, "{body}");
    }
);

both_backends!(
    a_failing_rollout_is_halted_automatically,
    env = [
        ("AUTO_HALT_FAILURE_RATE", "0.5"),
        ("AUTO_HALT_MIN_DEVICES", "4"),
    ],
    |app| async move {
        let owner = app.register_user().await;
        let token = owner.token.as_str();
        let project = str_field(&app.create_project(token).await, "id");
        let key = str_field(&app.create_key(token, &project, None).await, "secret");
        app.publish(&project, &key, &PublishForm::new(&Export::v1()))
            .await;
        let v1_manifest = str_field(
            &manifest(&device_check(&app, &project, "probe", &[]).await),
            "id",
        );
        let v2 = app
            .publish(&project, &key, &PublishForm::new(&Export::v2()))
            .await;
        app.patch(
            &format!("/api/projects/{project}/updates/{v2}"),
            token,
            &json!({"rolloutPercentage": 50}),
        )
        .await
        .assert_status(200);

        // Find four devices in the rollout.
        let mut in_rollout = Vec::new();
        let mut v2_manifest = String::new();
        for n in 0..200 {
            let device = format!("device-{n}");
            let served = manifest(&device_check(&app, &project, &device, &[]).await);
            let id = str_field(&served, "id");
            if id != v1_manifest {
                v2_manifest = id;
                in_rollout.push(device);
                if in_rollout.len() == 4 {
                    break;
                }
            }
        }
        assert_eq!(in_rollout.len(), 4, "four devices in a 50% rollout");

        // One failure in four devices: under the threshold, nothing happens.
        let failed = format!("\"{v2_manifest}\"");
        let report = [("expo-recent-failed-update-ids", failed.as_str())];
        device_check(&app, &project, &in_rollout[0], &report)
            .await
            .assert_status(200);
        let body = insights(&app, token, &project, &v2).await;
        assert_eq!(body["totals"][0]["failedDevices"], 1, "{body}");
        let still = app
            .get(&format!("/api/projects/{project}/updates/{v2}"), token)
            .await;
        assert!(
            still.text.contains("\"rolloutPercentage\":50"),
            "{}",
            still.text
        );

        // Half the devices failing: the rollout is halted, and says who did it.
        device_check(&app, &project, &in_rollout[1], &report)
            .await
            .assert_status(200);
        insights(&app, token, &project, &v2).await;
        let halted = app
            .get(&format!("/api/projects/{project}/updates/{v2}"), token)
            .await;
        assert!(
            halted.text.contains("\"rolloutPercentage\":0"),
            "{}",
            halted.text
        );
        let audit = app
            .get(&format!("/api/projects/{project}/audit"), token)
            .await;
        assert!(audit.text.contains("update.autoHalt"), "{}", audit.text);
        // Its devices are back on the previous update.
        let served = manifest(&device_check(&app, &project, &in_rollout[2], &[]).await);
        assert_ne!(str_field(&served, "id"), v2_manifest);
    }
);
