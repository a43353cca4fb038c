//! Bundle diffing: the patches wanted between launch bundles, each computed
//! once by whichever instance claims it (a claim lapses, so a crash only
//! delays the work); and in update insights, the launch-bundle downloads
//! that were patches, and the bytes sent and saved.

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261127_000001_control_plane::{IndexKind::Plain, Projects, create_index, id_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Patches {
    Table,
    ProjectId,
    BaseSha256,
    TargetSha256,
    State,
    Size,
    Error,
    Attempts,
    ClaimedBy,
    ClaimedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UpdateInsights {
    Table,
    PatchDownloads,
    BytesSent,
    BytesSaved,
}

/// The insight columns this migration adds, in order.
const INSIGHT_COLUMNS: [UpdateInsights; 3] = [
    UpdateInsights::PatchDownloads,
    UpdateInsights::BytesSent,
    UpdateInsights::BytesSaved,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Patches::Table)
                    .if_not_exists()
                    .col(id_column(Patches::ProjectId))
                    .col(string_len(Patches::BaseSha256, 64))
                    .col(string_len(Patches::TargetSha256, 64))
                    .col(string_len(Patches::State, 16))
                    .col(big_integer_null(Patches::Size))
                    .col(text_null(Patches::Error))
                    .col(integer(Patches::Attempts))
                    .col(string_len_null(Patches::ClaimedBy, 64))
                    .col(timestamp_with_time_zone_null(Patches::ClaimedUntil))
                    .col(timestamp_with_time_zone(Patches::CreatedAt))
                    .col(timestamp_with_time_zone(Patches::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Patches::ProjectId)
                            .col(Patches::BaseSha256)
                            .col(Patches::TargetSha256),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_patches_project")
                            .from(Patches::Table, Patches::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // What `claim` scans: pending work, oldest first.
        create_index(
            manager,
            "ix_patches_state_created",
            Patches::Table,
            [Patches::State, Patches::CreatedAt],
            Plain,
        )
        .await?;
        // What serving and the dashboard read: the patches to a bundle.
        create_index(
            manager,
            "ix_patches_target",
            Patches::Table,
            [Patches::ProjectId, Patches::TargetSha256],
            Plain,
        )
        .await?;
        // One column per statement: SQLite alters a table one column at a time.
        for column in INSIGHT_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(UpdateInsights::Table)
                        .add_column(big_integer(column).default(0))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in INSIGHT_COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table(UpdateInsights::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Patches::Table).to_owned())
            .await
    }
}
