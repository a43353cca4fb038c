//! Registration, login and `/api/auth/me`.

use e2e::reqwest::header::CONTENT_TYPE;
use e2e::serde_json::json;
use e2e::{PASSWORD, assert_same, assert_user_shape, both_backends, str_field, unique_identity};

both_backends!(register_returns_user_and_token, |app| async move {
    let (username, email) = unique_identity();
    let response = app
        .register(&json!({ "username": username, "email": email, "password": PASSWORD }))
        .await;

    response.assert_status(201);
    let user = &response.json["user"];
    assert_user_shape(user);
    assert_eq!(user["username"], username.as_str());
    assert_eq!(user["email"], email.as_str());
    let token = str_field(&response.json, "token");
    assert_eq!(token.split('.').count(), 3, "token is not a JWT: {token}");
    assert!(
        !response.text.contains(PASSWORD),
        "the password is echoed back: {}",
        response.text
    );

    // The token works right away and identifies the new user.
    let me = app.me(&token).await;
    me.assert_status(200);
    assert_eq!(me.json["id"], user["id"]);
});

both_backends!(
    register_accepts_an_eight_character_password,
    |app| async move {
        let (username, email) = unique_identity();
        app.register(&json!({ "username": username, "email": email, "password": "12345678" }))
            .await
            .assert_status(201);
    }
);

both_backends!(
    register_rejects_missing_and_empty_fields,
    |app| async move {
        let (username, email) = unique_identity();
        let complete = json!({ "username": username, "email": email, "password": PASSWORD });
        for field in ["username", "email", "password"] {
            let mut missing = complete.clone();
            missing.as_object_mut().unwrap().remove(field);
            app.register(&missing).await.assert_error(400);

            let mut empty = complete.clone();
            empty[field] = json!("");
            app.register(&empty).await.assert_error(400);
        }
        app.register(&json!({})).await.assert_error(400);

        // None of the rejected attempts created the user.
        app.register(&complete).await.assert_status(201);
    }
);

both_backends!(register_rejects_invalid_values, |app| async move {
    let (username, email) = unique_identity();
    let cases = [
        (
            "malformed email",
            json!({ "username": username, "email": "not-an-email", "password": PASSWORD }),
        ),
        (
            "7-character password",
            json!({ "username": username, "email": email, "password": "1234567" }),
        ),
        (
            "username with @",
            json!({ "username": format!("{username}@x"), "email": email, "password": PASSWORD }),
        ),
        (
            "username with a space",
            json!({ "username": format!("{username} x"), "email": email, "password": PASSWORD }),
        ),
        (
            "username with a tab",
            json!({ "username": format!("{username}\tx"), "email": email, "password": PASSWORD }),
        ),
    ];
    for (case, body) in cases {
        let response = app.register(&body).await;
        assert_eq!(response.status, 400, "{case}: {}", response.text);
        response.assert_error(400);
    }
});

both_backends!(
    register_rejects_taken_username_case_insensitively,
    |app| async move {
        let suffix = &uuid_suffix();
        let first = format!("Alice-{suffix}");
        app.register_as(&first, &format!("first-{suffix}@example.com"), PASSWORD)
            .await;

        let response = app
            .register(&json!({
                "username": first.to_lowercase(),
                "email": format!("second-{suffix}@example.com"),
                "password": PASSWORD,
            }))
            .await;
        response.assert_error(409);

        let response = app
            .register(&json!({
                "username": first.clone(),
                "email": format!("third-{suffix}@example.com"),
                "password": PASSWORD,
            }))
            .await;
        response.assert_error(409);
    }
);

both_backends!(
    register_rejects_taken_email_case_insensitively,
    |app| async move {
        let suffix = &uuid_suffix();
        let email = format!("A-{suffix}@X.io");
        app.register_as(&format!("first-{suffix}"), &email, PASSWORD)
            .await;

        let response = app
            .register(&json!({
                "username": format!("second-{suffix}"),
                "email": email.to_lowercase(),
                "password": PASSWORD,
            }))
            .await;
        response.assert_error(409);
    }
);

both_backends!(register_rejects_malformed_json, |app| async move {
    let malformed = app
        .send(
            app.client
                .post(app.url("/api/auth/register"))
                .header(CONTENT_TYPE, "application/json")
                .body(r#"{"username": "bob", "email": "#),
        )
        .await;
    malformed.assert_error(400);

    let not_an_object = app.register(&json!(["alice", "a@x.io", PASSWORD])).await;
    not_an_object.assert_error(400);
});

both_backends!(register_rejects_a_wrong_content_type, |app| async move {
    let (username, email) = unique_identity();
    let valid_json = json!({ "username": username, "email": email, "password": PASSWORD });
    let wrong_type = app
        .send(
            app.client
                .post(app.url("/api/auth/register"))
                .header(CONTENT_TYPE, "text/plain")
                .body(valid_json.to_string()),
        )
        .await;
    wrong_type.assert_error(400);
    app.login(&username, PASSWORD).await.assert_error(401);
});

both_backends!(register_rejects_a_missing_body, |app| async move {
    let no_body = app
        .send(app.client.post(app.url("/api/auth/register")))
        .await;
    no_body.assert_error(400);
});

both_backends!(
    closed_registration_allows_only_the_first_user,
    env = [("ALLOW_REGISTRATION", "false")],
    |app| async move {
        let first = app.register_user().await;

        let (username, email) = unique_identity();
        let response = app
            .register(&json!({ "username": username, "email": email, "password": PASSWORD }))
            .await;
        response.assert_error(403);

        // The refused user does not exist; the first one still logs in.
        app.login(&username, PASSWORD).await.assert_error(401);
        app.login(&first.username, PASSWORD)
            .await
            .assert_status(200);
    }
);

both_backends!(
    open_registration_is_the_default_and_explicit_true_works,
    env = [("ALLOW_REGISTRATION", "true")],
    |app| async move {
        app.register_user().await;
        app.register_user().await;
        app.register_user().await;
    }
);

both_backends!(login_with_username_or_email_any_case, |app| async move {
    let suffix = uuid_suffix();
    let user = app
        .register_as(
            &format!("Carol-{suffix}"),
            &format!("Carol-{suffix}@Example.com"),
            PASSWORD,
        )
        .await;

    for login in [
        user.username.clone(),
        user.username.to_lowercase(),
        user.username.to_uppercase(),
        user.email.clone(),
        user.email.to_lowercase(),
        user.email.to_uppercase(),
    ] {
        let response = app.login(&login, PASSWORD).await;
        assert_eq!(response.status, 200, "login {login:?}: {}", response.text);
        assert_user_shape(&response.json["user"]);
        assert_eq!(response.json["user"]["id"], user.id.as_str());
        let token = str_field(&response.json, "token");
        let me = app.me(&token).await;
        me.assert_status(200);
        assert_eq!(me.json["id"], user.id.as_str());
    }
});

both_backends!(
    login_rejects_bad_credentials_with_the_same_answer,
    |app| async move {
        let user = app.register_user().await;

        let wrong_password = app.login(&user.username, "wrong-password").await;
        assert_eq!(wrong_password.assert_error(401), "Invalid credentials.");

        let wrong_password_by_email = app.login(&user.email, "wrong-password").await;
        assert_eq!(
            wrong_password_by_email.assert_error(401),
            "Invalid credentials."
        );

        let unknown = app.login("nobody-here", PASSWORD).await;
        assert_eq!(unknown.assert_error(401), "Invalid credentials.");
        assert_eq!(unknown.json, wrong_password.json);

        // Password comparison is exact (not case-insensitive).
        let shouted = app.login(&user.username, &PASSWORD.to_uppercase()).await;
        assert_eq!(shouted.assert_error(401), "Invalid credentials.");
    }
);

both_backends!(login_rejects_missing_fields, |app| async move {
    let user = app.register_user().await;
    let cases = [
        json!({ "password": PASSWORD }),
        json!({ "login": user.username }),
        json!({}),
        json!({ "login": "", "password": PASSWORD }),
        json!({ "login": user.username, "password": "" }),
    ];
    for body in cases {
        let response = app.post_anon("/api/auth/login", &body).await;
        assert_eq!(response.status, 400, "{body}: {}", response.text);
        response.assert_error(400);
    }
});

both_backends!(me_returns_the_current_user, |app| async move {
    let user = app.register_user().await;
    let other = app.register_user().await;

    let response = app.me(&user.token).await;
    response.assert_status(200);
    assert_user_shape(&response.json);
    assert_eq!(response.json["id"], user.id.as_str());
    assert_eq!(response.json["username"], user.username.as_str());
    assert_eq!(response.json["email"], user.email.as_str());
    assert_same(&response.json, &user.user);

    let response = app.me(&other.token).await;
    response.assert_status(200);
    assert_eq!(response.json["id"], other.id.as_str());
});

both_backends!(
    me_rejects_missing_or_malformed_authorization,
    |app| async move {
        let user = app.register_user().await;
        let url = app.url("/api/auth/me");

        let cases: Vec<(&str, Option<String>)> = vec![
            ("no header", None),
            ("Basic scheme", Some(format!("Basic {}", user.token))),
            ("token without scheme", Some(user.token.clone())),
            ("empty bearer", Some("Bearer ".to_owned())),
            ("garbage bearer", Some("Bearer not.a.jwt".to_owned())),
            (
                "random bearer",
                Some("Bearer abcdefghijklmnopqrstuvwxyz".to_owned()),
            ),
            (
                "tampered signature",
                Some(format!("Bearer {}x", user.token.trim_end_matches('='))),
            ),
        ];
        for (case, header) in cases {
            let mut request = app.client.get(&url);
            if let Some(header) = header {
                request = request.header("Authorization", header);
            }
            let response = app.send(request).await;
            assert_eq!(response.status, 401, "{case}: {}", response.text);
            response.assert_error(401);
        }
    }
);

fn uuid_suffix() -> String {
    let (username, _) = unique_identity();
    username.trim_start_matches("user-").to_owned()
}
