//! Schema migrations, applied in order at start-up.

use sea_orm_migration::prelude::*;

mod m20261127_000001_control_plane;
mod m20261127_000002_updates;
mod m20261127_000003_releases;
mod m20261127_000004_serve_epoch;
mod m20261127_000005_signing_keys;
mod m20261127_000006_update_insights;
mod m20261202_000007_legacy_imports;
mod m20261203_000008_patches;
mod m20261204_000009_embedded_bundles;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_control_plane::Migration),
            Box::new(m20261127_000002_updates::Migration),
            Box::new(m20261127_000003_releases::Migration),
            Box::new(m20261127_000004_serve_epoch::Migration),
            Box::new(m20261127_000005_signing_keys::Migration),
            Box::new(m20261127_000006_update_insights::Migration),
            Box::new(m20261202_000007_legacy_imports::Migration),
            Box::new(m20261203_000008_patches::Migration),
            Box::new(m20261204_000009_embedded_bundles::Migration),
        ]
    }
}
