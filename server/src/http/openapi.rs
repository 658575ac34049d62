//! The API's own description: an OpenAPI 3.1 document built from the
//! handlers' `#[utoipa::path]` attributes, served at `/openapi.json`, with
//! Swagger UI (its assets compiled into the binary) at `/docs`.
//!
//! Each handler declares its parameters, body and the answers it gives
//! itself. What the middleware adds to every operation is declared here,
//! once, next to the reason: the JSON extractor's rejections on every
//! operation with a body, the deadline's 504, the admin token's 401 and
//! security requirement, the `X-Instance-Id` / `X-Request-Id` headers on
//! every answer, and `Retry-After` on every 503. Links between operations (an event created, then booked,
//! reset or deleted; a hold taken, then read, confirmed or released) let
//! Schemathesis chain them into stateful sequences.

use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HttpMethod, ObjectBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder, Type};
use utoipa::Modify;
use utoipa_swagger_ui::SwaggerUi;

use super::error::ErrorBody;

/// The security scheme the admin operations require when `ADMIN_TOKEN` is set.
pub(crate) const ADMIN_SCHEME: &str = "admin_token";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Ticket-booking concurrency lab",
        description = "Several replicas of one booking service behind nginx, sharing Postgres and Redis. \
            Switch the cluster's locking strategy with `POST /admin/strategy`, race bookings of one seat with \
            `POST /book`, and see which strategies double-book (`none`, and `mutex` across replicas) and which hold. \
            Every example works against the seeded event 1 (100 seats, rows A to J).",
        license(name = "MIT"),
    ),
    tags(
        (name = "booking", description = "Book a seat under the cluster's current strategy"),
        (name = "holds", description = "Hold a seat while paying, then confirm, release or let it expire (docs/holds.md)"),
        (name = "events", description = "Events and their seats"),
        (name = "admin", description = "Switch strategy, reset, create and delete events, inspect the cluster. \
            Requires `Authorization: Bearer <ADMIN_TOKEN>` when the replicas have a token set"),
        (name = "operations", description = "Health, readiness and Prometheus metrics"),
    ),
    components(schemas(ErrorBody)),
)]
pub(crate) struct ApiDoc;

/// Completes the document the handlers built: what the middleware adds, and
/// the links. (utoipa's own `modifiers` would run before the routes are
/// merged in, on a document without paths.)
pub(super) fn finish(mut document: OpenApi, token_required: bool) -> OpenApi {
    Middleware { token_required }.modify(&mut document);
    Chains.modify(&mut document);
    HoldChains.modify(&mut document);
    document
}

/// Serves the finished document at `/openapi.json` and Swagger UI at `/docs`.
pub(super) fn router<S: Clone + Send + Sync + 'static>(document: OpenApi) -> Router<S> {
    SwaggerUi::new("/docs").url("/openapi.json", document).into()
}

/// What the layers in [`super::router`] add to every operation. The admin
/// token's requirement and 401 only when the replica has a token: without
/// one, admin is open, and a document that said otherwise would be wrong.
struct Middleware {
    token_required: bool,
}

impl Modify for Middleware {
    fn modify(&self, openapi: &mut OpenApi) {
        if self.token_required {
            let components = openapi.components.get_or_insert_with(Default::default);
            components.add_security_scheme(
                ADMIN_SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("The replicas' ADMIN_TOKEN")).build(),
                ),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                if operation.request_body.is_some() {
                    // axum's `Json` extractor answers these before the handler runs.
                    add_error(operation, "400", "The body is not valid JSON");
                    add_error(operation, "413", "The body is larger than BODY_LIMIT_BYTES");
                    add_error(operation, "415", "The body is not `Content-Type: application/json`");
                    add_error(operation, "422", "The JSON lacks a field or has one of the wrong type");
                }
                if self.token_required && path.starts_with("/admin/") {
                    operation.security = Some(vec![SecurityRequirement::new(ADMIN_SCHEME, Vec::<String>::new())]);
                    add_error(operation, "401", "ADMIN_TOKEN is set and the request's `Authorization: Bearer` token is missing or wrong");
                }
                if method != HttpMethod::Get || !["/health", "/metrics"].contains(&path.as_str()) {
                    add_error(operation, "504", "The request ran past REQUEST_DEADLINE_MS; a booking under way still finishes whole");
                }
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response {
                        add_replica_headers(response);
                        if status == "503" {
                            add_retry_after(response);
                        }
                    }
                }
            }
        }
    }
}

/// Links from a created event to the operations that take its id, so a
/// stateful run creates an event, books it, reads it, resets and deletes it.
struct Chains;

impl Modify for Chains {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(create) = openapi.paths.paths.get_mut("/admin/events").and_then(|item| item.post.as_mut()) else { return };
        let Some(RefOr::T(created)) = create.responses.responses.get_mut("201") else { return };
        let id = "$response.body#/event/id";
        for (name, operation, parameter) in [
            ("GetEvent", "getEvent", "id"),
            ("ListSeats", "listSeats", "id"),
            ("ResetEvent", "resetEvent", "event_id"),
            ("DeleteEvent", "deleteEvent", "id"),
            ("DoubleBookings", "doubleBookings", "event_id"),
        ] {
            created.links.insert(name.to_owned(), LinkBuilder::new().operation_id(operation).parameter(parameter, id).build().into());
        }
        created.links.insert(
            "Book".to_owned(),
            LinkBuilder::new()
                .operation_id("book")
                .request_body(Some(serde_json::json!({ "event_id": id, "seat_number": "A1", "customer_id": "stateful" })))
                .build()
                .into(),
        );
    }
}

/// Links from a hold taken to the operations that take its id, so a stateful
/// run holds a seat, then reads, confirms or releases that hold.
struct HoldChains;

impl Modify for HoldChains {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(take) = openapi.paths.paths.get_mut("/holds").and_then(|item| item.post.as_mut()) else { return };
        for status in ["201", "200"] {
            let Some(RefOr::T(taken)) = take.responses.responses.get_mut(status) else { continue };
            for (name, operation) in [("GetHold", "getHold"), ("ConfirmHold", "confirmHold"), ("ReleaseHold", "releaseHold")] {
                let link = LinkBuilder::new().operation_id(operation).parameter("id", "$response.body#/hold/hold_id").build();
                taken.links.insert(name.to_owned(), link.into());
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

/// Adds an error answer with the shared body, unless the handler declared
/// that status itself.
fn add_error(operation: &mut Operation, status: &str, description: &str) {
    operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build()
            .into()
    });
}

/// Every 503 is an outage a client can wait out.
fn add_retry_after(response: &mut Response) {
    let seconds = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).build();
    response.headers.insert(
        "Retry-After".to_owned(),
        HeaderBuilder::new().schema(Some(seconds)).description(Some("Seconds to wait before trying again")).build().into(),
    );
}

fn add_replica_headers(response: &mut Response) {
    let text = || ObjectBuilder::new().schema_type(Type::String).build();
    response.headers.insert(
        "X-Instance-Id".to_owned(),
        HeaderBuilder::new().schema(Some(text())).description(Some("The replica that answered (INSTANCE_ID)")).build().into(),
    );
    response.headers.insert(
        "X-Request-Id".to_owned(),
        HeaderBuilder::new().schema(Some(text())).description(Some("The request's id: the client's, or a new UUID")).build().into(),
    );
}

/// The whole document, as a replica with (or without) an `ADMIN_TOKEN`
/// serves it, for a test or a tool that wants it without a server.
pub fn document(token_required: bool) -> OpenApi {
    finish(super::api().split_for_parts().1, token_required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_admin_operation_requires_the_token_scheme() {
        let document = document(true);
        let admin = document.paths.paths.iter().filter(|(path, _)| path.starts_with("/admin/"));
        let mut count = 0;
        for (path, item) in admin {
            let mut item = item.clone();
            for (_method, operation) in operations(&mut item) {
                let security = serde_json::to_value(&operation.security).unwrap();
                assert_eq!(security, serde_json::json!([{ ADMIN_SCHEME: [] }]), "{path}");
                assert!(operation.responses.responses.contains_key("401"), "{path} declares no 401");
                count += 1;
            }
        }
        assert!(count >= 8, "only {count} admin operations");
    }
}
