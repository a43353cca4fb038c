//! Health checks, OpenAPI document, docs page and generic HTTP behaviour.

use e2e::both_backends;
use e2e::reqwest::header::CONTENT_TYPE;
use e2e::serde_json::Value;

const DOCUMENTED_PATHS: &[&str] = &[
    "/api/auth/register",
    "/api/auth/login",
    "/api/auth/me",
    "/api/projects",
    "/api/projects/{id}",
    "/api/projects/{id}/users",
    "/api/projects/{id}/users/{userId}",
    "/api/projects/{id}/keys",
    "/api/projects/{id}/keys/{keyId}",
];

both_backends!(health_and_readiness_are_ok, |app| async move {
    app.get_anon("/healthz").await.assert_status(200);
    app.get_anon("/readyz").await.assert_status(200);
});

both_backends!(openapi_document_lists_every_route, |app| async move {
    let response = app.get_anon("/api/openapi.json").await;
    response.assert_status(200);
    assert!(
        response.content_type().starts_with("application/json"),
        "content type {:?}",
        response.content_type()
    );
    let doc = &response.json;
    let version = doc["openapi"]
        .as_str()
        .expect("an `openapi` version string");
    assert!(version.starts_with("3."), "openapi version {version:?}");

    let paths = doc["paths"].as_object().expect("a `paths` object");
    let missing: Vec<&&str> = DOCUMENTED_PATHS
        .iter()
        .filter(|path| !paths.contains_key(**path))
        .collect();
    assert!(
        missing.is_empty(),
        "undocumented paths {missing:?}; documented: {:?}",
        paths.keys().collect::<Vec<_>>()
    );

    // Each documented route has its methods.
    let methods = |path: &str| -> Vec<String> {
        let mut methods: Vec<String> = paths[path]
            .as_object()
            .map(|ops| ops.keys().map(|m| m.to_lowercase()).collect())
            .unwrap_or_default();
        methods.retain(|m| ["get", "post", "patch", "delete", "put"].contains(&m.as_str()));
        methods.sort();
        methods
    };
    assert_eq!(methods("/api/auth/register"), ["post"]);
    assert_eq!(methods("/api/auth/login"), ["post"]);
    assert_eq!(methods("/api/auth/me"), ["get"]);
    assert_eq!(methods("/api/projects"), ["get", "post"]);
    assert_eq!(methods("/api/projects/{id}"), ["delete", "get", "patch"]);
    assert_eq!(methods("/api/projects/{id}/users"), ["get", "post"]);
    assert_eq!(
        methods("/api/projects/{id}/users/{userId}"),
        ["delete", "patch"]
    );
    assert_eq!(methods("/api/projects/{id}/keys"), ["get", "post"]);
    assert_eq!(
        methods("/api/projects/{id}/keys/{keyId}"),
        ["delete", "patch"]
    );

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("components.securitySchemes");
    assert_eq!(
        schemes.len(),
        2,
        "security schemes: {}",
        Value::Object(schemes.clone())
    );
});

both_backends!(docs_page_is_html, |app| async move {
    let response = app.get_anon("/api/docs").await;
    response.assert_status(200);
    assert!(
        response.content_type().starts_with("text/html"),
        "content type {:?}",
        response.content_type()
    );
    assert!(
        response.text.to_lowercase().contains("<html"),
        "not an HTML page: {}",
        &response.text[..response.text.len().min(300)]
    );
});

both_backends!(unknown_paths_are_json_404s, |app| async move {
    for path in ["/nope", "/api/nope", "/api/auth/nope"] {
        let response = app.get_anon(path).await;
        assert_eq!(response.status, 404, "{path}: {}", response.text);
        response.assert_error(404);
    }
    let user = app.register_user().await;
    app.get("/api/definitely-not-a-route", &user.token)
        .await
        .assert_error(404);
});

both_backends!(a_100_kb_garbage_body_is_a_client_error, |app| async move {
    let garbage: String = "{\"username\": [[[ garbage ".repeat(100 * 1024 / 24);
    assert!(garbage.len() >= 100 * 1000);
    let response = app
        .send(
            app.client
                .post(app.url("/api/auth/register"))
                .header(CONTENT_TYPE, "application/json")
                .body(garbage),
        )
        .await;
    assert!(
        (400..500).contains(&response.status),
        "expected a 4xx, got {}: {}",
        response.status,
        &response.text[..response.text.len().min(300)]
    );

    // The server is still fine afterwards.
    app.get_anon("/healthz").await.assert_status(200);
    app.register_user().await;
});

both_backends!(errors_are_json_objects, |app| async move {
    let response = app.get_anon("/api/auth/me").await;
    response.assert_error(401);
    assert!(
        response.content_type().starts_with("application/json"),
        "content type {:?}",
        response.content_type()
    );
});
