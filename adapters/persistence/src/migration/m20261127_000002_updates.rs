//! Updates and their files. "Latest for (project, runtime version,
//! platform)" is one index range scan on `ix_updates_latest`.

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261127_000001_control_plane::{Plain, Projects, create_index, id_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Updates {
    Table,
    Id,
    PublishId,
    ProjectId,
    RuntimeVersion,
    Platform,
    Kind,
    ManifestId,
    ExpoConfig,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UpdateAssets {
    Table,
    UpdateId,
    Position,
    IsLaunchAsset,
    Path,
    Sha256Hex,
    Hash,
    Key,
    ContentType,
    FileExtension,
    Size,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Updates::Table)
                    .if_not_exists()
                    .col(id_column(Updates::Id).primary_key())
                    .col(id_column(Updates::PublishId))
                    .col(id_column(Updates::ProjectId))
                    .col(string_len(Updates::RuntimeVersion, 255))
                    .col(string_len(Updates::Platform, 16))
                    .col(string_len(Updates::Kind, 16))
                    .col(id_column(Updates::ManifestId))
                    .col(text_null(Updates::ExpoConfig))
                    .col(timestamp_with_time_zone(Updates::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_updates_project")
                            .from(Updates::Table, Updates::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Expr::col(Updates::Platform).is_in(["ios", "android"]))
                    .check(Expr::col(Updates::Kind).is_in(["update", "rollback"]))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_updates_latest",
            Updates::Table,
            [
                Updates::ProjectId,
                Updates::RuntimeVersion,
                Updates::Platform,
                Updates::Id,
            ],
            Plain,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(UpdateAssets::Table)
                    .if_not_exists()
                    .col(id_column(UpdateAssets::UpdateId))
                    .col(integer(UpdateAssets::Position))
                    .col(boolean(UpdateAssets::IsLaunchAsset))
                    .col(text(UpdateAssets::Path))
                    .col(string_len(UpdateAssets::Sha256Hex, 64))
                    .col(string_len(UpdateAssets::Hash, 43))
                    .col(string_len(UpdateAssets::Key, 32))
                    .col(string(UpdateAssets::ContentType))
                    .col(string_null(UpdateAssets::FileExtension))
                    .col(big_integer(UpdateAssets::Size))
                    .primary_key(
                        Index::create()
                            .col(UpdateAssets::UpdateId)
                            .col(UpdateAssets::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_update_assets_update")
                            .from(UpdateAssets::Table, UpdateAssets::UpdateId)
                            .to(Updates::Table, Updates::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [UpdateAssets::Table.into_iden(), Updates::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
