//! A registered user who is not a member of a project can do nothing with it.

use e2e::serde_json::json;
use e2e::{Response, assert_same, both_backends, str_field};

both_backends!(a_stranger_is_denied_every_project_route, |app| async move {
    // Tenant A: an owner, a member, a project and an API key.
    let a = app.project_with_member().await;
    let pid = a.project_id.clone();
    let key = app
        .create_key(&a.owner.token, &pid, Some("production"))
        .await;
    let key_id = str_field(&key["key"], "id");

    let project_before = app
        .get(&format!("/api/projects/{pid}"), &a.owner.token)
        .await;
    project_before.assert_status(200);
    let members_before = app.list_members(&a.owner.token, &pid).await;
    members_before.assert_status(200);
    let keys_before = app.list_keys(&a.owner.token, &pid).await;
    keys_before.assert_status(200);

    // Tenant B: a registered user with a project of their own.
    let b = app.register_user().await;
    let b_project = app.create_project(&b.token).await;
    let t = &b.token;

    let project = format!("/api/projects/{pid}");
    let users = format!("{project}/users");
    let keys = format!("{project}/keys");
    let attempts: Vec<(&str, Response)> = vec![
        ("GET project", app.get(&project, t).await),
        (
            "PATCH project",
            app.patch(&project, t, &json!({ "name": "pwned", "slug": "pwned" }))
                .await,
        ),
        ("DELETE project", app.delete(&project, t).await),
        (
            "add themselves as owner",
            app.post(&users, t, &json!({ "userId": b.id, "role": "owner" }))
                .await,
        ),
        (
            "add themselves by username",
            app.post(
                &users,
                t,
                &json!({ "username": b.username, "role": "member" }),
            )
            .await,
        ),
        ("list members", app.get(&users, t).await),
        (
            "promote the member",
            app.patch(
                &format!("{users}/{}", a.member.id),
                t,
                &json!({ "role": "owner" }),
            )
            .await,
        ),
        (
            "demote the owner",
            app.patch(
                &format!("{users}/{}", a.owner.id),
                t,
                &json!({ "role": "member" }),
            )
            .await,
        ),
        (
            "remove the member",
            app.delete(&format!("{users}/{}", a.member.id), t).await,
        ),
        (
            "remove the owner",
            app.delete(&format!("{users}/{}", a.owner.id), t).await,
        ),
        (
            "create a key",
            app.post(&keys, t, &json!({ "name": "backdoor" })).await,
        ),
        ("list keys", app.get(&keys, t).await),
        (
            "rename a key",
            app.patch(
                &format!("{keys}/{key_id}"),
                t,
                &json!({ "name": "renamed" }),
            )
            .await,
        ),
        (
            "revoke a key",
            app.delete(&format!("{keys}/{key_id}"), t).await,
        ),
    ];
    for (what, response) in &attempts {
        assert_eq!(
            (
                response.status,
                response.json.get("error").and_then(|e| e.as_str())
            ),
            (403, Some("Permission denied.")),
            "{what}: HTTP {} {}",
            response.status,
            response.text
        );
    }

    // B still sees only their own project.
    let listed = app.get("/api/projects", t).await;
    listed.assert_status(200);
    assert_same(&listed.json, &json!([b_project]));

    // A's data is unchanged.
    let project_after = app.get(&project, &a.owner.token).await;
    project_after.assert_status(200);
    assert_same(&project_after.json, &project_before.json);
    assert_eq!(project_after.json["name"], a.project["name"]);

    let mut members_after = app.list_members(&a.owner.token, &pid).await;
    members_after.assert_status(200);
    let mut members_before = members_before;
    sort_by_user(&mut members_before);
    sort_by_user(&mut members_after);
    assert_same(&members_after.json, &members_before.json);
    assert_eq!(members_after.array().len(), 2);

    let keys_after = app.list_keys(&a.owner.token, &pid).await;
    keys_after.assert_status(200);
    assert_same(&keys_after.json, &keys_before.json);
    assert_eq!(keys_after.array().len(), 1);
    assert_eq!(keys_after.array()[0]["name"], "production");

    // The member still has access.
    app.get(&project, &a.member.token).await.assert_status(200);
});

fn sort_by_user(response: &mut Response) {
    if let Some(items) = response.json.as_array_mut() {
        items.sort_by_key(|m| str_field(m, "userId"));
    }
}
