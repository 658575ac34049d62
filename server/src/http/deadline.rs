//! The per-request deadline: no request waits without bound.
//!
//! Past `REQUEST_DEADLINE_MS` the client gets 504 with a message, and the
//! handler's future is dropped. Dropping it cannot half-write a booking: a
//! booking's work runs in its own task (see `book.rs`), which finishes its
//! one transaction whole or rolls it back, and stores its answer under the
//! request's Idempotency-Key, so a retry with the key learns what happened.
//! The seat map's event streams are the one exception: they stay open.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::Error;

pub(super) async fn enforce(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    // A seat stream is meant to stay open (it sends keep-alives instead).
    if request.uri().path().ends_with("/stream") {
        return next.run(request).await;
    }
    let booking = request.uri().path() == "/book";
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let mut message = format!("no answer within the request deadline (REQUEST_DEADLINE_MS = {} ms)", deadline.as_millis());
            if booking {
                message.push_str(
                    "; the booking may still complete: send the same request again with the same Idempotency-Key to learn its outcome",
                );
            }
            Error::DeadlineExceeded(message).into_response()
        }
    }
}
