//! The booking path's connections: `tokio-postgres`, which pipelines.
//!
//! A booking is a short transaction of two or three statements. On a small
//! machine each round trip to Postgres costs the replica about as much CPU as
//! its SQL costs Postgres: a write to the socket, a wake-up of the Postgres
//! backend, and a wake-up of the replica when the answer comes back. So the
//! booking path counts round trips:
//!
//! - [`Conn::begin`] sends nothing. `BEGIN` goes out in the same write as the
//!   transaction's first statement, and the two answers come back together.
//! - [`Conn::commit_with`] sends the transaction's last statement and
//!   `COMMIT` together.
//! - A connection goes back to the pool without a test query (deadpool's
//!   `Fast` recycling only checks that the socket is still open).
//! - Each connection prepares a statement once and keeps it.
//!
//! A `pessimistic` booking is therefore two round trips: `BEGIN` with
//! `SELECT … FOR UPDATE`, then the write with `COMMIT`. The transaction is
//! the same one it would be with five; only the waiting is shorter.
//!
//! The rest of the service (admin, reads, idempotency keys, migrations) uses
//! sqlx, whose transactions wait for `BEGIN` and whose pool pings every
//! connection it takes back: that costs nothing that matters off the hot path.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// What can go wrong on the booking path's connections. `crate::error`
/// sorts an outage from a bug.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had: Postgres is down, or the pool stayed
    /// exhausted past its wait.
    #[error("no database connection: {0}")]
    Pool(#[from] PoolError),
    /// Postgres answered with an error, or the connection broke.
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A row was not what the query promised.
    #[error("{0}")]
    Data(String),
}

/// tokio-postgres' own message for a server error is just "db error"; the
/// server's message is the useful part.
fn postgres_message(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

impl DbError {
    /// The SQLSTATE Postgres answered with, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Postgres(error) => error.code().map(|code| code.code()),
            _ => None,
        }
    }
}

/// A statement's parameters, in `$1, $2, …` order.
pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The booking path's connection pool: at most [`Pool::size`] connections,
/// a size that changes while the replica runs, as replicas join and leave
/// the cluster that shares the database (see `crate::cluster::pool_share`).
///
/// A new size builds a new pool rather than resizing this one in place:
/// deadpool's `resize` takes back only the permits of connections that are
/// open, so a pool that has not opened all its connections yet (a replica
/// that started alone, with the whole budget, and then saw the others
/// arrive) would keep its old limit until a burst overshot it.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    config: tokio_postgres::Config,
    wait: Duration,
    current: RwLock<deadpool_postgres::Pool>,
}

/// A pool of at most `size` connections to `url`, each with Postgres'
/// `lock_timeout` set to `lock_timeout` and `application_name` set to
/// `application_name` (so `pg_stat_activity` tells the booking path's
/// connections apart). Opens connections as they are needed; waits at most
/// `wait` for one.
pub fn pool(url: &str, application_name: &str, size: usize, lock_timeout: Duration, wait: Duration) -> anyhow::Result<Pool> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|error| anyhow::anyhow!("invalid DATABASE_URL: {error}"))?;
    config
        .options(format!("-c lock_timeout={}", lock_timeout.as_millis()))
        .application_name(application_name)
        .connect_timeout(wait);
    let current = RwLock::new(build(&config, size, wait)?);
    Ok(Pool { inner: Arc::new(PoolInner { config, wait, current }) })
}

fn build(config: &tokio_postgres::Config, size: usize, wait: Duration) -> anyhow::Result<deadpool_postgres::Pool> {
    let manager = Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .runtime(Runtime::Tokio1)
        .build()?)
}

impl Pool {
    fn current(&self) -> deadpool_postgres::Pool {
        self.inner.current.read().expect("the pool lock is never poisoned").clone()
    }

    /// The most connections the pool opens.
    pub fn size(&self) -> usize {
        self.current().status().max_size
    }

    /// Connections open, and of those idle.
    pub fn status(&self) -> deadpool_postgres::Status {
        self.current().status()
    }

    /// Sets the most connections the pool opens (at least one); returns
    /// whether that changed it.
    pub fn resize(&self, size: usize) -> anyhow::Result<bool> {
        let size = size.max(1);
        let mut current = self.inner.current.write().expect("the pool lock is never poisoned");
        if current.status().max_size == size {
            return Ok(false);
        }
        // Not closed: a request waiting for one of its connections keeps it
        // until served. Once nobody holds it, its idle connections close, and
        // those in use close when their transaction ends.
        *current = build(&self.inner.config, size, self.inner.wait)?;
        Ok(true)
    }

    /// Closes every connection; the pool answers no more.
    pub fn close(&self) {
        self.current().close();
    }
}

/// Where a connection is in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transaction {
    /// Autocommit: each statement is its own transaction.
    None,
    /// [`Conn::begin`] was called; `BEGIN` goes out with the next statement.
    Pending,
    /// `BEGIN` was sent.
    Open,
}

/// A pooled connection, in a transaction or not.
///
/// A transaction that is dropped without [`commit`](Self::commit) is rolled
/// back before the connection goes back to the pool, as with sqlx.
pub struct Conn {
    client: Option<Object>,
    transaction: Transaction,
}

impl Conn {
    /// A connection from the pool, in autocommit.
    pub async fn get(pool: &Pool) -> Result<Self, DbError> {
        Ok(Self { client: Some(pool.current().get().await?), transaction: Transaction::None })
    }

    /// A connection from the pool, in a transaction whose `BEGIN` is sent
    /// with its first statement.
    pub async fn begin(pool: &Pool) -> Result<Self, DbError> {
        let mut conn = Self::get(pool).await?;
        conn.transaction = Transaction::Pending;
        Ok(conn)
    }

    fn client(&self) -> &Object {
        self.client.as_ref().expect("a connection until dropped")
    }

    /// Runs one statement and returns its rows; `BEGIN` travels with it if
    /// the transaction has not started yet.
    pub async fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, DbError> {
        let statement = self.client().prepare_cached(sql).await?;
        let client = self.client();
        if self.transaction != Transaction::Pending {
            return Ok(client.query(&statement, params).await?);
        }
        // Both futures send their messages when first polled, in this order,
        // and then wait for their answers: one round trip for the two.
        let (begun, rows) = tokio::join!(client.batch_execute("BEGIN"), client.query(&statement, params));
        begun?;
        self.transaction = Transaction::Open;
        Ok(rows?)
    }

    /// Runs one statement that returns at most one row.
    pub async fn query_opt(&mut self, sql: &str, params: Params<'_>) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs one statement that returns exactly one row.
    pub async fn query_one(&mut self, sql: &str, params: Params<'_>) -> Result<Row, DbError> {
        self.query_opt(sql, params).await?.ok_or_else(|| DbError::Data(format!("no row from: {sql}")))
    }

    /// Commits the transaction; the connection is in autocommit after.
    pub async fn commit(&mut self) -> Result<(), DbError> {
        let open = self.transaction == Transaction::Open;
        self.transaction = Transaction::None;
        if open {
            self.client().batch_execute("COMMIT").await?;
        }
        Ok(())
    }

    /// Runs the transaction's last statement and commits, in one round trip
    /// (three statements in one, `BEGIN` included, if none ran before it).
    /// When the statement fails, the transaction is rolled back whole and its
    /// error returned. The connection is in autocommit after.
    pub async fn commit_with(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, DbError> {
        let statement = self.client().prepare_cached(sql).await?;
        let pending = self.transaction == Transaction::Pending;
        // From here on the transaction ends either way: COMMIT of a
        // transaction that failed is a rollback.
        self.transaction = Transaction::None;
        let client = self.client();
        let begin = async {
            if pending { client.batch_execute("BEGIN").await } else { Ok(()) }
        };
        let (begun, rows, committed) = tokio::join!(begin, client.query(&statement, params), client.batch_execute("COMMIT"));
        begun?;
        let rows = rows?;
        committed?;
        Ok(rows)
    }
}

impl Drop for Conn {
    /// A transaction left open (an error cut it short) is rolled back before
    /// its connection is reused; the rollback needs a round trip, so it runs
    /// in its own task, which then returns the connection to the pool.
    fn drop(&mut self) {
        if self.transaction != Transaction::Open {
            return;
        }
        let Some(client) = self.client.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    // A connection that cannot roll back must not be reused.
                    let _ = Object::take(client);
                }
            });
        } else {
            let _ = Object::take(client);
        }
    }
}
