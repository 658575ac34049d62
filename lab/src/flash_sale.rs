//! The flash sale: many more customers than seats, each holding a seat,
//! paying, and confirming, through the load balancer, for every strategy.
//!
//! Every customer picks a seat the seat map shows free, holds it with a
//! short TTL, and then either walks away (some release, the rest let the
//! hold expire) or pays for a random time and confirms. A payment slower
//! than the TTL lands late: 410, and the customer tries another seat. A
//! customer stops once they own a seat, or when the sale is sold out.
//!
//! At the end, per strategy: every seat sold, nobody given a seat twice,
//! abandoned seats resold, and every confirmed booking backed by a hold that
//! was live when it was confirmed (read back from `GET /holds/{id}`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use reqwest::StatusCode;
use serde::Serialize;
use tokio::sync::watch;

use crate::client::{Answer, LabClient};
use crate::compare::percentile_ms;
use booking_server::domain::StrategyName;

#[derive(Debug, Clone)]
pub struct Settings {
    pub customers: usize,
    pub rows: usize,
    pub seats_per_row: usize,
    pub ttl: Duration,
    /// The share of customers who walk away from their hold.
    pub abandon: f64,
    /// Payment takes a uniform time in this range.
    pub pay_min: Duration,
    pub pay_max: Duration,
    /// The longest one strategy's sale may run.
    pub limit: Duration,
}

impl Settings {
    pub fn seats(&self) -> usize {
        self.rows * self.seats_per_row
    }
}

/// One strategy's sale.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub strategy: String,
    pub seats: usize,
    pub customers: usize,
    /// Seats booked at the end.
    pub sold: usize,
    pub seconds: f64,
    /// Holds granted (201).
    pub holds: usize,
    /// Holds granted while another customer's hold on the seat was live
    /// (`hold_count` above 1): two customers told the seat was theirs.
    pub double_holds: usize,
    /// Hold requests refused (409: booked, held, lock busy).
    pub hold_refused: usize,
    /// Holds walked away from (released or left to expire).
    pub abandoned: usize,
    /// Seats that had an abandoned hold, and how many of them were sold.
    pub abandoned_seats: usize,
    pub resold: usize,
    pub confirmed: usize,
    /// Confirms refused because the payment landed after expiry (410).
    pub late: usize,
    /// Confirms refused because another customer had the seat (409).
    pub lost: usize,
    /// Bookings beyond the first on a seat.
    pub double_bookings: usize,
    /// Customers who own more than one seat.
    pub owners_twice: usize,
    /// Confirmed bookings whose hold was not live when confirmed, or is not
    /// linked to the booking.
    pub unbacked: usize,
    /// Confirmed bookings (by the client's answer) that the event no longer
    /// holds: acknowledged and lost.
    pub lost_bookings: usize,
    /// 503 answers: a backend down, nothing written, try again.
    pub unavailable: usize,
    /// Anything else: a 500, another status nobody documented, no answer.
    pub errors: usize,
    /// What those were: the status, or `no answer`, and how many.
    pub error_kinds: BTreeMap<String, usize>,
    pub hold_p50_ms: f64,
    pub hold_p99_ms: f64,
    pub confirm_p50_ms: f64,
    pub confirm_p99_ms: f64,
}

impl Row {
    /// What the lesson promises: under every strategy the confirm's
    /// transaction books each seat once, for a live hold only; the safe
    /// strategies also never grant two live holds on one seat.
    pub fn as_taught(&self, strategy: StrategyName) -> bool {
        let holds_ok = !strategy.is_safe() || self.double_holds == 0;
        holds_ok && self.survived() && self.unavailable == 0 && self.sold == self.seats
    }

    /// What must hold even through an outage: no seat sold twice, no
    /// booking without a live hold, no acknowledged booking lost, and no
    /// answer but the documented ones (a 503 while a backend is down).
    pub fn survived(&self) -> bool {
        self.double_bookings == 0 && self.owners_twice == 0 && self.unbacked == 0 && self.lost_bookings == 0 && self.errors == 0
    }
}

/// What the customers saw, merged.
#[derive(Default)]
struct Tally {
    holds: usize,
    double_holds: usize,
    hold_refused: usize,
    abandoned: Vec<String>,
    confirmed: Vec<(i64, i64)>,
    late: usize,
    lost: usize,
    unavailable: usize,
    errors: usize,
    error_kinds: BTreeMap<String, usize>,
    hold_latency: Vec<Duration>,
    confirm_latency: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.holds += other.holds;
        self.double_holds += other.double_holds;
        self.hold_refused += other.hold_refused;
        self.abandoned.extend(other.abandoned);
        self.confirmed.extend(other.confirmed);
        self.late += other.late;
        self.lost += other.lost;
        self.unavailable += other.unavailable;
        self.errors += other.errors;
        for (kind, count) in other.error_kinds {
            *self.error_kinds.entry(kind).or_default() += count;
        }
        self.hold_latency.extend(other.hold_latency);
        self.confirm_latency.extend(other.confirm_latency);
    }
}

/// The seat map as customers see it: the seats on sale, and whether the
/// sale is over.
#[derive(Debug, Clone, Default)]
struct SeatMap {
    free: Vec<String>,
    sold_out: bool,
}

/// Runs the sale for each strategy in turn, with a progress line on stderr.
pub async fn run(client: &LabClient, strategies: &[StrategyName], settings: &Settings) -> anyhow::Result<Vec<Row>> {
    let one = async |strategy: StrategyName, progress: &ProgressBar| run_strategy(client, strategy, settings, progress).await;
    crate::load::each_strategy(strategies, one, |row: &Row| {
        format!("{}/{} seats sold in {:.1} s, {} double holds", row.sold, row.seats, row.seconds, row.double_holds)
    })
    .await
}

async fn run_strategy(client: &LabClient, strategy: StrategyName, settings: &Settings, progress: &ProgressBar) -> anyhow::Result<Row> {
    let (row, event_id) = sale(client, strategy, settings, progress).await?;
    client.delete(&format!("/admin/events/{event_id}")).await?;
    Ok(row)
}

/// One strategy's sale on an event of its own, which it leaves in place
/// (for an audit); returns the row and the event.
pub async fn sale(client: &LabClient, strategy: StrategyName, settings: &Settings, progress: &ProgressBar) -> anyhow::Result<(Row, i64)> {
    client.set_strategy(strategy.as_str()).await?;
    let body = serde_json::json!({ "name": format!("flash sale {strategy}"), "rows": settings.rows, "seats_per_row": settings.seats_per_row });
    let event_id = client.post_json("/admin/events", body).await?["event"]["id"].as_i64().context("the created event has no id")?;

    let started = Instant::now();
    let deadline = started + settings.limit;
    let (map_tx, map) = watch::channel(SeatMap::default());
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_seats(client.clone(), event_id, map_tx, stop.clone()));
    let mut customers = Vec::with_capacity(settings.customers);
    for n in 0..settings.customers {
        let customer = Customer { client: client.clone(), event_id, name: format!("{strategy}-fan-{n}"), settings: settings.clone(), map: map.clone(), deadline };
        customers.push(tokio::spawn(customer.shop()));
    }
    let mut tally = Tally::default();
    let total = customers.len();
    for (done, customer) in customers.into_iter().enumerate() {
        progress.set_message(format!("{strategy}: {done}/{total} customers done"));
        tally.merge(customer.await.context("a customer's task failed")?);
    }
    stop.store(true, Ordering::Relaxed);
    watcher.await.context("the seat watcher failed")?;
    let seconds = started.elapsed().as_secs_f64();

    let row = check(client, strategy, event_id, settings, tally, seconds).await?;
    Ok((row, event_id))
}

/// Refreshes the seat map every 100 ms until told to stop.
async fn watch_seats(client: LabClient, event_id: i64, map: watch::Sender<SeatMap>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(event) = client.get(&format!("/events/{event_id}")).await {
            let seats = &event["seats"];
            let free = seats["details"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|seat| seat["is_booked"] == false && seat["is_held"] == false)
                .filter_map(|seat| seat["seat_number"].as_str().map(str::to_owned))
                .collect();
            let sold_out = seats["booked"].as_u64() == seats["total"].as_u64();
            map.send_replace(SeatMap { free, sold_out });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Customer {
    client: LabClient,
    event_id: i64,
    name: String,
    settings: Settings,
    map: watch::Receiver<SeatMap>,
    deadline: Instant,
}

impl Customer {
    /// Holds, pays and confirms until this customer owns a seat, walks away,
    /// or the sale ends.
    async fn shop(self) -> Tally {
        let mut tally = Tally::default();
        let walks_away = rand::random_bool(self.settings.abandon);
        while Instant::now() < self.deadline {
            let map = self.map.borrow().clone();
            if map.sold_out {
                break;
            }
            if map.free.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let seat = &map.free[rand::random_range(0..map.free.len())];
            let sent = Instant::now();
            let answer = self.client.hold(self.event_id, seat, &self.name, self.settings.ttl.as_millis() as u64).await;
            tally.hold_latency.push(sent.elapsed());
            let hold_id = match answer {
                Ok(Answer { status: StatusCode::CREATED, body, .. }) => {
                    tally.holds += 1;
                    if body["hold_count"].as_i64() > Some(1) {
                        tally.double_holds += 1;
                    }
                    body["hold_id"].as_i64().unwrap_or_default()
                }
                Ok(Answer { status: StatusCode::CONFLICT, .. }) => {
                    tally.hold_refused += 1;
                    tokio::time::sleep(Duration::from_millis(rand::random_range(10..50))).await;
                    continue;
                }
                other => {
                    tally.count_failure(&other);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if walks_away {
                tally.abandoned.push(seat.clone());
                // Half give the seat back; the rest just close the tab.
                if rand::random_bool(0.5) {
                    let released = self.client.release_hold(hold_id).await;
                    // 410: it ran out just before; its seat is free all the same.
                    if !matches!(&released, Ok(answer) if answer.status == StatusCode::OK || answer.status == StatusCode::GONE) {
                        tally.count_failure(&released);
                    }
                }
                break;
            }
            let paying = rand::random_range(self.settings.pay_min.as_millis()..=self.settings.pay_max.as_millis());
            tokio::time::sleep(Duration::from_millis(paying as u64)).await;
            match self.confirm(hold_id, &mut tally).await {
                Some(Answer { status: StatusCode::OK, body, .. }) => {
                    tally.confirmed.push((hold_id, body["booking_id"].as_i64().unwrap_or_default()));
                    break;
                }
                Some(Answer { status: StatusCode::GONE, .. }) => tally.late += 1,
                Some(Answer { status: StatusCode::CONFLICT, .. }) => tally.lost += 1,
                _ => {}
            }
        }
        tally
    }

    /// Confirms with one Idempotency-Key until the answer is final (200, 409
    /// or 410): a confirm that got a 503 or no answer may or may not have
    /// booked, and only the same key can find out. `None` if it never was.
    async fn confirm(&self, hold_id: i64, tally: &mut Tally) -> Option<Answer> {
        let key = format!("{}-{hold_id}", self.name);
        for _ in 0..40 {
            let sent = Instant::now();
            let answer = self.client.confirm_hold(hold_id, &key).await;
            tally.confirm_latency.push(sent.elapsed());
            match answer {
                Ok(answer) if matches!(answer.status, StatusCode::OK | StatusCode::GONE | StatusCode::CONFLICT) => return Some(answer),
                other => tally.count_failure(&other),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }
}

impl Tally {
    /// An answer that was neither a grant nor a refusal.
    fn count_failure(&mut self, answer: &anyhow::Result<Answer>) {
        let kind = match answer {
            Ok(Answer { status: StatusCode::SERVICE_UNAVAILABLE, .. }) => {
                self.unavailable += 1;
                return;
            }
            Ok(Answer { status, body, .. }) => format!("{} {}", status.as_u16(), body["error"].as_str().unwrap_or_default()),
            Err(error) => format!("no answer: {error:#}"),
        };
        self.errors += 1;
        *self.error_kinds.entry(kind).or_default() += 1;
    }
}

/// The end of one sale, checked through the API.
async fn check(client: &LabClient, strategy: StrategyName, event_id: i64, settings: &Settings, mut tally: Tally, seconds: f64) -> anyhow::Result<Row> {
    let event = client.get(&format!("/events/{event_id}")).await?;
    let mut owners: BTreeMap<String, usize> = BTreeMap::new();
    let mut holders_per_seat: BTreeMap<String, usize> = BTreeMap::new();
    for holder in event["holders"].as_array().into_iter().flatten() {
        *owners.entry(holder["customer_id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        *holders_per_seat.entry(holder["seat_number"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
    }
    let booked: BTreeSet<&String> = holders_per_seat.keys().collect();
    let booking_ids: BTreeSet<i64> = event["holders"].as_array().into_iter().flatten().filter_map(|holder| holder["booking_id"].as_i64()).collect();
    let abandoned: BTreeSet<&String> = tally.abandoned.iter().collect();
    let mut unbacked = 0;
    for &(hold_id, booking_id) in &tally.confirmed {
        let hold = client.get(&format!("/holds/{hold_id}")).await?;
        let live_when_confirmed = match (hold["ended_at"].as_str(), hold["expires_at"].as_str()) {
            (Some(ended), Some(expires)) => parse_time(ended)? <= parse_time(expires)?,
            _ => false,
        };
        if hold["status"] != "confirmed" || hold["booking_id"].as_i64() != Some(booking_id) || !live_when_confirmed {
            unbacked += 1;
        }
    }
    // Bookings that no confirm answered for (a booking made without a
    // hold, or a confirm whose answer was lost) are not backed either.
    unbacked += holders_per_seat.values().sum::<usize>().saturating_sub(tally.confirmed.len());
    tally.hold_latency.sort_unstable();
    tally.confirm_latency.sort_unstable();
    Ok(Row {
        strategy: strategy.to_string(),
        seats: settings.seats(),
        customers: settings.customers,
        sold: event["seats"]["booked"].as_u64().unwrap_or_default() as usize,
        seconds,
        holds: tally.holds,
        double_holds: tally.double_holds,
        hold_refused: tally.hold_refused,
        abandoned: tally.abandoned.len(),
        abandoned_seats: abandoned.len(),
        resold: abandoned.intersection(&booked).count(),
        confirmed: tally.confirmed.len(),
        late: tally.late,
        lost: tally.lost,
        double_bookings: holders_per_seat.values().map(|holders| holders - 1).sum(),
        owners_twice: owners.values().filter(|&&seats| seats > 1).count(),
        unbacked,
        lost_bookings: tally.confirmed.iter().filter(|(_, booking_id)| !booking_ids.contains(booking_id)).count(),
        unavailable: tally.unavailable,
        errors: tally.errors,
        error_kinds: tally.error_kinds,
        hold_p50_ms: percentile_ms(&tally.hold_latency, 0.50),
        hold_p99_ms: percentile_ms(&tally.hold_latency, 0.99),
        confirm_p50_ms: percentile_ms(&tally.confirm_latency, 0.50),
        confirm_p99_ms: percentile_ms(&tally.confirm_latency, 0.99),
    })
}

fn parse_time(text: &str) -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text).with_context(|| format!("{text:?} is not an RFC 3339 time"))
}

/// The sale as a Markdown table, one row per strategy.
pub fn markdown(rows: &[Row]) -> String {
    let header = [
        "strategy", "sold", "holds", "double holds", "abandoned", "seats resold", "confirmed", "late (410)", "lost (409)",
        "double bookings", "unbacked", "lost bookings", "503", "errors", "hold p50/p99 ms", "confirm p50/p99 ms", "s",
    ];
    let mut out = format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in rows {
        let cells = [
            row.strategy.clone(),
            format!("{}/{}", row.sold, row.seats),
            row.holds.to_string(),
            row.double_holds.to_string(),
            row.abandoned.to_string(),
            format!("{}/{}", row.resold, row.abandoned_seats),
            row.confirmed.to_string(),
            row.late.to_string(),
            row.lost.to_string(),
            row.double_bookings.to_string(),
            row.unbacked.to_string(),
            row.lost_bookings.to_string(),
            row.unavailable.to_string(),
            row.errors.to_string(),
            format!("{:.0} / {:.0}", row.hold_p50_ms, row.hold_p99_ms),
            format!("{:.0} / {:.0}", row.confirm_p50_ms, row.confirm_p99_ms),
            format!("{:.1}", row.seconds),
        ];
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}
