//! Request bodies, read whole before any handler runs.
//!
//! Why not let each extractor read its own body: a request rejected without
//! its body being read (a wrong content type, no such route, a missing admin
//! token, a body over the limit) leaves bytes unread in the socket. hyper then
//! closes the connection, and the kernel turns a close with unread data into
//! a TCP reset, which can reach nginx before the answer does. nginx logs
//! "upstream prematurely closed connection", counts it as a failed attempt
//! against a healthy replica, and a few such requests take every replica out
//! of rotation (`docs/break-it.md`, "One bad client").
//!
//! So every body is read here first. Up to `BODY_LIMIT_BYTES` it is kept and
//! handed on; past it the rest is read and dropped, at most [`DRAIN_BYTES`],
//! and the client gets a whole 413 in the API's error shape. A body larger
//! than that, or one that has not arrived within [`READ_TIME`], is answered
//! with `Connection: close`, so the client knows the connection ends there.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::error::Error;

/// The most of an over-limit body read (and dropped) to answer it cleanly.
const DRAIN_BYTES: usize = 1024 * 1024;
/// The longest a body may take to arrive (408 past it).
const READ_TIME: Duration = Duration::from_secs(10);

/// How reading a body ended.
enum Read {
    /// All of it, within the limit.
    Whole(Vec<u8>),
    /// Over the limit, and read to its end (`drained`) or given up on.
    TooLarge { drained: bool },
    /// The client stopped sending before the body's end.
    Broken,
}

pub(super) async fn read_whole(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let read = match tokio::time::timeout(READ_TIME, read(body, limit)).await {
        Ok(read) => read,
        Err(_) => {
            let message = format!("the request body did not arrive within {} s", READ_TIME.as_secs());
            return closing(Error::RequestTimeout(message).into_response());
        }
    };
    match read {
        Read::Whole(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Read::TooLarge { drained } => {
            let message = format!("the request body is larger than {limit} bytes (BODY_LIMIT_BYTES)");
            let response = Error::PayloadTooLarge(message).into_response();
            if drained { response } else { closing(response) }
        }
        Read::Broken => Error::bad_request("the request body ended before its declared length").into_response(),
    }
}

async fn read(body: Body, limit: usize) -> Read {
    if body.size_hint().lower() > DRAIN_BYTES as u64 {
        return Read::TooLarge { drained: false };
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { return Read::Broken };
        total += chunk.len();
        if total <= limit {
            kept.extend_from_slice(&chunk);
        } else if total > DRAIN_BYTES {
            return Read::TooLarge { drained: false };
        }
    }
    if total > limit { Read::TooLarge { drained: true } } else { Read::Whole(kept) }
}

/// The answer, and word that the connection ends after it.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
