//! An independent audit of what the database holds.
//!
//! It reads only Postgres (and, when given one, a client-side history of
//! requests and answers) and never the service's own counters. It checks the
//! invariants a booking system must keep:
//! - no seat has more than one live holder (expected under `none` and
//!   `mutex`, which the lab lets double-book; a failure under any other);
//! - a seat marked booked has a holder, and a holder's seat is marked booked;
//! - the seat's `booked_by` is one of its holders;
//! - no two holds of one seat were live at the same time (expected under
//!   `none` and `mutex` too);
//! - no hold was confirmed after it expired, by the database's clock;
//! - no seat was confirmed from two holds.
//!
//! With a history it also finds acknowledged bookings the database lost, and
//! one seat acknowledged to two customers.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use booking_server::domain::StrategyName;

/// One broken (or, under `none`/`mutex`, expected) invariant.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub event_id: i64,
    pub seat_number: String,
    pub detail: String,
    /// Allowed by the lesson: a double booking under `none` or `mutex` only.
    pub expected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// More than one confirmed or double-booked booking on one seat.
    MultipleHolders,
    /// The seat is marked booked but no booking holds it.
    BookedWithoutHolder,
    /// A booking holds a seat that is marked free.
    HolderOnFreeSeat,
    /// `booked_by` is none of the seat's holders.
    BookedByMismatch,
    /// A client was told "confirmed" and the database has no such booking.
    LostAcknowledgement,
    /// Two customers were both told they own one seat.
    SeatAcknowledgedTwice,
    /// Two holds of one seat were live at the same time: two customers were
    /// both told the seat was kept for them.
    OverlappingHolds,
    /// A hold became a booking after it had expired.
    ConfirmedAfterExpiry,
    /// Two holds of one seat were both confirmed.
    SeatConfirmedTwice,
}

/// Every finding in the database, of one event or of all.
pub async fn check(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Vec<Finding>> {
    let rows: Vec<(i64, String, bool, Option<String>, Vec<String>, Vec<String>)> = sqlx::query_as(
        "SELECT s.event_id, s.seat_number, s.is_booked, s.booked_by,
                coalesce(array_agg(b.customer_id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}'),
                coalesce(array_agg(b.locking_strategy ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}')
         FROM seats s
         LEFT JOIN bookings b ON b.seat_id = s.id AND b.status IN ('confirmed', 'double_booked')
         WHERE ($1::BIGINT IS NULL OR s.event_id = $1)
         GROUP BY s.id
         HAVING s.is_booked OR count(b.id) > 0
         ORDER BY s.event_id, s.seat_number",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;

    let mut findings = Vec::new();
    for (event_id, seat_number, is_booked, booked_by, holders, strategies) in rows {
        let mut found = |kind, detail: String, expected| {
            findings.push(Finding { kind, event_id, seat_number: seat_number.clone(), detail, expected })
        };
        if holders.len() > 1 {
            let expected = strategies.iter().all(|strategy| strategy.parse::<StrategyName>().is_ok_and(|name| !name.is_safe()));
            let mut named: Vec<&str> = strategies.iter().map(String::as_str).collect();
            named.sort_unstable();
            named.dedup();
            found(Kind::MultipleHolders, format!("{} holders under {}: {}", holders.len(), named.join(", "), holders.join(", ")), expected);
        }
        if is_booked && holders.is_empty() {
            found(Kind::BookedWithoutHolder, format!("marked booked by {} with no booking", booked_by.as_deref().unwrap_or("nobody")), false);
        }
        if !is_booked && !holders.is_empty() {
            found(Kind::HolderOnFreeSeat, format!("marked free, held by {}", holders.join(", ")), false);
        }
        if let Some(booked_by) = booked_by.as_deref()
            && !holders.is_empty()
            && !holders.iter().any(|holder| holder == booked_by)
        {
            found(Kind::BookedByMismatch, format!("booked_by {booked_by}, holders {}", holders.join(", ")), false);
        }
    }
    findings.extend(check_holds(pool, event_id).await?);
    Ok(findings)
}

/// The holds' invariants. A hold lives from its write (`created_at`) until
/// it expired, or ended earlier (confirmed or released).
async fn check_holds(pool: &PgPool, event_id: Option<i64>) -> sqlx::Result<Vec<Finding>> {
    let overlapping: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(
        "WITH lived AS (
             SELECT h.*, least(h.expires_at, coalesce(h.ended_at, h.expires_at)) AS ended FROM holds h
             WHERE ($1::BIGINT IS NULL OR h.event_id = $1)
         )
         SELECT a.event_id, s.seat_number, a.customer_id, b.customer_id, a.locking_strategy, b.locking_strategy
         FROM lived a JOIN lived b ON b.seat_id = a.seat_id AND b.id > a.id
              AND b.created_at < a.ended AND a.created_at < b.ended
         JOIN seats s ON s.id = a.seat_id
         ORDER BY a.event_id, s.seat_number, a.id, b.id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    let late: Vec<(i64, String, String, f64)> = sqlx::query_as(
        "SELECT h.event_id, s.seat_number, h.customer_id, extract(epoch FROM h.ended_at - h.expires_at)::FLOAT8 * 1000
         FROM holds h JOIN seats s ON s.id = h.seat_id
         WHERE h.status = 'confirmed' AND h.ended_at > h.expires_at AND ($1::BIGINT IS NULL OR h.event_id = $1)
         ORDER BY h.event_id, s.seat_number",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;
    let twice: Vec<(i64, String, Vec<String>)> = sqlx::query_as(
        "SELECT h.event_id, s.seat_number, array_agg(h.customer_id ORDER BY h.id)
         FROM holds h JOIN seats s ON s.id = h.seat_id
         WHERE h.status = 'confirmed' AND ($1::BIGINT IS NULL OR h.event_id = $1)
         GROUP BY h.event_id, s.seat_number HAVING count(*) > 1
         ORDER BY h.event_id, s.seat_number",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await?;

    let unsafe_only = |strategies: &[&str]| strategies.iter().all(|strategy| strategy.parse::<StrategyName>().is_ok_and(|name| !name.is_safe()));
    let mut findings = Vec::new();
    for (event_id, seat_number, first, second, first_strategy, second_strategy) in overlapping {
        let detail = format!("held by {first} ({first_strategy}) and {second} ({second_strategy}) at the same time");
        let expected = unsafe_only(&[&first_strategy, &second_strategy]);
        findings.push(Finding { kind: Kind::OverlappingHolds, event_id, seat_number, detail, expected });
    }
    for (event_id, seat_number, customer, late_ms) in late {
        let detail = format!("{customer}'s hold was confirmed {late_ms:.0} ms after it expired");
        findings.push(Finding { kind: Kind::ConfirmedAfterExpiry, event_id, seat_number, detail, expected: false });
    }
    for (event_id, seat_number, customers) in twice {
        let detail = format!("confirmed from the holds of {}", customers.join(", "));
        findings.push(Finding { kind: Kind::SeatConfirmedTwice, event_id, seat_number, detail, expected: false });
    }
    Ok(findings)
}

/// What Postgres holds for one seat: its row, and its live bookings.
#[derive(Debug, Clone)]
pub struct SeatRecord {
    pub is_booked: bool,
    pub booked_by: Option<String>,
    /// The seat row's own count of its holders.
    pub holders_counted: i32,
    /// The customers of its confirmed and double-booked bookings, oldest first.
    pub holders: Vec<String>,
}

/// Reads one seat's row and bookings straight from Postgres.
pub async fn seat(pool: &PgPool, event_id: i64, seat_number: &str) -> sqlx::Result<SeatRecord> {
    let (is_booked, booked_by, holders_counted, holders): (bool, Option<String>, i32, Vec<String>) = sqlx::query_as(
        "SELECT s.is_booked, s.booked_by, s.holders,
                coalesce(array_agg(b.customer_id ORDER BY b.id) FILTER (WHERE b.id IS NOT NULL), '{}')
         FROM seats s
         LEFT JOIN bookings b ON b.seat_id = s.id AND b.status IN ('confirmed', 'double_booked')
         WHERE s.event_id = $1 AND s.seat_number = $2
         GROUP BY s.id",
    )
    .bind(event_id)
    .bind(seat_number)
    .fetch_one(pool)
    .await?;
    Ok(SeatRecord { is_booked, booked_by, holders_counted, holders })
}

/// One line of a client-side history: what was asked and what came back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub event_id: i64,
    pub seat_number: String,
    pub customer_id: String,
    /// HTTP status, or 0 when no answer came.
    pub status: u16,
    /// The answer's `status` field: `confirmed`, `double_booked`, `failed`, or absent.
    #[serde(default)]
    pub outcome: Option<String>,
    /// The strategy the answer named.
    #[serde(default)]
    pub strategy: Option<String>,
}

/// Reads a JSON-lines history file.
pub fn read_history(path: &Path) -> anyhow::Result<Vec<HistoryEntry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(number, line)| serde_json::from_str(line).with_context(|| format!("{}:{}: not a history line", path.display(), number + 1)))
        .collect()
}

/// Checks a client history against the database: every acknowledged booking
/// is there, and no seat was acknowledged to two customers under a safe
/// strategy.
pub async fn check_history(pool: &PgPool, history: &[HistoryEntry]) -> sqlx::Result<Vec<Finding>> {
    let held: HashSet<(i64, String, String)> = sqlx::query_as::<_, (i64, String, String)>(
        "SELECT s.event_id, s.seat_number, b.customer_id FROM bookings b JOIN seats s ON s.id = b.seat_id
         WHERE b.status IN ('confirmed', 'double_booked')",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .collect();

    let mut findings = Vec::new();
    let mut acknowledged: BTreeMap<(i64, String), Vec<&HistoryEntry>> = BTreeMap::new();
    for entry in history.iter().filter(|entry| matches!(entry.outcome.as_deref(), Some("confirmed" | "double_booked"))) {
        if !held.contains(&(entry.event_id, entry.seat_number.clone(), entry.customer_id.clone())) {
            findings.push(Finding {
                kind: Kind::LostAcknowledgement,
                event_id: entry.event_id,
                seat_number: entry.seat_number.clone(),
                detail: format!("{} was told {} and holds nothing", entry.customer_id, entry.outcome.as_deref().unwrap_or("?")),
                expected: false,
            });
        }
        acknowledged.entry((entry.event_id, entry.seat_number.clone())).or_default().push(entry);
    }
    for ((event_id, seat_number), entries) in acknowledged {
        let customers: HashSet<&str> = entries.iter().map(|entry| entry.customer_id.as_str()).collect();
        if customers.len() > 1 {
            let expected = entries.iter().all(|entry| entry.strategy.as_deref().and_then(|s| s.parse::<StrategyName>().ok()).is_some_and(|s| !s.is_safe()));
            let mut names: Vec<&str> = customers.into_iter().collect();
            names.sort_unstable();
            findings.push(Finding {
                kind: Kind::SeatAcknowledgedTwice,
                event_id,
                seat_number,
                detail: format!("told to {}", names.join(", ")),
                expected,
            });
        }
    }
    Ok(findings)
}

/// The findings as a table, one line each, with a verdict line.
pub fn report(findings: &[Finding]) -> String {
    let broken = findings.iter().filter(|finding| !finding.expected).count();
    let mut out = String::new();
    for finding in findings {
        let label = if finding.expected { "expected" } else { "BROKEN" };
        out.push_str(&format!(
            "{label:>8}  {:<24} event {} seat {:<6} {}\n",
            format!("{:?}", finding.kind),
            finding.event_id,
            finding.seat_number,
            finding.detail
        ));
    }
    out.push_str(&format!(
        "audit: {} finding(s), {} broken invariant(s), {} expected under none/mutex\n",
        findings.len(),
        broken,
        findings.len() - broken
    ));
    out
}
