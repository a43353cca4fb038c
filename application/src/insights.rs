//! Update insights: counted in memory on the serving path (atomic counters
//! held by the cached update, no lock, no I/O), written to the store every
//! few seconds, and read back by day and platform. Optionally halts a rollout whose devices fail
//! too often.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use domain::audit::{Actor, ActorKind};
use domain::id::{ProjectId, PublishId};
use domain::insights::{DeviceSketch, InsightCounts};
use domain::ports::{InsightStore, MemberStore, UpdateStore};
use domain::release::RolloutPercentage;
use domain::update::{Platform, Update};
use domain::user::User;
use serde_json::json;

use crate::access::{Need, authorize};
use crate::audit::AuditLog;
use crate::error::{AppResult, not_found};

/// At most this many counts from failed writes wait for the next one.
const MAX_PENDING: usize = 4096;

/// One update's counters since the last write. Update checks, the hot path,
/// reach them through the cached update (no lookup, no lock): plain atomic
/// additions, and one atomic maximum per device for the sketch.
pub struct UpdateCounters {
    project_id: ProjectId,
    publish_id: PublishId,
    platform: Platform,
    checks: AtomicU64,
    launch_downloads: AtomicU64,
    patch_downloads: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_saved: AtomicU64,
    failure_reports: AtomicU64,
    devices: AtomicSketch,
    failed_devices: AtomicSketch,
}

impl std::fmt::Debug for UpdateCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateCounters")
            .field("publish_id", &self.publish_id)
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

/// A HyperLogLog sketch whose registers are set with atomic maxima.
struct AtomicSketch(Vec<AtomicU8>);

impl AtomicSketch {
    fn new() -> Self {
        Self(
            (0..DeviceSketch::REGISTERS)
                .map(|_| AtomicU8::new(0))
                .collect(),
        )
    }

    fn insert(&self, device_id: &str) {
        let (index, rank) = DeviceSketch::register_of(device_id);
        if let Some(register) = self.0.get(index)
            && register.load(Ordering::Relaxed) < rank
        {
            register.fetch_max(rank, Ordering::Relaxed);
        }
    }

    /// The registers, reset to zero.
    fn take(&self) -> DeviceSketch {
        DeviceSketch::from_bytes(
            &self
                .0
                .iter()
                .map(|register| register.swap(0, Ordering::Relaxed))
                .collect::<Vec<u8>>(),
        )
    }
}

impl UpdateCounters {
    fn new(update: &Update) -> Self {
        Self {
            project_id: update.project_id.clone(),
            publish_id: update.publish_id.clone(),
            platform: update.platform,
            checks: AtomicU64::new(0),
            launch_downloads: AtomicU64::new(0),
            patch_downloads: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_saved: AtomicU64::new(0),
            failure_reports: AtomicU64::new(0),
            devices: AtomicSketch::new(),
            failed_devices: AtomicSketch::new(),
        }
    }

    /// An update check answered with this update, or from a device running it.
    pub fn record_check(&self, client_id: Option<&str>) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        if let Some(device) = client_id {
            self.devices.insert(device);
        }
    }

    /// Everything counted since the last call, as counts of `day`.
    fn take(&self, day: NaiveDate) -> InsightCounts {
        let mut counts = InsightCounts::new(
            self.project_id.as_str(),
            self.publish_id.as_str(),
            self.platform,
            day,
        );
        counts.checks = self.checks.swap(0, Ordering::Relaxed);
        counts.launch_downloads = self.launch_downloads.swap(0, Ordering::Relaxed);
        counts.patch_downloads = self.patch_downloads.swap(0, Ordering::Relaxed);
        counts.bytes_sent = self.bytes_sent.swap(0, Ordering::Relaxed);
        counts.bytes_saved = self.bytes_saved.swap(0, Ordering::Relaxed);
        counts.failure_reports = self.failure_reports.swap(0, Ordering::Relaxed);
        counts.devices = self.devices.take();
        counts.failed_devices = self.failed_devices.take();
        counts
    }
}

fn is_empty(counts: &InsightCounts) -> bool {
    counts.checks == 0
        && counts.launch_downloads == 0
        && counts.bytes_sent == 0
        && counts.failure_reports == 0
        && counts.devices.is_empty()
        && counts.failed_devices.is_empty()
}

/// How a launch asset was delivered, for insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchDelivery {
    /// The bytes of the body sent (or of the copy a redirect sent the
    /// client to).
    pub bytes_sent: u64,
    /// For a patch: the bytes the full download would have sent the same
    /// client.
    pub patch_instead_of: Option<u64>,
}

/// Counts waiting to be written: the live counters of every update devices
/// were recently served, and counts a failed write handed back.
#[derive(Default)]
pub struct InsightRecorder {
    live: Mutex<HashMap<(PublishId, Platform), Arc<UpdateCounters>>>,
    retry: Mutex<Vec<InsightCounts>>,
    dropped: AtomicU64,
}

impl InsightRecorder {
    /// The counters of `update`, shared by everyone who counts for it (the
    /// cached copies of the update hold them).
    pub fn counters(&self, update: &Update) -> Option<Arc<UpdateCounters>> {
        let mut live = self.live.lock().ok()?;
        let counters = live
            .entry((update.publish_id.clone(), update.platform))
            .or_insert_with(|| Arc::new(UpdateCounters::new(update)));
        Some(Arc::clone(counters))
    }

    /// A download of `update`'s launch asset.
    pub fn record_launch_download(&self, update: &Update, delivery: LaunchDelivery) {
        if let Some(counters) = self.counters(update) {
            counters.launch_downloads.fetch_add(1, Ordering::Relaxed);
            counters
                .bytes_sent
                .fetch_add(delivery.bytes_sent, Ordering::Relaxed);
            if let Some(full) = delivery.patch_instead_of {
                counters.patch_downloads.fetch_add(1, Ordering::Relaxed);
                counters
                    .bytes_saved
                    .fetch_add(full.saturating_sub(delivery.bytes_sent), Ordering::Relaxed);
            }
        }
    }

    /// A device reported that `update` failed.
    pub fn record_failure(&self, update: &Update, client_id: Option<&str>) {
        if let Some(counters) = self.counters(update) {
            counters.failure_reports.fetch_add(1, Ordering::Relaxed);
            if let Some(device) = client_id {
                counters.failed_devices.insert(device);
            }
        }
    }

    /// Everything recorded since the last call, counted for today. Counters
    /// nobody else holds any more and that counted nothing are forgotten.
    fn take(&self) -> Vec<InsightCounts> {
        let day = Utc::now().date_naive();
        let mut taken: Vec<InsightCounts> = match self.retry.lock() {
            Ok(mut retry) => std::mem::take(&mut *retry),
            Err(_) => Vec::new(),
        };
        if let Ok(mut live) = self.live.lock() {
            live.retain(|_, counters| {
                let counts = counters.take(day);
                let idle = is_empty(&counts);
                if !idle {
                    taken.push(counts);
                }
                !(idle && Arc::strong_count(counters) == 1)
            });
        }
        taken
    }

    /// Keeps counts after a failed write, for the next one (bounded).
    fn restore(&self, counts: Vec<InsightCounts>) {
        if let Ok(mut retry) = self.retry.lock() {
            for counts in counts {
                if retry.len() >= MAX_PENDING {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    retry.push(counts);
                }
            }
        }
    }

    /// Counts dropped because too many failed writes were waiting.
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
    /// Of the launch-asset downloads, those that were bundle patches.
    pub patch_downloads: u64,
    pub bytes_sent: u64,
    pub bytes_saved: u64,
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
            patch_downloads: counts.patch_downloads,
            bytes_sent: counts.bytes_sent,
            bytes_saved: counts.bytes_saved,
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
            // The ids of updates the serving path loaded from the store.
            let mut failing: Vec<(ProjectId, PublishId)> = counts
                .iter()
                .filter(|counts| counts.failure_reports > 0)
                .map(|counts| {
                    (
                        ProjectId::from_trusted(counts.project_id.clone()),
                        PublishId::from_trusted(counts.publish_id.clone()),
                    )
                })
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
        project_id: &ProjectId,
        publish_id: &PublishId,
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
                %project_id,
                %publish_id,
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
                        "updateId": publish_id.as_str(),
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
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> AppResult<(DeviceSketch, DeviceSketch)> {
        let rows = self
            .store
            .for_publish(project_id.as_str(), publish_id.as_str())
            .await?;
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
        project_id: &ProjectId,
        publish_id: &PublishId,
    ) -> AppResult<UpdateInsights> {
        authorize(self.members.as_ref(), actor, project_id, Need::Read).await?;
        let (project, publish) = (project_id.as_str(), publish_id.as_str());
        if self
            .updates
            .find_publish(project_id, publish_id)
            .await?
            .is_empty()
        {
            return Err(not_found::update(publish_id));
        }
        self.flush_before_reading().await;
        let rows = self.store.for_publish(project, publish).await?;
        Ok(summarize(project, publish, rows))
    }

    /// The insights of several publishes of one project, as a history page
    /// shows them: one authorization and one flush for the page. Ids that
    /// are not publishes of the project get empty insights.
    pub async fn insights_of_page(
        &self,
        actor: &User,
        project_id: &ProjectId,
        publish_ids: &[PublishId],
    ) -> AppResult<Vec<UpdateInsights>> {
        authorize(self.members.as_ref(), actor, project_id, Need::Read).await?;
        self.flush_before_reading().await;
        let mut page = Vec::with_capacity(publish_ids.len());
        for publish_id in publish_ids {
            let (project, publish) = (project_id.as_str(), publish_id.as_str());
            let rows = self.store.for_publish(project, publish).await?;
            page.push(summarize(project, publish, rows));
        }
        Ok(page)
    }

    /// Writes this instance's pending counts, so a reader sees them.
    async fn flush_before_reading(&self) {
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "writing insights failed; reading what is stored");
        }
    }
}

/// Stored rows of one publish, by day and platform and per platform.
fn summarize(project_id: &str, publish_id: &str, rows: Vec<InsightCounts>) -> UpdateInsights {
    let mut by_day: HashMap<(NaiveDate, Platform), InsightCounts> = HashMap::new();
    let mut by_platform: HashMap<Platform, InsightCounts> = HashMap::new();
    for row in rows {
        by_platform
            .entry(row.platform)
            .or_insert_with(|| InsightCounts::new(project_id, publish_id, row.platform, row.day))
            .absorb(&row);
        by_day
            .entry((row.day, row.platform))
            .or_insert_with(|| InsightCounts::new(project_id, publish_id, row.platform, row.day))
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
    UpdateInsights { days, totals }
}
