//! The admin token: with `ADMIN_TOKEN` set, every `/admin/*` route wants
//! `Authorization: Bearer <token>`.
//!
//! The comparison is constant-time (`subtle`), so the time a wrong guess
//! takes says nothing about how much of it was right. Without a token admin
//! stays open, which is the lab's default on a laptop; the replica logs that
//! once at start-up.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::error::Error;

/// The token admin requests must carry; `None` leaves admin open.
#[derive(Clone, Default)]
pub struct AdminToken(Option<Arc<str>>);

impl AdminToken {
    pub fn new(token: Option<&str>) -> Self {
        Self(token.filter(|token| !token.is_empty()).map(Arc::from))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Whether `authorization` (the header's value) carries the token.
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(expected) = &self.0 else { return true };
        let Some(presented) = authorization.and_then(bearer) else { return false };
        presented.ct_eq(expected.as_bytes()).into()
    }
}

/// The credentials of an `Authorization: Bearer <credentials>` value (the
/// scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii())
}

/// Middleware: every path under `/admin/` (an unknown one too, so that
/// without the token nobody learns which exist) wants the token.
pub(super) async fn guard_admin(State(token): State<AdminToken>, request: Request, next: Next) -> Response {
    let authorization = request.headers().get(AUTHORIZATION).map(|value| value.as_bytes());
    if !request.uri().path().starts_with("/admin/") || token.admits(authorization) {
        return next.run(request).await;
    }
    let message = match authorization {
        None => "this replica has an ADMIN_TOKEN: send it as `Authorization: Bearer <token>`",
        Some(value) if bearer(value).is_none() => "the Authorization header must be `Bearer <token>`",
        Some(_) => "the admin token is wrong",
    };
    Error::Unauthorized(message.to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_bearer_token() {
        let token = AdminToken::new(Some("s3cret"));
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(token.admits(Some(b"bearer s3cret")));
        for wrong in [&b"Bearer s3cre"[..], b"Bearer s3cret2", b"Basic s3cret", b"s3cret", b"Bearer ", b""] {
            assert!(!token.admits(Some(wrong)), "{:?}", String::from_utf8_lossy(wrong));
        }
        assert!(!token.admits(None));
    }

    #[test]
    fn no_token_leaves_admin_open() {
        assert!(AdminToken::new(None).admits(None));
        assert!(AdminToken::new(Some("")).admits(None), "an empty ADMIN_TOKEN is no token");
    }
}
