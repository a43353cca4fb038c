use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "update_assets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub update_id: String,
    /// Order in the manifest; the launch asset is 0.
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub is_launch_asset: bool,
    #[sea_orm(column_type = "Text")]
    pub path: String,
    pub sha256_hex: String,
    pub hash: String,
    pub key: String,
    pub content_type: String,
    pub file_extension: Option<String>,
    pub size: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
