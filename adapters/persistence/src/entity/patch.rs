use sea_orm::entity::prelude::*;

/// A wanted patch between two launch bundles of a project, and the claim on
/// computing it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "patches")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub base_sha256: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub target_sha256: String,
    /// `pending`, `ready`, `not_worth_it` or `failed`.
    pub state: String,
    /// Of the patch, once computed.
    pub size: Option<i64>,
    pub error: Option<String>,
    pub attempts: i32,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
