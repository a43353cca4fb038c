//! The authorization matrix: every route of the committed OpenAPI document
//! (`openapi/openapi.json`, read when the test runs), plus the routes it does not describe,
//! called by every kind of caller, each answered with what the route's rule gives that
//! caller.
//!
//! A documented route without a rule in [`RULES`] fails the tests by name, so a new route
//! cannot ship without deciding who may call it. Refusals come first and must change
//! nothing: after the refusals of each route, the project, its members, keys, channels,
//! branches, updates, audit log, every user's project list and the stored files are what
//! they were. Then every allowed caller is answered with the route's success status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use e2e::jwt;
use e2e::publish::{Export, PublishForm, fixtures_dir, manifest_id_in};
use e2e::reqwest::Method;
use e2e::serde_json::{Value, json};
use e2e::{
    PASSWORD, Response, TEST_JWT_SECRET, TestApp, TestUser, both_backends, same_json, str_field,
    unique_identity, unique_slug,
};
use jsonwebtoken::Algorithm;

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Anyone: credentials, valid or not, are ignored.
    Anyone,
    /// Any signed-in user (a session token).
    SignedIn,
    /// Any valid API key, whichever project it belongs to.
    AnyKey,
    /// Members of the project, whatever their role. A non-member gets 403
    /// "Permission denied.", the same answer as for a project that does not exist.
    Members,
    /// Owners of the project; a plain member gets 403 naming the rule.
    Owners,
    /// The project's own API key; another project's key gets 403.
    OwnKey,
}

/// Every route of `openapi/openapi.json`: method, path template, who may call it, and the
/// status of a success. API keys are accepted only where the rule says `AnyKey` or
/// `OwnKey` (`/api/keys/current` and the pipeline routes under `/api/updates/{project}`);
/// session tokens only on the others.
const RULES: &[(&str, &str, Access, u16)] = &[
    // Accounts.
    ("POST", "/api/auth/register", Access::Anyone, 201),
    ("POST", "/api/auth/login", Access::Anyone, 200),
    ("GET", "/api/auth/me", Access::SignedIn, 200),
    // Projects.
    ("GET", "/api/projects", Access::SignedIn, 200),
    ("POST", "/api/projects", Access::SignedIn, 201),
    ("GET", "/api/projects/{id}", Access::Members, 200),
    ("PATCH", "/api/projects/{id}", Access::Owners, 200),
    ("DELETE", "/api/projects/{id}", Access::Owners, 204),
    ("GET", "/api/projects/{id}/audit", Access::Owners, 200),
    ("POST", "/api/projects/{id}/storage/gc", Access::Owners, 200),
    // Members.
    ("GET", "/api/projects/{id}/users", Access::Members, 200),
    ("POST", "/api/projects/{id}/users", Access::Owners, 201),
    (
        "PATCH",
        "/api/projects/{id}/users/{userId}",
        Access::Owners,
        200,
    ),
    (
        "DELETE",
        "/api/projects/{id}/users/{userId}",
        Access::Owners,
        204,
    ),
    // API keys.
    ("GET", "/api/projects/{id}/keys", Access::Owners, 200),
    ("POST", "/api/projects/{id}/keys", Access::Owners, 201),
    (
        "PATCH",
        "/api/projects/{id}/keys/{keyId}",
        Access::Owners,
        204,
    ),
    (
        "DELETE",
        "/api/projects/{id}/keys/{keyId}",
        Access::Owners,
        204,
    ),
    ("GET", "/api/keys/current", Access::AnyKey, 200),
    // Code-signing keys.
    (
        "GET",
        "/api/projects/{id}/signing-keys",
        Access::Members,
        200,
    ),
    (
        "POST",
        "/api/projects/{id}/signing-keys",
        Access::Owners,
        201,
    ),
    (
        "POST",
        "/api/projects/{id}/signing-keys/generate",
        Access::Owners,
        201,
    ),
    (
        "DELETE",
        "/api/projects/{id}/signing-keys/{keyId}",
        Access::Owners,
        204,
    ),
    // Releases, as members.
    ("GET", "/api/projects/{id}/branches", Access::Members, 200),
    ("GET", "/api/projects/{id}/channels", Access::Members, 200),
    ("POST", "/api/projects/{id}/channels", Access::Members, 201),
    (
        "PATCH",
        "/api/projects/{id}/channels/{name}",
        Access::Members,
        200,
    ),
    (
        "DELETE",
        "/api/projects/{id}/channels/{name}",
        Access::Members,
        204,
    ),
    ("GET", "/api/projects/{id}/updates", Access::Members, 200),
    (
        "GET",
        "/api/projects/{id}/updates/{updateId}",
        Access::Members,
        200,
    ),
    (
        "PATCH",
        "/api/projects/{id}/updates/{updateId}",
        Access::Members,
        200,
    ),
    (
        "DELETE",
        "/api/projects/{id}/updates/{updateId}",
        Access::Owners,
        204,
    ),
    (
        "GET",
        "/api/projects/{id}/updates/{updateId}/insights",
        Access::Members,
        200,
    ),
    (
        "GET",
        "/api/projects/{id}/updates/{updateId}/patches",
        Access::Members,
        200,
    ),
    (
        "POST",
        "/api/projects/{id}/updates/{updateId}/republish",
        Access::Members,
        201,
    ),
    ("POST", "/api/projects/{id}/rollback", Access::Members, 200),
    (
        "POST",
        "/api/projects/{id}/embedded-bundles",
        Access::Owners,
        201,
    ),
    (
        "GET",
        "/api/projects/{id}/embedded-bundles",
        Access::Members,
        200,
    ),
    (
        "DELETE",
        "/api/projects/{id}/embedded-bundles/{updateId}",
        Access::Owners,
        204,
    ),
    (
        "POST",
        "/api/updates/{project}/embedded-bundles",
        Access::OwnKey,
        201,
    ),
    (
        "GET",
        "/api/updates/{project}/embedded-bundles",
        Access::OwnKey,
        200,
    ),
    (
        "DELETE",
        "/api/updates/{project}/embedded-bundles/{updateId}",
        Access::OwnKey,
        204,
    ),
    // Releases, as the project's pipeline.
    (
        "POST",
        "/api/updates/{project}/publish",
        Access::OwnKey,
        200,
    ),
    (
        "POST",
        "/api/updates/{project}/assets/missing",
        Access::OwnKey,
        200,
    ),
    (
        "POST",
        "/api/updates/{project}/rollback",
        Access::OwnKey,
        200,
    ),
    (
        "GET",
        "/api/updates/{project}/branches",
        Access::OwnKey,
        200,
    ),
    (
        "GET",
        "/api/updates/{project}/channels",
        Access::OwnKey,
        200,
    ),
    (
        "POST",
        "/api/updates/{project}/channels",
        Access::OwnKey,
        201,
    ),
    (
        "PATCH",
        "/api/updates/{project}/channels/{name}",
        Access::OwnKey,
        200,
    ),
    (
        "DELETE",
        "/api/updates/{project}/channels/{name}",
        Access::OwnKey,
        204,
    ),
    ("GET", "/api/updates/{project}/updates", Access::OwnKey, 200),
    (
        "GET",
        "/api/updates/{project}/updates/{updateId}",
        Access::OwnKey,
        200,
    ),
    (
        "GET",
        "/api/updates/{project}/updates/{updateId}/patches",
        Access::OwnKey,
        200,
    ),
    (
        "PATCH",
        "/api/updates/{project}/updates/{updateId}",
        Access::OwnKey,
        200,
    ),
    (
        "DELETE",
        "/api/updates/{project}/updates/{updateId}",
        Access::OwnKey,
        204,
    ),
    (
        "POST",
        "/api/updates/{project}/updates/{updateId}/republish",
        Access::OwnKey,
        201,
    ),
];

/// The routes outside the OpenAPI document (the Expo Updates protocol, operations, the
/// document itself): public, whatever credentials come along.
const UNDOCUMENTED: &[(&str, &str, Access, u16)] = &[
    (
        "GET",
        "/api/updates/{project}/manifest",
        Access::Anyone,
        200,
    ),
    ("GET", "/api/updates/{project}/assets", Access::Anyone, 200),
    ("GET", "/healthz", Access::Anyone, 200),
    ("GET", "/readyz", Access::Anyone, 200),
    ("GET", "/api/openapi.json", Access::Anyone, 200),
];

/// Everyone who may knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// The owner's token, expired an hour ago (signed with the server's secret).
    ExpiredToken,
    /// A token for the owner signed with another secret.
    WrongSecretToken,
    /// A token for the owner with `alg: none` and no signature.
    AlgNoneToken,
    /// A registered user who is not a member (and owns another project).
    NonMember,
    Member,
    Owner,
    /// An API key of the project.
    ProjectKey,
    /// An API key of the non-member's project.
    OtherProjectKey,
    /// An API key of the project, revoked.
    RevokedKey,
}

const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::ExpiredToken,
    Caller::WrongSecretToken,
    Caller::AlgNoneToken,
    Caller::NonMember,
    Caller::Member,
    Caller::Owner,
    Caller::ProjectKey,
    Caller::OtherProjectKey,
    Caller::RevokedKey,
];

/// What a caller must be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This 2xx status.
    Success(u16),
    /// 401 `{"error"}`: no valid credentials of the kind the route takes.
    Unauthenticated,
    /// 403 `{"error": "Permission denied."}`: not a member, or no such project.
    NotMember,
    /// 403 `{"error"}` with another message: a member where an owner is needed.
    NotOwner,
    /// 403 `{"error"}`: a key of another project.
    ForeignKey,
}

fn expectation(access: Access, success: u16, caller: Caller) -> Expect {
    use Caller::*;
    let signed_in = matches!(caller, NonMember | Member | Owner);
    match (access, caller) {
        (Access::Anyone, _) => Expect::Success(success),
        (Access::SignedIn, _) if signed_in => Expect::Success(success),
        (Access::AnyKey, ProjectKey | OtherProjectKey) => Expect::Success(success),
        (Access::Members | Access::Owners, Owner) => Expect::Success(success),
        (Access::Members, Member) => Expect::Success(success),
        (Access::Owners, Member) => Expect::NotOwner,
        (Access::Members | Access::Owners, NonMember) => Expect::NotMember,
        (Access::OwnKey, ProjectKey) => Expect::Success(success),
        (Access::OwnKey, OtherProjectKey) => Expect::ForeignKey,
        _ => Expect::Unauthenticated,
    }
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI document
// ---------------------------------------------------------------------------------------------

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The committed `openapi/openapi.json`, parsed.
fn committed_spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    e2e::serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `(METHOD, path template)` of every operation of an OpenAPI document, sorted.
fn spec_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let paths = spec["paths"]
        .as_object()
        .expect("the OpenAPI document has a paths object");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let item = item
            .as_object()
            .unwrap_or_else(|| panic!("path item {path} is not an object"));
        for method in item
            .keys()
            .filter(|key| HTTP_METHODS.contains(&key.as_str()))
        {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

fn rule_of(method: &str, template: &str) -> Option<(Access, u16)> {
    RULES
        .iter()
        .chain(UNDOCUMENTED)
        .find(|(m, t, _, _)| *m == method && *t == template)
        .map(|(_, _, access, success)| (*access, *success))
}

/// Every documented route has exactly one rule, every rule names a documented route, and the
/// undocumented routes stay out of the document.
#[test]
fn every_documented_route_has_a_rule() {
    let routes = spec_routes(&committed_spec());
    let missing: Vec<String> = routes
        .iter()
        .filter(|(m, t)| !RULES.iter().any(|(rm, rt, _, _)| rm == m && rt == t))
        .map(|(m, t)| format!("{m} {t}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes of openapi/openapi.json without an authorization rule in authz_matrix.rs \
         RULES (decide who may call them): {missing:#?}"
    );
    let stale: Vec<String> = RULES
        .iter()
        .filter(|(m, t, _, _)| !routes.contains(&((*m).to_owned(), (*t).to_owned())))
        .map(|(m, t, _, _)| format!("{m} {t}"))
        .collect();
    assert!(
        stale.is_empty(),
        "rules for routes that openapi/openapi.json does not have: {stale:#?}"
    );
    let mut seen = BTreeSet::new();
    for (m, t, _, _) in RULES.iter().chain(UNDOCUMENTED) {
        assert!(seen.insert((m, t)), "two rules for {m} {t}");
    }
    for (m, t, _, _) in UNDOCUMENTED {
        assert!(
            !routes.contains(&((*m).to_owned(), (*t).to_owned())),
            "{m} {t} is documented now: move its rule to RULES"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The world the matrix runs in
// ---------------------------------------------------------------------------------------------

/// A project with an owner, two plain members, an update (v1), a channel, a working key, a
/// spare key and a revoked key; a stranger with a project and key of their own; a registered
/// user who belongs nowhere; and three forged tokens for the owner.
struct World {
    owner: TestUser,
    member: TestUser,
    stranger: TestUser,
    project: String,
    key_secret: String,
    other_key_secret: String,
    revoked_secret: String,
    /// The key the refused key routes aim at.
    spare_key_id: String,
    /// The member the refused member routes aim at.
    extra_member_id: String,
    /// A registered non-member, whom the refused `POST /users` tries to add.
    candidate_id: String,
    /// The publish (`updateId`) of v1.
    update_id: String,
    /// The iOS update of that publish (what `assets?update=` names).
    ios_update_id: String,
    ios_bundle: String,
    ios_bundle_sha256: String,
    channel: String,
    /// The code-signing key the refused signing-key routes aim at.
    signing_key_id: String,
    expired_token: String,
    wrong_secret_token: String,
    alg_none_token: String,
}

/// What a request's path parameters (and a few bodies) name.
#[derive(Debug, Clone)]
struct Target {
    project: String,
    update: String,
    key: String,
    user: String,
    channel: String,
    candidate: String,
    signing_key: String,
}

impl World {
    async fn build(app: &TestApp) -> World {
        let owner = app.register_user().await;
        let member = app.register_user().await;
        let extra = app.register_user().await;
        let candidate = app.register_user().await;
        let stranger = app.register_user().await;

        let project = str_field(&app.create_project(&owner.token).await, "id");
        app.add_member(&owner.token, &project, &member.id, "member")
            .await;
        app.add_member(&owner.token, &project, &extra.id, "member")
            .await;
        let key = app
            .create_key(&owner.token, &project, Some("pipeline"))
            .await;
        let spare = app.create_key(&owner.token, &project, Some("spare")).await;
        let revoked = app
            .create_key(&owner.token, &project, Some("revoked"))
            .await;
        app.delete(
            &format!(
                "/api/projects/{project}/keys/{}",
                str_field(&revoked["key"], "id")
            ),
            &owner.token,
        )
        .await
        .assert_status(204);

        let other_project = str_field(&app.create_project(&stranger.token).await, "id");
        let other_key = app
            .create_key(&stranger.token, &other_project, Some("theirs"))
            .await;

        let key_secret = str_field(&key, "secret");
        let v1 = Export::v1();
        let update_id = app
            .publish(&project, &key_secret, &PublishForm::new(&v1))
            .await;
        let ios_update_id = manifest_id_in(
            &app.update_detail(&owner.token, &project, &update_id).await,
            "ios",
        );

        let channel = "staging".to_owned();
        app.post(
            &format!("/api/projects/{project}/channels"),
            &owner.token,
            &json!({ "name": channel, "branch": "main" }),
        )
        .await
        .assert_status(201);

        let signing_key_id = "world-key".to_owned();
        app.post(
            &format!("/api/projects/{project}/signing-keys"),
            &owner.token,
            &signing_key_upload(&signing_key_id),
        )
        .await
        .assert_status(201);

        let now = jwt::now();
        let expired = json!({ "sub": owner.id, "iat": now - 7200, "exp": now - 3600 });
        let valid = jwt::claims_for(&owner.id, 3600);
        World {
            expired_token: jwt::sign(&expired, TEST_JWT_SECRET, Algorithm::HS256),
            wrong_secret_token: jwt::sign(
                &valid,
                "another-secret-that-is-long-enough-0123456789",
                Algorithm::HS256,
            ),
            alg_none_token: jwt::unsigned(&valid),
            ios_bundle_sha256: v1.sha256_hex(&v1.bundle("ios")),
            ios_bundle: v1.bundle("ios"),
            owner,
            member,
            stranger,
            project,
            key_secret,
            other_key_secret: str_field(&other_key, "secret"),
            revoked_secret: str_field(&revoked, "secret"),
            spare_key_id: str_field(&spare["key"], "id"),
            extra_member_id: extra.id,
            candidate_id: candidate.id,
            update_id,
            ios_update_id,
            channel,
            signing_key_id,
        }
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        match caller {
            Caller::Anonymous => None,
            Caller::ExpiredToken => Some(&self.expired_token),
            Caller::WrongSecretToken => Some(&self.wrong_secret_token),
            Caller::AlgNoneToken => Some(&self.alg_none_token),
            Caller::NonMember => Some(&self.stranger.token),
            Caller::Member => Some(&self.member.token),
            Caller::Owner => Some(&self.owner.token),
            Caller::ProjectKey => Some(&self.key_secret),
            Caller::OtherProjectKey => Some(&self.other_key_secret),
            Caller::RevokedKey => Some(&self.revoked_secret),
        }
    }

    /// The project's real ids: what every refused request aims at.
    fn target(&self) -> Target {
        Target {
            project: self.project.clone(),
            update: self.update_id.clone(),
            key: self.spare_key_id.clone(),
            user: self.extra_member_id.clone(),
            channel: self.channel.clone(),
            candidate: self.candidate_id.clone(),
            signing_key: self.signing_key_id.clone(),
        }
    }
}

/// The part of a project route after its project parameter (`""` for the project itself).
fn project_rest(template: &str) -> Option<&str> {
    template
        .strip_prefix("/api/projects/{id}")
        .or_else(|| template.strip_prefix("/api/updates/{project}"))
}

fn path_of(template: &str, target: &Target, world: &World) -> String {
    let path = template
        .replace(
            "/signing-keys/{keyId}",
            &format!("/signing-keys/{}", target.signing_key),
        )
        .replace("{id}", &target.project)
        .replace("{project}", &target.project)
        .replace("{updateId}", &target.update)
        .replace("{keyId}", &target.key)
        .replace("{userId}", &target.user)
        .replace("{name}", &target.channel);
    assert!(
        !path.contains('{'),
        "{template}: a path parameter the matrix does not know; add it to Target"
    );
    if project_rest(template) == Some("/assets") {
        return format!(
            "{path}?update={}&asset={}",
            world.ios_update_id, world.ios_bundle
        );
    }
    path
}

/// The body that adds the fixture code-signing key under `key_id`.
fn signing_key_upload(key_id: &str) -> Value {
    let read = |file: &str| {
        let path = fixtures_dir().join("code-signing").join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    json!({
        "keyId": key_id,
        "privateKey": read("private-key.pem"),
        "certificate": read("certificate.pem"),
    })
}

enum Body {
    None,
    Json(Value),
    Publish,
    /// An embedded bundle: the bytes, with its fields in the query.
    Embedded,
}

/// A valid body for the route: a refusal must be about the caller, not the request.
fn body_of(method: &str, template: &str, target: &Target, world: &World) -> Body {
    let fresh = unique_slug();
    match (method, template) {
        ("POST", "/api/auth/register") => {
            let (username, email) = unique_identity();
            return Body::Json(
                json!({ "username": username, "email": email, "password": PASSWORD }),
            );
        }
        ("POST", "/api/auth/login") => {
            return Body::Json(json!({ "login": world.owner.username, "password": PASSWORD }));
        }
        ("POST", "/api/projects") => {
            return Body::Json(json!({ "name": format!("Project {fresh}"), "slug": fresh }));
        }
        ("GET" | "DELETE", _) => return Body::None,
        _ => {}
    }
    let json = match (method, project_rest(template)) {
        ("PATCH", Some("")) => json!({ "name": format!("Renamed {fresh}") }),
        ("POST", Some("/storage/gc")) => return Body::None,
        ("POST", Some("/users")) => json!({ "userId": target.candidate, "role": "member" }),
        ("PATCH", Some("/users/{userId}")) => json!({ "role": "member" }),
        ("POST", Some("/keys")) | ("PATCH", Some("/keys/{keyId}")) => json!({ "name": fresh }),
        ("POST", Some("/channels")) => json!({ "name": fresh, "branch": "main" }),
        ("PATCH", Some("/channels/{name}")) => json!({ "branch": "main" }),
        ("PATCH", Some("/updates/{updateId}")) => json!({ "rolloutPercentage": 100 }),
        ("POST", Some("/updates/{updateId}/republish")) => json!({ "branch": "republished" }),
        ("POST", Some("/rollback")) => json!({ "runtimeVersion": "1.0.0", "branch": "rollbacks" }),
        ("POST", Some("/signing-keys")) => signing_key_upload(&fresh),
        ("POST", Some("/signing-keys/generate")) => json!({ "keyId": fresh }),
        ("POST", Some("/assets/missing")) => json!({ "sha256": [world.ios_bundle_sha256] }),
        ("POST", Some("/publish")) => return Body::Publish,
        ("POST", Some("/embedded-bundles")) => return Body::Embedded,
        _ => panic!("{method} {template}: the matrix has no request body for this route"),
    };
    Body::Json(json)
}

async fn send(
    app: &TestApp,
    world: &World,
    caller: Caller,
    method: &str,
    template: &str,
    target: &Target,
) -> Response {
    let path = path_of(template, target, world);
    let token = world.token(caller);
    match body_of(method, template, target, world) {
        Body::Publish => {
            // Read while sending: a refusal may come before the upload is read.
            let form = PublishForm::new(&Export::v2());
            app.publish_like_curl(&target.project, token, &form).await
        }
        body => {
            let method = Method::from_bytes(method.as_bytes()).expect("an HTTP method");
            let mut request = app.client.request(method, app.url(&path));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if project_rest(template) == Some("/manifest") {
                request = request
                    .header("expo-platform", "ios")
                    .header("expo-runtime-version", "1.0.0")
                    .header("expo-protocol-version", "1")
                    .header("accept", "multipart/mixed");
            }
            if let Body::Json(json) = &body {
                request = request.json(json);
            }
            if let Body::Embedded = &body {
                request = request
                    .query(&[
                        ("updateId", uuid::Uuid::new_v4().to_string().as_str()),
                        ("runtimeVersion", "1.0.0"),
                        ("platform", "android"),
                    ])
                    .header("content-type", "application/octet-stream")
                    .body(b"an embedded bundle".to_vec());
            }
            app.send(request).await
        }
    }
}

fn error_message(response: &Response) -> Option<&str> {
    response
        .json
        .get("error")
        .and_then(Value::as_str)
        .filter(|message| !message.trim().is_empty())
}

/// Whether the answer is the expected one; `Err` says what is wrong.
fn check(expect: Expect, response: &Response) -> Result<(), &'static str> {
    let message = error_message(response);
    let ok = match expect {
        Expect::Success(status) => response.status == status,
        Expect::Unauthenticated => response.status == 401 && message.is_some(),
        Expect::NotMember => response.status == 403 && message == Some("Permission denied."),
        Expect::NotOwner => {
            response.status == 403 && message.is_some_and(|m| m != "Permission denied.")
        }
        Expect::ForeignKey => response.status == 403 && message.is_some(),
    };
    if ok {
        Ok(())
    } else if !matches!(expect, Expect::Success(_)) && message.is_none() {
        Err("wrong status or no {\"error\": \"...\"} body")
    } else {
        Err("wrong answer")
    }
}

fn describe(response: &Response) -> String {
    let text: String = response.text.chars().take(300).collect();
    format!("HTTP {} {text}", response.status)
}

// ---------------------------------------------------------------------------------------------
// What a refusal must leave alone
// ---------------------------------------------------------------------------------------------

/// The project as its owner sees it, every user's project list, and the stored files.
async fn snapshot(app: &TestApp, world: &World) -> BTreeMap<String, Value> {
    let p = &world.project;
    let mut state = BTreeMap::new();
    for (name, path, sort_key) in [
        ("project", format!("/api/projects/{p}"), None),
        ("members", format!("/api/projects/{p}/users"), Some("id")),
        ("keys", format!("/api/projects/{p}/keys"), Some("id")),
        (
            "signing keys",
            format!("/api/projects/{p}/signing-keys"),
            Some("keyId"),
        ),
        (
            "channels",
            format!("/api/projects/{p}/channels"),
            Some("name"),
        ),
        ("branches", format!("/api/projects/{p}/branches"), None),
        (
            "embedded bundles",
            format!("/api/projects/{p}/embedded-bundles"),
            None,
        ),
        (
            "updates",
            format!("/api/projects/{p}/updates?limit=100"),
            None,
        ),
        (
            "audit log",
            format!("/api/projects/{p}/audit?limit=200"),
            None,
        ),
    ] {
        let response = app.get(&path, &world.owner.token).await;
        response.assert_status(200);
        state.insert(name.to_owned(), sorted(response.json, sort_key));
    }
    for (name, user) in [
        ("owner's projects", &world.owner),
        ("member's projects", &world.member),
        ("non-member's projects", &world.stranger),
    ] {
        let response = app.get("/api/projects", &user.token).await;
        response.assert_status(200);
        state.insert(name.to_owned(), sorted(response.json, Some("id")));
    }
    state.insert("stored objects".to_owned(), json!(app.stored_objects()));
    state
}

fn sorted(mut value: Value, key: Option<&str>) -> Value {
    if let (Some(key), Some(items)) = (key, value.as_array_mut()) {
        items.sort_by_key(|item| item[key].to_string());
    }
    value
}

fn differences(before: &BTreeMap<String, Value>, after: &BTreeMap<String, Value>) -> Vec<String> {
    before
        .iter()
        .filter(|(name, value)| !after.get(*name).is_some_and(|now| same_json(value, now)))
        .map(|(name, value)| {
            let was: String = value.to_string().chars().take(400).collect();
            let now: String = after[name].to_string().chars().take(400).collect();
            format!("{name}: {was} → {now}")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Allowed callers: fresh things to delete, so every success is real and repeatable
// ---------------------------------------------------------------------------------------------

async fn prepare(app: &TestApp, world: &World, method: &str, template: &str) -> Target {
    let mut target = world.target();
    let owner = &world.owner.token;
    let p = &world.project;
    match (method, project_rest(template)) {
        ("DELETE", Some("")) => {
            target.project = str_field(&app.create_project(owner).await, "id");
        }
        ("DELETE", Some("/channels/{name}")) => {
            let name = unique_slug();
            app.post(
                &format!("/api/projects/{p}/channels"),
                owner,
                &json!({ "name": name, "branch": "main" }),
            )
            .await
            .assert_status(201);
            target.channel = name;
        }
        ("DELETE", Some("/keys/{keyId}")) => {
            let key = app.create_key(owner, p, None).await;
            target.key = str_field(&key["key"], "id");
        }
        ("DELETE", Some("/users/{userId}")) => {
            let user = app.register_user().await;
            app.add_member(owner, p, &user.id, "member").await;
            target.user = user.id;
        }
        ("POST", Some("/users")) => target.candidate = app.register_user().await.id,
        ("DELETE", Some("/signing-keys/{keyId}")) => {
            let key_id = unique_slug();
            app.post(
                &format!("/api/projects/{p}/signing-keys"),
                owner,
                &signing_key_upload(&key_id),
            )
            .await
            .assert_status(201);
            target.signing_key = key_id;
        }
        ("DELETE", Some("/embedded-bundles/{updateId}")) => {
            let update_id = uuid::Uuid::new_v4().to_string();
            let url = app.url(&format!("/api/projects/{p}/embedded-bundles"));
            let request = app
                .client
                .post(url)
                .bearer_auth(owner)
                .query(&[
                    ("updateId", update_id.as_str()),
                    ("runtimeVersion", "1.0.0"),
                    ("platform", "ios"),
                ])
                .header("content-type", "application/octet-stream")
                .body(b"an embedded bundle".to_vec());
            app.send(request).await.assert_status(201);
            target.update = update_id;
        }
        ("DELETE", Some("/updates/{updateId}")) => {
            let copy = app
                .post(
                    &format!("/api/projects/{p}/updates/{}/republish", world.update_id),
                    owner,
                    &json!({ "branch": "scratch" }),
                )
                .await;
            copy.assert_status(201);
            target.update = str_field(&copy.json, "id");
        }
        _ => {}
    }
    target
}

// ---------------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------------

both_backends!(
    every_route_answers_every_caller_by_its_rules,
    env = [
        ("JWT_SECRET", TEST_JWT_SECRET),
        // Projects' own code-signing keys are stored encrypted under this.
        (
            "SIGNING_KEY_ENCRYPTION_KEY",
            "authz-matrix-master-key-0123456789abcdef"
        ),
    ],
    |app| async move {
        let spec = committed_spec();
        let routes = spec_routes(&spec);
        let mut failures: Vec<String> = Vec::new();

        // The server documents what is committed (else the matrix would miss routes).
        let served = app.get_anon("/api/openapi.json").await;
        served.assert_status(200);
        let served_routes = spec_routes(&served.json);
        if served_routes != routes {
            failures.push(format!(
                "the server's /api/openapi.json and the committed openapi/openapi.json \
                 differ: only served {:?}, only committed {:?}",
                served_routes.difference(&routes).collect::<Vec<_>>(),
                routes.difference(&served_routes).collect::<Vec<_>>()
            ));
        }

        let mut rules = Vec::new();
        for (method, template) in &routes {
            match rule_of(method, template) {
                Some((access, success)) => {
                    rules.push((method.clone(), template.clone(), access, success))
                }
                None => failures.push(format!(
                    "{method} {template}: no authorization rule in authz_matrix.rs RULES"
                )),
            }
        }
        for (method, template, access, success) in UNDOCUMENTED {
            rules.push((
                (*method).to_owned(),
                (*template).to_owned(),
                *access,
                *success,
            ));
        }

        let world = World::build(&app).await;

        // Refusals: the right answer, the same answer for a project that does not exist,
        // and nothing changed.
        let mut before = snapshot(&app, &world).await;
        for (method, template, access, success) in &rules {
            let refused: Vec<(Caller, Expect)> = CALLERS
                .iter()
                .map(|caller| (*caller, expectation(*access, *success, *caller)))
                .filter(|(_, expect)| !matches!(expect, Expect::Success(_)))
                .collect();
            if refused.is_empty() {
                continue;
            }
            for (caller, expect) in refused {
                let target = world.target();
                let response = send(&app, &world, caller, method, template, &target).await;
                if let Err(why) = check(expect, &response) {
                    failures.push(format!(
                        "{method} {template} as {caller:?}: expected {expect:?}, {why}: {}",
                        describe(&response)
                    ));
                }
                if matches!(expect, Expect::NotMember | Expect::ForeignKey) {
                    let ghost = Target {
                        project: uuid::Uuid::new_v4().to_string(),
                        ..target
                    };
                    let answer = send(&app, &world, caller, method, template, &ghost).await;
                    if (answer.status, error_message(&answer))
                        != (response.status, error_message(&response))
                    {
                        failures.push(format!(
                            "{method} {template} as {caller:?}: another tenant's project gets \
                             {} but a project that does not exist gets {}",
                            describe(&response),
                            describe(&answer)
                        ));
                    }
                }
            }
            let after = snapshot(&app, &world).await;
            let changed = differences(&before, &after);
            if !changed.is_empty() {
                failures.push(format!(
                    "refused {method} {template} changed the project: {changed:#?}"
                ));
                before = after;
            }
        }

        // Allowed callers.
        for (method, template, access, success) in &rules {
            for caller in CALLERS {
                let expect = expectation(*access, *success, caller);
                if !matches!(expect, Expect::Success(_)) {
                    continue;
                }
                let target = prepare(&app, &world, method, template).await;
                let response = send(&app, &world, caller, method, template, &target).await;
                if let Err(why) = check(expect, &response) {
                    failures.push(format!(
                        "{method} {template} as {caller:?}: expected {expect:?}, {why}: {}",
                        describe(&response)
                    ));
                }
            }
        }

        assert!(
            failures.is_empty(),
            "{} authorization failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
);
