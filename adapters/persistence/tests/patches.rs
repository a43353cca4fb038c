//! The patch store on SQLite and PostgreSQL: wanting is idempotent, a
//! claim is exclusive and lapses, only the claimant's outcome counts, work
//! that never finishes is given up on, and a project's patches go with it.

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

mod common;

use std::sync::Arc;

use adapter_persistence::SqlStore;
use chrono::{Duration, Utc};
use common::{on_both, project_with_two_owners, user};
use domain::id::ProjectId;
use domain::patch::{MAX_PATCH_ATTEMPTS, PatchKey, PatchState};
use domain::ports::{PatchStore, ProjectStore};

fn key(project_id: &ProjectId, base: char, target: char) -> PatchKey {
    PatchKey {
        project_id: project_id.clone(),
        base_sha256: base.to_string().repeat(64),
        target_sha256: target.to_string().repeat(64),
    }
}

async fn project(store: &SqlStore, prefix: &str) -> ProjectId {
    let a = user(store, &format!("{prefix}a")).await;
    let b = user(store, &format!("{prefix}b")).await;
    project_with_two_owners(store, &a, &b).await.id
}

async fn claims_are_exclusive_lapse_and_finish_once(store: SqlStore) {
    let pid = project(&store, "pc").await;
    let now = Utc::now();
    let (ab, cb) = (key(&pid, 'a', 'b'), key(&pid, 'c', 'b'));
    store.want(&[ab.clone(), cb.clone()], now).await.unwrap();
    // Wanted again (a republish): nothing changes.
    store
        .want(std::slice::from_ref(&ab), now + Duration::seconds(1))
        .await
        .unwrap();
    let records = store.patches_to(&pid, &ab.target_sha256).await.unwrap();
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.state == PatchState::Pending && r.attempts == 0)
    );

    // Two instances claim: each gets a different patch, then nothing is left.
    let until = now + Duration::seconds(60);
    let first = store.claim("one", now, until).await.unwrap().unwrap();
    let second = store.claim("two", now, until).await.unwrap().unwrap();
    assert_ne!(first.key, second.key);
    assert_eq!((first.attempt, second.attempt), (1, 1));
    assert!(store.claim("three", now, until).await.unwrap().is_none());

    // The first finishes; the second's claim lapses and another instance takes it.
    assert!(
        store
            .finish(&first, &PatchState::Ready { size: 1234 }, now)
            .await
            .unwrap()
    );
    let later = until + Duration::seconds(1);
    let retaken = store
        .claim("three", later, later + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retaken.key, second.key);
    assert_eq!(retaken.attempt, 2);
    // The lapsed claimant's late outcome is not written.
    assert!(
        !store
            .finish(&second, &PatchState::Ready { size: 1 }, later)
            .await
            .unwrap()
    );
    assert!(
        store
            .finish(&retaken, &PatchState::NotWorthIt { size: 99 }, later)
            .await
            .unwrap()
    );
    let mut states: Vec<PatchState> = store
        .patches_to(&pid, &ab.target_sha256)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.state)
        .collect();
    states.sort_by_key(|s| s.as_str());
    assert_eq!(
        states,
        [
            PatchState::NotWorthIt { size: 99 },
            PatchState::Ready { size: 1234 }
        ]
    );
    // A finished patch is never claimed again, and wanting it again leaves it.
    store.want(std::slice::from_ref(&ab), later).await.unwrap();
    assert!(store.claim("four", later, later).await.unwrap().is_none());
}

async fn work_that_never_finishes_is_given_up_on(store: SqlStore) {
    let pid = project(&store, "pg").await;
    let mut now = Utc::now();
    store.want(&[key(&pid, 'd', 'e')], now).await.unwrap();
    for attempt in 1..=MAX_PATCH_ATTEMPTS {
        let claim = store
            .claim("crashy", now, now + Duration::seconds(10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.attempt, attempt);
        // The instance dies: the claim lapses.
        now += Duration::seconds(11);
    }
    assert!(store.claim("next", now, now).await.unwrap().is_none());
    let records = store.patches_to(&pid, &"e".repeat(64)).await.unwrap();
    assert!(
        matches!(&records[0].state, PatchState::Failed { error } if error.contains("attempts")),
        "{records:?}"
    );
    // Wanted again (its bundle stored again, say): tried afresh.
    store.want(&[key(&pid, 'd', 'e')], now).await.unwrap();
    let records = store.patches_to(&pid, &"e".repeat(64)).await.unwrap();
    assert_eq!(
        (&records[0].state, records[0].attempts),
        (&PatchState::Pending, 0)
    );
    let claim = store
        .claim("next", now, now + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(claim.map(|claim| claim.attempt), Some(1));
}

async fn many_claimants_never_share_a_patch(store: SqlStore) {
    let pid = project(&store, "pm").await;
    let now = Utc::now();
    let wanted: Vec<PatchKey> = ('a'..='t').map(|c| key(&pid, c, 'z')).collect();
    store.want(&wanted, now).await.unwrap();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(claim) = store
                    .claim(&format!("i{n}"), now, now + Duration::seconds(60))
                    .await
                    .unwrap()
                {
                    got.push(claim.key);
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = claimed.iter().cloned().collect();
    assert_eq!(
        claimed.len(),
        wanted.len(),
        "every patch claimed exactly once"
    );
    assert_eq!(distinct.len(), wanted.len());
}

async fn a_deleted_projects_patches_go_with_it(store: SqlStore) {
    let pid = project(&store, "pd").await;
    store
        .want(&[key(&pid, 'a', 'b')], Utc::now())
        .await
        .unwrap();
    ProjectStore::delete(&store, &pid).await.unwrap();
    assert!(
        store
            .patches_to(&pid, &"b".repeat(64))
            .await
            .unwrap()
            .is_empty()
    );
    // Wanting patches of a project that is gone is not an error, and stores nothing.
    store
        .want(&[key(&pid, 'a', 'b')], Utc::now())
        .await
        .unwrap();
    assert!(
        store
            .patches_to(&pid, &"b".repeat(64))
            .await
            .unwrap()
            .is_empty()
    );
}

on_both!(
    claims_are_exclusive_lapse_and_finish_once,
    sqlite_claims_are_exclusive_lapse_and_finish_once,
    postgres_claims_are_exclusive_lapse_and_finish_once
);
on_both!(
    work_that_never_finishes_is_given_up_on,
    sqlite_work_that_never_finishes_is_given_up_on,
    postgres_work_that_never_finishes_is_given_up_on
);
on_both!(
    many_claimants_never_share_a_patch,
    sqlite_many_claimants_never_share_a_patch,
    postgres_many_claimants_never_share_a_patch
);
on_both!(
    a_deleted_projects_patches_go_with_it,
    sqlite_a_deleted_projects_patches_go_with_it,
    postgres_a_deleted_projects_patches_go_with_it
);
