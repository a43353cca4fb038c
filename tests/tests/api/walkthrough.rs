//! The whole journey of a team setting up a project, step by step.

use e2e::serde_json::json;
use e2e::{
    PASSWORD, assert_has_fields, assert_same, assert_user_shape, both_backends, str_field,
    unique_identity, unique_slug,
};

both_backends!(full_walkthrough, |app| async move {
    // 1. Alice registers, then logs in.
    let (alice_name, alice_email) = unique_identity();
    let registered = app
        .register(&json!({ "username": alice_name, "email": alice_email, "password": PASSWORD }))
        .await;
    registered.assert_status(201);
    assert_user_shape(&registered.json["user"]);
    let alice_id = str_field(&registered.json["user"], "id");

    let login = app.login(&alice_email, PASSWORD).await;
    login.assert_status(200);
    assert_same(&login.json["user"], &registered.json["user"]);
    let alice = str_field(&login.json, "token");

    let me = app.me(&alice).await;
    me.assert_status(200);
    assert_eq!(me.json["username"], alice_name.as_str());

    // 2. Bob registers too.
    let bob = app.register_user().await;

    // 3. Alice creates a project.
    let slug = unique_slug();
    let created = app
        .create_project_raw(&alice, &json!({ "name": "Walkthrough", "slug": slug }))
        .await;
    created.assert_status(201);
    assert_has_fields(&created.json, &["id", "name", "slug", "createdAt"]);
    assert_eq!(created.json["name"], "Walkthrough");
    assert_eq!(created.json["slug"], slug.as_str());
    let pid = str_field(&created.json, "id");

    let listed = app.get("/api/projects", &alice).await;
    listed.assert_status(200);
    assert_same(&listed.json, &json!([created.json]));

    // 4. Alice adds Bob by username.
    let added = app
        .add_member_raw(
            &alice,
            &pid,
            &json!({ "username": bob.username, "role": "member" }),
        )
        .await;
    added.assert_status(201);
    assert_has_fields(
        &added.json,
        &["id", "projectId", "userId", "role", "createdAt"],
    );
    assert_eq!(added.json["projectId"], pid.as_str());
    assert_eq!(added.json["userId"], bob.id.as_str());
    assert_eq!(added.json["role"], "member");

    app.get(&format!("/api/projects/{pid}"), &bob.token)
        .await
        .assert_status(200);

    // 5. Both see the member list.
    for token in [&alice, &bob.token] {
        let members = app.list_members(token, &pid).await;
        members.assert_status(200);
        let mut rows: Vec<(String, String, String)> = members
            .array()
            .iter()
            .map(|m| {
                assert_has_fields(m, &["userId", "username", "email", "role", "createdAt"]);
                (
                    str_field(m, "userId"),
                    str_field(m, "username"),
                    str_field(m, "role"),
                )
            })
            .collect();
        rows.sort();
        let mut expected = vec![
            (alice_id.clone(), alice_name.clone(), "owner".to_owned()),
            (bob.id.clone(), bob.username.clone(), "member".to_owned()),
        ];
        expected.sort();
        assert_eq!(rows, expected);
    }

    // 6. Alice makes Bob an owner, then a member again.
    let bob_path = format!("/api/projects/{pid}/users/{}", bob.id);
    let promoted = app
        .patch(&bob_path, &alice, &json!({ "role": "owner" }))
        .await;
    promoted.assert_status(200);
    assert_eq!(promoted.json["role"], "owner");
    assert_eq!(promoted.json["userId"], bob.id.as_str());
    let demoted = app
        .patch(&bob_path, &alice, &json!({ "role": "member" }))
        .await;
    demoted.assert_status(200);
    assert_eq!(demoted.json["role"], "member");

    // 7. Alice removes Bob; he loses access.
    app.delete(&bob_path, &alice).await.assert_no_content();
    app.get(&format!("/api/projects/{pid}"), &bob.token)
        .await
        .assert_permission_denied();
    let members = app.list_members(&alice, &pid).await;
    members.assert_status(200);
    assert_eq!(members.array().len(), 1);
    assert_eq!(members.array()[0]["userId"], alice_id.as_str());

    // 8. Alice creates an API key.
    let key = app.create_key(&alice, &pid, Some("github-actions")).await;
    let key_id = str_field(&key["key"], "id");
    let secret = str_field(&key, "secret");
    let prefix = str_field(&key["key"], "keyPrefix");
    assert!(secret.starts_with(&format!("eus_{prefix}")));
    assert_eq!(key["key"]["name"], "github-actions");
    assert_eq!(key["key"]["createdBy"], alice_id.as_str());

    // 9. She lists keys: no secret in sight.
    let keys = app.list_keys(&alice, &pid).await;
    keys.assert_status(200);
    assert_same(&keys.json, &json!([key["key"]]));
    assert!(!keys.text.contains(&secret));
    assert!(keys.array()[0].get("secret").is_none());

    // 10. She renames it.
    let key_path = format!("/api/projects/{pid}/keys/{key_id}");
    app.patch(&key_path, &alice, &json!({ "name": "ci" }))
        .await
        .assert_no_content();
    let keys = app.list_keys(&alice, &pid).await;
    assert_eq!(keys.array().len(), 1);
    assert_eq!(keys.array()[0]["name"], "ci");

    // 11. She revokes it.
    app.delete(&key_path, &alice).await.assert_no_content();
    let keys = app.list_keys(&alice, &pid).await;
    keys.assert_status(200);
    assert!(keys.array().is_empty());
    app.delete(&key_path, &alice).await.assert_error(404);
});
