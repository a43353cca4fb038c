//! Data the old Go server left behind keeps working, and API keys
//! authenticate: `GET /api/keys/current` with new and old secrets, and
//! `lastUsedAt`.

use e2e::reqwest::Method;
use e2e::{both_backends, str_field};

/// A password hash in the Go server's exact format (argon2id, m=65536, t=1,
/// p=4, 16-byte salt, 32-byte key, unpadded base64), made by argon2-cffi for
/// the password below.
const GO_PASSWORD_HASH: &str = "$argon2id$v=19$m=65536,t=1,p=4$S3T0AkInlb5pwMkZhGPyqQ$+fqxuOytISzPbcvtXZbJlozUim/KiOC0B4Y4n0QExU0";
const GO_PASSWORD: &str = "go-server-password";

/// An old-format secret (64 lowercase hex) and the SHA-256 hex of its text,
/// which is what the Go server stored.
const GO_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const GO_SECRET_HASH: &str = "a8ae6e6ee929abea3afcfc5258c8ccd6f85273e0d4626d26c7279f3250f77c8e";

both_backends!(an_imported_go_password_hash_logs_in, |app| async move {
    let id = "0196d1c2-0000-7000-8000-000000000001";
    app.execute_sql(&format!(
        "INSERT INTO users (id, username, username_key, email, email_key, password_hash, created_at) \
         VALUES ('{id}', 'Gopher', 'gopher', 'gopher@example.com', 'gopher@example.com', \
         '{GO_PASSWORD_HASH}', '2026-05-01 14:49:07+00:00')"
    ))
    .await;
    let login = app.login("gopher", GO_PASSWORD).await;
    login.assert_status(200);
    assert_eq!(login.json["user"]["id"], id);
    assert_eq!(login.json["user"]["username"], "Gopher");
    app.login("gopher", "not-the-password")
        .await
        .assert_error(401);
});

both_backends!(
    a_new_key_authenticates_and_records_its_use,
    |app| async move {
        let owner = app.register_user().await;
        let project = app.create_project(&owner.token).await;
        let pid = str_field(&project, "id");
        let created = app.create_key(&owner.token, &pid, Some("ci")).await;
        let secret = str_field(&created, "secret");
        let key_id = str_field(&created["key"], "id");
        assert!(created["key"]["lastUsedAt"].is_null());

        let current = app
            .send(app.authed(Method::GET, "/api/keys/current", &secret))
            .await;
        current.assert_status(200);
        assert_eq!(current.json["id"], key_id.as_str());
        assert_eq!(current.json["projectId"], pid.as_str());
        assert!(current.json.get("secret").is_none());
        let used_at = str_field(&current.json, "lastUsedAt");

        let listing = app.list_keys(&owner.token, &pid).await;
        listing.assert_status(200);
        assert_eq!(listing.array()[0]["lastUsedAt"], used_at.as_str());

        // A session token is not an API key, nor is a near miss of the secret.
        app.send(app.authed(Method::GET, "/api/keys/current", &owner.token))
            .await
            .assert_error(401);
        let flipped = if secret.ends_with('0') { '1' } else { '0' };
        let near_miss = format!("{}{flipped}", &secret[..secret.len() - 1]);
        app.send(app.authed(Method::GET, "/api/keys/current", &near_miss))
            .await
            .assert_error(401);
        app.get_anon("/api/keys/current").await.assert_error(401);

        // Revoked keys stop working at once.
        app.delete(&format!("/api/projects/{pid}/keys/{key_id}"), &owner.token)
            .await
            .assert_no_content();
        app.send(app.authed(Method::GET, "/api/keys/current", &secret))
            .await
            .assert_error(401);
    }
);

both_backends!(an_imported_go_api_key_keeps_working, |app| async move {
    let owner = app.register_user().await;
    let project = app.create_project(&owner.token).await;
    let pid = str_field(&project, "id");
    let key_id = "0196d1c2-0000-7000-8000-0000000000aa";
    app.execute_sql(&format!(
        "INSERT INTO api_keys (id, project_id, created_by, name, key_hash, key_prefix, created_at) \
         VALUES ('{key_id}', '{pid}', '{}', 'key-0196d1c2', '{GO_SECRET_HASH}', '01234567', \
         '2026-05-01 14:49:07+00:00')",
        owner.id
    ))
    .await;
    let current = app
        .send(app.authed(Method::GET, "/api/keys/current", GO_SECRET))
        .await;
    current.assert_status(200);
    assert_eq!(current.json["id"], key_id);
    assert_eq!(current.json["keyPrefix"], "01234567");
    assert!(current.json["lastUsedAt"].is_string());
    // Uppercase hex is not the secret the Go server handed out.
    app.send(app.authed(Method::GET, "/api/keys/current", &GO_SECRET.to_uppercase()))
        .await
        .assert_error(401);
});

both_backends!(errors_for_wrong_methods_are_json, |app| async move {
    let wrong = app.send(app.client.put(app.url("/api/auth/login"))).await;
    assert_eq!(wrong.status, 405, "{}", wrong.text);
    assert!(wrong.json["error"].is_string(), "{}", wrong.text);
});

both_backends!(responses_carry_a_request_id, |app| async move {
    let fresh = app.get_anon("/healthz").await;
    let generated = fresh.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let echoed = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "trace-abc-123"),
        )
        .await;
    assert_eq!(echoed.headers["x-request-id"], "trace-abc-123");
    let unsafe_id = app
        .send(
            app.client
                .get(app.url("/healthz"))
                .header("x-request-id", "a b\tc"),
        )
        .await;
    assert_ne!(unsafe_id.headers["x-request-id"], "a b\tc");
});
