use sea_orm::entity::prelude::*;

/// A launch bundle embedded in a build of a project's app, uploaded as a
/// patch base for devices still running it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "embedded_bundles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    /// The embedded update's id (the build's `app.manifest` `id`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub update_id: String,
    pub runtime_version: String,
    pub platform: String,
    pub sha256_hex: String,
    pub size: i64,
    pub uploaded_at: DateTimeUtc,
    pub uploaded_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
