//! A one-row counter that every change to what devices are served bumps, in
//! the same transaction as the change. Instances sharing the database poll
//! it to know when their in-memory manifest caches are stale.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub enum ServeEpoch {
    Table,
    Id,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServeEpoch::Table)
                    .if_not_exists()
                    .col(integer(ServeEpoch::Id).primary_key())
                    .col(big_integer(ServeEpoch::Value).default(0))
                    .to_owned(),
            )
            .await?;
        let mut row = Query::insert();
        row.into_table(ServeEpoch::Table)
            .columns([ServeEpoch::Id, ServeEpoch::Value])
            .values([1.into(), 0i64.into()])
            .map_err(|error| DbErr::Migration(error.to_string()))?;
        manager.exec_stmt(row).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServeEpoch::Table).to_owned())
            .await
    }
}
