//! Embedded bundles: the launch bundles built into apps, uploaded so that
//! devices still running them can be patched; and the per-project switch
//! that lets serving use them as patch bases.

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261127_000001_control_plane::{IndexKind::Plain, Projects, create_index, id_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EmbeddedBundles {
    Table,
    ProjectId,
    UpdateId,
    RuntimeVersion,
    Platform,
    Sha256Hex,
    Size,
    UploadedAt,
    UploadedBy,
}

/// The column this migration adds to `projects`.
#[derive(DeriveIden)]
enum ProjectSwitch {
    PatchFromEmbedded,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EmbeddedBundles::Table)
                    .if_not_exists()
                    .col(id_column(EmbeddedBundles::ProjectId))
                    .col(id_column(EmbeddedBundles::UpdateId))
                    .col(string_len(EmbeddedBundles::RuntimeVersion, 255))
                    .col(string_len(EmbeddedBundles::Platform, 16))
                    .col(string_len(EmbeddedBundles::Sha256Hex, 64))
                    .col(big_integer(EmbeddedBundles::Size))
                    .col(timestamp_with_time_zone(EmbeddedBundles::UploadedAt))
                    .col(string_len(EmbeddedBundles::UploadedBy, 255))
                    .primary_key(
                        Index::create()
                            .col(EmbeddedBundles::ProjectId)
                            .col(EmbeddedBundles::UpdateId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_embedded_bundles_project")
                            .from(EmbeddedBundles::Table, EmbeddedBundles::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // What a publish reads: the embedded bundles of its runtime version
        // and platform.
        create_index(
            manager,
            "ix_embedded_bundles_stream",
            EmbeddedBundles::Table,
            [
                EmbeddedBundles::ProjectId,
                EmbeddedBundles::RuntimeVersion,
                EmbeddedBundles::Platform,
            ],
            Plain,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(boolean(ProjectSwitch::PatchFromEmbedded).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .drop_column(ProjectSwitch::PatchFromEmbedded)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(EmbeddedBundles::Table).to_owned())
            .await
    }
}
