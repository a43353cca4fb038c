use sea_orm::entity::prelude::*;

/// One instance's counts for one publish, platform and day.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "update_insights")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub instance_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub publish_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub platform: String,
    /// `YYYY-MM-DD`, UTC.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    pub project_id: String,
    pub checks: i64,
    pub launch_downloads: i64,
    /// Of `launch_downloads`, those that were patches.
    pub patch_downloads: i64,
    pub bytes_sent: i64,
    pub bytes_saved: i64,
    pub failure_reports: i64,
    /// HyperLogLog registers.
    pub devices: Vec<u8>,
    pub failed_devices: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
