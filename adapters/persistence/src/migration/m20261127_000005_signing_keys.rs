//! Per-project code-signing keys. The private key is stored sealed; a
//! project's key ids are unique; keys go with their project.

use sea_orm_migration::{prelude::*, schema::*};

use super::m20261127_000001_control_plane::{
    IndexKind::Unique, Projects, Users, create_index, id_column,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum SigningKeys {
    Table,
    Id,
    ProjectId,
    KeyId,
    Certificate,
    SealedPrivateKey,
    CreatedAt,
    CreatedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(id_column(SigningKeys::Id).primary_key())
                    .col(id_column(SigningKeys::ProjectId))
                    .col(string_len(SigningKeys::KeyId, 64))
                    .col(text_null(SigningKeys::Certificate))
                    .col(blob(SigningKeys::SealedPrivateKey))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(id_column(SigningKeys::CreatedBy).null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_signing_keys_project")
                            .from(SigningKeys::Table, SigningKeys::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_signing_keys_creator")
                            .from(SigningKeys::Table, SigningKeys::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "ux_signing_keys_project_key_id",
            SigningKeys::Table,
            [SigningKeys::ProjectId, SigningKeys::KeyId],
            Unique,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await
    }
}
