//! The HTTP API: one module per resource, each with its own `router()`.

mod admin;
mod book;
mod events;
mod health;
mod metrics;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::{Router, middleware};
use tracing::Span;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::error::Error;

pub(crate) static X_INSTANCE_ID: HeaderName = HeaderName::from_static("x-instance-id");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole API with its middleware.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let instance = HeaderValue::from_str(&state.instance_id).unwrap_or_else(|_| HeaderValue::from_static("invalid-instance-id"));
    Router::new()
        .merge(health::router())
        .merge(events::router())
        .merge(book::router())
        .merge(admin::router())
        .merge(metrics::router())
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(body_limit))
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
