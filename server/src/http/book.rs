//! `POST /book`: one booking attempt under the cluster's current strategy.
//!
//! The response tells the truth about what happened: `confirmed` (200), the
//! seat was not to be had (409 with a `reason`), or `double_booked` (200) when
//! the strategy let a race through and the seat now has several holders.
//!
//! A booking first passes this replica's gate (closed while the cluster
//! switches strategy), then books under the strategy and epoch the replica
//! applies at that moment.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{Error, ErrorBody, Result};
use super::integer;
use crate::booking::{Answer, Decision, IdempotencyKey, Reply, Request};
use crate::domain::{BookingStatus, CustomerId, Refusal, SeatNumber, StrategyName};
use crate::state::AppState;

/// The request header that makes a booking safe to retry.
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on an answer that was replayed, not produced anew.
pub(super) static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(book))
}

/// One customer asking for one seat.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"event_id": 1, "seat_number": "A1", "customer_id": "alice"}))]
struct BookRequest {
    /// The event; the seeded one is 1.
    #[schema(minimum = 1, example = 1)]
    #[serde(deserialize_with = "integer::exact")]
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
pub(super) struct Booked {
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
    "code": "seat_taken", "reason": "seat_taken", "message": "Seat A1 is already booked", "status": "failed", "event_id": 1,
    "seat_number": "A1", "customer_id": "bob", "strategy": "pessimistic", "instance": "replica-1"
}))]
pub(super) struct Refused {
    /// The stable code of this answer: the same as `reason`.
    code: Refusal,
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
    /// `fenced` and `etcd` only: the fencing token the write carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    fencing_token: Option<i64>,
}

/// The first request with this Idempotency-Key is still running; retry
/// after `Retry-After` seconds.
#[derive(Serialize, ToSchema)]
struct InProgress {
    /// The stable code of this answer: the same as `reason`.
    code: InProgressReason,
    reason: InProgressReason,
    message: String,
    /// Always `failed`.
    status: BookingStatus,
    seat_number: String,
    customer_id: String,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
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
    /// Checks every field a client could get wrong, naming the field; the
    /// seat and customer come out typed, checked once.
    fn parse(self, key: Option<IdempotencyKey>) -> Result<Request> {
        if self.event_id <= 0 {
            return Err(Error::bad_request(format!("event_id must be a positive integer, got {}", self.event_id)));
        }
        Ok(Request {
            event_id: self.event_id,
            seat_number: SeatNumber::parse(&self.seat_number).map_err(Error::BadRequest)?,
            customer_id: CustomerId::parse(&self.customer_id).map_err(Error::BadRequest)?,
            key,
        })
    }
}

/// The request's Idempotency-Key, if it has one; 400 naming the header when
/// it is malformed.
pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>> {
    let Some(value) = headers.get(&IDEMPOTENCY_KEY) else { return Ok(None) };
    IdempotencyKey::parse_bytes(value.as_bytes()).map(Some).map_err(Error::BadRequest)
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
                ("Retry-After" = u64, description = "With `request_in_progress`, `lock_busy`, `retries_exhausted` and `stale_strategy` \
                    (a retry may succeed): seconds to wait before retrying"),
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
    let key = idempotency_key(&headers)?;
    let Json(request) = payload?;
    let request = request.parse(key)?;
    let (seat, customer, key) = (request.seat_number.clone(), request.customer_id.clone(), request.key.clone());
    let response = match state.bookings.book(request).await? {
        Reply::Answered(answer) => render(&answer),
        Reply::Replayed(answer) => {
            let mut response = render(&answer);
            response.headers_mut().insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
            response
        }
        Reply::InProgress { retry_after } => {
            let body = Conflict::InProgress(InProgress {
                code: InProgressReason::RequestInProgress,
                reason: InProgressReason::RequestInProgress,
                message: format!(
                    "A request with Idempotency-Key {:?} is still running; retry in {} s",
                    key.as_ref().map_or("", IdempotencyKey::as_str),
                    retry_after.as_secs()
                ),
                status: BookingStatus::Failed,
                seat_number: seat.to_string(),
                customer_id: customer.to_string(),
            });
            let mut response = (StatusCode::CONFLICT, Json(body)).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
            response
        }
    };
    Ok(response)
}

/// An answer as HTTP: 200 with [`Booked`], or 409 with [`Refused`].
pub(super) fn render(answer: &Answer) -> Response {
    let seat = &answer.seat_number;
    let strategy = answer.strategy;
    let context = Served {
        event_id: answer.event_id,
        seat_number: seat.to_string(),
        customer_id: answer.customer_id.to_string(),
        strategy,
        instance: answer.instance.clone(),
        attempts: answer.attempts,
        fencing_token: answer.fencing_token,
    };
    let status = answer.status();
    match answer.decision {
        Decision::Booked { booking_id, holders, .. } => {
            let (booking_count, message) = if status == BookingStatus::DoubleBooked {
                (Some(holders), format!("Seat {seat} is now held by {holders} bookings: {strategy} let the race through"))
            } else {
                (None, format!("Seat {seat} booked for {}", answer.customer_id))
            };
            (StatusCode::OK, Json(Booked { booking_id, booking_count, message, status, context })).into_response()
        }
        Decision::Refused { reason, .. } => {
            let message = refusal_message(reason, answer);
            let mut response =
                (StatusCode::CONFLICT, Json(Conflict::Refused(Refused { code: reason, reason, message, status, context }))).into_response();
            if retry_cures(reason) {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
            }
            response
        }
    }
}

/// Whether the same request a moment later may well succeed: the seat was
/// not taken, only contended. Those answers carry `Retry-After: 1`.
fn retry_cures(refusal: Refusal) -> bool {
    matches!(refusal, Refusal::LockBusy | Refusal::RetriesExhausted | Refusal::StaleStrategy)
}

pub(super) fn refusal_message(refusal: Refusal, answer: &Answer) -> String {
    let seat = &answer.seat_number;
    match refusal {
        Refusal::SeatTaken => format!("Seat {seat} is already booked"),
        Refusal::SeatHeld => format!("Seat {seat} is held by another customer until their hold is confirmed, released or expires"),
        Refusal::LockBusy => {
            format!("Seat {seat} is locked by another booking in progress; try again")
        }
        Refusal::RetriesExhausted => {
            format!("Seat {seat} kept changing underneath; gave up after {} attempts", answer.attempts.unwrap_or(1))
        }
        Refusal::StaleToken => format!(
            "Fencing token {} is stale: a newer lock holder reached seat {seat} first, so this write was refused",
            answer.fencing_token.unwrap_or_default()
        ),
        Refusal::StaleStrategy => match answer.decision {
            Decision::Refused { cluster: Some(cluster), .. } => format!(
                "The cluster switched to {} (epoch {}) while this booking of seat {seat} was in flight under an older \
                 strategy on a replica that had not caught up; nothing was written, retry",
                cluster.name, cluster.epoch
            ),
            _ => format!("The cluster switched strategy while this booking of seat {seat} was in flight; nothing was written, retry"),
        },
    }
}
