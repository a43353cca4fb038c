//! `/api/projects` and `/api/projects/{id}`.

use e2e::serde_json::{Value, json};
use e2e::{
    assert_has_fields, assert_rfc3339, assert_same, assert_uuid, both_backends, str_field,
    unique_slug,
};

const PROJECT_FIELDS: &[&str] = &["id", "name", "slug", "createdAt"];

both_backends!(create_project_returns_the_project, |app| async move {
    let user = app.register_user().await;
    let slug = unique_slug();
    let response = app
        .create_project_raw(&user.token, &json!({ "name": "My App", "slug": slug }))
        .await;

    response.assert_status(201);
    assert_has_fields(&response.json, PROJECT_FIELDS);
    assert_uuid(&response.json["id"]);
    assert_rfc3339(&response.json["createdAt"]);
    assert_eq!(response.json["name"], "My App");
    assert_eq!(response.json["slug"], slug.as_str());

    let id = str_field(&response.json, "id");
    let fetched = app.get(&format!("/api/projects/{id}"), &user.token).await;
    fetched.assert_status(200);
    assert_same(&fetched.json, &response.json);
});

both_backends!(project_routes_require_a_token, |app| async move {
    let user = app.register_user().await;
    let project = app.create_project(&user.token).await;
    let id = str_field(&project, "id");

    app.get_anon("/api/projects").await.assert_error(401);
    app.post_anon(
        "/api/projects",
        &json!({ "name": "x", "slug": unique_slug() }),
    )
    .await
    .assert_error(401);
    app.get_anon(&format!("/api/projects/{id}"))
        .await
        .assert_error(401);
    app.get_anon(&format!("/api/projects/{id}/users"))
        .await
        .assert_error(401);
    app.get_anon(&format!("/api/projects/{id}/keys"))
        .await
        .assert_error(401);
});

both_backends!(
    create_project_rejects_missing_fields_and_bad_slugs,
    |app| async move {
        let user = app.register_user().await;
        let slug = unique_slug();
        let cases = [
            ("missing name", json!({ "slug": slug })),
            ("missing slug", json!({ "name": "App" })),
            ("empty name", json!({ "name": "", "slug": slug })),
            ("empty slug", json!({ "name": "App", "slug": "" })),
            (
                "slug with a space",
                json!({ "name": "App", "slug": "My App" }),
            ),
            ("upper-case slug", json!({ "name": "App", "slug": "UPPER" })),
            (
                "slug with an underscore",
                json!({ "name": "App", "slug": "a_b" }),
            ),
            ("slug with a slash", json!({ "name": "App", "slug": "a/b" })),
            ("slug with a dot", json!({ "name": "App", "slug": "a.b" })),
        ];
        for (case, body) in cases {
            let response = app.create_project_raw(&user.token, &body).await;
            assert_eq!(response.status, 400, "{case}: {}", response.text);
            response.assert_error(400);
        }

        let listed = app.get("/api/projects", &user.token).await;
        listed.assert_status(200);
        assert!(
            listed.array().is_empty(),
            "rejected projects were created: {}",
            listed.text
        );

        // Digits and dashes are fine.
        app.create_project_raw(
            &user.token,
            &json!({ "name": "App", "slug": format!("0-9-{slug}") }),
        )
        .await
        .assert_status(201);
    }
);

both_backends!(create_project_rejects_a_taken_slug, |app| async move {
    let alice = app.register_user().await;
    let bob = app.register_user().await;
    let slug = unique_slug();
    app.create_project_raw(&alice.token, &json!({ "name": "A", "slug": slug }))
        .await
        .assert_status(201);

    app.create_project_raw(&alice.token, &json!({ "name": "A again", "slug": slug }))
        .await
        .assert_error(409);
    app.create_project_raw(&bob.token, &json!({ "name": "B", "slug": slug }))
        .await
        .assert_error(409);

    let listed = app.get("/api/projects", &bob.token).await;
    listed.assert_status(200);
    assert!(listed.array().is_empty());
});

both_backends!(
    list_projects_shows_only_mine_newest_first,
    |app| async move {
        let alice = app.register_user().await;
        let bob = app.register_user().await;

        let first = app.create_project(&alice.token).await;
        let bobs = app.create_project(&bob.token).await;
        let second = app.create_project(&alice.token).await;
        let third = app.create_project(&alice.token).await;

        let listed = app.get("/api/projects", &alice.token).await;
        listed.assert_status(200);
        let ids: Vec<&Value> = listed.array().iter().map(|p| &p["id"]).collect();
        assert_eq!(ids, vec![&third["id"], &second["id"], &first["id"]]);
        for project in listed.array() {
            assert_has_fields(project, PROJECT_FIELDS);
        }
        assert_same(&listed.array()[0], &third);

        let listed = app.get("/api/projects", &bob.token).await;
        listed.assert_status(200);
        assert_same(&listed.json, &json!([bobs]));
    }
);

both_backends!(
    list_projects_includes_projects_i_am_a_member_of,
    |app| async move {
        let setup = app.project_with_member().await;
        let listed = app.get("/api/projects", &setup.member.token).await;
        listed.assert_status(200);
        assert_same(&listed.json, &json!([setup.project]));
    }
);

both_backends!(get_project_for_owner_and_member_only, |app| async move {
    let setup = app.project_with_member().await;
    let stranger = app.register_user().await;
    let path = format!("/api/projects/{}", setup.project_id);

    for token in [&setup.owner.token, &setup.member.token] {
        let response = app.get(&path, token).await;
        response.assert_status(200);
        assert_same(&response.json, &setup.project);
    }

    let denied = app.get(&path, &stranger.token).await;
    denied.assert_permission_denied();

    let missing = app
        .get(
            &format!("/api/projects/{}", uuid::Uuid::new_v4()),
            &stranger.token,
        )
        .await;
    missing.assert_permission_denied();
    assert_eq!(missing.json, denied.json);

    let not_a_uuid = app.get("/api/projects/not-a-uuid", &stranger.token).await;
    assert!(
        not_a_uuid.status == 403 || not_a_uuid.status == 404,
        "non-UUID id: {} {}",
        not_a_uuid.status,
        not_a_uuid.text
    );
    assert_eq!(
        (not_a_uuid.status, &not_a_uuid.json),
        (missing.status, &missing.json),
        "a non-UUID id must get the same answer as a nonexistent project"
    );
});

both_backends!(patch_project_renames_and_changes_slug, |app| async move {
    let user = app.register_user().await;
    let project = app.create_project(&user.token).await;
    let id = str_field(&project, "id");
    let path = format!("/api/projects/{id}");

    let renamed = app
        .patch(&path, &user.token, &json!({ "name": "Renamed" }))
        .await;
    renamed.assert_status(200);
    assert_has_fields(&renamed.json, PROJECT_FIELDS);
    assert_eq!(renamed.json["id"], project["id"]);
    assert_eq!(renamed.json["name"], "Renamed");
    assert_eq!(renamed.json["slug"], project["slug"]);
    assert_same(&renamed.json["createdAt"], &project["createdAt"]);

    let new_slug = unique_slug();
    let reslugged = app
        .patch(&path, &user.token, &json!({ "slug": new_slug }))
        .await;
    reslugged.assert_status(200);
    assert_eq!(reslugged.json["name"], "Renamed");
    assert_eq!(reslugged.json["slug"], new_slug.as_str());

    let both_slug = unique_slug();
    let both = app
        .patch(
            &path,
            &user.token,
            &json!({ "name": "Both", "slug": both_slug }),
        )
        .await;
    both.assert_status(200);
    assert_eq!(both.json["name"], "Both");
    assert_eq!(both.json["slug"], both_slug.as_str());

    let fetched = app.get(&path, &user.token).await;
    fetched.assert_status(200);
    assert_same(&fetched.json, &both.json);

    // The old slug is free again.
    app.create_project_raw(
        &user.token,
        &json!({ "name": "Old", "slug": project["slug"] }),
    )
    .await
    .assert_status(201);
});

both_backends!(
    patch_project_validates_and_checks_permissions,
    |app| async move {
        let setup = app.project_with_member().await;
        let other = app.create_project(&setup.owner.token).await;
        let path = format!("/api/projects/{}", setup.project_id);

        for slug in ["My App", "UPPER", "a_b", ""] {
            let response = app
                .patch(&path, &setup.owner.token, &json!({ "slug": slug }))
                .await;
            assert_eq!(response.status, 400, "slug {slug:?}: {}", response.text);
            response.assert_error(400);
        }
        app.patch(&path, &setup.owner.token, &json!({ "name": "" }))
            .await
            .assert_error(400);

        app.patch(&path, &setup.owner.token, &json!({ "slug": other["slug"] }))
            .await
            .assert_error(409);

        app.patch(&path, &setup.member.token, &json!({ "name": "Hijacked" }))
            .await
            .assert_forbidden();

        let fetched = app.get(&path, &setup.owner.token).await;
        fetched.assert_status(200);
        assert_same(&fetched.json, &setup.project);
    }
);

both_backends!(delete_project_by_owner_only, |app| async move {
    let setup = app.project_with_member().await;
    let kept = app.create_project(&setup.owner.token).await;
    let path = format!("/api/projects/{}", setup.project_id);

    app.delete(&path, &setup.member.token)
        .await
        .assert_forbidden();
    app.get(&path, &setup.owner.token).await.assert_status(200);

    app.delete(&path, &setup.owner.token)
        .await
        .assert_no_content();

    for token in [&setup.owner.token, &setup.member.token] {
        app.get(&path, token).await.assert_permission_denied();
    }
    let listed = app.get("/api/projects", &setup.owner.token).await;
    listed.assert_status(200);
    assert_same(&listed.json, &json!([kept]));
    let listed = app.get("/api/projects", &setup.member.token).await;
    listed.assert_status(200);
    assert!(listed.array().is_empty());

    // Deleting again: the project no longer exists, same answer as for strangers.
    app.delete(&path, &setup.owner.token)
        .await
        .assert_permission_denied();

    // Its slug can be reused.
    app.create_project_raw(
        &setup.owner.token,
        &json!({ "name": "Again", "slug": setup.project["slug"] }),
    )
    .await
    .assert_status(201);
});
