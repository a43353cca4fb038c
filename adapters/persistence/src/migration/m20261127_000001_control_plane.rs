//! Users, projects, memberships and API keys, with the keys and constraints
//! that enforce the control plane's rules in the database itself.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(super) enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
    Email,
    EmailKey,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(super) enum Projects {
    Table,
    Id,
    Name,
    Slug,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProjectMembers {
    Table,
    Id,
    ProjectId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    ProjectId,
    CreatedBy,
    Name,
    KeyHash,
    KeyPrefix,
    CreatedAt,
    LastUsedAt,
}

/// Ids are UUID text (36 characters); kept as strings so that ids imported
/// from the old server, which apps have baked into their update URLs, are
/// preserved exactly.
pub(super) fn id_column<T: IntoIden>(name: T) -> ColumnDef {
    string_len(name, 36)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum IndexKind {
    Unique,
    Plain,
}
pub(super) use IndexKind::{Plain, Unique};

pub(super) async fn create_index<T: IntoIden, C: IntoIden>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: impl IntoIterator<Item = C>,
    kind: IndexKind,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column);
    }
    if kind == Unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(id_column(Users::Id).primary_key())
                    .col(string(Users::Username))
                    .col(string(Users::UsernameKey))
                    .col(string(Users::Email))
                    .col(string(Users::EmailKey))
                    .col(string(Users::PasswordHash))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_users_username_key",
            Users::Table,
            [Users::UsernameKey],
            Unique,
        )
        .await?;
        create_index(
            manager,
            "ux_users_email_key",
            Users::Table,
            [Users::EmailKey],
            Unique,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .if_not_exists()
                    .col(id_column(Projects::Id).primary_key())
                    .col(string(Projects::Name))
                    .col(string(Projects::Slug))
                    .col(timestamp_with_time_zone(Projects::CreatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_projects_slug",
            Projects::Table,
            [Projects::Slug],
            Unique,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProjectMembers::Table)
                    .if_not_exists()
                    .col(id_column(ProjectMembers::Id).primary_key())
                    .col(id_column(ProjectMembers::ProjectId))
                    .col(id_column(ProjectMembers::UserId))
                    .col(string_len(ProjectMembers::Role, 16))
                    .col(timestamp_with_time_zone(ProjectMembers::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_project_members_project")
                            .from(ProjectMembers::Table, ProjectMembers::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_project_members_user")
                            .from(ProjectMembers::Table, ProjectMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(Expr::col(ProjectMembers::Role).is_in(["owner", "member"]))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_project_members_membership",
            ProjectMembers::Table,
            [ProjectMembers::ProjectId, ProjectMembers::UserId],
            Unique,
        )
        .await?;
        create_index(
            manager,
            "ix_project_members_user",
            ProjectMembers::Table,
            [ProjectMembers::UserId],
            Plain,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(id_column(ApiKeys::Id).primary_key())
                    .col(id_column(ApiKeys::ProjectId))
                    .col(id_column(ApiKeys::CreatedBy).null())
                    .col(string(ApiKeys::Name))
                    .col(string_len(ApiKeys::KeyHash, 64))
                    .col(string_len(ApiKeys::KeyPrefix, 16))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_project")
                            .from(ApiKeys::Table, ApiKeys::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_creator")
                            .from(ApiKeys::Table, ApiKeys::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_api_keys_key_hash",
            ApiKeys::Table,
            [ApiKeys::KeyHash],
            Unique,
        )
        .await?;
        create_index(
            manager,
            "ix_api_keys_project",
            ApiKeys::Table,
            [ApiKeys::ProjectId],
            Plain,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ApiKeys::Table.into_iden(),
            ProjectMembers::Table.into_iden(),
            Projects::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
