//! `/holds`: hold a seat while paying, then confirm it into a booking,
//! release it, or let it expire (see `docs/holds.md`).
//!
//! - `POST /holds` takes a hold under the cluster's strategy: 201 with the
//!   hold and its `expires_at` (Postgres' clock), 200 with the customer's
//!   live hold when they already have one, 409 when the seat is not to be
//!   had, 429 with `Retry-After` past the per-customer cap.
//! - `POST /holds/{id}/confirm` books the held seat: 200 with the booking
//!   (the same body as `POST /book`), 410 when the hold expired or was
//!   released, 409 when another customer has the seat.
//! - `GET /holds/{id}` and `DELETE /holds/{id}` (idempotent).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::{LOCATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::book::{Booked, IDEMPOTENT_REPLAYED, idempotency_key, render};
use super::error::{Error, ErrorBody, Result};
use super::integer;
use crate::domain::{CustomerId, HoldStatus, SeatNumber, StrategyName};
use crate::holds::{Confirmation, HoldRequest, TTL_MS, Taken};
use crate::state::AppState;
use crate::storage::holds::Hold;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(take)).routes(routes!(get, release)).routes(routes!(confirm))
}

/// One customer asking to hold one seat while they pay.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"event_id": 1, "seat_number": "A1", "customer_id": "alice", "ttl_ms": 60000}))]
struct TakeRequest {
    #[schema(minimum = 1, example = 1)]
    #[serde(deserialize_with = "integer::exact")]
    event_id: i64,
    #[schema(pattern = r"^[A-Za-z]{1,4}[0-9]{1,4}$", example = "A1")]
    seat_number: String,
    /// Who holds: at most 255 characters, not blank, no control characters.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$", example = "alice")]
    customer_id: String,
    /// How long the hold keeps the seat, in milliseconds: 100 to 900000
    /// (default SEAT_HOLD_TTL_MS, 120000).
    #[schema(minimum = 100, maximum = 900_000, example = 60000)]
    #[serde(default, deserialize_with = "integer::optional")]
    ttl_ms: Option<i64>,
}

impl TakeRequest {
    fn parse(self) -> Result<HoldRequest> {
        if self.event_id <= 0 {
            return Err(Error::bad_request(format!("event_id must be a positive integer, got {}", self.event_id)));
        }
        if let Some(ttl_ms) = self.ttl_ms
            && !TTL_MS.contains(&ttl_ms)
        {
            return Err(Error::bad_request(format!(
                "ttl_ms must be between {} and {} milliseconds, got {ttl_ms}",
                TTL_MS.start(),
                TTL_MS.end()
            )));
        }
        Ok(HoldRequest {
            event_id: self.event_id,
            seat_number: SeatNumber::parse(&self.seat_number).map_err(Error::BadRequest)?,
            customer_id: CustomerId::parse(&self.customer_id).map_err(Error::BadRequest)?,
            ttl_ms: self.ttl_ms,
        })
    }
}

/// A hold's id in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct HoldPath {
    /// The hold's id, as `POST /holds` answered it.
    #[param(example = 1)]
    #[serde(deserialize_with = "integer::text")]
    id: i64,
}

/// One hold, as it stands now.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "hold_id": 7, "event_id": 1, "seat_number": "A1", "customer_id": "alice", "status": "held",
    "created_at": "2026-12-02T10:00:00Z", "expires_at": "2026-12-02T10:01:00Z", "remaining_ms": 59874,
    "strategy": "pessimistic", "instance": "replica-2"
}))]
struct HoldView {
    hold_id: i64,
    event_id: i64,
    seat_number: String,
    customer_id: String,
    /// `held` only while live by Postgres' clock; then `confirmed`,
    /// `released` or `expired`.
    status: HoldStatus,
    created_at: DateTime<Utc>,
    /// When the hold ends, by Postgres' clock.
    expires_at: DateTime<Utc>,
    /// When it was confirmed, released or swept.
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<DateTime<Utc>>,
    /// Milliseconds left while `held` (Postgres' clock); 0 otherwise.
    remaining_ms: i64,
    /// With `confirmed`: the booking the hold became.
    #[serde(skip_serializing_if = "Option::is_none")]
    booking_id: Option<i64>,
    /// The strategy the hold was taken under.
    strategy: String,
    /// The replica that wrote the hold.
    instance: String,
    /// `fenced` and `etcd` only: the fencing token the hold's write carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    fencing_token: Option<i64>,
}

impl From<Hold> for HoldView {
    fn from(hold: Hold) -> Self {
        Self {
            hold_id: hold.id,
            event_id: hold.event_id,
            seat_number: hold.seat_number,
            customer_id: hold.customer_id,
            status: hold.status,
            created_at: hold.created_at,
            expires_at: hold.expires_at,
            ended_at: hold.ended_at,
            remaining_ms: hold.remaining_ms,
            booking_id: hold.booking_id,
            strategy: hold.strategy,
            instance: hold.instance_id,
            fencing_token: hold.fencing_token,
        }
    }
}

/// The seat is held: the hold, and what happened.
#[derive(Serialize, ToSchema)]
struct HoldTaken {
    message: String,
    /// How many live holds the seat had with this one: above 1, the
    /// strategy let two customers hold one seat.
    hold_count: i64,
    /// The strategy the hold ran under.
    strategy_applied: StrategyName,
    #[serde(flatten)]
    hold: HoldView,
}

/// Why a hold request or a confirm was not granted; nothing was written.
#[derive(Serialize, ToSchema)]
struct HoldRefused {
    /// The stable code of this answer: the same as `reason`.
    code: String,
    /// `too_many_holds` (429), `hold_expired`, `hold_released` (410),
    /// `hold_lost` (409), `hold_confirmed` (409, on release),
    /// `request_in_progress` (409).
    reason: String,
    message: String,
    /// Always `failed`.
    status: String,
    /// The hold concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    hold: Option<HoldView>,
}

fn refused(status: StatusCode, reason: &str, message: String, hold: Option<Hold>) -> Response {
    let body = HoldRefused { code: reason.to_owned(), reason: reason.to_owned(), message, status: "failed".to_owned(), hold: hold.map(HoldView::from) };
    (status, Json(body)).into_response()
}

/// Holds a seat for a customer while they pay, under the cluster's current
/// strategy. Under `none` (and `mutex` across replicas) two customers can
/// both get a hold on one seat: the answer's `hold_count` says so.
#[utoipa::path(
    post, path = "/holds", tag = "holds", operation_id = "takeHold",
    request_body = TakeRequest,
    responses(
        (status = CREATED, description = "Held until `expires_at`", body = HoldTaken,
            headers(("Location" = String, description = "The hold: `/holds/{id}`"))),
        (status = OK, description = "The customer already holds this seat: their live hold", body = HoldTaken),
        (status = CONFLICT, description = "Not held: the seat is booked (`seat_taken`), held by another customer (`seat_held`), \
            its lock is busy, ...", body = super::book::Refused),
        (status = TOO_MANY_REQUESTS, description = "The customer already keeps SEAT_HOLDS_PER_CUSTOMER live holds", body = HoldRefused,
            headers(("Retry-After" = u64, description = "Seconds until the first of them ends"))),
        (status = BAD_REQUEST, description = "A field is invalid (`ttl_ms` out of range, ...); the message names it", body = ErrorBody),
        (status = NOT_FOUND, description = "The event has no such seat", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "The JSON lacks a field", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or the strategy's lock service is down; nothing was written", body = ErrorBody),
    ),
)]
async fn take(State(state): State<AppState>, payload: Result<Json<TakeRequest>, JsonRejection>) -> Result<Response> {
    let Json(request) = payload?;
    let request = request.parse()?;
    let seat = request.seat_number.clone();
    let response = match state.holds.take(request).await? {
        Taken::Held { hold, holds, existing, strategy } => {
            let message = if holds > 1 {
                format!("Seat {seat} is now held by {holds} customers: {strategy} let the race through")
            } else if existing {
                format!("{} already holds seat {seat}", hold.customer_id)
            } else {
                format!("Seat {seat} held for {} until {}", hold.customer_id, hold.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            };
            let location = format!("/holds/{}", hold.id);
            let body = HoldTaken { message, hold_count: holds, strategy_applied: strategy, hold: hold.into() };
            let status = if existing { StatusCode::OK } else { StatusCode::CREATED };
            let mut response = (status, Json(body)).into_response();
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
        }
        Taken::Refused(answer) => render(&answer),
        Taken::TooMany { live, limit, retry_after } => {
            let seconds = retry_after.as_millis().div_ceil(1000).max(1) as u64;
            let message = format!(
                "this customer already keeps {live} live holds (SEAT_HOLDS_PER_CUSTOMER is {limit}); confirm or release one, \
                 or retry in {seconds} s when the first expires"
            );
            let mut response = refused(StatusCode::TOO_MANY_REQUESTS, "too_many_holds", message, None);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    };
    Ok(response)
}

/// A hold as it stands: `held` (with the milliseconds left, by the
/// database's clock), `confirmed` or `expired`. A hold its customer
/// released is gone: 410.
#[utoipa::path(
    get, path = "/holds/{id}", tag = "holds", operation_id = "getHold",
    params(HoldPath),
    responses(
        (status = OK, description = "The hold", body = HoldView),
        (status = GONE, description = "The hold was released (`hold_released`); the body says when", body = HoldRefused),
        (status = BAD_REQUEST, description = "The id is not an integer", body = ErrorBody),
        (status = NOT_FOUND, description = "No hold has this id", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down", body = ErrorBody),
    ),
)]
async fn get(State(state): State<AppState>, id: Result<Path<HoldPath>, PathRejection>) -> Result<Response> {
    let Path(HoldPath { id }) = id?;
    let hold = state.holds.get(id).await?;
    if hold.status == HoldStatus::Released {
        return Ok(released(hold));
    }
    Ok(Json(HoldView::from(hold)).into_response())
}

/// A hold its customer released is gone, as `DELETE` promises: 410, with
/// what it was.
fn released(hold: Hold) -> Response {
    let message = format!(
        "hold {} was released at {} (the database's clock)",
        hold.id,
        hold.ended_at.unwrap_or(hold.expires_at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    refused(StatusCode::GONE, "hold_released", message, Some(hold))
}

/// Gives the hold back; its seat is on sale again at once. Idempotent: a
/// hold already released is answered as it stands. A hold that ran out
/// first is written down as expired (its seat freed, sweep or no sweep),
/// and answered 410.
#[utoipa::path(
    delete, path = "/holds/{id}", tag = "holds", operation_id = "releaseHold",
    params(HoldPath),
    responses(
        (status = OK, description = "The hold, now `released`", body = HoldView),
        (status = GONE, description = "The hold had expired before this release (`hold_expired`)", body = HoldRefused),
        (status = CONFLICT, description = "The hold was confirmed: it is a booking now (`hold_confirmed`)", body = HoldRefused),
        (status = BAD_REQUEST, description = "The id is not an integer", body = ErrorBody),
        (status = NOT_FOUND, description = "No hold has this id", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down; nothing was written", body = ErrorBody),
    ),
)]
async fn release(State(state): State<AppState>, id: Result<Path<HoldPath>, PathRejection>) -> Result<Response> {
    let Path(HoldPath { id }) = id?;
    let hold = state.holds.release(id).await?;
    match hold.status {
        HoldStatus::Confirmed => {
            let message = format!("hold {id} was confirmed (booking {}): it can no longer be released", hold.booking_id.unwrap_or_default());
            Ok(refused(StatusCode::CONFLICT, "hold_confirmed", message, Some(hold)))
        }
        HoldStatus::Expired => {
            let message = format!(
                "hold {id} had expired at {} (the database's clock): there was nothing left to release",
                hold.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            Ok(refused(StatusCode::GONE, "hold_expired", message, Some(hold)))
        }
        HoldStatus::Held | HoldStatus::Released => Ok(Json(HoldView::from(hold)).into_response()),
    }
}

/// Books the held seat, if the hold is still live by Postgres' clock and
/// still keeps its seat; in one transaction, so an expired hold can never
/// become a booking. Confirming again answers with the same booking.
#[utoipa::path(
    post, path = "/holds/{id}/confirm", tag = "holds", operation_id = "confirmHold",
    params(
        HoldPath,
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[\x20-\x7e]{1,255}$",
            description = "As for `POST /book`: every request with the same key gets the first one's answer"),
    ),
    responses(
        (status = OK, description = "Booked: the same body as `POST /book`", body = Booked,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same key"))),
        (status = GONE, description = "The hold expired (`hold_expired`) or was released (`hold_released`); nothing was written", body = HoldRefused),
        (status = CONFLICT, description = "Another customer has the seat (`hold_lost`: the strategy let their hold or booking over \
            this one), or the key's first request still runs (`request_in_progress`)", body = HoldRefused,
            headers(("Retry-After" = u64, description = "With `request_in_progress`: seconds to wait before retrying"))),
        (status = BAD_REQUEST, description = "The id is not an integer, or the Idempotency-Key is invalid", body = ErrorBody),
        (status = NOT_FOUND, description = "No hold has this id", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "The Idempotency-Key was first used with a different request", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Postgres is down; nothing was written", body = ErrorBody),
    ),
)]
async fn confirm(State(state): State<AppState>, headers: HeaderMap, id: Result<Path<HoldPath>, PathRejection>) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let Path(HoldPath { id }) = id?;
    let response = match state.holds.confirm(id, key).await? {
        Confirmation::Booked { answer, replayed } => {
            let mut response = render(&answer);
            if replayed {
                response.headers_mut().insert(IDEMPOTENT_REPLAYED.clone(), HeaderValue::from_static("true"));
            }
            response
        }
        Confirmation::Ended(hold) => {
            let (reason, how, at) = match hold.status {
                HoldStatus::Released => ("hold_released", "was released", hold.ended_at.unwrap_or(hold.expires_at)),
                _ => ("hold_expired", "expired", hold.expires_at),
            };
            let message = format!(
                "hold {id} on seat {} {how} at {} (the database's clock) before this confirm; nothing was booked",
                hold.seat_number,
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            refused(StatusCode::GONE, reason, message, Some(hold))
        }
        Confirmation::Lost(hold) => {
            let message = format!(
                "hold {id} no longer keeps seat {}: the {} strategy let another customer's hold or booking over it; nothing was booked",
                hold.seat_number, hold.strategy
            );
            refused(StatusCode::CONFLICT, "hold_lost", message, Some(hold))
        }
        Confirmation::InProgress { retry_after } => {
            let message = format!("a confirm of hold {id} with this Idempotency-Key is still running; retry in {} s", retry_after.as_secs());
            let mut response = refused(StatusCode::CONFLICT, "request_in_progress", message, None);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
            response
        }
    };
    Ok(response)
}
