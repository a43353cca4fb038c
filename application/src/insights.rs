//! Update insights: counted in memory on the serving path (a lock on one of
//! sixteen shards, no I/O), written to the store every few seconds, and read
//! back by day and platform. Optionally halts a rollout whose devices fail
//! too often.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{NaiveDate, Utc};
use domain::audit::{Actor, ActorKind};
use domain::insights::{DeviceSketch, InsightCounts};
use domain::ports::{InsightStore, MemberStore, UpdateStore};
use domain::release::RolloutPercentage;
use domain::update::{Platform, Update};
use domain::user::User;
use serde_json::json;

use crate::access::{Need, authorize};
use crate::audit::AuditLog;
use crate::error::{AppError, AppResult};

const SHARDS: usize = 16;

/// At most this many (publish, platform, day) entries wait in memory; more
/// are dropped (and counted) until the next write. Each holds two 1 KiB
/// sketches, so this bounds the memory at about 8 MiB.
const MAX_PENDING: usize = 4096;

type Key = (String, Platform, NaiveDate);

/// Counts waiting to be written.
pub struct InsightRecorder {
    shards: Vec<Mutex<HashMap<Key, InsightCounts>>>,
    pending: AtomicU64,
    dropped: AtomicU64,
}

impl Default for InsightRecorder {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            pending: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl InsightRecorder {
    /// An update check answered with `update`, or from a device running it.
    pub fn record_check(&self, update: &Update, client_id: Option<&str>) {
        self.record(update, |counts| {
            counts.checks += 1;
            if let Some(device) = client_id {
                counts.devices.insert(device);
            }
        });
    }

    /// A download of `update`'s launch asset.
    pub fn record_launch_download(&self, update: &Update) {
        self.record(update, |counts| counts.launch_downloads += 1);
    }

    /// A device reported that `update` failed.
    pub fn record_failure(&self, update: &Update, client_id: Option<&str>) {
        self.record(update, |counts| {
            counts.failure_reports += 1;
            if let Some(device) = client_id {
                counts.failed_devices.insert(device);
            }
        });
    }

    fn record(&self, update: &Update, change: impl FnOnce(&mut InsightCounts)) {
        let day = Utc::now().date_naive();
        let key = (update.publish_id.clone(), update.platform, day);
        let Ok(mut shard) = self.shard(&key).lock() else {
            return;
        };
        if let Some(counts) = shard.get_mut(&key) {
            change(counts);
            return;
        }
        if self.pending.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING as u64 {
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut counts =
            InsightCounts::new(&update.project_id, &update.publish_id, update.platform, day);
        change(&mut counts);
        shard.insert(key, counts);
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, InsightCounts>> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        &self.shards[(hasher.finish() as usize) % SHARDS]
    }

    /// Everything recorded since the last call.
    fn take(&self) -> Vec<InsightCounts> {
        let mut taken = Vec::new();
        for shard in &self.shards {
            if let Ok(mut shard) = shard.lock() {
                taken.extend(shard.drain().map(|(_, counts)| counts));
            }
        }
        self.pending
            .fetch_sub(taken.len() as u64, Ordering::Relaxed);
        taken
    }

    /// Puts counts back after a failed write, so they are not lost.
    fn restore(&self, counts: Vec<InsightCounts>) {
        for counts in counts {
            let key = (counts.publish_id.clone(), counts.platform, counts.day);
            if let Ok(mut shard) = self.shard(&key).lock() {
                match shard.get_mut(&key) {
                    Some(existing) => existing.absorb(&counts),
                    None => {
                        self.pending.fetch_add(1, Ordering::Relaxed);
                        shard.insert(key, counts);
                    }
                }
            }
        }
    }

    /// Entries dropped because too many were waiting.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Halts a partial rollout when at least `min_devices` devices have run it
/// and at least `failure_rate` of them reported it failing.
#[derive(Debug, Clone, Copy)]
pub struct AutoHalt {
    pub failure_rate: f64,
    pub min_devices: u64,
}

/// One day of one platform, or a platform's total.
#[derive(Debug, Clone, PartialEq)]
pub struct InsightSummary {
    /// `None` for a total over every day.
    pub day: Option<NaiveDate>,
    pub platform: Platform,
    pub checks: u64,
    pub unique_devices: u64,
    pub launch_asset_downloads: u64,
    pub failure_reports: u64,
    pub failed_devices: u64,
}

impl InsightSummary {
    fn of(day: Option<NaiveDate>, counts: &InsightCounts) -> Self {
        Self {
            day,
            platform: counts.platform,
            checks: counts.checks,
            unique_devices: counts.devices.estimate(),
            launch_asset_downloads: counts.launch_downloads,
            failure_reports: counts.failure_reports,
            failed_devices: counts.failed_devices.estimate(),
        }
    }
}

/// A publish's insights: by day and platform, and per platform in total.
#[derive(Debug, Clone)]
pub struct UpdateInsights {
    pub days: Vec<InsightSummary>,
    pub totals: Vec<InsightSummary>,
}

pub struct InsightService {
    recorder: Arc<InsightRecorder>,
    store: Arc<dyn InsightStore>,
    updates: Arc<dyn UpdateStore>,
    members: Arc<dyn MemberStore>,
    audit: AuditLog,
    /// Names this instance's rows.
    instance_id: String,
    auto_halt: Option<AutoHalt>,
    /// One write at a time, so an instance's rows are never raced.
    writing: futures_util::lock::Mutex<()>,
}

impl InsightService {
    pub fn new(
        recorder: Arc<InsightRecorder>,
        store: Arc<dyn InsightStore>,
        updates: Arc<dyn UpdateStore>,
        members: Arc<dyn MemberStore>,
        audit: AuditLog,
        auto_halt: Option<AutoHalt>,
    ) -> Self {
        Self {
            recorder,
            store,
            updates,
            members,
            audit,
            instance_id: uuid::Uuid::now_v7().to_string(),
            auto_halt,
            writing: futures_util::lock::Mutex::new(()),
        }
    }

    /// Writes what was recorded since the last write, then applies the
    /// auto-halt rule to the publishes that got failure reports.
    pub async fn flush(&self) -> AppResult<()> {
        let _writing = self.writing.lock().await;
        let counts = self.recorder.take();
        if counts.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.store.add(&self.instance_id, &counts).await {
            self.recorder.restore(counts);
            return Err(error.into());
        }
        if let Some(rule) = self.auto_halt {
            let mut failing: Vec<(String, String)> = counts
                .iter()
                .filter(|counts| counts.failure_reports > 0)
                .map(|counts| (counts.project_id.clone(), counts.publish_id.clone()))
                .collect();
            failing.sort();
            failing.dedup();
            for (project_id, publish_id) in failing {
                if let Err(error) = self.halt_if_failing(rule, &project_id, &publish_id).await {
                    tracing::warn!(%project_id, %publish_id, %error, "auto-halt check failed");
                }
            }
        }
        Ok(())
    }

    async fn halt_if_failing(
        &self,
        rule: AutoHalt,
        project_id: &str,
        publish_id: &str,
    ) -> AppResult<()> {
        let (devices, failed) = self.device_totals(project_id, publish_id).await?;
        let devices_estimate = devices.estimate();
        let failed_estimate = failed.estimate().min(devices_estimate);
        if devices_estimate < rule.min_devices || devices_estimate == 0 {
            return Ok(());
        }
        let rate = failed_estimate as f64 / devices_estimate as f64;
        if rate < rule.failure_rate {
            return Ok(());
        }
        let publish = self.updates.find_publish(project_id, publish_id).await?;
        let Some(first) = publish.first() else {
            return Ok(());
        };
        let from = first.rollout.value();
        // Only partial rollouts are halted: a complete one is the branch's
        // baseline, and halting it would leave nothing to fall back on.
        if from == 0 || from >= 100 {
            return Ok(());
        }
        let halted = RolloutPercentage::parse(0)?;
        if self
            .updates
            .set_rollout(project_id, publish_id, halted)
            .await?
        {
            tracing::warn!(
                project_id,
                publish_id,
                rate,
                devices = devices_estimate,
                "rollout halted: failure rate over the threshold"
            );
            let system = Actor {
                kind: ActorKind::System,
                id: "auto-halt".to_owned(),
                name: "auto-halt".to_owned(),
            };
            self.audit
                .record(
                    &system,
                    project_id,
                    "update.autoHalt",
                    json!({
                        "updateId": publish_id,
                        "from": from,
                        "to": 0,
                        "devices": devices_estimate,
                        "failedDevices": failed_estimate,
                        "threshold": rule.failure_rate,
                    }),
                )
                .await;
        }
        Ok(())
    }

    async fn device_totals(
        &self,
        project_id: &str,
        publish_id: &str,
    ) -> AppResult<(DeviceSketch, DeviceSketch)> {
        let rows = self.store.for_publish(project_id, publish_id).await?;
        let mut devices = DeviceSketch::default();
        let mut failed = DeviceSketch::default();
        for row in &rows {
            devices.merge(&row.devices);
            failed.merge(&row.failed_devices);
        }
        Ok((devices, failed))
    }

    /// A publish's insights (members), including what this instance has
    /// not written yet.
    pub async fn insights(
        &self,
        actor: &User,
        project_id: &str,
        publish_id: &str,
    ) -> AppResult<UpdateInsights> {
        authorize(self.members.as_ref(), &actor.id, project_id, Need::Read).await?;
        let not_found = || AppError::NotFound(format!("Update {publish_id} not found."));
        if !domain::id::is_valid_id(publish_id) {
            return Err(not_found());
        }
        if self
            .updates
            .find_publish(project_id, publish_id)
            .await?
            .is_empty()
        {
            return Err(not_found());
        }
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "writing insights failed; reading what is stored");
        }
        let rows = self.store.for_publish(project_id, publish_id).await?;
        let mut by_day: HashMap<(NaiveDate, Platform), InsightCounts> = HashMap::new();
        let mut by_platform: HashMap<Platform, InsightCounts> = HashMap::new();
        for row in rows {
            by_platform
                .entry(row.platform)
                .or_insert_with(|| {
                    InsightCounts::new(project_id, publish_id, row.platform, row.day)
                })
                .absorb(&row);
            by_day
                .entry((row.day, row.platform))
                .or_insert_with(|| {
                    InsightCounts::new(project_id, publish_id, row.platform, row.day)
                })
                .absorb(&row);
        }
        let mut days: Vec<InsightSummary> = by_day
            .into_iter()
            .map(|((day, _), counts)| InsightSummary::of(Some(day), &counts))
            .collect();
        days.sort_by(|a, b| (a.day, a.platform.as_str()).cmp(&(b.day, b.platform.as_str())));
        let mut totals: Vec<InsightSummary> = by_platform
            .values()
            .map(|counts| InsightSummary::of(None, counts))
            .collect();
        totals.sort_by_key(|summary| summary.platform.as_str());
        Ok(UpdateInsights { days, totals })
    }
}
