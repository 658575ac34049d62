//! A real OTLP/HTTP trace receiver for the tests: it accepts
//! `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf, as a
//! collector or Jaeger does, and keeps every span it was sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use tokio_util::sync::CancellationToken;

/// One received span, flattened.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub parent_span_id: String,
    pub name: String,
    /// Resource attributes (`service.name`, `service.instance.id`) and span
    /// attributes together.
    pub attributes: HashMap<String, String>,
}

pub struct OtlpReceiver {
    pub url: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
    stop: CancellationToken,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let app = Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await });
        Self { url, spans, stop }
    }

    pub fn spans_of_trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap().iter().filter(|span| span.trace_id == trace_id).cloned().collect()
    }

    /// Stops listening: from now on the collector is unreachable.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn receive(State(spans): State<Arc<Mutex<Vec<ReceivedSpan>>>>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf trace export");
    let mut received = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource: HashMap<String, String> = resource_spans
            .resource
            .map(|resource| resource.attributes.into_iter().map(|kv| (kv.key, text(kv.value.and_then(|v| v.value)))).collect())
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let mut attributes = resource.clone();
                attributes.extend(span.attributes.into_iter().map(|kv| (kv.key, text(kv.value.and_then(|v| v.value)))));
                received.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes,
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse.
    Vec::new()
}

fn text(value: Option<Value>) -> String {
    match value {
        Some(Value::StringValue(text)) => text,
        Some(Value::IntValue(number)) => number.to_string(),
        Some(Value::BoolValue(flag)) => flag.to_string(),
        Some(Value::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
