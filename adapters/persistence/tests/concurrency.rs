//! The store's rules under concurrency, on SQLite and PostgreSQL: the last
//! owner cannot be demoted by two racing requests, and racing key creations
//! get distinct default names.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::sync::Arc;

use adapter_persistence::SqlStore;
use chrono::Utc;
use domain::api_key::NewApiKey;
use domain::member::Role;
use domain::ports::{ApiKeyStore, MemberStore, StoreError, UserStore};
use domain::user::User;

mod common;

use common::{id, postgres_store, project_with_two_owners, sqlite_store, user};

async fn racing_demotions_leave_an_owner(store: SqlStore) {
    let store = Arc::new(store);
    for round in 0..10 {
        let a = user(&store, &format!("a{round}")).await;
        let b = user(&store, &format!("b{round}")).await;
        let project = project_with_two_owners(&store, &a, &b).await;
        let demote = |user_id: String| {
            let (store, project_id) = (store.clone(), project.id.clone());
            tokio::spawn(
                async move { store.change_role(&project_id, &user_id, Role::Member).await },
            )
        };
        let (first, second) = tokio::join!(demote(a.id.to_string()), demote(b.id.to_string()));
        let outcomes = [first.unwrap(), second.unwrap()];
        let demoted = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::LastOwner(_))))
            .count();
        assert_eq!((demoted, refused), (1, 1), "round {round}: {outcomes:?}");
        let owners = MemberStore::list(store.as_ref(), &project.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.membership.role == Role::Owner)
            .count();
        assert_eq!(owners, 1, "round {round}");
    }
}

async fn racing_unnamed_keys_get_distinct_names(store: SqlStore) {
    let store = Arc::new(store);
    let (a, b) = (user(&store, "ka").await, user(&store, "kb").await);
    let project = project_with_two_owners(&store, &a, &b).await;
    let tasks: Vec<_> = (0..10)
        .map(|n| {
            let (store, project_id, creator) = (store.clone(), project.id.clone(), a.id.clone());
            tokio::spawn(async move {
                let key = NewApiKey {
                    id: domain::id::ApiKeyId::from_trusted(id()),
                    project_id,
                    created_by: creator,
                    name: None,
                    key_hash: format!("{n:064x}"),
                    key_prefix: format!("{n:08x}"),
                    created_at: Utc::now(),
                };
                ApiKeyStore::insert(store.as_ref(), &key)
                    .await
                    .unwrap()
                    .name
            })
        })
        .collect();
    let mut names = Vec::new();
    for task in tasks {
        names.push(task.await.unwrap());
    }
    names.sort_by_key(|name| name.trim_start_matches("key-").parse::<u32>().unwrap());
    let expected: Vec<String> = (1..=10).map(|n| format!("key-{n}")).collect();
    assert_eq!(names, expected);
}

async fn racing_first_registrations_admit_one(store: SqlStore) {
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let user = User {
                    id: domain::id::UserId::from_trusted(id()),
                    username: format!("first{n}"),
                    email: format!("first{n}@example.com"),
                    password_hash: "x".to_owned(),
                    created_at: Utc::now(),
                };
                store.insert_first(&user).await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 1);
    assert_eq!(store.count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_first_registrations_admit_one() {
    let (store, _dir) = sqlite_store().await;
    racing_first_registrations_admit_one(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_first_registrations_admit_one() {
    racing_first_registrations_admit_one(postgres_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_demotions_leave_an_owner() {
    let (store, _dir) = sqlite_store().await;
    racing_demotions_leave_an_owner(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_demotions_leave_an_owner() {
    racing_demotions_leave_an_owner(postgres_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_unnamed_keys_get_distinct_names() {
    let (store, _dir) = sqlite_store().await;
    racing_unnamed_keys_get_distinct_names(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_unnamed_keys_get_distinct_names() {
    racing_unnamed_keys_get_distinct_names(postgres_store().await).await;
}
