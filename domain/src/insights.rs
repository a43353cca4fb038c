//! Update insights: how an update does in the field, per platform and day.
//! Update checks that served it, unique devices (by `EAS-Client-ID`),
//! launch-asset downloads, and failures the devices report.
//!
//! Unique devices are counted in a HyperLogLog sketch: fixed memory (1 KiB)
//! whatever the fleet size, about 3% error, and sketches merge, so counts
//! from several server instances and several days add up correctly.

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::update::Platform;

/// 2^10 registers: 1 KiB per sketch, standard error 1.04/sqrt(1024) ≈ 3.3%.
const PRECISION: u32 = 10;
const REGISTERS: usize = 1 << PRECISION;

/// A HyperLogLog sketch of device ids.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceSketch {
    registers: Vec<u8>,
}

impl std::fmt::Debug for DeviceSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceSketch(~{})", self.estimate())
    }
}

impl Default for DeviceSketch {
    fn default() -> Self {
        Self {
            registers: vec![0; REGISTERS],
        }
    }
}

impl DeviceSketch {
    /// The number of registers a sketch has.
    pub const REGISTERS: usize = REGISTERS;

    /// Adds a device.
    pub fn insert(&mut self, device_id: &str) {
        let (index, rank) = Self::register_of(device_id);
        if let Some(register) = self.registers.get_mut(index)
            && rank > *register
        {
            *register = rank;
        }
    }

    /// The register a device sets and the value it sets it to at least.
    /// The id is hashed with SHA-256, which every instance computes alike,
    /// so their sketches can be merged.
    pub fn register_of(device_id: &str) -> (usize, u8) {
        let digest = Sha256::digest(device_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let hash = u64::from_be_bytes(first);
        let index = (hash >> (64 - PRECISION)) as usize;
        let rest = hash << PRECISION;
        // Leading zeros of the remaining bits, plus one; capped when all zero.
        let rank = (rest.leading_zeros().min(64 - PRECISION) + 1) as u8;
        (index, rank)
    }

    /// Adds every device of `other`.
    pub fn merge(&mut self, other: &DeviceSketch) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.registers.iter().all(|register| *register == 0)
    }

    /// The estimated number of distinct devices.
    pub fn estimate(&self) -> u64 {
        let m = REGISTERS as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|register| 2f64.powi(-i32::from(*register)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            // Small counts: linear counting is exact enough and unbiased.
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// The registers, for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.registers.clone()
    }

    /// A sketch read back from storage; anything malformed is empty.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if bytes.len() == REGISTERS {
            Self {
                registers: bytes.to_vec(),
            }
        } else {
            Self::default()
        }
    }
}

/// What happened to one update on one platform on one day, as counted by
/// one server instance (each instance writes only its own rows, so
/// instances never contend or overwrite each other).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightCounts {
    pub project_id: String,
    /// The publish (`updateId` in the API).
    pub publish_id: String,
    pub platform: Platform,
    pub day: NaiveDate,
    /// Update checks answered with this update, or by a device running it.
    pub checks: u64,
    /// Downloads of the update's launch asset (its JavaScript bundle),
    /// whole or as a patch.
    pub launch_downloads: u64,
    /// Of those, the ones that were bundle patches.
    pub patch_downloads: u64,
    /// The bytes those downloads sent (compressed copies and patches
    /// counted as sent).
    pub bytes_sent: u64,
    /// The bytes patches saved: what the full download would have sent to
    /// the same clients, less what their patches did.
    pub bytes_saved: u64,
    /// Failure reports: `Expo-Recent-Failed-Update-IDs` naming the update,
    /// or `Expo-Fatal-Error` from a device running it.
    pub failure_reports: u64,
    pub devices: DeviceSketch,
    pub failed_devices: DeviceSketch,
}

impl InsightCounts {
    pub fn new(project_id: &str, publish_id: &str, platform: Platform, day: NaiveDate) -> Self {
        Self {
            project_id: project_id.to_owned(),
            publish_id: publish_id.to_owned(),
            platform,
            day,
            checks: 0,
            launch_downloads: 0,
            patch_downloads: 0,
            bytes_sent: 0,
            bytes_saved: 0,
            failure_reports: 0,
            devices: DeviceSketch::default(),
            failed_devices: DeviceSketch::default(),
        }
    }

    /// Adds `other`'s counts (same update, platform and day).
    pub fn absorb(&mut self, other: &InsightCounts) {
        self.checks += other.checks;
        self.launch_downloads += other.launch_downloads;
        self.patch_downloads += other.patch_downloads;
        self.bytes_sent += other.bytes_sent;
        self.bytes_saved += other.bytes_saved;
        self.failure_reports += other.failure_reports;
        self.devices.merge(&other.devices);
        self.failed_devices.merge(&other.failed_devices);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_distinct_devices_within_a_few_percent() {
        let mut sketch = DeviceSketch::default();
        assert_eq!(sketch.estimate(), 0);
        for n in 0..10 {
            sketch.insert(&format!("device-{n}"));
            sketch.insert(&format!("device-{n}"));
        }
        assert_eq!(sketch.estimate(), 10);
        for n in 0..50_000 {
            sketch.insert(&format!("device-{n}"));
        }
        let estimate = sketch.estimate() as f64;
        assert!((estimate - 50_000.0).abs() / 50_000.0 < 0.1, "{estimate}");
    }

    #[test]
    fn merged_sketches_count_the_union() {
        let (mut a, mut b) = (DeviceSketch::default(), DeviceSketch::default());
        for n in 0..1000 {
            a.insert(&format!("d{n}"));
        }
        for n in 500..1500 {
            b.insert(&format!("d{n}"));
        }
        a.merge(&b);
        let estimate = a.estimate() as f64;
        assert!((estimate - 1500.0).abs() / 1500.0 < 0.1, "{estimate}");
        assert_eq!(DeviceSketch::from_bytes(&a.to_bytes()), a);
        assert!(DeviceSketch::from_bytes(b"short").is_empty());
    }
}
