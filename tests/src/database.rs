//! The server's database from outside the server: a throwaway PostgreSQL database per test
//! ([`PgDatabase`], shared with the other test crates), or the SQLite file in `DATA_DIR`.

use sea_orm::{ConnectOptions, ConnectionTrait, Database};

pub use test_support::postgres::{DEFAULT_POSTGRES_URL, PgDatabase};

use crate::TestApp;

impl TestApp {
    /// The database URL the server uses (its SQLite file, or its PostgreSQL database).
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", self.data_dir.path().join("ota.db").display()),
        }
    }

    /// Runs SQL directly against the server's database, as an importer or an operator
    /// would (e.g. to plant rows the old Go server wrote).
    pub async fn execute_sql(&self, statement: &str) {
        let db = Database::connect(ConnectOptions::new(self.database_url()))
            .await
            .expect("connect to the server's database");
        db.execute_unprepared(statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
        db.close().await.expect("close the connection");
    }

    /// The first column of every row a query returns, as text (cast it in the SQL).
    pub async fn query_strings(&self, query: &str) -> Vec<String> {
        let db = Database::connect(ConnectOptions::new(self.database_url()))
            .await
            .expect("connect to the server's database");
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                query.to_owned(),
            ))
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        let values = rows
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect();
        db.close().await.expect("close the connection");
        values
    }
}
