//! Release management: branches, rollouts and publishers on updates, the
//! channel → branch mappings, and the audit log.
//!
//! Existing updates land on branch `main`, fully rolled out, so a server
//! upgraded from the previous schema serves exactly what it served before.

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
    Branch,
    Message,
    RolloutPercentage,
    PublishedByType,
    PublishedById,
    PublishedByName,
    RepublishedFrom,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    ProjectId,
    Name,
    Branch,
    RolloutBranch,
    RolloutPercentage,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    ProjectId,
    ActorType,
    ActorId,
    ActorName,
    Action,
    Details,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        let columns = [
            string_len(Updates::Branch, 128).default("main").to_owned(),
            text_null(Updates::Message),
            integer(Updates::RolloutPercentage).default(100).to_owned(),
            string_len_null(Updates::PublishedByType, 16),
            string_len_null(Updates::PublishedById, 36),
            string_len_null(Updates::PublishedByName, 255),
            string_len_null(Updates::RepublishedFrom, 36),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Updates::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        create_index(
            manager,
            "ix_updates_branch_latest",
            Updates::Table,
            [
                Updates::ProjectId,
                Updates::Branch,
                Updates::RuntimeVersion,
                Updates::Platform,
                Updates::Id,
            ],
            Plain,
        )
        .await?;
        create_index(
            manager,
            "ix_updates_history",
            Updates::Table,
            [Updates::ProjectId, Updates::PublishId],
            Plain,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .if_not_exists()
                    .col(id_column(Channels::ProjectId))
                    .col(string_len(Channels::Name, 64))
                    .col(string_len(Channels::Branch, 128))
                    .col(string_len_null(Channels::RolloutBranch, 128))
                    .col(integer_null(Channels::RolloutPercentage))
                    .col(timestamp_with_time_zone(Channels::CreatedAt))
                    .col(timestamp_with_time_zone(Channels::UpdatedAt))
                    .primary_key(Index::create().col(Channels::ProjectId).col(Channels::Name))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_channels_project")
                            .from(Channels::Table, Channels::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .if_not_exists()
                    .col(id_column(AuditEvents::Id).primary_key())
                    .col(id_column(AuditEvents::ProjectId))
                    .col(string_len(AuditEvents::ActorType, 16))
                    .col(id_column(AuditEvents::ActorId))
                    .col(string_len(AuditEvents::ActorName, 255))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(text(AuditEvents::Details))
                    .col(timestamp_with_time_zone(AuditEvents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_audit_events_project")
                            .from(AuditEvents::Table, AuditEvents::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ix_audit_events_project",
            AuditEvents::Table,
            [AuditEvents::ProjectId, AuditEvents::Id],
            Plain,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [AuditEvents::Table.into_iden(), Channels::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        for index in ["ix_updates_history", "ix_updates_branch_latest"] {
            manager
                .drop_index(Index::drop().name(index).table(Updates::Table).to_owned())
                .await?;
        }
        let columns = [
            Updates::RepublishedFrom,
            Updates::PublishedByName,
            Updates::PublishedById,
            Updates::PublishedByType,
            Updates::RolloutPercentage,
            Updates::Message,
            Updates::Branch,
        ];
        for column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Updates::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
