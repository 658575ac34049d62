//! Logs and traces.
//!
//! Logs go to stdout, filtered by `RUST_LOG`. With an OTLP endpoint configured,
//! every `tracing` span is also exported as an OpenTelemetry span (OTLP/HTTP,
//! batched on a background thread), with `service.name` and
//! `service.instance.id` on the resource. A request carrying a W3C
//! `traceparent` joins that trace. An `https://` endpoint is spoken to over
//! TLS (rustls).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Request;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::TelemetryConfig;

/// The OpenTelemetry SDK's own diagnostics are silenced: export failures are
/// reported once by [`QuietExporter`] instead of once per batch.
const QUIET_OTEL: &str = "opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,opentelemetry_http=off";

/// Keeps the tracer provider alive; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes the spans still queued. Blocking: call it off the async runtime.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::debug!(%error, "tracer shutdown");
        }
    }
}

/// Installs the global subscriber (and the OTLP exporter when configured).
pub fn init(config: &TelemetryConfig, service_name: &str, instance_id: &str) -> anyhow::Result<Telemetry> {
    // RUST_LOG filters the logs only: traces keep their spans whatever the
    // log level, so a quiet replica is still fully traced.
    let log_filter = EnvFilter::try_new(format!("{},{QUIET_OTEL}", config.log_filter))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_OTEL}")));
    let logs = if config.log_json {
        tracing_subscriber::fmt::layer().json().with_filter(log_filter).boxed()
    } else {
        // Colours on a terminal only, not in the cluster's log files.
        let ansi = std::io::stdout().is_terminal();
        tracing_subscriber::fmt::layer().with_ansi(ansi).with_filter(log_filter).boxed()
    };
    global::set_text_map_propagator(TraceContextPropagator::new());

    let Some(endpoint) = &config.otlp_endpoint else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry { provider: None });
    };
    let exporter = otlp_exporter(endpoint)?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.instance.id", instance_id.to_owned()))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(QuietExporter::new(exporter, endpoint.clone()))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("booking-service");
    let trace_filter = EnvFilter::new(format!("info,{QUIET_OTEL}"));
    tracing_subscriber::registry()
        .with(logs)
        .with(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(trace_filter))
        .init();
    tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
    Ok(Telemetry { provider: Some(provider) })
}

/// OTLP/HTTP with protobuf to `{endpoint}/v1/traces`, on reqwest's blocking
/// client: `http://` or `https://` (rustls, the system's roots).
fn otlp_exporter(endpoint: &str) -> anyhow::Result<opentelemetry_otlp::SpanExporter> {
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(Duration::from_secs(3))
        .build()?)
}

/// Wraps the OTLP exporter so that an unreachable collector is reported once
/// when it goes away and once when it is back, never once per batch; the
/// service keeps serving either way.
#[derive(Debug)]
struct QuietExporter<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
}

impl<E> QuietExporter<E> {
    fn new(inner: E, endpoint: String) -> Self {
        Self { inner, endpoint, failing: AtomicBool::new(false) }
    }
}

impl<E: SpanExporter> SpanExporter for QuietExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        match &result {
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(endpoint = %self.endpoint, %error, "cannot export traces; serving on, spans are dropped until the collector is back");
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = %self.endpoint, "trace export restored");
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The span every request runs in, named after its route, and joined to the
/// caller's trace when the request carries a `traceparent`.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let request_id = request.headers().get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or("");
    let span = tracing::info_span!(
        "request",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        url.path = request.uri().path(),
        request_id,
        http.response.status_code = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    // Before the span is entered: tracing-opentelemetry ignores a parent set later.
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(request.headers())));
    let _ = span.set_parent(parent);
    span
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// An `https://` collector gets a TLS handshake, not plain HTTP and not
    /// nothing: the exporter's HTTP client has TLS compiled in. (A listener
    /// that is not a TLS server then fails the handshake; what matters is
    /// the first bytes: a TLS handshake record, 0x16 0x03.)
    #[test]
    fn an_https_endpoint_is_spoken_to_over_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("https://{}", listener.local_addr().unwrap());
        let first_bytes = std::thread::spawn(move || {
            let (mut connection, _) = listener.accept().expect("the exporter connects");
            connection.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let mut head = [0u8; 3];
            connection.read_exact(&mut head).expect("the exporter sends its first bytes");
            head
        });
        let provider = SdkTracerProvider::builder().with_simple_exporter(super::otlp_exporter(&endpoint).unwrap()).build();
        provider.tracer("tls-probe").start("probe").end();
        let head = first_bytes.join().unwrap();
        assert_eq!(&head[..2], &[0x16, 0x03], "not a TLS handshake: {head:?} ({:?})", String::from_utf8_lossy(&head));
        let _ = provider.shutdown();
    }
}
