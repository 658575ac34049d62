//! The one error type of the HTTP layer.
//!
//! Each variant names the status it answers with. Client mistakes are 4xx with a
//! message that says what was wrong; `Internal` is a 500 whose cause chain is
//! logged and never sent to the client. The layers below return their own
//! errors (`crate::error`, `crate::booking::Error`); the `From` impls here
//! are the one place they become status codes.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::booking;
use crate::storage::pipelined::DbError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request was understood but a value in it is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// 422 (or 400/415 as axum decides): the JSON body could not be read.
    #[error(transparent)]
    Json(#[from] JsonRejection),
    /// 400: the query string could not be read.
    #[error(transparent)]
    Query(#[from] QueryRejection),
    /// 400: a path segment is not what the route expects (e.g. a non-numeric id).
    #[error(transparent)]
    Path(#[from] PathRejection),
    /// 401: an `/admin/*` request without the right `Authorization: Bearer`
    /// token (only when `ADMIN_TOKEN` is set).
    #[error("{0}")]
    Unauthorized(String),
    /// 408: the request body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// 413: the request body is larger than `BODY_LIMIT_BYTES`.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 404: the named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, but not with this method.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409: the request clashes with the cluster's state (another switch
    /// under way, the seed event); the code says which.
    #[error("{1}")]
    Conflict(ErrorCode, String),
    /// 422: the request is well formed but cannot be processed (an
    /// idempotency key reused with a different request).
    #[error("{0}")]
    Unprocessable(String),
    /// 503: a backend (Postgres or a lock service) cannot be reached; nothing was written.
    #[error("{what} is unavailable: {detail}")]
    Unavailable { what: &'static str, detail: String },
    /// 504: the request ran past `REQUEST_DEADLINE_MS`. A booking already
    /// under way still finishes whole (or not at all) in its own task.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// 500: a bug or an unexpected backend failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) | Self::Query(_) | Self::Path(_) => ErrorCode::InvalidInput,
            Self::Json(JsonRejection::JsonSyntaxError(_)) => ErrorCode::MalformedRequest,
            Self::Json(JsonRejection::MissingJsonContentType(_)) => ErrorCode::UnsupportedMediaType,
            Self::Json(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            Self::Json(rejection) if rejection.status() == StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
            Self::Json(_) => ErrorCode::MalformedRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::RequestTimeout(_) => ErrorCode::RequestTimeout,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            Self::Conflict(code, _) => *code,
            Self::Unprocessable(_) => ErrorCode::IdempotencyKeyReused,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::DeadlineExceeded(_) => ErrorCode::DeadlineExceeded,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Query(_) | Self::Path(_) => StatusCode::BAD_REQUEST,
            Self::Json(rejection) => rejection.status(),
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(..) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// What went wrong, as a program reads it: stable across releases, unlike
/// the message. Answers that are not errors of the request itself (a seat
/// refused, a hold ended) carry codes of their own: their `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: a field, header or parameter has a value the API does not take; the message names it.
    InvalidInput,
    /// 400: the body is not JSON, or nginx could not read the request.
    MalformedRequest,
    /// 401: `/admin/*` without the right `Authorization: Bearer` token.
    Unauthorized,
    /// 404: no such event, seat, hold or route.
    NotFound,
    /// 405: a method the route does not take; `Allow` lists the ones it does.
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: another strategy switch or reset is under way; retry after `Retry-After`.
    SwitchInProgress,
    /// 409: event 1 is the seed event the exercises use: reset it, do not delete it.
    SeedEvent,
    /// 411: a body without a length (nginx).
    LengthRequired,
    /// 413: the body is larger than `BODY_LIMIT_BYTES`.
    PayloadTooLarge,
    /// 414: the request line is too long (nginx).
    UriTooLong,
    /// 415: the body is not `Content-Type: application/json`.
    UnsupportedMediaType,
    /// 422: the JSON lacks a field or has one of the wrong type.
    InvalidBody,
    /// 422: the Idempotency-Key was first used with a different request.
    IdempotencyKeyReused,
    /// 500: a bug; the replica logged its cause.
    Internal,
    /// 502: no replica answered (nginx).
    NoReplica,
    /// 503: Postgres or a lock service is down; nothing was written. Retry after `Retry-After`.
    Unavailable,
    /// 504: the request ran past `REQUEST_DEADLINE_MS` (or nginx's read timeout).
    DeadlineExceeded,
}

impl ErrorCode {
    /// Seconds a client should wait before trying again, for the errors a
    /// retry can cure.
    pub fn retry_after(self) -> Option<u64> {
        match self {
            Self::Unavailable | Self::SwitchInProgress => Some(1),
            _ => None,
        }
    }
}

impl From<crate::error::Error> for Error {
    /// Not found is 404, a clash 409, an outage 503, a bug 500.
    fn from(error: crate::error::Error) -> Self {
        use crate::error::Error as Below;
        match error {
            Below::NotFound(message) => Self::NotFound(message),
            Below::Conflict(message) => Self::Conflict(ErrorCode::SwitchInProgress, message),
            Below::Unavailable { what, detail } => Self::Unavailable { what, detail },
            Below::Internal(cause) => Self::Internal(cause),
        }
    }
}

impl From<booking::Error> for Error {
    /// A key reused for another request is 422; the rest as above. (A key
    /// whose first request still runs is an answer, not an error: see
    /// `http::book`.)
    fn from(error: booking::Error) -> Self {
        match error {
            booking::Error::KeyReused { key } => Self::Unprocessable(format!(
                "Idempotency-Key {key:?} was first used with a different request (event, seat or customer); use a new key"
            )),
            booking::Error::Failed(error) => error.into(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        crate::error::Error::from(error).into()
    }
}

impl From<DbError> for Error {
    fn from(error: DbError) -> Self {
        crate::error::Error::from(error).into()
    }
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        crate::error::Error::from(error).into()
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "internal server error".to_owned()
            }
            Self::Unavailable { .. } => {
                tracing::warn!(error = %self, "backend unavailable");
                self.to_string()
            }
            Self::Json(rejection) => rejection.body_text(),
            Self::Query(rejection) => rejection.body_text(),
            Self::Path(rejection) => rejection.body_text(),
            other => other.to_string(),
        };
        let mut response = (status, Json(ErrorBody { status: ErrorStatus::Error, code, error: message })).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="booking-admin""#));
        }
        if let Some(seconds) = code.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The body of every error answer, whatever its status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"status": "error", "code": "not_found", "error": "event 99 does not exist"}))]
pub struct ErrorBody {
    pub status: ErrorStatus,
    pub code: ErrorCode,
    /// What went wrong, in words a client can act on.
    pub error: String,
}

/// Always `error`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorStatus {
    Error,
}
