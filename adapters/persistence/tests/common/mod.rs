//! Stores on a fresh SQLite file and on a throwaway PostgreSQL database,
//! and small fixtures.

#![allow(
    dead_code,
    unused_imports,
    unused_macros,
    clippy::unwrap_used,
    reason = "shared by several test binaries, each using a part of it"
)]

use adapter_persistence::SqlStore;
use chrono::Utc;
use domain::member::{Membership, Role};
use domain::ports::{MemberStore, ProjectStore, UserStore};
use domain::project::Project;
use domain::user::User;

pub fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A store on a fresh SQLite file; the tempdir must outlive it.
pub async fn sqlite_store() -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ota.db").display());
    (SqlStore::connect(&url).await.unwrap(), dir)
}

/// The URL of a new, empty PostgreSQL database (test-support's
/// `PgDatabase`, on `TEST_POSTGRES_URL`). Kept for the rest of the run, as
/// stores outlive the scenarios that make them; `scripts/test` drops the
/// `eus_test_` databases of earlier runs. Fails (never skips) when the server
/// is unreachable.
pub async fn postgres_url() -> String {
    let database = test_support::PgDatabase::create().await;
    let url = database.url.clone();
    std::mem::forget(database);
    url
}

/// A store on a throwaway PostgreSQL database.
pub async fn postgres_store() -> SqlStore {
    SqlStore::connect(&postgres_url().await).await.unwrap()
}

pub async fn user(store: &SqlStore, name: &str) -> User {
    let user = User {
        id: domain::id::UserId::from_trusted(id()),
        username: name.to_owned(),
        email: format!("{name}@example.com"),
        password_hash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA".to_owned(),
        created_at: Utc::now(),
    };
    UserStore::insert(store, &user).await.unwrap();
    user
}

/// A project owned by both users.
pub async fn project_with_two_owners(store: &SqlStore, a: &User, b: &User) -> Project {
    let project = Project {
        id: domain::id::ProjectId::from_trusted(id()),
        name: "App".to_owned(),
        slug: format!("app-{}", uuid::Uuid::new_v4().simple()),
        created_at: Utc::now(),
        patch_from_embedded: false,
    };
    let owner = |user: &User| Membership {
        id: id(),
        project_id: project.id.clone(),
        user_id: user.id.clone(),
        role: Role::Owner,
        created_at: Utc::now(),
    };
    store.create_with_owner(&project, &owner(a)).await.unwrap();
    MemberStore::insert(store, &owner(b)).await.unwrap();
    project
}

/// Two tests of one scenario (an `async fn(SqlStore)`): on SQLite and on
/// PostgreSQL.
macro_rules! on_both {
    ($scenario:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let (store, _dir) = $crate::common::sqlite_store().await;
            $scenario(store).await;
        }

        #[tokio::test]
        async fn $postgres() {
            $scenario($crate::common::postgres_store().await).await;
        }
    };
}
pub(crate) use on_both;
