//! Where an imported row comes from: its ledger source, and the ids
//! derived from it so that a rerun derives the same ones.

use domain::go_server::UpdateDir;
use domain::update::{Platform, UpdateKind};
use sha2::{Digest, Sha256};

/// Both platforms a rollback marker rolls back.
pub(super) const PLATFORMS: [Platform; 2] = [Platform::Ios, Platform::Android];

/// A UUIDv7 for an imported row: its time is the Go update's (so it sorts
/// among the project's updates as the Go server ordered them), its other
/// bits a digest of where it came from (so a rerun derives the same id).
pub(super) fn derived_id(millis: u64, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// `index.<platform>.json`, which the Go server wrote with every publish
/// since 2026-04-15.
pub(super) fn is_index_file(name: &str) -> bool {
    name.starts_with("index.") && name.ends_with(".json") && !name.contains('/')
}

/// The ledger source of a directory's update or rollback for a platform.
pub(super) fn source(kind: UpdateKind, dir: &UpdateDir, platform: Platform) -> String {
    format!("{}:{}#{}", kind.as_str(), dir.path, platform.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_uuid_v7_ordered_by_time_and_stable() {
        let a = derived_id(1_777_646_947_000, "update:p/1.0.0/1777646947#ios");
        let b = derived_id(1_777_646_947_000, "update:p/1.0.0/1777646947#ios");
        let later = derived_id(1_777_646_947_001, "rollback:p/1.0.0/1777646947#ios");
        assert_eq!(a, b);
        assert!(later > a);
        let parsed = uuid::Uuid::parse_str(&a).expect("uuid");
        assert_eq!(parsed.get_version_num(), 7);
        assert!(domain::id::PublishId::parse(&a).is_ok());
    }
}
