//! The API's own description, served as checked in.

use axum::response::IntoResponse;

/// The OpenAPI document of every route; a test holds it against the router.
pub const OPENAPI: &str = include_str!("../../../openapi.json");

pub(super) async fn openapi() -> impl IntoResponse {
    ([("content-type", "application/json")], OPENAPI)
}
