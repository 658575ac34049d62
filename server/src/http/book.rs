//! `POST /book`: one booking attempt under the cluster's current strategy.
//!
//! The response tells the truth about what happened: `confirmed` (200), the
//! seat was not to be had (409 with a `reason`), or `double_booked` (200) when
//! the strategy let a race through and the seat now has several holders.
//!
//! A booking first passes this replica's gate (closed while the cluster
//! switches strategy), then books under the strategy and epoch the replica
//! applies at that moment.

use std::time::Instant;

use anyhow::Context;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{BookingStatus, Refusal, StrategyName};
use crate::error::{Error, ErrorBody, Result};
use crate::idempotency::{self, Claimed};
use crate::live::Change;
use crate::state::AppState;
use crate::storage;
use crate::strategy::{Booking, Outcome, Verdict};

/// The longest customer id accepted (the seed lab's column width).
const MAX_CUSTOMER_ID: usize = 255;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(book))
}

/// One customer asking for one seat.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"event_id": 1, "seat_number": "A1", "customer_id": "alice"}))]
struct BookRequest {
    /// The event; the seeded one is 1.
    #[schema(minimum = 1, example = 1)]
    event_id: i64,
    /// A row of one to four letters, then a seat of one to four digits.
    #[schema(pattern = r"^[A-Za-z]{1,4}[0-9]{1,4}$", example = "A1")]
    seat_number: String,
    /// Who books: at most 255 characters, not blank, no control characters
    /// (surrounding whitespace is trimmed).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$",
        example = "alice"
    )]
    customer_id: String,
}

/// The seat is booked: `confirmed` when this booking is its only holder,
/// `double_booked` when the strategy let a race through.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "booking_id": 17, "message": "Seat A1 booked for alice", "status": "confirmed", "event_id": 1,
    "seat_number": "A1", "customer_id": "alice", "strategy": "pessimistic", "instance": "replica-2"
}))]
struct Booked {
    booking_id: i64,
    /// With `double_booked`: how many bookings now hold the seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_count: Option<i64>,
    message: String,
    status: BookingStatus,
    #[serde(flatten)]
    context: Served,
}

/// The seat was not to be had, and nothing was booked.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "reason": "seat_taken", "message": "Seat A1 is already booked", "status": "failed", "event_id": 1,
    "seat_number": "A1", "customer_id": "bob", "strategy": "pessimistic", "instance": "replica-1"
}))]
struct Refused {
    reason: Refusal,
    message: String,
    /// Always `failed`.
    status: BookingStatus,
    #[serde(flatten)]
    context: Served,
}

/// What every booking answer repeats: the request, and how it was served.
#[derive(Serialize, ToSchema)]
struct Served {
    event_id: i64,
    seat_number: String,
    customer_id: String,
    /// The strategy the booking ran under.
    strategy: StrategyName,
    /// The replica that wrote (or refused) the booking.
    instance: String,
    /// `optimistic` only: compare-and-set attempts made.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// `fenced` only: the fencing token the write carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    fencing_token: Option<i64>,
}

/// The first request with this Idempotency-Key is still running; retry
/// after `Retry-After` seconds.
#[derive(Serialize, ToSchema)]
struct InProgress {
    reason: InProgressReason,
    message: String,
    /// Always `failed`.
    status: BookingStatus,
    seat_number: String,
    customer_id: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum InProgressReason {
    RequestInProgress,
}

/// A 409 answer: the seat was refused, or the key's first request still runs.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Conflict {
    Refused(Refused),
    InProgress(InProgress),
}

impl BookRequest {
    /// Checks every field a client could get wrong, naming the field.
    fn validate(&self) -> Result<()> {
        if self.event_id <= 0 {
            return Err(Error::bad_request(format!("event_id must be a positive integer, got {}", self.event_id)));
        }
        if !valid_seat_number(&self.seat_number) {
            return Err(Error::bad_request(format!(
                "seat_number must be a row letter followed by a seat number, like \"A1\"; got {:?}",
                truncated(&self.seat_number)
            )));
        }
        let customer = self.customer_id.trim();
        if customer.is_empty() {
            return Err(Error::bad_request("customer_id must not be empty"));
        }
        if self.customer_id.chars().count() > MAX_CUSTOMER_ID {
            return Err(Error::bad_request(format!("customer_id must be at most {MAX_CUSTOMER_ID} characters")));
        }
        if self.customer_id.chars().any(char::is_control) {
            return Err(Error::bad_request("customer_id must not contain control characters"));
        }
        Ok(())
    }
}

/// One to four letters, then one to four digits: `A1`, `J10`, `AA1024`.
fn valid_seat_number(seat: &str) -> bool {
    let letters = seat.chars().take_while(char::is_ascii_alphabetic).count();
    let digits = seat.len() - letters;
    (1..=4).contains(&letters) && (1..=4).contains(&digits) && seat[letters..].chars().all(|c| c.is_ascii_digit())
}

fn truncated(value: &str) -> String {
    value.chars().take(32).collect()
}

/// Books a seat under the cluster's current strategy, on whichever replica
/// nginx chose. Under `none` (and `mutex` across replicas) concurrent
/// bookings of one seat can all succeed: the answers say `double_booked`.
#[utoipa::path(
    post, path = "/book", tag = "booking", operation_id = "book",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x20-\x7e]{1,255}$",
            example = "3f2b9c1e-alice-A1",
            description = "Makes the request safe to retry: every request with the same key gets the first one's answer and books \
                nothing more. 1 to 255 printable ASCII characters; remembered for IDEMPOTENCY_TTL_SECS"),
    ),
    request_body = BookRequest,
    responses(
        (status = OK, description = "Booked: `confirmed`, or `double_booked` when the strategy let a race through", body = Booked,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key"))),
        (status = CONFLICT, description = "Not booked: the `reason` says why (the seat is taken, its lock is busy, ...), \
            or `request_in_progress` while the key's first request still runs", body = Conflict,
            headers(
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key"),
                ("Retry-After" = u64, description = "With `request_in_progress`: seconds to wait before retrying"),
            )),
        (status = BAD_REQUEST, description = "A field or the Idempotency-Key is invalid; the message names it", body = ErrorBody),
        (status = NOT_FOUND, description = "The event has no such seat", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "The Idempotency-Key was first used with a different request, \
            or the JSON lacks a field", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or the strategy's lock service is down, or a row lock stayed held \
            past DATABASE_LOCK_TIMEOUT_MS; nothing was written", body = ErrorBody),
    ),
)]
async fn book(State(state): State<AppState>, headers: HeaderMap, payload: Result<Json<BookRequest>, JsonRejection>) -> Result<Response> {
    let key = idempotency::key_from(&headers)?;
    let Json(request) = payload?;
    request.validate()?;
    let booking = Booking {
        event_id: request.event_id,
        seat_number: request.seat_number,
        customer_id: request.customer_id.trim().to_owned(),
        instance_id: state.instance_id.clone(),
        idempotency_key: key.clone(),
    };
    if let Some(key) = &key
        && let Some(earlier) = claim(&state, key, &booking).await?
    {
        return Ok(earlier);
    }

    let pass = state.barrier.enter().await;
    let applied = state.active.current();
    let strategy = applied.name;
    let span = tracing::info_span!(
        "book",
        %strategy,
        event_id = booking.event_id,
        seat = %booking.seat_number,
        customer = %booking.customer_id,
        instance = %state.instance_id,
    );
    let started = Instant::now();
    // A spawned task runs to the end even if the client hangs up: it holds
    // the gate's pass until then, so a switch waits for it, and it stores the
    // answer under the idempotency key for a retry to find.
    let task = {
        let state = state.clone();
        tokio::spawn(
            async move {
                let outcome = state.strategies.book(applied, &state.booking_db, &booking).await;
                drop(pass);
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        if let Some(key) = &booking.idempotency_key
                            && let Err(release) = storage::idempotency::release(&state.db, key).await
                        {
                            tracing::warn!(%release, "could not release the idempotency key; a retry waits for the in-flight limit");
                        }
                        return Err(error);
                    }
                };
                if let Some(cluster) = outcome.cluster {
                    // This replica missed a switch: catch up now, so the
                    // next booking runs under the cluster's strategy.
                    state.active.apply(cluster);
                }
                let (status, body) = answer(strategy, &booking, &outcome);
                crate::metrics::booking_finished(strategy, booking_status(&outcome), refusal(&outcome), started.elapsed());
                state.activity.record(booking_status(&outcome));
                if let Verdict::Booked(recorded) = outcome.verdict {
                    state.feed.publish(Change::Booked {
                        event_id: booking.event_id,
                        seat_number: booking.seat_number.clone(),
                        customer_id: booking.customer_id.clone(),
                        instance: booking.instance_id.clone(),
                        status: booking_status(&outcome),
                        holders: recorded.holders,
                        booking_id: recorded.booking_id,
                    });
                }
                if let Some(key) = &booking.idempotency_key
                    && let Err(error) = storage::idempotency::store_answer(&state.db, key, status.as_u16(), &body).await
                {
                    tracing::warn!(%error, "could not store the answer under the idempotency key; a retry rebuilds it");
                }
                Ok((status, body))
            }
            .instrument(span),
        )
    };
    let (status, body) = task.await.map_err(|error| anyhow::anyhow!("booking task failed: {error}"))??;
    Ok((status, Json(body)).into_response())
}

/// The canonical form of a request, to tell a retry from another request
/// sent with the same key.
fn fingerprint(booking: &Booking) -> String {
    serde_json::json!([booking.event_id, booking.seat_number, booking.customer_id]).to_string()
}

/// Claims the request's key; `Some` answer when the request must not book
/// (a replay, a key in use, a key reused for another request).
async fn claim(state: &AppState, key: &str, booking: &Booking) -> Result<Option<Response>> {
    let claimed = idempotency::claim(&state.db, key, &fingerprint(booking), state.idempotency).await?;
    let (status, body) = match claimed {
        Claimed::Proceed => return Ok(None),
        Claimed::Mismatch => {
            return Err(Error::Unprocessable(format!(
                "Idempotency-Key {key:?} was first used with a different request (event, seat or customer); use a new key"
            )));
        }
        Claimed::InProgress { retry_after } => {
            let body = Conflict::InProgress(InProgress {
                reason: InProgressReason::RequestInProgress,
                message: format!("A request with Idempotency-Key {key:?} is still running; retry in {} s", retry_after.as_secs()),
                status: BookingStatus::Failed,
                seat_number: booking.seat_number.clone(),
                customer_id: booking.customer_id.clone(),
            });
            let mut response = (StatusCode::CONFLICT, Json(body)).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
            return Ok(Some(response));
        }
        Claimed::Replay { status, body } => (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body),
        Claimed::Booked { booking_id } => {
            // Booked, but the request died before its answer was stored:
            // the answer is rebuilt from the booking row.
            let mut conn = state.db.acquire().await?;
            let row = storage::idempotency::booked_row(&mut conn, booking_id).await?.context("the key's booking is gone")?;
            let strategy: StrategyName = row.locking_strategy.parse().map_err(anyhow::Error::msg)?;
            let original = Booking { instance_id: row.instance_id.clone(), ..booking.clone() };
            let outcome = Outcome {
                verdict: Verdict::Booked(storage::Recorded { booking_id, holders: row.holders }),
                attempts: (strategy == StrategyName::Optimistic).then_some(row.attempts as u32),
                fencing_token: row.fencing_token,
                cluster: None,
            };
            let (status, body) = answer(strategy, &original, &outcome);
            storage::idempotency::store_answer(&state.db, key, status.as_u16(), &body).await?;
            (status, body)
        }
    };
    crate::metrics::idempotent_replay();
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(idempotency::REPLAYED, HeaderValue::from_static("true"));
    Ok(Some(response))
}

fn booking_status(outcome: &Outcome) -> BookingStatus {
    match outcome.verdict {
        Verdict::Booked(recorded) if recorded.holders > 1 => BookingStatus::DoubleBooked,
        Verdict::Booked(_) => BookingStatus::Confirmed,
        Verdict::Refused(_) => BookingStatus::Failed,
    }
}

fn refusal(outcome: &Outcome) -> Option<Refusal> {
    match outcome.verdict {
        Verdict::Refused(refusal) => Some(refusal),
        Verdict::Booked(_) => None,
    }
}

/// The answer to a booking: its status code and body (a JSON value, as it is
/// also stored under the booking's Idempotency-Key).
fn answer(strategy: StrategyName, booking: &Booking, outcome: &Outcome) -> (StatusCode, Value) {
    let seat = &booking.seat_number;
    let context = Served {
        event_id: booking.event_id,
        seat_number: seat.clone(),
        customer_id: booking.customer_id.clone(),
        strategy,
        instance: booking.instance_id.clone(),
        attempts: outcome.attempts,
        fencing_token: outcome.fencing_token,
    };
    let status = booking_status(outcome);
    let (code, body) = match outcome.verdict {
        Verdict::Booked(recorded) => {
            let (booking_count, message) = if recorded.holders > 1 {
                (Some(recorded.holders), format!("Seat {seat} is now held by {} bookings: {strategy} let the race through", recorded.holders))
            } else {
                (None, format!("Seat {seat} booked for {}", booking.customer_id))
            };
            (StatusCode::OK, serde_json::to_value(Booked { booking_id: recorded.booking_id, booking_count, message, status, context }))
        }
        Verdict::Refused(reason) => {
            let message = refusal_message(reason, seat, outcome);
            (StatusCode::CONFLICT, serde_json::to_value(Conflict::Refused(Refused { reason, message, status, context })))
        }
    };
    (code, body.expect("a booking answer is plain data"))
}

fn refusal_message(refusal: Refusal, seat: &str, outcome: &Outcome) -> String {
    match refusal {
        Refusal::SeatTaken => format!("Seat {seat} is already booked"),
        Refusal::LockBusy => {
            format!("Seat {seat} is locked by another booking in progress; try again")
        }
        Refusal::RetriesExhausted => {
            format!("Seat {seat} kept changing underneath; gave up after {} attempts", outcome.attempts.unwrap_or(1))
        }
        Refusal::StaleToken => format!(
            "Fencing token {} is stale: a newer lock holder reached seat {seat} first, so this write was refused",
            outcome.fencing_token.unwrap_or_default()
        ),
        Refusal::StaleStrategy => match outcome.cluster {
            Some(cluster) => format!(
                "The cluster switched to {} (epoch {}) while this booking of seat {seat} was in flight under an older \
                 strategy on a replica that had not caught up; nothing was written, retry",
                cluster.name, cluster.epoch
            ),
            None => format!("The cluster switched strategy while this booking of seat {seat} was in flight; nothing was written, retry"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::valid_seat_number;

    #[test]
    fn seat_numbers_are_letters_then_digits() {
        for good in ["A1", "J10", "AA1024", "z9"] {
            assert!(valid_seat_number(good), "{good} should be valid");
        }
        for bad in ["", "A", "1", "1A", "A-1", "A1B", "ABCDE1", "A12345", "Ä1", "A 1", "A1'; DROP"] {
            assert!(!valid_seat_number(bad), "{bad:?} should be invalid");
        }
    }
}
