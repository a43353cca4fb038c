//! Throwaway PostgreSQL databases: one per test, created on the server named by
//! `TEST_POSTGRES_URL` (an admin connection URL; default [`DEFAULT_POSTGRES_URL`]) and dropped
//! when the test is done. PostgreSQL tests never skip: an unreachable server fails them.

use std::future::Future;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

/// The admin connection used when `TEST_POSTGRES_URL` is unset.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A PostgreSQL database `eus_test_<uuid>` created for one test and dropped (`WITH (FORCE)`,
/// which ends the connections still open to it) when this value is dropped. Creation panics
/// with a clear message when PostgreSQL is unreachable.
#[derive(Debug)]
pub struct PgDatabase {
    pub name: String,
    /// The database's own URL: the admin URL with its path replaced.
    pub url: String,
    admin_url: String,
}

impl PgDatabase {
    /// `TEST_POSTGRES_URL`, or [`DEFAULT_POSTGRES_URL`].
    pub fn admin_url() -> String {
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
    }

    pub async fn create() -> PgDatabase {
        let admin_url = Self::admin_url();
        let name = format!("eus_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(&admin_url).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("could not create test database {name}: {e}"));
        let _ = admin.close().await;

        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL {admin_url:?} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        PgDatabase {
            name,
            url: url.to_string(),
            admin_url,
        }
    }

    /// [`PgDatabase::create`] for tests without a runtime (it runs on one of its own).
    pub fn create_blocking() -> PgDatabase {
        on_own_runtime(Self::create())
    }
}

async fn connect_admin(admin_url: &str) -> DatabaseConnection {
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

/// Runs `future` to completion on a new thread with its own runtime: usable both inside a
/// test's runtime (where blocking on it would panic) and in tests without one.
fn on_own_runtime<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for PostgreSQL")
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort, on a thread with its own runtime (this may run inside the test's
        // runtime): a failure is a warning, never a second panic.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
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
