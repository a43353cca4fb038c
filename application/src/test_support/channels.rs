//! Channel mappings in memory, answering as the SQL adapter
//! (`adapters/persistence/src/channels.rs`) does, with its compare-and-set.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ports::{ChannelStore, Constraint, StoreError, StoreResult};
use domain::release::{Channel, ChannelName};

use super::store::InMemoryStore;

#[async_trait]
impl ChannelStore for InMemoryStore {
    /// By name.
    async fn list(&self, project_id: &str) -> StoreResult<Vec<Channel>> {
        let mut channels: Vec<Channel> = self
            .state()
            .channels
            .iter()
            .filter(|c| c.project_id == project_id)
            .cloned()
            .collect();
        channels.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(channels)
    }

    async fn find(&self, project_id: &str, name: &ChannelName) -> StoreResult<Option<Channel>> {
        Ok(self
            .state()
            .channels
            .iter()
            .find(|c| c.project_id == project_id && c.name == *name)
            .cloned())
    }

    /// `Conflict(Channel)` when taken, `ProjectGone` when the
    /// project does not exist.
    async fn insert(&self, channel: &Channel) -> StoreResult<()> {
        let mut state = self.state();
        if !state.has_project(&channel.project_id) {
            return Err(StoreError::ProjectGone);
        }
        let taken = state
            .channels
            .iter()
            .any(|c| c.project_id == channel.project_id && c.name == channel.name);
        if taken {
            return Err(StoreError::Conflict(Constraint::Channel));
        }
        state.channels.push(channel.clone());
        self.served_change(true);
        Ok(())
    }

    /// Compare-and-set on `updated_at`: writes the branch, the split and
    /// `updated_at` (not `created_at`) only if the stored mapping is still
    /// `expected`; `None` inserts unless someone else inserted first.
    async fn save_if_unchanged(
        &self,
        channel: &Channel,
        expected: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let Some(expected) = expected else {
            return match ChannelStore::insert(self, channel).await {
                Ok(()) => Ok(true),
                Err(StoreError::Conflict(_)) => Ok(false),
                Err(error) => Err(error),
            };
        };
        let mut state = self.state();
        let stored = state.channels.iter_mut().find(|c| {
            c.project_id == channel.project_id && c.name == channel.name && c.updated_at == expected
        });
        let changed = match stored {
            Some(stored) => {
                stored.branch = channel.branch.clone();
                stored.split = channel.split.clone();
                stored.updated_at = channel.updated_at;
                true
            }
            None => false,
        };
        Ok(self.served_change(changed))
    }

    async fn delete(&self, project_id: &str, name: &ChannelName) -> StoreResult<bool> {
        let mut state = self.state();
        let before = state.channels.len();
        state
            .channels
            .retain(|c| !(c.project_id == project_id && c.name == *name));
        Ok(self.served_change(state.channels.len() < before))
    }
}

/// Direct writes for tests that set up state the services would refuse.
impl InMemoryStore {
    /// Stores a channel mapping as it is (no checks), moving the epoch.
    pub fn put_channel(&self, channel: Channel) {
        let mut state = self.state();
        state
            .channels
            .retain(|c| !(c.project_id == channel.project_id && c.name == channel.name));
        state.channels.push(channel);
        self.served_change(true);
    }
}
