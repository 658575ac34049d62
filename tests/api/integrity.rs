//! A booking is written whole: a replica's connection that dies, or a
//! Postgres that stops, between the seat update and the booking row leaves
//! both or neither. And the audit finds every kind of inconsistency planted
//! on purpose.

use std::time::{Duration, Instant};

use booking_lab::audit::{self, HistoryEntry, Kind};
use reqwest::StatusCode;

use crate::helpers::{Options, PostgresServer, TestApp, count, spawn_app_with};

/// Makes the insert of a `slow-…` customer's booking row sleep for 30 s: the
/// seat has been updated in the booking's transaction, the row is not written
/// yet. Test-only, in the test's own database.
async fn pause_between_the_writes(pool: &sqlx::PgPool) {
    sqlx::raw_sql(
        "CREATE FUNCTION pause_booking_row() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
         CREATE TRIGGER pause_booking_row BEFORE INSERT ON bookings FOR EACH ROW
         WHEN (NEW.customer_id LIKE 'slow-%' AND NEW.status <> 'failed') EXECUTE FUNCTION pause_booking_row();",
    )
    .execute(pool)
    .await
    .expect("install the pause");
}

/// Waits until a booking's transaction sleeps inside the trigger; its pid.
async fn paused_writer(pool: &sqlx::PgPool) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'",
        )
        .fetch_optional(pool)
        .await
        .expect("pg_stat_activity");
        if let Some(pid) = pid {
            return pid;
        }
        assert!(Instant::now() < deadline, "no booking reached the pause between its writes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Neither the seat nor a booking row of `customer`, and nothing for the audit.
async fn assert_neither_written(app: &TestApp, seat: &str, customer: &str) {
    let booked = count(&app.options, &format!("SELECT count(*) FROM seats WHERE event_id = 1 AND seat_number = '{seat}' AND is_booked")).await;
    let rows = count(&app.options, &format!("SELECT count(*) FROM bookings WHERE customer_id = '{customer}' AND status <> 'failed'")).await;
    assert_eq!((booked, rows), (0, 0), "{customer}: the seat update and the booking row commit together or not at all");
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    assert!(audit::check(&pool, Some(1)).await.unwrap().is_empty(), "the audit finds nothing");
    pool.close().await;
}

#[tokio::test]
async fn a_connection_that_dies_between_the_seat_and_the_booking_row_leaves_neither() {
    for (strategy, seat) in [("none", "B1"), ("optimistic", "B2"), ("fenced", "B3"), ("pessimistic", "B4")] {
        let app = spawn_app_with(Options { strategy, hold_ms: 0, ..Options::default() }).await;
        let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
        pause_between_the_writes(&pool).await;
        let customer = format!("slow-{strategy}");

        let booking = app.book(seat, &customer);
        let kill = async {
            let pid = paused_writer(&pool).await;
            // As if the replica's process died mid-transaction.
            sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&pool).await.unwrap();
        };
        let ((status, body), ()) = tokio::join!(booking, kill);

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{strategy}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with("database is unavailable"), "{strategy}: {body}");
        assert_neither_written(&app, seat, &customer).await;
        pool.close().await;
    }
}

#[tokio::test]
async fn postgres_stopped_between_the_seat_and_the_booking_row_leaves_neither() {
    let postgres = PostgresServer::start();
    let app = spawn_app_with(Options { database_url: postgres.url("booking"), strategy: "none", hold_ms: 0, ..Options::default() }).await;
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    pause_between_the_writes(&pool).await;

    let booking = app.book("C1", "slow-writer");
    let crash = async {
        paused_writer(&pool).await;
        pool.close().await;
        postgres.stop();
    };
    let ((status, body), ()) = tokio::join!(booking, crash);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");

    postgres.restart();
    assert_neither_written(&app, "C1", "slow-writer").await;
}

async fn plant(pool: &sqlx::PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.expect("plant");
}

fn holder(seat: &str, customer: &str, strategy: &str) -> String {
    format!(
        "INSERT INTO bookings (event_id, seat_id, customer_id, status, locking_strategy, instance_id)
         SELECT 1, id, '{customer}', 'confirmed', '{strategy}', 'planted' FROM seats WHERE event_id = 1 AND seat_number = '{seat}';"
    )
}

#[tokio::test]
async fn the_audit_reports_every_kind_of_inconsistency_planted_with_sql() {
    let app = spawn_app_with(Options::default()).await;
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();
    let bin = env!("CARGO_BIN_EXE_booking-service");
    let audit_exit = |args: &[&str]| {
        let mut command = std::process::Command::new(bin);
        command.args(["audit", "--database-url", &app.options.database_url]).args(args);
        command.output().expect("run audit")
    };

    // A clean database: nothing to report, exit 0.
    let (status, _) = app.book("A1", "alice").await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit::check(&pool, None).await.unwrap().is_empty());
    assert!(audit_exit(&[]).status.success());

    // A double booking under `none` is the lesson: reported, expected, exit 0.
    plant(&pool, &format!("UPDATE seats SET is_booked = TRUE, booked_by = 'n2' WHERE seat_number = 'D1'; {} {}", holder("D1", "n1", "none"), holder("D1", "n2", "none"))).await;
    let findings = audit::check(&pool, None).await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].kind == Kind::MultipleHolders && findings[0].expected, "{findings:?}");
    let output = audit_exit(&[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));

    // Each broken invariant, planted on its own seat.
    plant(&pool, &format!("UPDATE seats SET is_booked = TRUE, booked_by = 'p2' WHERE seat_number = 'E1'; {} {}", holder("E1", "p1", "pessimistic"), holder("E1", "p2", "pessimistic"))).await;
    plant(&pool, "UPDATE seats SET is_booked = TRUE, booked_by = 'ghost' WHERE seat_number = 'E2';").await;
    plant(&pool, &holder("E3", "on-a-free-seat", "fenced")).await;
    plant(&pool, &format!("UPDATE seats SET is_booked = TRUE, booked_by = 'someone-else' WHERE seat_number = 'E4'; {}", holder("E4", "holder", "optimistic"))).await;

    let findings = audit::check(&pool, None).await.unwrap();
    let broken: Vec<(Kind, &str)> = findings.iter().filter(|f| !f.expected).map(|f| (f.kind, f.seat_number.as_str())).collect();
    assert_eq!(
        broken,
        [(Kind::MultipleHolders, "E1"), (Kind::BookedWithoutHolder, "E2"), (Kind::HolderOnFreeSeat, "E3"), (Kind::BookedByMismatch, "E4")],
        "{findings:#?}"
    );
    let output = audit_exit(&[]);
    assert_eq!(output.status.code(), Some(1), "a broken invariant fails the audit");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("BROKEN") && printed.contains("E2") && printed.contains("4 broken invariant(s)"), "{printed}");

    // With a client history: an acknowledgement the database lost, and one
    // seat acknowledged to two customers under a safe strategy.
    let told = |seat: &str, customer: &str, strategy: &str| HistoryEntry {
        event_id: 1,
        seat_number: seat.into(),
        customer_id: customer.into(),
        status: 200,
        outcome: Some("confirmed".into()),
        strategy: Some(strategy.into()),
    };
    let history = [told("A1", "alice", "pessimistic"), told("F1", "lost", "pessimistic"), told("A1", "mallory", "pessimistic")];
    let findings = audit::check_history(&pool, &history).await.unwrap();
    let kinds: Vec<(Kind, &str)> = findings.iter().map(|f| (f.kind, f.seat_number.as_str())).collect();
    assert!(kinds.contains(&(Kind::LostAcknowledgement, "F1")), "{findings:#?}");
    assert!(kinds.contains(&(Kind::SeatAcknowledgedTwice, "A1")), "{findings:#?}");

    let file = std::env::temp_dir().join(format!("history-{}.jsonl", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, history.iter().map(|entry| serde_json::to_string(entry).unwrap() + "\n").collect::<String>()).unwrap();
    let output = audit_exit(&["--event", "1", "--history", file.to_str().unwrap()]);
    std::fs::remove_file(&file).ok();
    assert!(String::from_utf8_lossy(&output.stdout).contains("LostAcknowledgement"), "{}", String::from_utf8_lossy(&output.stdout));
    pool.close().await;
}

/// A hold planted with SQL, on `seat`, lived from `from` to `to` seconds
/// from now (negative: in the past), with `status` and, if confirmed, ended
/// `ended` seconds from now.
fn planted_hold(seat: &str, customer: &str, strategy: &str, status: &str, from: i32, to: i32, ended: Option<i32>) -> String {
    let ended = ended.map_or("NULL".to_owned(), |at| format!("now() + interval '{at} seconds'"));
    format!(
        "INSERT INTO holds (event_id, seat_id, customer_id, status, created_at, expires_at, ended_at, locking_strategy, instance_id)
         SELECT 1, id, '{customer}', '{status}', now() + interval '{from} seconds', now() + interval '{to} seconds', {ended}, '{strategy}', 'planted'
         FROM seats WHERE event_id = 1 AND seat_number = '{seat}';"
    )
}

#[tokio::test]
async fn the_audit_reports_every_broken_hold_invariant_planted_with_sql() {
    let app = spawn_app_with(Options::default()).await;
    let pool = sqlx::PgPool::connect(&app.options.database_url).await.unwrap();

    // Holds that follow each other, a confirmed one included: nothing to report.
    plant(&pool, &planted_hold("G1", "first", "pessimistic", "expired", -60, -30, Some(-29))).await;
    plant(&pool, &planted_hold("G1", "second", "pessimistic", "released", -20, 40, Some(-10))).await;
    plant(&pool, &planted_hold("G1", "third", "pessimistic", "confirmed", -5, 55, Some(-4))).await;
    plant(&pool, &format!("UPDATE seats SET is_booked = TRUE, booked_by = 'third' WHERE seat_number = 'G1'; {}", holder("G1", "third", "pessimistic"))).await;
    assert!(audit::check(&pool, Some(1)).await.unwrap().is_empty(), "{:#?}", audit::check(&pool, Some(1)).await);

    // Two live holds on one seat under `none`: the lesson, expected.
    plant(&pool, &planted_hold("H1", "n1", "none", "held", -2, 60, None)).await;
    plant(&pool, &planted_hold("H1", "n2", "none", "held", -1, 60, None)).await;
    let findings = audit::check(&pool, Some(1)).await.unwrap();
    assert!(findings.len() == 1 && findings[0].kind == Kind::OverlappingHolds && findings[0].expected, "{findings:#?}");

    // Each broken hold invariant, on its own seat.
    plant(&pool, &planted_hold("H2", "p1", "pessimistic", "held", -2, 60, None)).await;
    plant(&pool, &planted_hold("H2", "p2", "etcd", "held", -1, 60, None)).await;
    plant(&pool, &planted_hold("H3", "late", "optimistic", "confirmed", -10, -5, Some(-3))).await;
    plant(&pool, &planted_hold("H4", "c1", "fenced", "confirmed", -30, -20, Some(-25))).await;
    plant(&pool, &planted_hold("H4", "c2", "fenced", "confirmed", -10, 50, Some(-9))).await;
    let findings = audit::check(&pool, Some(1)).await.unwrap();
    let broken: Vec<(Kind, &str)> = findings.iter().filter(|f| !f.expected).map(|f| (f.kind, f.seat_number.as_str())).collect();
    assert_eq!(
        broken,
        [(Kind::OverlappingHolds, "H2"), (Kind::ConfirmedAfterExpiry, "H3"), (Kind::SeatConfirmedTwice, "H4")],
        "{findings:#?}"
    );
    let late = findings.iter().find(|f| f.kind == Kind::ConfirmedAfterExpiry).unwrap();
    assert!(late.detail.contains("late's hold was confirmed 2000 ms after it expired"), "{late:?}");
    pool.close().await;
}
