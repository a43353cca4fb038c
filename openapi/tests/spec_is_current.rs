//! Fails when the handlers' OpenAPI document differs from the committed one.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::fs;

#[test]
fn committed_spec_matches_the_code() {
    let generated = openapi_spec::generated();
    let path = openapi_spec::committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with the handlers; run `UPDATE_OPENAPI=1 cargo test -p openapi-spec` and commit the result",
        path.display()
    );
}

#[test]
fn spec_names_every_route_and_both_security_schemes() {
    let spec: serde_json::Value = serde_json::from_str(&openapi_spec::generated()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/auth/register", &["post"][..]),
        ("/api/auth/login", &["post"]),
        ("/api/auth/me", &["get"]),
        ("/api/projects", &["get", "post"]),
        ("/api/projects/{id}", &["get", "patch", "delete"]),
        ("/api/projects/{id}/users", &["get", "post"]),
        ("/api/projects/{id}/users/{userId}", &["patch", "delete"]),
        ("/api/projects/{id}/keys", &["get", "post"]),
        ("/api/projects/{id}/keys/{keyId}", &["patch", "delete"]),
        ("/api/keys/current", &["get"]),
    ] {
        for method in methods {
            let operation = &paths[path][*method];
            assert!(operation.is_object(), "{method} {path} is missing");
            assert!(
                operation["responses"]["500"].is_object(),
                "{method} {path} does not document 500"
            );
        }
    }
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("UserAuth") && schemes.contains_key("ApiKeyAuth"));
}
