//! Input no honest client sends: control characters and malformed ids in
//! paths and bodies, identifiers of the wrong kind, racing registrations.
//! Each gets a clear 4xx, never a 500, on both databases.

use e2e::reqwest::Method;
use e2e::serde_json::json;
use e2e::{both_backends, str_field};

both_backends!(
    nul_bytes_and_malformed_ids_are_client_errors,
    |app| async move {
        let owner = app.register_user().await;
        let project = app.create_project(&owner.token).await;
        let pid = str_field(&project, "id");
        let token = owner.token.as_str();

        for bad_project in ["%00", "not-a-uuid", "a%00b", "%E2%80%8B"] {
            app.get(&format!("/api/projects/{bad_project}"), token)
                .await
                .assert_permission_denied();
            app.delete(&format!("/api/projects/{bad_project}"), token)
                .await
                .assert_permission_denied();
            app.get(&format!("/api/projects/{bad_project}/keys"), token)
                .await
                .assert_permission_denied();
        }
        for bad_id in ["%00", "nope", "x%00y"] {
            app.delete(&format!("/api/projects/{pid}/keys/{bad_id}"), token)
                .await
                .assert_error(404);
            app.patch(
                &format!("/api/projects/{pid}/keys/{bad_id}"),
                token,
                &json!({"name": "n"}),
            )
            .await
            .assert_error(404);
            app.delete(&format!("/api/projects/{pid}/users/{bad_id}"), token)
                .await
                .assert_error(404);
            app.patch(
                &format!("/api/projects/{pid}/users/{bad_id}"),
                token,
                &json!({"role": "member"}),
            )
            .await
            .assert_error(404);
        }

        app.post_anon(
            "/api/auth/login",
            &json!({"login": "a\u{0}b", "password": "whatever1"}),
        )
        .await
        .assert_error(401);
        for body in [
            json!({"username": "a\u{0}b", "role": "member"}),
            json!({"email": "a\u{0}b@example.com", "role": "member"}),
            json!({"userId": "\u{0}", "role": "member"}),
            json!({"userId": "not-a-uuid", "role": "member"}),
        ] {
            app.add_member_raw(token, &pid, &body)
                .await
                .assert_error(404);
        }
        for body in [
            json!({"username": "a\u{0}b", "email": "n@example.com", "password": "password1"}),
            json!({"username": "nul", "email": "n\u{0}@example.com", "password": "password1"}),
        ] {
            app.register(&body).await.assert_error(400);
        }
        app.post(
            &format!("/api/projects/{pid}/keys"),
            token,
            &json!({"name": "k\u{0}"}),
        )
        .await
        .assert_error(400);
        app.patch(
            &format!("/api/projects/{pid}"),
            token,
            &json!({"name": "p\u{0}"}),
        )
        .await
        .assert_error(400);
        app.create_project_raw(token, &json!({"name": "n", "slug": "s\u{0}"}))
            .await
            .assert_error(400);
        // Still healthy and unchanged.
        app.get(&format!("/api/projects/{pid}"), token)
            .await
            .assert_status(200);
    }
);

both_backends!(a_member_reference_names_only_its_kind, |app| async move {
    let owner = app.register_user().await;
    let colleague = app.register_user().await;
    let pid = str_field(&app.create_project(&owner.token).await, "id");
    // A username is not an email, and an email is not a username.
    app.add_member_raw(
        &owner.token,
        &pid,
        &json!({"email": colleague.username, "role": "member"}),
    )
    .await
    .assert_error(404);
    app.add_member_raw(
        &owner.token,
        &pid,
        &json!({"username": colleague.email, "role": "member"}),
    )
    .await
    .assert_error(404);
    app.add_member_raw(
        &owner.token,
        &pid,
        &json!({"email": colleague.email.to_uppercase(), "role": "member"}),
    )
    .await
    .assert_status(201);
});

both_backends!(
    racing_registrations_with_registration_closed_admit_one,
    env = [("ALLOW_REGISTRATION", "false")],
    |app| async move {
        let attempts = (0..6).map(|n| {
            let body = json!({
                "username": format!("racer{n}"),
                "email": format!("racer{n}@example.com"),
                "password": "password123",
            });
            let request = app
                .client
                .request(Method::POST, app.url("/api/auth/register"))
                .json(&body);
            async move { request.send().await.unwrap().status().as_u16() }
        });
        let mut statuses = futures_join_all(attempts).await;
        statuses.sort_unstable();
        assert_eq!(statuses, vec![201, 403, 403, 403, 403, 403]);
    }
);

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future<Output = u16> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<u16> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

both_backends!(
    nul_bytes_in_update_routes_are_client_errors,
    |app| async move {
        let owner = app.register_user().await;
        let pid = str_field(&app.create_project(&owner.token).await, "id");
        let manifest = app
            .send(app.client.get(app.url(&format!(
                "/api/updates/{pid}/manifest?platform=ios&runtime-version=1.0%00"
            ))))
            .await;
        manifest.assert_error(400);
        let asset = app
            .send(app.client.get(app.url(&format!(
                "/api/updates/{pid}/assets?asset=a&runtimeVersion=1%00&platform=ios"
            ))))
            .await;
        asset.assert_error(404);
        let asset = app
            .send(
                app.client
                    .get(app.url(&format!("/api/updates/{pid}/assets?asset=a%00&update=%00"))),
            )
            .await;
        asset.assert_error(404);
        let rollback = app
            .post(
                &format!("/api/projects/{pid}/rollback"),
                &owner.token,
                &json!({"runtimeVersion": "1\u{0}"}),
            )
            .await;
        rollback.assert_error(400);
    }
);
