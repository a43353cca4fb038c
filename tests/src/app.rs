//! The application under test: the real server (`expo_updates_server::Application`)
//! started in-process on a random port with its own `DATA_DIR`, database and blob storage,
//! and the HTTP calls every scenario makes (sign-up, projects, members, API keys).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use expo_updates_server::Application;
use expo_updates_server::config::Config;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{Backend, PgDatabase, Response, Storage, s3, str_field, unique_identity, unique_slug};

/// The password every [`TestApp::register_user`] user gets.
pub const PASSWORD: &str = "correct-horse-battery";

/// A running server plus everything it needs to stay alive (its `DATA_DIR`, its database).
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub port: u16,
    pub backend: Backend,
    pub storage: Storage,
    pub client: reqwest::Client,
    /// The environment the server was configured from (used again by [`TestApp::restart`]).
    pub env: HashMap<String, String>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    // Dropped after the server is stopped (see `Drop`), in this order.
    pub database: Option<PgDatabase>,
    pub data_dir: tempfile::TempDir,
    /// The S3 server of [`Storage::S3`], alive as long as this app.
    pub s3: Option<s3::S3Server>,
}

impl TestApp {
    /// Starts a server on `backend` with the default configuration.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts a server on `backend` with extra environment entries (they override the
    /// harness defaults, e.g. `("ALLOW_REGISTRATION", "false")` or `("JWT_SECRET", ...)`).
    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> TestApp {
        match Self::try_spawn(backend, extra_env).await {
            Ok(app) => app,
            Err(e) => panic!("the server failed to start on {backend:?}: {e}"),
        }
    }

    /// Starts a server on `backend` storing its blobs on `storage`, with extra environment
    /// entries (they override the harness defaults, including the S3 settings).
    pub async fn spawn_on(
        backend: Backend,
        storage: Storage,
        extra_env: &[(&str, &str)],
    ) -> TestApp {
        match Self::try_spawn_on(backend, storage, extra_env).await {
            Ok(app) => app,
            Err(e) => panic!("the server failed to start on {backend:?} with {storage:?}: {e}"),
        }
    }

    /// Like [`TestApp::spawn_with`] but returns the configuration/startup error instead of
    /// panicking.
    pub async fn try_spawn(
        backend: Backend,
        extra_env: &[(&str, &str)],
    ) -> Result<TestApp, String> {
        Self::try_spawn_on(backend, Storage::Local, extra_env).await
    }

    /// Like [`TestApp::spawn_on`] but returns the configuration/startup error instead of
    /// panicking.
    pub async fn try_spawn_on(
        backend: Backend,
        storage: Storage,
        extra_env: &[(&str, &str)],
    ) -> Result<TestApp, String> {
        let data_dir = tempfile::tempdir().expect("create a temporary DATA_DIR");
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create().await),
        };
        let s3 = match storage {
            Storage::Local => None,
            Storage::S3 => Some(s3::S3Server::start().await),
        };

        let mut env = HashMap::new();
        env.insert("HOST".to_owned(), "127.0.0.1".to_owned());
        env.insert("PORT".to_owned(), "0".to_owned());
        // Tests register, sign in, publish and check for updates far faster
        // than people and one project's fleet do (a rollout test sends
        // thousands of checks a second); the rate-limit tests set their own.
        for limit in [
            "RATE_LIMIT_AUTH_PER_MINUTE",
            "RATE_LIMIT_PUBLISH_PER_MINUTE",
            "RATE_LIMIT_DEVICE_PER_SECOND",
        ] {
            env.insert(limit.to_owned(), "1000000".to_owned());
        }
        // Off by default, and off here whatever the default: recompressing
        // at the best levels replaces copies in the background, seconds
        // after a publish, and tests that compare copies' sizes would race
        // it. Its own test turns it on.
        env.insert("BEST_COMPRESSION".to_owned(), "false".to_owned());
        env.insert(
            "DATA_DIR".to_owned(),
            data_dir.path().to_string_lossy().into_owned(),
        );
        if let Some(db) = &database {
            env.insert("DATABASE_URL".to_owned(), db.url.clone());
        }
        if let Some(s3) = &s3 {
            env.extend(s3.env());
        }
        for (key, value) in extra_env {
            env.insert((*key).to_owned(), (*value).to_owned());
        }

        let (port, server) = start_server(&env).await?;
        Ok(TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            backend,
            storage,
            client: http_client(),
            env,
            server: Some(server),
            database,
            data_dir,
            s3,
        })
    }

    /// Stops the server and starts a new one with the same environment: same `DATA_DIR`,
    /// same database. The new server listens on a new random port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let (port, server) = start_server(&self.env)
            .await
            .unwrap_or_else(|e| panic!("the server failed to restart: {e}"));
        self.port = port;
        self.address = format!("http://127.0.0.1:{port}");
        self.server = Some(server);
    }

    /// Stops the server and waits until its task is gone.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    // ------------------------------------------------------------------ raw requests

    /// Sends any request and collects the response.
    pub async fn send(&self, request: RequestBuilder) -> Response {
        let response = request.send().await.expect("the HTTP request failed");
        Response::read(response).await
    }

    /// A request builder for `method path` with `Authorization: Bearer <token>`.
    pub fn authed(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get_anon(&self, path: &str) -> Response {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post_anon(&self, path: &str, body: &Value) -> Response {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.send(self.authed(Method::GET, path, token)).await
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(self.authed(Method::POST, path, token).json(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(self.authed(Method::PATCH, path, token).json(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.send(self.authed(Method::DELETE, path, token)).await
    }

    // ------------------------------------------------------------------ auth helpers

    pub async fn register(&self, body: &Value) -> Response {
        self.post_anon("/api/auth/register", body).await
    }

    pub async fn login(&self, login: &str, password: &str) -> Response {
        self.post_anon(
            "/api/auth/login",
            &json!({ "login": login, "password": password }),
        )
        .await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get("/api/auth/me", token).await
    }

    /// Registers a user with unique random username and email and [`PASSWORD`].
    pub async fn register_user(&self) -> TestUser {
        let (username, email) = unique_identity();
        self.register_as(&username, &email, PASSWORD).await
    }

    /// Registers the given user, asserting `201`.
    pub async fn register_as(&self, username: &str, email: &str, password: &str) -> TestUser {
        let response = self
            .register(&json!({ "username": username, "email": email, "password": password }))
            .await;
        response.assert_status(201);
        let user = response.json["user"].clone();
        TestUser {
            id: str_field(&user, "id"),
            username: username.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
            token: str_field(&response.json, "token"),
            user,
        }
    }

    // ------------------------------------------------------------------ project helpers

    pub async fn create_project_raw(&self, token: &str, body: &Value) -> Response {
        self.post("/api/projects", token, body).await
    }

    /// Creates a project with a unique name and slug, asserting `201`; returns the project.
    pub async fn create_project(&self, token: &str) -> Value {
        let slug = unique_slug();
        let response = self
            .create_project_raw(
                token,
                &json!({ "name": format!("Project {slug}"), "slug": slug }),
            )
            .await;
        response.assert_status(201);
        response.json
    }

    /// Adds a user to a project (owner-only route), returning the raw response.
    pub async fn add_member_raw(&self, token: &str, project_id: &str, body: &Value) -> Response {
        self.post(&format!("/api/projects/{project_id}/users"), token, body)
            .await
    }

    /// Adds `user_id` with `role`, asserting `201`; returns the membership.
    pub async fn add_member(
        &self,
        token: &str,
        project_id: &str,
        user_id: &str,
        role: &str,
    ) -> Value {
        let response = self
            .add_member_raw(
                token,
                project_id,
                &json!({ "userId": user_id, "role": role }),
            )
            .await;
        response.assert_status(201);
        response.json
    }

    pub async fn list_members(&self, token: &str, project_id: &str) -> Response {
        self.get(&format!("/api/projects/{project_id}/users"), token)
            .await
    }

    /// A registered owner, a registered member, and the owner's project with that member.
    pub async fn project_with_member(&self) -> ProjectSetup {
        let owner = self.register_user().await;
        let member = self.register_user().await;
        let project = self.create_project(&owner.token).await;
        let project_id = str_field(&project, "id");
        self.add_member(&owner.token, &project_id, &member.id, "member")
            .await;
        ProjectSetup {
            owner,
            member,
            project_id,
            project,
        }
    }

    /// Creates an API key (`name: None` sends `{}`), asserting `201`; returns
    /// `{"key": {...}, "secret": "..."}`.
    pub async fn create_key(&self, token: &str, project_id: &str, name: Option<&str>) -> Value {
        let body = match name {
            Some(name) => json!({ "name": name }),
            None => json!({}),
        };
        let response = self
            .post(&format!("/api/projects/{project_id}/keys"), token, &body)
            .await;
        response.assert_status(201);
        response.json
    }

    pub async fn list_keys(&self, token: &str, project_id: &str) -> Response {
        self.get(&format!("/api/projects/{project_id}/keys"), token)
            .await
    }
}

impl TestApp {
    /// Starts another instance of the server configured like this one: the same environment
    /// (same `DATA_DIR` and so the same generated JWT secret, the same `DATABASE_URL`, the
    /// same blob storage: the same local directory or the same S3 bucket) except `PORT=0`,
    /// so it listens on a new random port. Two replicas behind one load balancer; meant for
    /// PostgreSQL (on SQLite both would open the same database file). A `PUBLIC_URL` in the
    /// environment is kept: both instances then name the same public address.
    ///
    /// The returned app owns only its server: `database` and `s3` are `None` and its
    /// `data_dir` is an unused empty directory (the shared one is `self.data_dir()`), so use
    /// `self` for SQL and stored blobs, and drop the returned app before `self` (declare it
    /// after `self`).
    pub async fn spawn_sharing(&self) -> TestApp {
        let mut env = self.env.clone();
        env.insert("PORT".to_owned(), "0".to_owned());
        let (port, server) = start_server(&env)
            .await
            .unwrap_or_else(|e| panic!("a second instance failed to start: {e}"));
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            backend: self.backend,
            storage: self.storage,
            client: http_client(),
            env,
            server: Some(server),
            database: None,
            data_dir: tempfile::tempdir().expect("create an (unused) temporary directory"),
            s3: None,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn start_server(
    env: &HashMap<String, String>,
) -> Result<(u16, JoinHandle<std::io::Result<()>>), String> {
    let lookup_env = env.clone();
    let config = Config::from_lookup(move |key: &str| lookup_env.get(key).cloned())
        .map_err(|e| format!("configuration error: {e:?}"))?;
    let application = Application::build(config)
        .await
        .map_err(|e| format!("startup error: {e:?}"))?;
    let port = application.port();
    let server = tokio::spawn(application.run_until_stopped());
    Ok((port, server))
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the HTTP client")
}

/// A registered user ([`TestApp::register_user`]) with the token of its session.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password: String,
    pub token: String,
    /// The `user` object returned by registration.
    pub user: Value,
}

/// A project of one owner with one member ([`TestApp::project_with_member`]).
#[derive(Debug, Clone)]
pub struct ProjectSetup {
    pub owner: TestUser,
    pub member: TestUser,
    pub project_id: String,
    pub project: Value,
}
