//! `GET /health` (liveness) and `GET /ready` (Postgres and Redis reachable).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::StrategyName;
use super::error::{Error, ErrorBody, ErrorCode};
use crate::state::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HealthQuery {
    /// `/health?ready=true` is `/ready`.
    #[serde(default)]
    #[param(required = false)]
    ready: bool,
}

/// The replica is up.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "service": "booking-service", "instance": "replica-1", "strategy": "pessimistic"}))]
struct Health {
    status: Alive,
    service: String,
    instance: String,
    /// The strategy this replica applies.
    strategy: StrategyName,
}

/// Always `ok`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Alive {
    Ok,
}

/// Whether the replica's backends answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "instance": "replica-1", "checks": {"postgres": "ok", "redis": "ok"}}))]
struct Readiness {
    status: ReadyStatus,
    /// With a 503: `unavailable`, as every outage answer has.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ErrorCode>,
    instance: String,
    checks: Checks,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum ReadyStatus {
    Ready,
    Unavailable,
}

/// `ok`, or what went wrong, per backend.
#[derive(Serialize, ToSchema)]
struct Checks {
    postgres: String,
    redis: String,
}

/// What `/health` answers: liveness, or with `?ready=true` readiness.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum HealthAnswer {
    Live(Health),
    Ready(Readiness),
}

/// Liveness: the process answers. With `?ready=true`, the same as `/ready`.
#[utoipa::path(
    get, path = "/health", tag = "operations", operation_id = "health",
    params(HealthQuery),
    responses(
        (status = OK, description = "The replica is alive (or, with `ready=true`, ready)", body = HealthAnswer),
        (status = BAD_REQUEST, description = "`ready` is not a boolean", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "With `ready=true`: Postgres or Redis does not answer", body = HealthAnswer),
    ),
)]
async fn health(State(state): State<AppState>, query: Result<Query<HealthQuery>, QueryRejection>) -> Response {
    match query {
        Ok(Query(query)) if query.ready => {
            let (status, readiness) = readiness(&state).await;
            return (status, retry_after(&readiness), Json(HealthAnswer::Ready(readiness))).into_response();
        }
        Ok(_) => {}
        Err(rejection) => return Error::from(rejection).into_response(),
    }
    Json(HealthAnswer::Live(Health {
        status: Alive::Ok,
        service: state.service_name.clone(),
        instance: state.instance_id.clone(),
        strategy: state.active.current().name,
    }))
    .into_response()
}

/// Readiness: Postgres and Redis both answer within a second.
#[utoipa::path(
    get, path = "/ready", tag = "operations", operation_id = "ready",
    responses(
        (status = OK, description = "Both backends answer", body = Readiness),
        (status = SERVICE_UNAVAILABLE, description = "Postgres or Redis does not answer; `checks` says which", body = Readiness),
    ),
)]
async fn ready(State(state): State<AppState>) -> Response {
    let (status, readiness) = readiness(&state).await;
    (status, retry_after(&readiness), Json(readiness)).into_response()
}

/// Not ready is an outage like any other 503: `Retry-After` as its code
/// (`unavailable`) says, the same as every error answer with that code.
fn retry_after(readiness: &Readiness) -> Option<[(HeaderName, HeaderValue); 1]> {
    readiness.code.and_then(ErrorCode::retry_after).map(|seconds| [(RETRY_AFTER, HeaderValue::from(seconds))])
}

async fn readiness(state: &AppState) -> (StatusCode, Readiness) {
    let postgres = check(sqlx::query("SELECT 1").execute(&state.db)).await;
    let redis = check(redis::cmd("PING").query_async::<String>(&mut state.redis.clone())).await;
    let ready = postgres == "ok" && redis == "ok";
    let body = Readiness {
        status: if ready { ReadyStatus::Ready } else { ReadyStatus::Unavailable },
        code: (!ready).then_some(ErrorCode::Unavailable),
        instance: state.instance_id.clone(),
        checks: Checks { postgres, redis },
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body)
}

/// "ok", or what went wrong.
async fn check<T, E: std::fmt::Display>(probe: impl Future<Output = Result<T, E>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(error)) => error.to_string(),
        Err(_) => format!("no answer within {} ms", CHECK_TIMEOUT.as_millis()),
    }
}
