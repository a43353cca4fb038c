//! `/api/projects/{id}/users` and `/api/projects/{id}/users/{userId}`.

use e2e::serde_json::{Value, json};
use e2e::{
    assert_has_fields, assert_no_secrets, assert_rfc3339, assert_uuid, both_backends, str_field,
};

const MEMBERSHIP_FIELDS: &[&str] = &["id", "projectId", "userId", "role", "createdAt"];
const MEMBER_FIELDS: &[&str] = &["userId", "username", "email", "role", "createdAt"];

/// The `(userId, role)` pairs of a member list, sorted.
fn roles(members: &[Value]) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = members
        .iter()
        .map(|m| (str_field(m, "userId"), str_field(m, "role")))
        .collect();
    pairs.sort();
    pairs
}

fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

both_backends!(add_member_by_user_id_username_or_email, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let by_id = app.register_user().await;
    let by_username = app.register_user().await;
    let by_email = app.register_user().await;

    let cases = [
        (
            &by_id,
            json!({ "userId": by_id.id, "role": "member" }),
            "member",
        ),
        (
            &by_username,
            json!({ "username": by_username.username.to_uppercase(), "role": "owner" }),
            "owner",
        ),
        (
            &by_email,
            json!({ "email": by_email.email.to_uppercase(), "role": "member" }),
            "member",
        ),
    ];
    for (user, body, role) in cases {
        let response = app.add_member_raw(&owner.token, &pid, &body).await;
        assert_eq!(response.status, 201, "{body}: {}", response.text);
        let membership = &response.json;
        assert_has_fields(membership, MEMBERSHIP_FIELDS);
        assert_uuid(&membership["id"]);
        assert_rfc3339(&membership["createdAt"]);
        assert_eq!(membership["projectId"], pid.as_str());
        assert_eq!(membership["userId"], user.id.as_str());
        assert_eq!(membership["role"], role);

        // The new member sees the project.
        app.get(&format!("/api/projects/{pid}"), &user.token)
            .await
            .assert_status(200);
    }

    let listed = app.list_members(&owner.token, &pid).await;
    listed.assert_status(200);
    assert_eq!(
        roles(listed.array()),
        sorted(vec![
            (owner.id.clone(), "owner".to_owned()),
            (by_id.id.clone(), "member".to_owned()),
            (by_username.id.clone(), "owner".to_owned()),
            (by_email.id.clone(), "member".to_owned()),
        ])
    );
});

both_backends!(add_member_rejects_bad_requests, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let user = app.register_user().await;

    for role in ["admin", "", "Owner", "MEMBER", "viewer"] {
        let response = app
            .add_member_raw(
                &owner.token,
                &pid,
                &json!({ "userId": user.id, "role": role }),
            )
            .await;
        assert_eq!(response.status, 400, "role {role:?}: {}", response.text);
        response.assert_error(400);
    }

    app.add_member_raw(&owner.token, &pid, &json!({ "role": "member" }))
        .await
        .assert_error(400);

    for body in [
        json!({ "userId": uuid::Uuid::new_v4().to_string(), "role": "member" }),
        json!({ "username": "no-such-user-anywhere", "role": "member" }),
        json!({ "email": "no-such-user@example.com", "role": "member" }),
    ] {
        let response = app.add_member_raw(&owner.token, &pid, &body).await;
        assert_eq!(response.status, 404, "{body}: {}", response.text);
        response.assert_error(404);
    }

    // Nothing above was added.
    let listed = app.list_members(&owner.token, &pid).await;
    listed.assert_status(200);
    assert_eq!(
        roles(listed.array()),
        vec![(owner.id.clone(), "owner".to_owned())]
    );
});

both_backends!(add_member_twice_conflicts, |app| async move {
    let setup = app.project_with_member().await;
    let pid = &setup.project_id;

    for body in [
        json!({ "userId": setup.member.id, "role": "member" }),
        json!({ "username": setup.member.username, "role": "owner" }),
        json!({ "email": setup.member.email, "role": "member" }),
        json!({ "userId": setup.owner.id, "role": "owner" }),
    ] {
        let response = app.add_member_raw(&setup.owner.token, pid, &body).await;
        assert_eq!(response.status, 409, "{body}: {}", response.text);
        response.assert_error(409);
    }

    let listed = app.list_members(&setup.owner.token, pid).await;
    assert_eq!(
        roles(listed.array()),
        sorted(vec![
            (setup.owner.id.clone(), "owner".to_owned()),
            (setup.member.id.clone(), "member".to_owned()),
        ])
    );
});

both_backends!(only_owners_add_members, |app| async move {
    let setup = app.project_with_member().await;
    let newcomer = app.register_user().await;

    app.add_member_raw(
        &setup.member.token,
        &setup.project_id,
        &json!({ "userId": newcomer.id, "role": "member" }),
    )
    .await
    .assert_forbidden();

    app.get(
        &format!("/api/projects/{}", setup.project_id),
        &newcomer.token,
    )
    .await
    .assert_permission_denied();
});

both_backends!(list_members_for_owner_and_member, |app| async move {
    let setup = app.project_with_member().await;
    let stranger = app.register_user().await;

    for token in [&setup.owner.token, &setup.member.token] {
        let listed = app.list_members(token, &setup.project_id).await;
        listed.assert_status(200);
        assert_eq!(listed.array().len(), 2, "{}", listed.text);
        for member in listed.array() {
            assert_has_fields(member, MEMBER_FIELDS);
            assert_rfc3339(&member["createdAt"]);
            assert_no_secrets(member);
        }
        let owner = listed
            .array()
            .iter()
            .find(|m| m["userId"] == setup.owner.id.as_str())
            .expect("the owner is listed");
        assert_eq!(owner["username"], setup.owner.username.as_str());
        assert_eq!(owner["email"], setup.owner.email.as_str());
        assert_eq!(owner["role"], "owner");
        let member = listed
            .array()
            .iter()
            .find(|m| m["userId"] == setup.member.id.as_str())
            .expect("the member is listed");
        assert_eq!(member["username"], setup.member.username.as_str());
        assert_eq!(member["email"], setup.member.email.as_str());
        assert_eq!(member["role"], "member");
    }

    app.list_members(&stranger.token, &setup.project_id)
        .await
        .assert_permission_denied();
});

both_backends!(change_member_role, |app| async move {
    let setup = app.project_with_member().await;
    let path = format!(
        "/api/projects/{}/users/{}",
        setup.project_id, setup.member.id
    );

    let promoted = app
        .patch(&path, &setup.owner.token, &json!({ "role": "owner" }))
        .await;
    promoted.assert_status(200);
    assert_has_fields(&promoted.json, MEMBERSHIP_FIELDS);
    assert_eq!(promoted.json["projectId"], setup.project_id.as_str());
    assert_eq!(promoted.json["userId"], setup.member.id.as_str());
    assert_eq!(promoted.json["role"], "owner");

    // As an owner now, the promoted user may manage keys.
    app.list_keys(&setup.member.token, &setup.project_id)
        .await
        .assert_status(200);

    let demoted = app
        .patch(&path, &setup.owner.token, &json!({ "role": "member" }))
        .await;
    demoted.assert_status(200);
    assert_eq!(demoted.json["role"], "member");
    assert_eq!(demoted.json["id"], promoted.json["id"]);

    let listed = app
        .list_members(&setup.owner.token, &setup.project_id)
        .await;
    assert_eq!(
        roles(listed.array()),
        sorted(vec![
            (setup.owner.id.clone(), "owner".to_owned()),
            (setup.member.id.clone(), "member".to_owned()),
        ])
    );
    app.list_keys(&setup.member.token, &setup.project_id)
        .await
        .assert_forbidden();
});

both_backends!(change_member_role_rejects_bad_requests, |app| async move {
    let setup = app.project_with_member().await;
    let stranger = app.register_user().await;
    let member_path = format!(
        "/api/projects/{}/users/{}",
        setup.project_id, setup.member.id
    );

    for role in ["admin", "", "OWNER"] {
        let response = app
            .patch(&member_path, &setup.owner.token, &json!({ "role": role }))
            .await;
        assert_eq!(response.status, 400, "role {role:?}: {}", response.text);
        response.assert_error(400);
    }
    app.patch(&member_path, &setup.owner.token, &json!({}))
        .await
        .assert_error(400);

    for target in [stranger.id.clone(), uuid::Uuid::new_v4().to_string()] {
        let response = app
            .patch(
                &format!("/api/projects/{}/users/{target}", setup.project_id),
                &setup.owner.token,
                &json!({ "role": "owner" }),
            )
            .await;
        response.assert_error(404);
    }

    // A member cannot change roles, not even their own.
    app.patch(
        &member_path,
        &setup.member.token,
        &json!({ "role": "owner" }),
    )
    .await
    .assert_forbidden();

    let listed = app
        .list_members(&setup.owner.token, &setup.project_id)
        .await;
    assert_eq!(
        roles(listed.array()),
        sorted(vec![
            (setup.owner.id.clone(), "owner".to_owned()),
            (setup.member.id.clone(), "member".to_owned()),
        ])
    );
});

both_backends!(the_last_owner_cannot_be_demoted, |app| async move {
    let setup = app.project_with_member().await;
    let owner_path = format!(
        "/api/projects/{}/users/{}",
        setup.project_id, setup.owner.id
    );

    app.patch(
        &owner_path,
        &setup.owner.token,
        &json!({ "role": "member" }),
    )
    .await
    .assert_error(409);

    // Still the owner: owner-only routes work.
    app.list_keys(&setup.owner.token, &setup.project_id)
        .await
        .assert_status(200);

    // Re-asserting the same role is not a demotion.
    app.patch(&owner_path, &setup.owner.token, &json!({ "role": "owner" }))
        .await
        .assert_status(200);
});

both_backends!(with_two_owners_one_may_demote_the_other, |app| async move {
    let setup = app.project_with_member().await;
    let pid = &setup.project_id;
    let second = &setup.member;
    let promote = app
        .patch(
            &format!("/api/projects/{pid}/users/{}", second.id),
            &setup.owner.token,
            &json!({ "role": "owner" }),
        )
        .await;
    promote.assert_status(200);

    // The second owner demotes the first one.
    let demoted = app
        .patch(
            &format!("/api/projects/{pid}/users/{}", setup.owner.id),
            &second.token,
            &json!({ "role": "member" }),
        )
        .await;
    demoted.assert_status(200);
    assert_eq!(demoted.json["userId"], setup.owner.id.as_str());
    assert_eq!(demoted.json["role"], "member");

    // Now the second owner is the last one and cannot step down.
    app.patch(
        &format!("/api/projects/{pid}/users/{}", second.id),
        &second.token,
        &json!({ "role": "member" }),
    )
    .await
    .assert_error(409);

    // The demoted first owner lost the owner-only routes.
    app.list_keys(&setup.owner.token, pid)
        .await
        .assert_forbidden();
});

both_backends!(remove_member, |app| async move {
    let setup = app.project_with_member().await;
    let pid = &setup.project_id;

    let removed = app
        .delete(
            &format!("/api/projects/{pid}/users/{}", setup.member.id),
            &setup.owner.token,
        )
        .await;
    removed.assert_no_content();

    app.get(&format!("/api/projects/{pid}"), &setup.member.token)
        .await
        .assert_permission_denied();
    app.list_members(&setup.member.token, pid)
        .await
        .assert_permission_denied();
    let listed = app.get("/api/projects", &setup.member.token).await;
    listed.assert_status(200);
    assert!(listed.array().is_empty());

    let members = app.list_members(&setup.owner.token, pid).await;
    assert_eq!(
        roles(members.array()),
        vec![(setup.owner.id.clone(), "owner".to_owned())]
    );

    // Removing again: no longer a member.
    app.delete(
        &format!("/api/projects/{pid}/users/{}", setup.member.id),
        &setup.owner.token,
    )
    .await
    .assert_error(404);
});

both_backends!(remove_member_rejects_bad_requests, |app| async move {
    let setup = app.project_with_member().await;
    let pid = &setup.project_id;
    let stranger = app.register_user().await;

    app.delete(
        &format!("/api/projects/{pid}/users/{}", setup.owner.id),
        &setup.owner.token,
    )
    .await
    .assert_error(400);

    for target in [stranger.id.clone(), uuid::Uuid::new_v4().to_string()] {
        app.delete(
            &format!("/api/projects/{pid}/users/{target}"),
            &setup.owner.token,
        )
        .await
        .assert_error(404);
    }

    app.delete(
        &format!("/api/projects/{pid}/users/{}", setup.owner.id),
        &setup.member.token,
    )
    .await
    .assert_forbidden();

    let members = app.list_members(&setup.owner.token, pid).await;
    assert_eq!(
        roles(members.array()),
        sorted(vec![
            (setup.owner.id.clone(), "owner".to_owned()),
            (setup.member.id.clone(), "member".to_owned()),
        ])
    );
});
