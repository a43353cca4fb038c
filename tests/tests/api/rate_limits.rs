//! Rate limits: sign-in and registration per client address, publishing per
//! project, update checks per project. A refused request is a 429 with
//! `Retry-After` and `{"error"}`; other clients and other projects are not
//! affected.

use e2e::protocol::UpdateCheck;
use e2e::publish::{Export, PublishForm};
use e2e::reqwest::Method;
use e2e::serde_json::json;
use e2e::{Response, TestApp, both_backends, str_field};

/// Asserts a 429 whose `Retry-After` is a whole number of seconds within the
/// limit's window.
fn assert_limited(response: &Response, window_seconds: u64) {
    response.assert_error(429);
    let retry_after: u64 = response
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no numeric Retry-After: {:?}", response.headers));
    assert!(
        (1..=window_seconds).contains(&retry_after),
        "Retry-After {retry_after} is outside 1..={window_seconds}"
    );
}

async fn login_from(app: &TestApp, address: Option<&str>) -> Response {
    let mut request = app
        .client
        .post(app.url("/api/auth/login"))
        .json(&json!({"login": "nobody", "password": "wrong-password"}));
    if let Some(address) = address {
        request = request.header("x-forwarded-for", format!("203.0.113.9, {address}"));
    }
    app.send(request).await
}

both_backends!(
    sign_in_and_registration_are_limited_per_client_address,
    env = [
        ("RATE_LIMIT_AUTH_PER_MINUTE", "3"),
        ("TRUST_FORWARDED_FOR", "true"),
    ],
    |app| async move {
        // Registration and sign-in share the allowance.
        let user = app.register_user().await;
        login_from(&app, None).await.assert_error(401);
        login_from(&app, None).await.assert_error(401);
        let refused = login_from(&app, None).await;
        assert_limited(&refused, 60);
        let refused = app
            .register(&json!({"username": "late", "email": "late@example.com", "password": "long-enough-1"}))
            .await;
        assert_limited(&refused, 60);
        // Even the right password waits: the limit is on attempts.
        let refused = app.login(&user.username, &user.password).await;
        assert_limited(&refused, 60);

        // Another client, behind the same load balancer, is not affected.
        login_from(&app, Some("198.51.100.7"))
            .await
            .assert_error(401);
        // Authenticated routes are not limited.
        for _ in 0..10 {
            app.me(&user.token).await.assert_status(200);
        }
    }
);

both_backends!(
    forwarded_addresses_are_ignored_unless_trusted,
    env = [("RATE_LIMIT_AUTH_PER_MINUTE", "2")],
    |app| async move {
        // Without TRUST_FORWARDED_FOR a client cannot dodge the limit by
        // naming another address.
        login_from(&app, Some("198.51.100.1"))
            .await
            .assert_error(401);
        login_from(&app, Some("198.51.100.2"))
            .await
            .assert_error(401);
        assert_limited(&login_from(&app, Some("198.51.100.3")).await, 60);
    }
);

both_backends!(
    publishing_is_limited_per_project,
    env = [("RATE_LIMIT_PUBLISH_PER_MINUTE", "2")],
    |app| async move {
        let owner = app.register_user().await;
        let busy = str_field(&app.create_project(&owner.token).await, "id");
        let quiet = str_field(&app.create_project(&owner.token).await, "id");
        let busy_key = str_field(&app.create_key(&owner.token, &busy, None).await, "secret");
        let quiet_key = str_field(&app.create_key(&owner.token, &quiet, None).await, "secret");
        let form = PublishForm::new(&Export::v1());

        app.publish(&busy, &busy_key, &form).await;
        app.publish(&busy, &busy_key, &form).await;
        let refused = app.publish_like_curl(&busy, Some(&busy_key), &form).await;
        assert_limited(&refused, 60);
        let listed = app
            .get(&format!("/api/projects/{busy}/updates"), &owner.token)
            .await;
        listed.assert_status(200);
        let updates = listed.json["updates"].as_array().expect("updates");
        assert_eq!(updates.len(), 2, "the refused publish stored nothing");

        // Another project publishes as usual.
        app.publish(&quiet, &quiet_key, &form).await;
        // Reading and steering the busy project are not publishes.
        app.send(app.authed(
            Method::GET,
            &format!("/api/projects/{busy}/channels"),
            &owner.token,
        ))
        .await
        .assert_status(200);
    }
);

both_backends!(
    one_projects_devices_cannot_starve_anothers_update_checks,
    env = [("RATE_LIMIT_DEVICE_PER_SECOND", "20")],
    |app| async move {
        let owner = app.register_user().await;
        let mut projects = Vec::new();
        for _ in 0..2 {
            let id = str_field(&app.create_project(&owner.token).await, "id");
            let key = str_field(&app.create_key(&owner.token, &id, None).await, "secret");
            app.publish(&id, &key, &PublishForm::new(&Export::v1()))
                .await;
            projects.push(id);
        }
        let (flooded, other) = (projects[0].clone(), projects[1].clone());
        let check = UpdateCheck::v1("ios", "1.0.0");

        // The flooded project's fleet sends far more than its share at once,
        // and meanwhile the other project's devices are all answered.
        let flood = futures_util::future::join_all((0..200).map(|_| app.check(&flooded, &check)));
        let others = async {
            for _ in 0..15 {
                app.check(&other, &check).await.assert_status(200);
            }
        };
        let (flood, ()) = tokio::join!(flood, others);
        let mut served = 0;
        let mut refused = 0;
        for answer in flood {
            match answer.status {
                200 => served += 1,
                429 => {
                    refused += 1;
                    let retry_after = answer.header("retry-after").expect("Retry-After");
                    assert_eq!(retry_after, "1", "a per-second limit waits one second");
                    assert!(answer.text().contains("\"error\""), "{}", answer.text());
                }
                status => panic!("unexpected status {status}: {}", answer.text()),
            }
        }
        assert!(served >= 20, "the allowance is served ({served})");
        assert!(refused > 100, "the excess is refused ({refused})");
        // A second later the flooded project is served again.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        app.check(&flooded, &check).await.assert_status(200);
    }
);
