//! What happened: double bookings and counts of attempts by outcome.

use sqlx::PgPool;

use crate::domain::BookingStatus;

/// A seat that more than one booking holds.
#[derive(Debug, sqlx::FromRow)]
pub struct DoubleBooking {
    pub event_id: i64,
    pub seat_number: String,
    pub booking_count: i64,
    pub customers: Vec<String>,
}

#[tracing::instrument(name = "db.double_bookings", skip_all)]
pub async fn double_bookings(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Vec<DoubleBooking>> {
    sqlx::query_as(
        "SELECT s.event_id, s.seat_number, count(*) AS booking_count,
                array_agg(b.customer_id ORDER BY b.id) AS customers
         FROM bookings b JOIN seats s ON s.id = b.seat_id
         WHERE b.status IN ('confirmed', 'double_booked') AND ($1::BIGINT IS NULL OR s.event_id = $1)
         GROUP BY s.event_id, s.seat_number
         HAVING count(*) > 1
         ORDER BY s.event_id, s.seat_number",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
}

/// Counts of booking attempts by outcome.
#[derive(Debug, Default)]
pub struct Totals {
    pub confirmed: i64,
    pub failed: i64,
    pub double_booked: i64,
    pub total: i64,
    /// Failed attempts by reason (`seat_taken`, `lock_busy`, ...).
    pub reasons: std::collections::BTreeMap<String, i64>,
    /// Optimistic compare-and-set conflicts that were retried.
    pub retries: i64,
}

#[derive(Debug)]
pub struct StrategyTotals {
    pub strategy: String,
    pub totals: Totals,
}

#[derive(Debug)]
pub struct Stats {
    pub totals: Totals,
    pub by_strategy: Vec<StrategyTotals>,
}

#[tracing::instrument(name = "db.stats", skip_all)]
pub async fn stats(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Stats> {
    let rows: Vec<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT locking_strategy, status, reason, count(*), COALESCE(sum(attempts - 1), 0)::BIGINT FROM bookings
         WHERE ($1::BIGINT IS NULL OR event_id = $1)
         GROUP BY locking_strategy, status, reason ORDER BY locking_strategy",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;

    let mut stats = Stats { totals: Totals::default(), by_strategy: Vec::new() };
    for (strategy, status, reason, count, retries) in rows {
        if stats.by_strategy.last().is_none_or(|last| last.strategy != strategy) {
            stats.by_strategy.push(StrategyTotals { strategy, totals: Totals::default() });
        }
        let per_strategy = &mut stats.by_strategy.last_mut().expect("pushed above").totals;
        for totals in [&mut stats.totals, per_strategy] {
            totals.add(&status, reason.as_deref(), count, retries);
        }
    }
    Ok(stats)
}

impl Totals {
    fn add(&mut self, status: &str, reason: Option<&str>, count: i64, retries: i64) {
        if status == BookingStatus::Confirmed.as_str() {
            self.confirmed += count;
        } else if status == BookingStatus::DoubleBooked.as_str() {
            self.double_booked += count;
        } else {
            self.failed += count;
        }
        if let Some(reason) = reason {
            *self.reasons.entry(reason.to_owned()).or_default() += count;
        }
        self.total += count;
        self.retries += retries;
    }
}
