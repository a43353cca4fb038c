//! `/metrics`: Prometheus text with requests by route, update-check answers
//! by project and platform, asset bytes, publishes, cache and backend
//! counters; behind `METRICS_TOKEN` when it is set.

use e2e::protocol::UpdateCheck;
use e2e::publish::{Export, PublishForm};
use e2e::{TestApp, both_backends, str_field};

/// The value of the sample whose line starts with `series` (name and
/// labels), if any.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

async fn scrape(app: &TestApp, token: Option<&str>) -> String {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = app.send(request).await;
    response.assert_status(200);
    let content_type = response
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text
}

both_backends!(
    metrics_count_requests_answers_bytes_and_publishes,
    env = [("METRICS_TOKEN", "scrape-secret")],
    |app| async move {
        // The token is required, and compared whole.
        for token in [None, Some("scrape"), Some("scrape-secret-and-more")] {
            let mut request = app.client.get(app.url("/metrics"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            app.send(request).await.assert_error(401);
        }

        let owner = app.register_user().await;
        let project = str_field(&app.create_project(&owner.token).await, "id");
        let key = str_field(
            &app.create_key(&owner.token, &project, None).await,
            "secret",
        );
        let export = Export::v1();
        app.publish(&project, &key, &PublishForm::new(&export))
            .await;

        let manifest = app.latest_manifest(&project, "ios", "1.0.0").await;
        let running = UpdateCheck::v1("ios", "1.0.0").current(&str_field(&manifest, "id"));
        let answer = app.check(&project, &running).await;
        answer.assert_status(200);
        let launch_url = str_field(&manifest["launchAsset"], "url");
        let bundle = app.fetch(&launch_url).await;
        bundle.assert_status(200);

        app.get_anon("/api/no-such-path/x/y")
            .await
            .assert_error(404);
        let odd = e2e::reqwest::Method::from_bytes(b"FOO123").unwrap();
        app.send(app.client.request(odd, app.url("/api/no-such-path")))
            .await;
        let text = scrape(&app, Some("scrape-secret")).await;
        let manifest_route = "expo_updates_http_requests_total{route=\"/api/updates/{project}/manifest\",method=\"GET\",status=\"200\"}";
        assert_eq!(sample(&text, manifest_route), Some(2.0), "{text}");
        let answers = |answer: &str| {
            sample(
                &text,
                &format!(
                    "expo_updates_manifest_answers_total{{project=\"{project}\",platform=\"ios\",answer=\"{answer}\"}}"
                ),
            )
        };
        assert_eq!(answers("update"), Some(1.0), "{text}");
        assert_eq!(answers("noUpdateAvailable"), Some(1.0), "{text}");
        assert_eq!(
            sample(
                &text,
                "expo_updates_asset_bytes_total{encoding=\"identity\"}"
            ),
            Some(bundle.body.len() as f64),
            "{text}"
        );
        assert_eq!(
            sample(&text, "expo_updates_publishes_total{outcome=\"published\"}"),
            Some(1.0),
            "{text}"
        );
        assert!(
            text.contains("expo_updates_http_request_duration_seconds_bucket{"),
            "{text}"
        );
        for counter in [
            "expo_updates_serve_cache_hits_total",
            "expo_updates_serve_cache_misses_total",
            "expo_updates_database_errors_total",
            "expo_updates_storage_errors_total",
        ] {
            assert!(sample(&text, counter).is_some(), "{counter} in {text}");
        }
        assert!(
            sample(&text, "expo_updates_serve_cache_misses_total").unwrap_or(0.0) >= 1.0,
            "{text}"
        );
        // Paths are templates: ids never become label values, nor do odd
        // paths or methods.
        assert!(
            !text.contains(&format!("route=\"/api/projects/{project}")),
            "{text}"
        );
        assert!(
            !text.contains("no-such-path") && !text.contains("FOO123"),
            "{text}"
        );
        assert!(
            sample(
                &text,
                "expo_updates_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}"
            ) == Some(1.0),
            "{text}"
        );
        // Secrets never appear.
        assert!(!text.contains(&key) && !text.contains("scrape-secret"));
    }
);

both_backends!(metrics_are_open_without_a_token, |app| async move {
    let text = scrape(&app, None).await;
    assert!(
        text.contains("expo_updates_serve_cache_hits_total"),
        "{text}"
    );
});
