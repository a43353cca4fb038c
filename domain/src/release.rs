//! Release management rules: branch and channel names, rollout percentages,
//! which branch a channel sends a device to, and which update of a branch a
//! device is served while a percentage rollout is under way.
//!
//! Every decision here is a pure function of the request (channel name,
//! `EAS-Client-ID`) and stored values, so any server instance gives a device
//! the same answer without storing anything per device.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::id::{PublishId, UpdateId};
use crate::validation::ValidationError;

/// The branch publishes go to, and the channel apps without a
/// `expo-channel-name` header are served.
pub const DEFAULT_BRANCH: &str = "main";

/// A branch name: 1 to 128 characters of `A-Z a-z 0-9 . _ - /`, starting with
/// a letter or digit. Slashes allow CI ref names such as `feature/login`;
/// the character set keeps names safe in SFV strings and query strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BranchName(String);

impl BranchName {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_name(raw, "branch", Self::MAX_LEN, true)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn default_branch() -> Self {
        Self(DEFAULT_BRANCH.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A channel name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, starting with a
/// letter or digit. Every channel name is also a valid branch name, since a
/// channel without a mapping serves the branch of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName(String);

impl ChannelName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        check_name(raw, "channel", Self::MAX_LEN, false)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn default_channel() -> Self {
        Self(DEFAULT_BRANCH.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The branch a channel without an explicit mapping serves.
    pub fn same_name_branch(&self) -> BranchName {
        BranchName(self.0.clone())
    }
}

fn check_name(raw: &str, what: &str, max: usize, slash: bool) -> Result<(), ValidationError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c) || (slash && c == '/');
    let starts_well = raw
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if raw.len() > max || !starts_well || !raw.chars().all(allowed) {
        let extra = if slash { " / " } else { " " };
        return Err(ValidationError::new(format!(
            "{what} name must be 1 to {max} characters of letters, digits and . _ -{extra}starting with a letter or digit."
        )));
    }
    Ok(())
}

/// A share of devices, 0 to 100 percent. 0 halts a rollout, 100 completes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RolloutPercentage(u8);

impl RolloutPercentage {
    pub const FULL: Self = Self(100);

    /// Any value from 0 to 100.
    pub fn parse(raw: i64) -> Result<Self, ValidationError> {
        u8::try_from(raw)
            .ok()
            .filter(|value| *value <= 100)
            .map(Self)
            .ok_or_else(|| ValidationError::new("rolloutPercentage must be from 0 to 100."))
    }

    /// What a publish accepts: 1 to 100 (publishing to nobody makes no sense;
    /// halting an existing rollout is 0).
    pub fn parse_for_publish(raw: i64) -> Result<Self, ValidationError> {
        match Self::parse(raw) {
            Ok(value) if value.0 > 0 => Ok(value),
            _ => Err(ValidationError::new(
                "rolloutPercentage must be from 1 to 100 when publishing.",
            )),
        }
    }

    pub fn value(self) -> u8 {
        self.0
    }

    pub fn is_complete(self) -> bool {
        self.0 >= 100
    }
}

/// The number of buckets a device hashes into: percentages are compared at
/// a resolution of 0.01 %.
const BUCKETS: u32 = 10_000;

/// The bucket (0..10 000) a device falls into for one rollout. The salt
/// (an update id, or a channel name) makes different rollouts pick different
/// devices, so the same 5 % of devices are not always first.
fn bucket(client_id: &str, salt: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update([0u8])
        .chain_update(client_id.as_bytes())
        .finalize();
    let head = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    head % BUCKETS
}

/// Whether a device is inside a rollout of `percentage` salted by `salt`.
///
/// A device without a client id is outside every partial rollout. Raising
/// the percentage only adds devices: the threshold grows, the bucket does
/// not move.
pub fn in_rollout(client_id: Option<&str>, salt: &str, percentage: RolloutPercentage) -> bool {
    if percentage.is_complete() {
        return true;
    }
    match client_id {
        Some(id) if percentage.0 > 0 => {
            bucket(id, salt) < u32::from(percentage.0) * (BUCKETS / 100)
        }
        _ => false,
    }
}

/// An update of a branch as the rollout decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutCandidate {
    /// The per-platform update id, to load the chosen one.
    pub id: UpdateId,
    /// The publish's id: what the rollout is salted with, so a device gets
    /// the same answer on every platform of a publish.
    pub publish_id: PublishId,
    pub rollout: RolloutPercentage,
}

/// Picks what a device is served from a branch's updates, newest first: the
/// newest whose rollout includes the device. A device outside a rollout
/// gets what it would have got without that update.
pub fn pick_for_device<'a>(
    candidates: &'a [RolloutCandidate],
    client_id: Option<&str>,
) -> Option<&'a RolloutCandidate> {
    candidates
        .iter()
        .find(|candidate| in_rollout(client_id, candidate.publish_id.as_str(), candidate.rollout))
}

/// A channel's explicit mapping to a branch, optionally split with a second
/// branch for a branch-level rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub project_id: String,
    pub name: ChannelName,
    pub branch: BranchName,
    pub split: Option<BranchSplit>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The share of a channel's devices sent to another branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchSplit {
    pub branch: BranchName,
    pub percentage: RolloutPercentage,
}

impl Channel {
    /// The branch a device on this channel is served.
    pub fn branch_for(&self, client_id: Option<&str>) -> &BranchName {
        match &self.split {
            Some(split) if in_rollout(client_id, &self.salt(), split.percentage) => &split.branch,
            _ => &self.branch,
        }
    }

    /// Salted by the channel and both branches: repointing the channel starts
    /// a new, independent draw.
    fn salt(&self) -> String {
        let rollout_branch = self
            .split
            .as_ref()
            .map_or("", |split| split.branch.as_str());
        format!(
            "channel:{}:{}:{}",
            self.name.as_str(),
            self.branch.as_str(),
            rollout_branch
        )
    }

    /// Checks the channel's own consistency: a split names another branch.
    pub fn validate(&self) -> Result<(), ValidationError> {
        match &self.split {
            Some(split) if split.branch == self.branch => Err(ValidationError::new(
                "rolloutBranch must differ from branch.",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(value: i64) -> RolloutPercentage {
        RolloutPercentage::parse(value).expect("valid percentage")
    }

    #[test]
    fn names_are_checked() {
        for good in ["main", "production", "feature/login", "v1.2_rc-3"] {
            assert!(BranchName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "/x", "a b", "a\"b", "a\\b", "é", &"a".repeat(129)] {
            assert!(BranchName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ChannelName::parse("production").is_ok());
        assert!(ChannelName::parse("feature/x").is_err());
        assert!(ChannelName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn percentages_are_bounded() {
        assert!(RolloutPercentage::parse(-1).is_err());
        assert!(RolloutPercentage::parse(101).is_err());
        assert!(RolloutPercentage::parse(0).is_ok());
        assert!(RolloutPercentage::parse_for_publish(0).is_err());
        assert!(RolloutPercentage::parse_for_publish(100).is_ok());
    }

    #[test]
    fn rollouts_only_grow_and_are_about_the_right_size() {
        let ids: Vec<String> = (0..5000).map(|i| format!("device-{i}")).collect();
        let inside = |p: i64| -> Vec<bool> {
            ids.iter()
                .map(|id| in_rollout(Some(id), "update-1", pct(p)))
                .collect()
        };
        let (at20, at50) = (inside(20), inside(50));
        let share = at20.iter().filter(|x| **x).count() as f64 / ids.len() as f64;
        assert!((0.18..0.22).contains(&share), "{share}");
        assert!(at20.iter().zip(&at50).all(|(a, b)| !*a || *b));
        assert!(inside(0).iter().all(|x| !*x));
        assert!(inside(100).iter().all(|x| *x));
        assert!(!in_rollout(None, "update-1", pct(99)));
        assert!(in_rollout(None, "update-1", pct(100)));
    }

    #[test]
    fn a_device_outside_a_rollout_gets_the_previous_update() {
        let candidates = vec![
            RolloutCandidate {
                id: UpdateId::from_trusted("new".into()),
                publish_id: PublishId::from_trusted("p2".into()),
                rollout: pct(0),
            },
            RolloutCandidate {
                id: UpdateId::from_trusted("old".into()),
                publish_id: PublishId::from_trusted("p1".into()),
                rollout: pct(100),
            },
        ];
        let picked = pick_for_device(&candidates, Some("device"));
        assert_eq!(picked.map(|c| c.id.as_str()), Some("old"));
        assert_eq!(pick_for_device(&candidates[..1], Some("device")), None);
    }
}
