//! The booking path's connections (`storage::pipelined`): `BEGIN` sent with
//! the first statement and `COMMIT` with the last must still make one
//! transaction, and a transaction cut short must leave nothing behind, not
//! even on the connection it goes back to the pool with.

use std::time::Duration;

use booking_server::storage::pipelined::{self, Conn};

use crate::helpers::spawn_app;

/// A pool of `size` connections. With one, the next `Conn::get` is the
/// connection the test used before.
fn pool_of(database_url: &str, size: usize) -> pipelined::Pool {
    pipelined::pool(database_url, "pipelined test", size, Duration::from_secs(5), Duration::from_secs(5)).expect("a pool")
}

async fn booked_by(conn: &mut Conn, seat: &str) -> Option<String> {
    let row = conn.query_one("SELECT booked_by FROM seats WHERE event_id = 1 AND seat_number = $1", &[&seat]).await.unwrap();
    row.get(0)
}

/// Two statements in one transaction share its id; in autocommit each
/// statement is a transaction of its own.
async fn in_transaction(conn: &mut Conn) -> bool {
    let id = "SELECT txid_current()";
    let first: i64 = conn.query_one(id, &[]).await.unwrap().get(0);
    let second: i64 = conn.query_one(id, &[]).await.unwrap().get(0);
    first == second
}

#[tokio::test]
async fn the_row_lock_taken_with_a_pipelined_begin_holds_until_commit() {
    let app = spawn_app().await;
    let pool = pool_of(&app.options.database_url, 2);
    let lock = "SELECT id FROM seats WHERE event_id = 1 AND seat_number = 'A1' FOR UPDATE NOWAIT";

    let mut holder = Conn::begin(&pool).await.unwrap();
    holder.query(lock, &[]).await.unwrap();
    let mut other = Conn::get(&pool).await.unwrap();
    let refused = other.query(lock, &[]).await.expect_err("the row is locked by the open transaction");
    assert_eq!(refused.code(), Some("55P03"), "{refused}");

    holder.commit().await.unwrap();
    other.query(lock, &[]).await.expect("the commit released the row lock");
}

#[tokio::test]
async fn a_transaction_dropped_before_its_commit_writes_nothing_and_its_connection_comes_back_clean() {
    let app = spawn_app().await;
    let pool = pool_of(&app.options.database_url, 1);

    let mut tx = Conn::begin(&pool).await.unwrap();
    tx.query("UPDATE seats SET booked_by = 'ghost' WHERE event_id = 1 AND seat_number = 'A1'", &[]).await.unwrap();
    assert!(in_transaction(&mut tx).await);
    drop(tx);

    // The pool's one connection, once the rollback has run.
    let mut conn = Conn::get(&pool).await.unwrap();
    assert_eq!(booked_by(&mut conn, "A1").await, None, "the dropped transaction was rolled back");
    assert!(!in_transaction(&mut conn).await, "the connection came back in autocommit");
}

#[tokio::test]
async fn commit_with_commits_the_whole_transaction_or_none_of_it() {
    let app = spawn_app().await;
    let pool = pool_of(&app.options.database_url, 1);
    let book = "UPDATE seats SET booked_by = $2 WHERE event_id = 1 AND seat_number = $1";

    // The last statement fails: the statement before it is rolled back too.
    let mut tx = Conn::begin(&pool).await.unwrap();
    tx.query(book, &[&"A1", &"alice"]).await.unwrap();
    let failed = tx.commit_with("SELECT 1 / 0", &[]).await.expect_err("division by zero");
    assert_eq!(failed.code(), Some("22012"), "{failed}");
    assert_eq!(booked_by(&mut tx, "A1").await, None);
    assert!(!in_transaction(&mut tx).await);
    drop(tx);

    // BEGIN, the statement and COMMIT all in one round trip.
    let mut tx = Conn::begin(&pool).await.unwrap();
    tx.commit_with(book, &[&"A2", &"bob"]).await.unwrap();
    assert!(!in_transaction(&mut tx).await);
    drop(tx);
    let mut conn = Conn::get(&pool).await.unwrap();
    assert_eq!(booked_by(&mut conn, "A2").await.as_deref(), Some("bob"));
}

/// Connections that `pg_stat_activity` shows under `application_name`.
async fn backends(conn: &mut Conn, application_name: &str) -> i64 {
    conn.query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&application_name]).await.unwrap().get(0)
}

/// A pool cut down before it opened all its connections (a replica that
/// started alone with the whole budget, then saw the others arrive) opens
/// no more than its new size, and one grown opens more.
#[tokio::test]
async fn a_resized_pool_opens_no_more_connections_than_its_new_size() {
    let app = spawn_app().await;
    let name = format!("resize test {}", rand::random::<u32>());
    let wait = Duration::from_millis(300);
    let pool = pipelined::pool(&app.options.database_url, &name, 8, Duration::from_secs(5), wait).expect("a pool");
    let first = Conn::get(&pool).await.unwrap();
    drop(first);

    assert!(pool.resize(2).unwrap(), "8 -> 2 is a change");
    assert!(!pool.resize(2).unwrap(), "2 -> 2 is not");
    assert_eq!(pool.size(), 2);
    let held = [Conn::get(&pool).await.unwrap(), Conn::get(&pool).await.unwrap()];
    assert!(Conn::get(&pool).await.is_err(), "a third connection waited {wait:?} and got none");

    let observer = pool_of(&app.options.database_url, 1);
    let mut observer = Conn::get(&observer).await.unwrap();
    // The old pool's idle connection closes as it goes; its backend exits soon after.
    let mut seen = backends(&mut observer, &name).await;
    for _ in 0..40 {
        if seen == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen = backends(&mut observer, &name).await;
    }
    assert_eq!(seen, 2, "Postgres sees the pool's two connections and no more");

    assert!(pool.resize(3).unwrap());
    let third = Conn::get(&pool).await.expect("a third connection once the pool grew");
    drop((held, third));
}
