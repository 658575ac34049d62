//! The HTTP API: one module per resource, each with its own `router()` of
//! handlers that describe themselves for the OpenAPI document
//! (`openapi`), plus the middleware every request passes (the admin
//! token, the deadline, the body read whole and within its limit), the
//! listener whose connections close without a reset (`linger`), the seat
//! map page (`ui`), the one error type every handler answers with
//! (`error`, each error with a stable code), and integers read by JSON
//! Schema's rules in bodies, paths and queries (`integer`).

mod admin;
mod admin_token;
mod body;
mod book;
mod deadline;
pub mod error;
mod events;
mod health;
mod holds;
mod integer;
mod linger;
mod metrics;
mod openapi;
mod rows;
mod stream;
mod ui;

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::{Router, middleware};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use admin_token::AdminToken;
pub(crate) use linger::LingeringListener;
pub use openapi::document as openapi_document;

use crate::state::AppState;
use error::Error;

pub(crate) static X_INSTANCE_ID: HeaderName = HeaderName::from_static("x-instance-id");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the middleware enforces.
#[derive(Clone)]
pub struct Limits {
    /// Largest request body, in bytes (413 past it).
    pub body_bytes: usize,
    /// Longest a request may take (504 past it).
    pub deadline: Duration,
    /// The token `/admin/*` wants, if any (401 without it).
    pub admin_token: AdminToken,
}

/// Every documented route, without state or middleware.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(events::router())
        .merge(stream::router())
        .merge(book::router())
        .merge(holds::router())
        .merge(admin::router())
        .merge(metrics::router())
}

/// The whole API with its middleware.
pub fn router(state: AppState, limits: Limits) -> Router {
    let instance = HeaderValue::from_str(&state.instance_id).unwrap_or_else(|_| HeaderValue::from_static("invalid-instance-id"));
    let (api, document) = api().split_for_parts();
    Router::new()
        .merge(api)
        .merge(openapi::router(openapi::finish(document, limits.admin_token.is_set())))
        .merge(ui::router())
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(limits.admin_token, admin_token::guard_admin))
        .layer(middleware::from_fn_with_state(limits.deadline, deadline::enforce))
        .layer(middleware::from_fn_with_state(limits.body_bytes, body::read_whole))
        .layer(middleware::from_fn(crate::metrics::track_http))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_response(|response: &Response, _latency, span: &Span| {
                    span.record("http.response.status_code", response.status().as_u16());
                }),
        )
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeRequestUuid))
        .layer(SetResponseHeaderLayer::overriding(X_INSTANCE_ID.clone(), instance))
        .with_state(state)
}

async fn no_route(method: Method, uri: Uri) -> Error {
    Error::not_found(format!("no route for {method} {}", uri.path()))
}

/// A route asked with a method it does not take; axum adds the `Allow`
/// header that lists the ones it does.
async fn wrong_method(method: Method, uri: Uri) -> Error {
    Error::MethodNotAllowed(format!("{} does not take {method}: the Allow header lists the methods it does", uri.path()))
}
