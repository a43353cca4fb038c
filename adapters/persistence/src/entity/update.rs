use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "updates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub publish_id: String,
    pub project_id: String,
    pub runtime_version: String,
    /// `ios` or `android`.
    pub platform: String,
    /// `update` or `rollback`.
    pub kind: String,
    pub manifest_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub expo_config: Option<String>,
    pub created_at: DateTimeUtc,
    pub branch: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
    pub rollout_percentage: i32,
    /// `user` or `apiKey`; null for updates from before it was recorded.
    pub published_by_type: Option<String>,
    pub published_by_id: Option<String>,
    pub published_by_name: Option<String>,
    pub republished_from: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
