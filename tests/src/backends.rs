//! The database and blob storage combinations a scenario runs on, and the macros that run it
//! on each ([`both_backends!`](crate::both_backends), [`all_backends!`](crate::all_backends)).

/// The database the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `DATABASE_URL` unset: the server creates a SQLite file under `DATA_DIR`.
    Sqlite,
    /// A fresh PostgreSQL database per test (see [`PgDatabase`](crate::PgDatabase)).
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
            #[allow(unused_imports, reason = "a test may use only some of what the macro imports")]
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
            #[allow(unused_imports, reason = "a test may use only some of what the macro imports")]
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
            #[allow(unused_imports, reason = "a test may use only some of what the macro imports")]
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
