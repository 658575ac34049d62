//! Logging and request spans.

use axum::http::Request;
use tracing::Span;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::TelemetryConfig;

/// Installs the global subscriber: human-readable or JSON lines on stdout,
/// filtered by `RUST_LOG`.
pub fn init(config: &TelemetryConfig) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if config.log_json {
        registry.with(tracing_subscriber::fmt::layer().json()).init();
    } else {
        registry.with(tracing_subscriber::fmt::layer()).init();
    }
}

/// The span every request runs in.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let request_id = request.headers().get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %request.method(), uri = %request.uri(), request_id)
}
