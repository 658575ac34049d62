//! `GET /health` (liveness) and `GET /ready` (Postgres and Redis reachable).

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::Error;
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health)).route("/ready", get(ready))
}

#[derive(Deserialize)]
struct HealthQuery {
    /// `/health?ready=true` is `/ready`.
    #[serde(default)]
    ready: bool,
}

async fn health(State(state): State<AppState>, query: Result<Query<HealthQuery>, QueryRejection>) -> Response {
    match query {
        Ok(Query(query)) if query.ready => return ready(State(state)).await,
        Ok(_) => {}
        Err(rejection) => return Error::from(rejection).into_response(),
    }
    Json(json!({
        "status": "ok",
        "service": state.service_name,
        "instance": state.instance_id,
        "strategy": state.active.current().name,
    }))
    .into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let postgres = check(sqlx::query("SELECT 1").execute(&state.db)).await;
    let redis = check(redis::cmd("PING").query_async::<String>(&mut state.redis.clone())).await;
    let ready = postgres == "ok" && redis == "ok";
    let body: Value = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "instance": state.instance_id,
        "checks": { "postgres": postgres, "redis": redis },
    });
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

/// "ok", or what went wrong.
async fn check<T, E: std::fmt::Display>(probe: impl Future<Output = Result<T, E>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
    }
}
