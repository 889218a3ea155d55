//! One file per resource; `json` holds the extractors that turn malformed
//! input into the API's JSON errors.

mod auth;
mod checkpoints;
mod exec;
mod fs;
mod health;
mod json;
mod sprites;
mod tokens;

use axum::Router;

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(sprites::routes())
        .merge(exec::routes())
        .merge(checkpoints::routes())
        .merge(fs::routes())
        .merge(auth::routes())
        .merge(tokens::routes())
}
