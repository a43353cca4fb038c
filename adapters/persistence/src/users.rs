//! The user store.

use async_trait::async_trait;
use domain::ports::{StoreResult, UserStore};
use domain::user::User;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend,
    DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
};

use crate::SqlStore;
use crate::entity::user;
use crate::errors::store_error;

use domain::user::login_key as fold_case;

/// Names the PostgreSQL advisory lock that serialises first registrations.
const FIRST_USER_LOCK_ID: i64 = 0x0065_7573_5f75_7372;

fn user_row(new_user: &User) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(new_user.id.to_string()),
        username: Set(new_user.username.clone()),
        username_key: Set(fold_case(&new_user.username)),
        email: Set(new_user.email.clone()),
        email_key: Set(fold_case(&new_user.email)),
        password_hash: Set(new_user.password_hash.clone()),
        created_at: Set(new_user.created_at),
    }
}

/// Takes a lock that every first-registration transaction must hold: an
/// advisory lock on PostgreSQL; on SQLite the database write lock, which a
/// write statement takes even when it matches no row.
async fn lock_user_table(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    let statement = match txn.get_database_backend() {
        DatabaseBackend::Postgres => format!("SELECT pg_advisory_xact_lock({FIRST_USER_LOCK_ID})"),
        _ => "UPDATE users SET id = id WHERE 1 = 0".to_owned(),
    };
    txn.execute_unprepared(&statement).await.map(|_| ())
}

impl From<user::Model> for User {
    fn from(row: user::Model) -> Self {
        User {
            id: domain::id::UserId::from_trusted(row.id),
            username: row.username,
            email: row.email,
            password_hash: row.password_hash,
            created_at: row.created_at,
        }
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert(&self, new_user: &User) -> StoreResult<()> {
        user::Entity::insert(user_row(new_user))
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn insert_first(&self, new_user: &User) -> StoreResult<bool> {
        let txn = self.db.begin().await.map_err(store_error)?;
        lock_user_table(&txn).await.map_err(store_error)?;
        if user::Entity::find()
            .count(&txn)
            .await
            .map_err(store_error)?
            > 0
        {
            return Ok(false);
        }
        user::Entity::insert(user_row(new_user))
            .exec_without_returning(&txn)
            .await
            .map_err(store_error)?;
        txn.commit().await.map_err(store_error)?;
        Ok(true)
    }

    async fn find_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let row = user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await
            .map_err(store_error)?;
        Ok(row.map(User::from))
    }

    async fn find_by_login(&self, login: &str) -> StoreResult<Vec<User>> {
        // New usernames cannot contain '@', but imported ones may: when a
        // login matches one user's email and another's username, the email
        // comes first, so nobody can squat someone else's address as a
        // username. Exact spellings reach imported accounts whose name
        // another account has in another case (see `LoginLookup`).
        let key = fold_case(login);
        let rows = user::Entity::find()
            .filter(
                Condition::any()
                    .add(user::Column::EmailKey.eq(key.clone()))
                    .add(user::Column::UsernameKey.eq(key.clone()))
                    .add(user::Column::Email.eq(login))
                    .add(user::Column::Username.eq(login)),
            )
            .all(&self.db)
            .await
            .map_err(store_error)?;
        let rank = |row: &user::Model| {
            if row.email == login {
                0
            } else if row.email_key == key {
                1
            } else if row.username == login {
                2
            } else {
                3
            }
        };
        let mut rows = rows;
        rows.sort_by_key(|row| (rank(row), row.created_at, row.id.clone()));
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn count(&self) -> StoreResult<u64> {
        user::Entity::find()
            .count(&self.db)
            .await
            .map_err(store_error)
    }
}
