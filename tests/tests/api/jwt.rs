//! JWT issuing and verification, and the JWT secret's life cycle.

use std::os::unix::fs::PermissionsExt;

use e2e::jwt;
use e2e::{
    Backend, TEST_JWT_SECRET, TOKEN_LIFETIME_SECS, TestApp, both_backends, file_holds_secret_of,
    files_in, is_sqlite_file,
};
use jsonwebtoken::Algorithm;

both_backends!(
    issued_tokens_are_hs256_with_sub_iat_and_72h_expiry,
    |app| async move {
        let user = app.register_user().await;
        let login = app.login(&user.username, &user.password).await;
        login.assert_status(200);
        let login_token = e2e::str_field(&login.json, "token");

        for token in [&user.token, &login_token] {
            let header = jwt::header(token);
            assert_eq!(header["alg"], "HS256", "header: {header}");

            let claims = jwt::claims(token);
            assert_eq!(claims["sub"], user.id.as_str(), "claims: {claims}");
            let iat = claims["iat"].as_i64().expect("numeric iat");
            let exp = claims["exp"].as_i64().expect("numeric exp");
            assert_eq!(exp - iat, TOKEN_LIFETIME_SECS, "claims: {claims}");
            assert!(
                (iat - jwt::now()).abs() <= 120,
                "iat {iat} is not now ({})",
                jwt::now()
            );
        }
    }
);

both_backends!(
    tokens_are_signed_with_the_configured_secret,
    env = [("JWT_SECRET", TEST_JWT_SECRET)],
    |app| async move {
        let user = app.register_user().await;
        let claims = jwt::verify_hs256(&user.token, TEST_JWT_SECRET)
            .unwrap_or_else(|e| panic!("the issued token does not verify with JWT_SECRET: {e}"));
        assert_eq!(claims["sub"], user.id.as_str());

        // A token we sign ourselves with the same secret is accepted (control for the
        // rejection tests below).
        let forged = jwt::sign(
            &jwt::claims_for(&user.id, 3600),
            TEST_JWT_SECRET,
            Algorithm::HS256,
        );
        let me = app.me(&forged).await;
        me.assert_status(200);
        assert_eq!(me.json["id"], user.id.as_str());
    }
);

both_backends!(
    forged_tokens_are_rejected,
    env = [("JWT_SECRET", TEST_JWT_SECRET)],
    |app| async move {
        let user = app.register_user().await;
        let valid = jwt::claims_for(&user.id, 3600);
        let now = jwt::now();
        let expired = serde_json::json!({ "sub": user.id, "iat": now - 7200, "exp": now - 3600 });

        let cases = [
            (
                "signed with another secret",
                jwt::sign(
                    &valid,
                    "another-secret-that-is-long-enough-0123456789",
                    Algorithm::HS256,
                ),
            ),
            (
                "HS512 with the right secret",
                jwt::sign(&valid, TEST_JWT_SECRET, Algorithm::HS512),
            ),
            ("alg none", jwt::unsigned(&valid)),
            (
                "expired",
                jwt::sign(&expired, TEST_JWT_SECRET, Algorithm::HS256),
            ),
            (
                "sub of a user that does not exist",
                jwt::sign(
                    &jwt::claims_for(&uuid::Uuid::new_v4().to_string(), 3600),
                    TEST_JWT_SECRET,
                    Algorithm::HS256,
                ),
            ),
            (
                "sub that is not a user id",
                jwt::sign(
                    &jwt::claims_for("not-a-uuid", 3600),
                    TEST_JWT_SECRET,
                    Algorithm::HS256,
                ),
            ),
        ];
        for (case, token) in cases {
            let response = app.me(&token).await;
            assert_eq!(response.status, 401, "{case}: {}", response.text);
            response.assert_error(401);

            // Protected project routes refuse it the same way.
            let response = app.get("/api/projects", &token).await;
            assert_eq!(
                response.status, 401,
                "{case} on /api/projects: {}",
                response.text
            );
            response.assert_error(401);
        }

        // The genuine token still works.
        app.me(&user.token).await.assert_status(200);
    }
);

both_backends!(
    generated_secret_is_stored_in_data_dir_with_mode_0600,
    |backend: Backend| async move {
        let app = TestApp::spawn(backend).await;
        let user = app.register_user().await;
        app.me(&user.token).await.assert_status(200);

        // The secret file: a (non-database) file in DATA_DIR holding the key that signed the
        // token, or named after it.
        let all_files = files_in(app.data_dir());
        let secret_files: Vec<_> = all_files
            .iter()
            .filter(|path| !is_sqlite_file(path))
            .filter(|path| {
                let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
                name.contains("secret")
                    || name.contains("jwt")
                    || file_holds_secret_of(path, &user.token)
            })
            .collect();
        assert!(
            !secret_files.is_empty(),
            "no JWT secret file in DATA_DIR; it holds: {all_files:?}"
        );
        for path in secret_files {
            let metadata = std::fs::metadata(path).unwrap();
            let mode = metadata.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
            assert!(
                metadata.len() >= 32,
                "{} holds only {} bytes",
                path.display(),
                metadata.len()
            );
        }
    }
);

both_backends!(
    restart_with_the_same_data_dir_keeps_tokens_valid,
    |backend: Backend| async move {
        let mut app = TestApp::spawn(backend).await;
        let user = app.register_user().await;
        let project = app.create_project(&user.token).await;

        app.restart().await;

        let me = app.me(&user.token).await;
        me.assert_status(200);
        assert_eq!(me.json["id"], user.id.as_str());

        // The data survived as well.
        let listed = app.get("/api/projects", &user.token).await;
        listed.assert_status(200);
        assert_eq!(listed.array().len(), 1);
        assert_eq!(listed.array()[0]["id"], project["id"]);
        app.login(&user.username, &user.password)
            .await
            .assert_status(200);
    }
);

both_backends!(
    a_31_byte_jwt_secret_is_a_startup_error,
    |backend: Backend| async move {
        let short = "0123456789012345678901234567890";
        assert_eq!(short.len(), 31);
        if let Ok(app) = TestApp::try_spawn(backend, &[("JWT_SECRET", short)]).await {
            panic!(
                "the server started on port {} with a 31-byte JWT_SECRET",
                app.port
            );
        }

        let exact = "01234567890123456789012345678901";
        assert_eq!(exact.len(), 32);
        let app = TestApp::try_spawn(backend, &[("JWT_SECRET", exact)])
            .await
            .unwrap_or_else(|e| panic!("a 32-byte JWT_SECRET must be accepted: {e}"));
        let user = app.register_user().await;
        jwt::verify_hs256(&user.token, exact).expect("token signed with the 32-byte secret");
    }
);
