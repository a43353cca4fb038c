//! The import ledger: which rows and directories of the Go server were
//! imported, and what each became, so that an import run again (the final
//! sync before the switch) adds only what is new and never duplicates. And
//! indexes on the exact username and email, which a login looks up too (an
//! imported account whose name another has in another case is found by its
//! exact spelling).

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261127_000001_control_plane::{IndexKind::Plain, Users, create_index, id_column};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LegacyImports {
    Table,
    Source,
    TargetId,
    ImportedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // No foreign key: an imported row deleted here later keeps its entry,
        // so importing again does not bring it back.
        manager
            .create_table(
                Table::create()
                    .table(LegacyImports::Table)
                    .if_not_exists()
                    .col(text(LegacyImports::Source).primary_key())
                    .col(id_column(LegacyImports::TargetId))
                    .col(timestamp_with_time_zone(LegacyImports::ImportedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_users_username",
            Users::Table,
            [Users::Username],
            Plain,
        )
        .await?;
        create_index(
            manager,
            "ix_users_email",
            Users::Table,
            [Users::Email],
            Plain,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["ix_users_username", "ix_users_email"] {
            manager
                .drop_index(Index::drop().name(index).table(Users::Table).to_owned())
                .await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(LegacyImports::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
