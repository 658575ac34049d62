//! Each test's own database: created fresh, dropped with the test, and
//! the leftovers of finished runs cleaned up.

use super::helpers::{Options, postgres};

/// A test's own database, dropped with it.
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// A new name, `booking_test_<unix seconds>_<unique>`; the replica
    /// creates the database when it first connects.
    pub fn new(unique: &str) -> Self {
        Self { name: format!("booking_test_{}_{unique}", now_secs()) }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", postgres(), self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime: do the async work on a
        // thread (and runtime) of its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&format!("{}/postgres", postgres())).await {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// Test databases are named `booking_test_<unix seconds>_<random>`; those
/// older than an hour belong to finished runs and are dropped, so repeated
/// runs do not fill the disk.
pub async fn drop_stale_databases() {
    let Ok(pool) = sqlx::PgPool::connect(&format!("{}/postgres", postgres())).await else { return };
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'booking_test_%'")
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
    let hour_ago = now_secs() - 3600;
    for name in names {
        let created = name.split('_').nth(2).and_then(|secs| secs.parse::<u64>().ok()).unwrap_or(0);
        if created < hour_ago {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(&pool).await;
        }
    }
    pool.close().await;
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs()
}

/// Runs one SQL query against the test's database and returns the first
/// column of the first row as i64.
pub async fn count(options: &Options, sql: &str) -> i64 {
    let pool = sqlx::PgPool::connect(&options.database_url).await.expect("connect");
    let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&pool).await.expect("query");
    pool.close().await;
    value
}

