//! End-to-end test harness.
//!
//! Every test starts the real server (`expo_updates_server::Application`) in-process on a
//! random port, with its own temporary `DATA_DIR` and its own database (a SQLite file in
//! `DATA_DIR`, or a throwaway PostgreSQL database), and talks to it over HTTP with `reqwest`.
//!
//! Scenarios are written once with [`both_backends!`] and run against both backends, or with
//! [`all_backends!`] and run against both backends on both blob storages ([`Storage`]: local
//! disk, or an in-process S3 server).
#![allow(clippy::unwrap_used)]

pub mod protocol;
pub mod proxy;
pub mod publish;
pub use s3_test_server as s3;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use expo_updates_server::Application;
use expo_updates_server::config::Config;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use reqwest;
pub use serde_json;

/// Admin connection used to create the per-test PostgreSQL databases.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The password every [`TestApp::register_user`] user gets.
pub const PASSWORD: &str = "correct-horse-battery";

/// A JWT secret long enough to be accepted (exactly 48 bytes).
pub const TEST_JWT_SECRET: &str = "e2e-test-secret-0123456789-abcdefghijklmnopqrstu";

/// Lifetime of an issued token: 72 hours.
pub const TOKEN_LIFETIME_SECS: i64 = 72 * 60 * 60;

/// The database the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `DATABASE_URL` unset: the server creates a SQLite file under `DATA_DIR`.
    Sqlite,
    /// A fresh PostgreSQL database per test (see [`TestDatabase`]).
    Postgres,
}

/// Where the server under test keeps its blobs (bundles and assets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `STORAGE_TYPE` unset: local disk under `DATA_DIR/updates`.
    Local,
    /// `STORAGE_TYPE=s3` against an in-process s3s-fs server started for the test
    /// (path-style; add `("S3_PREFIX", "...")` to the environment to use a prefix).
    S3,
}

/// Runs a scenario on the four combinations of database and blob storage.
///
/// ```text
/// all_backends!(publish_works, |app| async move { ... });
/// // extra environment for the server:
/// all_backends!(limited, env = [("MAX_UPLOAD_BYTES", "1000000")], |app| async move { ... });
/// // the scenario spawns the server itself (TestApp::spawn_on(backend, storage, env)):
/// all_backends!(custom, |backend: Backend, storage: Storage| async move { ... });
/// ```
///
/// Each invocation expands to
/// `mod <name> { fn sqlite_local(); fn sqlite_s3(); fn postgres_local(); fn postgres_s3(); }`.
#[macro_export]
macro_rules! all_backends {
    // The scenario gets the backend and the storage and spawns servers itself.
    ($name:ident, |$backend:ident : $backend_type:ty, $storage:ident : $storage_type:ty| $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::all_backends!(@combo sqlite_local, Sqlite, Local, |$backend: $backend_type, $storage: $storage_type| $body);
            $crate::all_backends!(@combo sqlite_s3, Sqlite, S3, |$backend: $backend_type, $storage: $storage_type| $body);
            $crate::all_backends!(@combo postgres_local, Postgres, Local, |$backend: $backend_type, $storage: $storage_type| $body);
            $crate::all_backends!(@combo postgres_s3, Postgres, S3, |$backend: $backend_type, $storage: $storage_type| $body);
        }
    };
    (@combo $test:ident, $db:ident, $store:ident, |$backend:ident : $backend_type:ty, $storage:ident : $storage_type:ty| $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let $backend: $backend_type = $crate::Backend::$db;
            let $storage: $storage_type = $crate::Storage::$store;
            $body.await;
        }
    };
    ($name:ident, |$app:pat_param| $body:expr $(,)?) => {
        $crate::all_backends!($name, env = [], |$app| $body);
    };
    ($name:ident, env = [$(($key:expr, $value:expr)),* $(,)?], |$app:pat_param| $body:expr $(,)?) => {
        $crate::all_backends!(
            $name,
            |backend: $crate::Backend, storage: $crate::Storage| async move {
                let $app = $crate::TestApp::spawn_on(backend, storage, &[$(($key, $value)),*]).await;
                $body.await;
            }
        );
    };
}

/// Runs a scenario once per backend.
///
/// ```text
/// both_backends!(health_is_ok, |app| async move {
///     app.get_anon("/healthz").await.assert_status(200);
/// });
/// // extra environment for the server:
/// both_backends!(closed, env = [("ALLOW_REGISTRATION", "false")], |app| async move { ... });
/// // the scenario spawns (and restarts) the server itself:
/// both_backends!(restart, |backend: Backend| async move { ... });
/// ```
///
/// Each invocation expands to `mod <name> { async fn sqlite(); async fn postgres(); }`.
#[macro_export]
macro_rules! both_backends {
    // The scenario gets only the backend (`|backend: Backend|`) and spawns servers itself.
    ($name:ident, |$backend:ident : $backend_type:ty| $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend: $backend_type = $crate::Backend::Sqlite;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $backend: $backend_type = $crate::Backend::Postgres;
                $body.await;
            }
        }
    };
    ($name:ident, |$app:pat_param| $body:expr $(,)?) => {
        $crate::both_backends!($name, env = [], |$app| $body);
    };
    ($name:ident, env = [$(($key:expr, $value:expr)),* $(,)?], |$app:pat_param| $body:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::TestApp::spawn_with(
                    $crate::Backend::Sqlite,
                    &[$(($key, $value)),*],
                )
                .await;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::TestApp::spawn_with(
                    $crate::Backend::Postgres,
                    &[$(($key, $value)),*],
                )
                .await;
                $body.await;
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL throwaway databases
// ---------------------------------------------------------------------------------------------

/// A PostgreSQL database created for one test and dropped (with `FORCE`) when this value is
/// dropped. Creation panics with a clear message when PostgreSQL is unreachable: the
/// Postgres variants of the tests fail, they never skip.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub fn admin_url() -> String {
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
    }

    pub async fn create() -> TestDatabase {
        let admin_url = Self::admin_url();
        let name = format!("eus_test_{}", Uuid::new_v4().simple());
        let admin = connect_admin(&admin_url).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
        let _ = admin.close().await;

        let mut url = reqwest::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL {admin_url:?} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        TestDatabase {
            name,
            url: url.to_string(),
            admin_url,
        }
    }
}

async fn connect_admin(admin_url: &str) -> sea_orm::DatabaseConnection {
    let mut options = ConnectOptions::new(admin_url.to_owned());
    options
        .max_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is unreachable at {admin_url} (set TEST_POSTGRES_URL to an admin URL \
             of a running server; the Postgres tests never skip): {e}"
        )
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: drop the database from a separate thread with its own runtime (we may
        // be inside the test's runtime here). `WITH (FORCE)` ends the server's connections.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let mut options = ConnectOptions::new(admin_url);
                options
                    .max_connections(1)
                    .connect_timeout(Duration::from_secs(5))
                    .sqlx_logging(false);
                match Database::connect(options).await {
                    Ok(admin) => {
                        let dropped = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        if let Err(e) = dropped {
                            eprintln!("warning: could not drop test database {name}: {e}");
                        }
                        let _ = admin.close().await;
                    }
                    Err(e) => eprintln!("warning: could not drop test database {name}: {e}"),
                }
            });
        });
        let _ = cleanup.join();
    }
}

// ---------------------------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------------------------

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
    pub database: Option<TestDatabase>,
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
            Backend::Postgres => Some(TestDatabase::create().await),
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

    /// The database URL the server uses (its SQLite file, or its PostgreSQL database).
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.data_dir.path().join("ota.db").display()),
        }
    }

    /// Runs SQL directly against the server's database, as an importer or an operator
    /// would (e.g. to plant rows the old Go server wrote).
    pub async fn execute_sql(&self, statement: &str) {
        let db = Database::connect(ConnectOptions::new(self.database_url()))
            .await
            .expect("connect to the server's database");
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        db.close().await.expect("close the connection");
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    // ------------------------------------------------------------------ stored blobs

    /// The directory that holds the server's blobs, read from outside the server: for local
    /// storage `DATA_DIR/updates`; for S3 the s3s-fs bucket directory plus `S3_PREFIX` (an
    /// object `k` is the file `<s3s-fs root>/<bucket>/<prefix>/k`).
    pub fn blob_root(&self) -> PathBuf {
        match &self.s3 {
            None => self.data_dir().join("updates"),
            Some(s3) => {
                let prefix = self
                    .env
                    .get("S3_PREFIX")
                    .map(|p| p.trim_matches('/').to_owned())
                    .unwrap_or_default();
                let bucket = s3.bucket_dir();
                if prefix.is_empty() {
                    bucket
                } else {
                    bucket.join(prefix)
                }
            }
        }
    }

    /// Every stored object (regular file) under [`TestApp::blob_root`]: key (relative path
    /// with `/`) → size in bytes, except the compressed copies of files (see
    /// [`TestApp::stored_copies`]), which come and go with their files.
    pub fn stored_objects(&self) -> BTreeMap<String, u64> {
        let mut objects = list_files(&self.blob_root());
        objects.retain(|key, _| !is_compressed_copy(key));
        objects
    }

    /// The brotli and gzip copies made at publish: `…/<sha256>.br` and `.gz`.
    pub fn stored_copies(&self) -> BTreeMap<String, u64> {
        let mut objects = list_files(&self.blob_root());
        objects.retain(|key, _| is_compressed_copy(key));
        objects
    }

    /// Every object in the S3 bucket, prefix or not (empty for local storage).
    pub fn bucket_objects(&self) -> BTreeMap<String, u64> {
        match &self.s3 {
            Some(s3) => list_files(&s3.bucket_dir()),
            None => BTreeMap::new(),
        }
    }

    /// The stored objects whose key starts with `prefix` (e.g. `"staging/"`).
    pub fn stored_objects_under(&self, prefix: &str) -> BTreeMap<String, u64> {
        self.stored_objects()
            .into_iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .collect()
    }

    /// The bytes of the stored object `key`, or `None` when there is none.
    pub fn read_object(&self, key: &str) -> Option<Vec<u8>> {
        let path = key
            .split('/')
            .fold(self.blob_root(), |path, segment| path.join(segment));
        if !path.is_file() {
            return None;
        }
        Some(std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
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

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A fully read HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON; `Value::Null` when it is empty or not JSON.
    pub json: Value,
}

impl Response {
    async fn read(response: reqwest::Response) -> Response {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("read the response body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }

    /// Asserts the status code, printing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Response {
        assert_eq!(
            self.status, expected,
            "expected HTTP {expected}, got {} with body: {}",
            self.status, self.text
        );
        self
    }

    /// Asserts an error answer: the status, and a JSON body `{"error": "<non-empty>"}`.
    /// Returns the message.
    #[track_caller]
    pub fn assert_error(&self, expected: u16) -> String {
        self.assert_status(expected);
        let message = self
            .json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_else(|| {
                panic!(
                    "HTTP {expected} body should be {{\"error\": \"...\"}}, got: {}",
                    self.text
                )
            });
        assert!(
            !message.trim().is_empty(),
            "the error message is empty: {}",
            self.text
        );
        message.to_owned()
    }

    /// Asserts `403 {"error": "Permission denied."}`: the answer to a non-member, the same
    /// as for a project that does not exist.
    #[track_caller]
    pub fn assert_permission_denied(&self) {
        let message = self.assert_error(403);
        assert_eq!(message, "Permission denied.", "body: {}", self.text);
    }

    /// Asserts `403` with an error message of the server's choosing: the answer to a member
    /// calling an owner-only route (unlike strangers, members know the project exists).
    #[track_caller]
    pub fn assert_forbidden(&self) {
        self.assert_error(403);
    }

    /// Asserts a 2xx status with an empty body (e.g. `204 No Content`).
    #[track_caller]
    pub fn assert_no_content(&self) {
        self.assert_status(204);
        assert!(self.text.is_empty(), "204 must have no body: {}", self.text);
    }

    /// The JSON body as an array.
    #[track_caller]
    pub fn array(&self) -> &Vec<Value> {
        self.json
            .as_array()
            .unwrap_or_else(|| panic!("expected a JSON array, got: {}", self.text))
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures and small helpers
// ---------------------------------------------------------------------------------------------

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

#[derive(Debug, Clone)]
pub struct ProjectSetup {
    pub owner: TestUser,
    pub member: TestUser,
    pub project_id: String,
    pub project: Value,
}

fn random_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A fresh `(username, email)` pair.
pub fn unique_identity() -> (String, String) {
    let username = format!("user-{}", random_suffix());
    let email = format!("{username}@example.com");
    (username, email)
}

/// A fresh slug matching `[a-z0-9-]+`.
pub fn unique_slug() -> String {
    format!("app-{}", random_suffix())
}

/// The string value of `value[key]`, panicking with the JSON when it is absent.
#[track_caller]
pub fn str_field(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected a string field {key:?} in {value}"))
        .to_owned()
}

/// Asserts that `value` is an object having every key in `keys`.
#[track_caller]
pub fn assert_has_fields(value: &Value, keys: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("expected a JSON object, got {value}"));
    for key in keys {
        assert!(
            object.contains_key(*key),
            "missing field {key:?} in {value}"
        );
    }
}

/// Every object key anywhere in `value`, lower-cased.
pub fn all_keys(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, keys: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    keys.insert(key.to_lowercase());
                    walk(child, keys);
                }
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, keys)),
            _ => {}
        }
    }
    let mut keys = BTreeSet::new();
    walk(value, &mut keys);
    keys
}

/// Asserts that no key anywhere in `value` mentions a password, a hash or a secret.
#[track_caller]
pub fn assert_no_secrets(value: &Value) {
    for key in all_keys(value) {
        assert!(
            !key.contains("password") && !key.contains("hash") && !key.contains("secret"),
            "sensitive field {key:?} exposed in {value}"
        );
    }
    let text = value.to_string();
    assert!(
        !text.contains("$argon2"),
        "a password hash is exposed in {text}"
    );
}

/// Asserts a user object `{"id","username","email","createdAt"}` without any secret.
#[track_caller]
pub fn assert_user_shape(user: &Value) {
    assert_has_fields(user, &["id", "username", "email", "createdAt"]);
    assert_uuid(&user["id"]);
    assert_rfc3339(&user["createdAt"]);
    assert_no_secrets(user);
}

#[track_caller]
pub fn assert_uuid(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a UUID string, got {value}"));
    assert!(Uuid::parse_str(text).is_ok(), "not a UUID: {text:?}");
}

#[track_caller]
pub fn assert_rfc3339(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected an RFC 3339 string, got {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("not an RFC 3339 timestamp: {text:?} ({e})"))
}

/// Whether two JSON values describe the same thing: equal, except that two RFC 3339
/// timestamps only need to be the same instant to the millisecond (a value fresh from memory
/// may carry more precision than the same value read back from the database).
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| same_json(value, other)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        (Value::String(x), Value::String(y)) if x != y => {
            match (
                chrono::DateTime::parse_from_rfc3339(x),
                chrono::DateTime::parse_from_rfc3339(y),
            ) {
                (Ok(x), Ok(y)) => (x - y).num_milliseconds() == 0,
                _ => false,
            }
        }
        _ => a == b,
    }
}

/// Asserts [`same_json`], printing both values otherwise.
#[track_caller]
pub fn assert_same(actual: &Value, expected: &Value) {
    assert!(
        same_json(actual, expected),
        "JSON differs:\n  actual:   {actual}\n  expected: {expected}"
    );
}

/// Hex SHA-256 of `text` (to look for stored key hashes leaking into responses).
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// JWT tooling
// ---------------------------------------------------------------------------------------------

pub mod jwt {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
    use serde_json::{Value, json};

    /// Seconds since the Unix epoch.
    pub fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// The header of a token, without verification.
    pub fn header(token: &str) -> Value {
        let part = token.split('.').next().expect("a JWT has a header");
        decode_part(part)
    }

    /// The claims of a token, without verification.
    pub fn claims(token: &str) -> Value {
        let part = token.split('.').nth(1).expect("a JWT has a payload");
        decode_part(part)
    }

    fn decode_part(part: &str) -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .unwrap_or_else(|e| panic!("JWT part is not base64url: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part is not JSON: {e}"))
    }

    /// Verifies an HS256 token with `secret`, returning the claims.
    pub fn verify_hs256(token: &str, secret: impl AsRef<[u8]>) -> Result<Value, String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Value>(
            token,
            &DecodingKey::from_secret(secret.as_ref()),
            &validation,
        )
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
    }

    /// Standard claims for `sub`, issued now, valid for `lifetime_secs` (negative: expired).
    pub fn claims_for(sub: &str, lifetime_secs: i64) -> Value {
        let iat = now();
        json!({ "sub": sub, "iat": iat, "exp": iat + lifetime_secs })
    }

    /// Signs `claims` with `secret` using `algorithm` (an HMAC one).
    pub fn sign(claims: &Value, secret: &str, algorithm: Algorithm) -> String {
        jsonwebtoken::encode(
            &Header::new(algorithm),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("sign a JWT")
    }

    /// An unsigned token: `{"alg":"none","typ":"JWT"}` header, empty signature.
    pub fn unsigned(claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.")
    }
}

/// Every regular file below `dir` (recursively): path relative to `dir` with `/` separators
/// → size. Empty when `dir` does not exist.
/// `projects/<id>/assets/<sha256>.br` or `.gz`.
fn is_compressed_copy(key: &str) -> bool {
    key.starts_with("projects/")
        && key.rsplit('/').next().is_some_and(|name| {
            name.split_once('.').is_some_and(|(sha, suffix)| {
                sha.len() == 64
                    && sha.bytes().all(|b| b.is_ascii_hexdigit())
                    && (suffix == "br" || suffix == "gz")
            })
        })
}

pub fn list_files(dir: &Path) -> BTreeMap<String, u64> {
    fn walk(dir: &Path, relative: &str, files: &mut BTreeMap<String, u64>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = if relative.is_empty() {
                name
            } else {
                format!("{relative}/{name}")
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                walk(&entry.path(), &key, files);
            } else if file_type.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                files.insert(key, size);
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, "", &mut files);
    files
}

/// The top-level regular files of `dir`.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read DATA_DIR")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Whether `path` belongs to a SQLite database (the file itself, its WAL/SHM/journal).
pub fn is_sqlite_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let by_name = [".db", ".sqlite", ".sqlite3", "-wal", "-shm", "-journal"]
        .iter()
        .any(|suffix| name.ends_with(suffix));
    let by_magic = std::fs::read(path)
        .map(|bytes| bytes.starts_with(b"SQLite format 3\0"))
        .unwrap_or(false);
    by_name || by_magic
}

/// Whether the contents of `path` are the HS256 secret that signed `token`: used raw, as
/// trimmed text, hex-decoded or base64-decoded.
pub fn file_holds_secret_of(path: &Path, token: &str) -> bool {
    use base64::Engine;
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let mut candidates = vec![bytes.clone(), text.clone().into_bytes()];
    if let Ok(decoded) = hex::decode(&text) {
        candidates.push(decoded);
    }
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        if let Ok(decoded) = engine.decode(&text) {
            candidates.push(decoded);
        }
    }
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        if let Ok(decoded) = engine.decode(&text) {
            candidates.push(decoded);
        }
    }
    candidates
        .iter()
        .any(|secret| !secret.is_empty() && jwt::verify_hs256(token, secret).is_ok())
}
