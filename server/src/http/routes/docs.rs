//! The API's own description, served as checked in.

use axum::response::IntoResponse;

use super::Routes;

/// The OpenAPI document of every route; a test holds it against the router.
pub const OPENAPI: &str = include_str!("../../../openapi.json");

pub fn routes() -> Routes {
    Routes::new().get("/v1/openapi.json", openapi)
}

async fn openapi() -> impl IntoResponse {
    ([("content-type", "application/json")], OPENAPI)
}
