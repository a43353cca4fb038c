//! Update insights: counts per publish, platform and day, one row per
//! server instance (instances never write the same row).

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261127_000001_control_plane::{IndexKind::Plain, Projects, create_index, id_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UpdateInsights {
    Table,
    InstanceId,
    PublishId,
    Platform,
    Day,
    ProjectId,
    Checks,
    LaunchDownloads,
    FailureReports,
    Devices,
    FailedDevices,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UpdateInsights::Table)
                    .if_not_exists()
                    .col(id_column(UpdateInsights::InstanceId))
                    .col(id_column(UpdateInsights::PublishId))
                    .col(string_len(UpdateInsights::Platform, 16))
                    .col(string_len(UpdateInsights::Day, 10))
                    .col(id_column(UpdateInsights::ProjectId))
                    .col(big_integer(UpdateInsights::Checks))
                    .col(big_integer(UpdateInsights::LaunchDownloads))
                    .col(big_integer(UpdateInsights::FailureReports))
                    .col(blob(UpdateInsights::Devices))
                    .col(blob(UpdateInsights::FailedDevices))
                    .primary_key(
                        Index::create()
                            .col(UpdateInsights::InstanceId)
                            .col(UpdateInsights::PublishId)
                            .col(UpdateInsights::Platform)
                            .col(UpdateInsights::Day),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_update_insights_project")
                            .from(UpdateInsights::Table, UpdateInsights::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_update_insights_publish",
            UpdateInsights::Table,
            [UpdateInsights::PublishId],
            Plain,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UpdateInsights::Table).to_owned())
            .await
    }
}
