//! `/api/projects/{id}/keys` and `/api/projects/{id}/keys/{keyId}`.

use std::collections::BTreeSet;

use e2e::reqwest::Method;
use e2e::serde_json::{Value, json};
use e2e::{
    all_keys, assert_has_fields, assert_rfc3339, assert_same, assert_uuid, both_backends,
    sha256_hex, str_field,
};

const KEY_FIELDS: &[&str] = &[
    "id",
    "projectId",
    "createdBy",
    "name",
    "keyPrefix",
    "createdAt",
    "lastUsedAt",
];

/// Asserts that a key listing exposes neither secrets nor hashes.
#[track_caller]
fn assert_listing_hides_secrets(listing: &e2e::Response, secrets: &[String]) {
    let keys = all_keys(&listing.json);
    for forbidden in ["secret", "hash", "keyhash", "secrethash"] {
        assert!(
            !keys.contains(forbidden),
            "field {forbidden:?} in {}",
            listing.text
        );
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("hash") || k.contains("secret")),
        "{}",
        listing.text
    );
    for secret in secrets {
        assert!(
            !listing.text.contains(secret.as_str()),
            "secret leaked: {}",
            listing.text
        );
        assert!(
            !listing.text.contains(&sha256_hex(secret)),
            "secret hash leaked: {}",
            listing.text
        );
    }
}

both_backends!(
    create_key_returns_the_key_and_its_secret_once,
    |app| async move {
        let owner = app.register_user().await;
        let project = app.create_project(&owner.token).await;
        let pid = str_field(&project, "id");

        let created = app.create_key(&owner.token, &pid, Some("CI deploys")).await;
        assert_has_fields(&created, &["key", "secret"]);
        let key = &created["key"];
        assert_has_fields(key, KEY_FIELDS);
        assert_uuid(&key["id"]);
        assert_eq!(key["projectId"], pid.as_str());
        assert_eq!(key["createdBy"], owner.id.as_str());
        assert_eq!(key["name"], "CI deploys");
        assert_rfc3339(&key["createdAt"]);
        assert_eq!(key["lastUsedAt"], Value::Null, "a new key was never used");

        let prefix = str_field(key, "keyPrefix");
        assert_eq!(prefix.chars().count(), 8, "keyPrefix {prefix:?}");
        let secret = str_field(&created, "secret");
        assert!(
            secret.starts_with(&format!("eus_{prefix}")),
            "secret {secret:?} does not start with eus_{prefix}"
        );
        assert!(
            secret.len() >= "eus_".len() + 8 + 16,
            "secret {secret:?} is too short to be a credential"
        );
        assert!(
            !all_keys(key).iter().any(|k| k.contains("hash")),
            "{created}"
        );

        // Two keys never share a secret.
        let another = app.create_key(&owner.token, &pid, Some("CI deploys")).await;
        assert_ne!(another["secret"], created["secret"]);
        assert_ne!(another["key"]["id"], created["key"]["id"]);
    }
);

both_backends!(create_key_body_is_optional, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let path = format!("/api/projects/{pid}/keys");

    let without_body = app
        .send(app.authed(Method::POST, &path, &owner.token))
        .await;
    without_body.assert_status(201);
    let name = str_field(&without_body.json["key"], "name");
    assert!(!name.trim().is_empty(), "default name is empty");
    assert!(str_field(&without_body.json, "secret").starts_with("eus_"));

    let empty_object = app.post(&path, &owner.token, &json!({})).await;
    empty_object.assert_status(201);
    assert!(
        !str_field(&empty_object.json["key"], "name")
            .trim()
            .is_empty()
    );
});

both_backends!(default_key_names_are_unique, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");

    let mut names = BTreeSet::new();
    for _ in 0..5 {
        let created = app.create_key(&owner.token, &pid, None).await;
        names.insert(str_field(&created["key"], "name"));
    }
    assert_eq!(names.len(), 5, "default names collide: {names:?}");
    assert!(names.iter().all(|n| !n.trim().is_empty()), "{names:?}");
});

both_backends!(list_keys_never_shows_secrets, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");

    let empty = app.list_keys(&owner.token, &pid).await;
    empty.assert_status(200);
    assert!(empty.array().is_empty());

    let first = app.create_key(&owner.token, &pid, Some("first")).await;
    let second = app.create_key(&owner.token, &pid, Some("second")).await;

    let listing = app.list_keys(&owner.token, &pid).await;
    listing.assert_status(200);
    assert_eq!(listing.array().len(), 2);
    for key in listing.array() {
        assert_has_fields(key, KEY_FIELDS);
    }
    let mut listed: Vec<Value> = listing.array().clone();
    listed.sort_by_key(|k| str_field(k, "name"));
    assert_same(&json!(listed), &json!([first["key"], second["key"]]));

    assert_listing_hides_secrets(
        &listing,
        &[str_field(&first, "secret"), str_field(&second, "secret")],
    );

    // Keys of another project don't show up.
    let other = app.create_project(&owner.token).await;
    let other_listing = app.list_keys(&owner.token, &str_field(&other, "id")).await;
    other_listing.assert_status(200);
    assert!(other_listing.array().is_empty());
});

both_backends!(rename_key, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let created = app.create_key(&owner.token, &pid, Some("old name")).await;
    let key_id = str_field(&created["key"], "id");
    let path = format!("/api/projects/{pid}/keys/{key_id}");

    app.patch(&path, &owner.token, &json!({ "name": "new name" }))
        .await
        .assert_no_content();

    let listing = app.list_keys(&owner.token, &pid).await;
    assert_eq!(listing.array().len(), 1);
    let key = &listing.array()[0];
    assert_eq!(key["id"], key_id.as_str());
    assert_eq!(key["name"], "new name");
    assert_eq!(key["keyPrefix"], created["key"]["keyPrefix"]);
    assert_same(&key["createdAt"], &created["key"]["createdAt"]);
});

both_backends!(rename_key_rejects_bad_requests, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let other = app.create_project(&owner.token).await;
    let other_pid = str_field(&other, "id");
    let created = app.create_key(&owner.token, &pid, Some("keep me")).await;
    let key_id = str_field(&created["key"], "id");
    let foreign = app
        .create_key(&owner.token, &other_pid, Some("foreign"))
        .await;
    let foreign_id = str_field(&foreign["key"], "id");
    let path = format!("/api/projects/{pid}/keys/{key_id}");

    app.patch(&path, &owner.token, &json!({ "name": "" }))
        .await
        .assert_error(400);
    app.patch(&path, &owner.token, &json!({}))
        .await
        .assert_error(400);

    app.patch(
        &format!("/api/projects/{pid}/keys/{}", uuid::Uuid::new_v4()),
        &owner.token,
        &json!({ "name": "x" }),
    )
    .await
    .assert_error(404);
    app.patch(
        &format!("/api/projects/{pid}/keys/{foreign_id}"),
        &owner.token,
        &json!({ "name": "stolen" }),
    )
    .await
    .assert_error(404);

    let listing = app.list_keys(&owner.token, &pid).await;
    assert_eq!(listing.array().len(), 1);
    assert_eq!(listing.array()[0]["name"], "keep me");
    let listing = app.list_keys(&owner.token, &other_pid).await;
    assert_eq!(listing.array()[0]["name"], "foreign");
});

both_backends!(revoke_key, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let other = app.create_project(&owner.token).await;
    let other_pid = str_field(&other, "id");
    let revoked = app.create_key(&owner.token, &pid, Some("revoked")).await;
    let kept = app.create_key(&owner.token, &pid, Some("kept")).await;
    let foreign = app
        .create_key(&owner.token, &other_pid, Some("foreign"))
        .await;
    let revoked_id = str_field(&revoked["key"], "id");

    let path = format!("/api/projects/{pid}/keys/{revoked_id}");
    app.delete(&path, &owner.token).await.assert_no_content();
    app.delete(&path, &owner.token).await.assert_error(404);
    app.patch(&path, &owner.token, &json!({ "name": "zombie" }))
        .await
        .assert_error(404);

    // A key of another project cannot be revoked through this project.
    app.delete(
        &format!(
            "/api/projects/{pid}/keys/{}",
            foreign["key"]["id"].as_str().unwrap()
        ),
        &owner.token,
    )
    .await
    .assert_error(404);
    app.delete(
        &format!("/api/projects/{pid}/keys/{}", uuid::Uuid::new_v4()),
        &owner.token,
    )
    .await
    .assert_error(404);

    let listing = app.list_keys(&owner.token, &pid).await;
    assert_same(&listing.json, &json!([kept["key"]]));
    let listing = app.list_keys(&owner.token, &other_pid).await;
    assert_same(&listing.json, &json!([foreign["key"]]));
});

both_backends!(members_cannot_manage_keys, |app| async move {
    let setup = app.project_with_member().await;
    let pid = &setup.project_id;
    let created = app
        .create_key(&setup.owner.token, pid, Some("owner's"))
        .await;
    let key_id = str_field(&created["key"], "id");
    let key_path = format!("/api/projects/{pid}/keys/{key_id}");
    let token = &setup.member.token;

    app.post(
        &format!("/api/projects/{pid}/keys"),
        token,
        &json!({ "name": "mine" }),
    )
    .await
    .assert_forbidden();
    app.list_keys(token, pid).await.assert_forbidden();
    app.patch(&key_path, token, &json!({ "name": "renamed" }))
        .await
        .assert_forbidden();
    app.delete(&key_path, token).await.assert_forbidden();

    let listing = app.list_keys(&setup.owner.token, pid).await;
    listing.assert_status(200);
    assert_same(&listing.json, &json!([created["key"]]));
});

both_backends!(created_by_is_the_creating_owner, |app| async move {
    let setup = app.project_with_member().await;
    let pid = &setup.project_id;
    app.patch(
        &format!("/api/projects/{pid}/users/{}", setup.member.id),
        &setup.owner.token,
        &json!({ "role": "owner" }),
    )
    .await
    .assert_status(200);

    let by_owner = app.create_key(&setup.owner.token, pid, Some("a")).await;
    let by_second = app.create_key(&setup.member.token, pid, Some("b")).await;
    assert_eq!(by_owner["key"]["createdBy"], setup.owner.id.as_str());
    assert_eq!(by_second["key"]["createdBy"], setup.member.id.as_str());
});
