//! `/v1/sprites/{name}/fs/*`: a sprite's files (see `domain::files`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sprites_wire::fs::{Chmod, Chown, FileEntry, Listing, Mkdir, Move};

use super::json::{Body, Query};
use crate::domain::caller::Caller;
use crate::domain::files::{self, Place};
use crate::error::ApiError;
use crate::AppState;

/// The query of the calls that name a path.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PathQuery {
    path: String,
    working_dir: Option<String>,
    recursive: Option<String>,
    mode: Option<String>,
    mkdir_parents: Option<String>,
}

impl PathQuery {
    fn place<'a>(&'a self, sprite: &'a str) -> Place<'a> {
        Place {
            sprite,
            path: &self.path,
            working_dir: self.working_dir.as_deref(),
        }
    }
}

fn flag(v: &Option<String>, default: bool) -> bool {
    v.as_deref().map_or(default, |v| v == "true" || v == "1")
}

fn bytes(data: Vec<u8>) -> Response {
    ([("content-type", "application/octet-stream")], data).into_response()
}

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Json<Listing>, ApiError> {
    Ok(Json(files::list(&state, &caller, q.place(&name)).await?))
}

pub(super) async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Response, ApiError> {
    Ok(bytes(
        files::read(&state, &caller, q.place(&name), None).await?,
    ))
}

pub(super) async fn read_at_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> Result<Response, ApiError> {
    let data = files::read(&state, &caller, q.place(&name), Some(&id)).await?;
    Ok(bytes(data))
}

pub(super) async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
    data: Bytes,
) -> Result<Json<FileEntry>, ApiError> {
    let parents = flag(&q.mkdir_parents, true);
    let (at, mode) = (q.place(&name), q.mode.as_deref());
    Ok(Json(
        files::write(&state, &caller, at, mode, parents, data).await?,
    ))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<StatusCode, ApiError> {
    let recursive = flag(&q.recursive, false);
    files::remove(&state, &caller, q.place(&name), recursive).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn mkdir(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Mkdir>,
) -> Result<Json<FileEntry>, ApiError> {
    Ok(Json(files::mkdir(&state, &caller, &name, req).await?))
}

pub(super) async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Move>,
) -> Result<Json<FileEntry>, ApiError> {
    Ok(Json(
        files::rename_or_copy(&state, &caller, &name, req, false).await?,
    ))
}

pub(super) async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Move>,
) -> Result<Json<FileEntry>, ApiError> {
    Ok(Json(
        files::rename_or_copy(&state, &caller, &name, req, true).await?,
    ))
}

pub(super) async fn chmod(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Chmod>,
) -> Result<Json<FileEntry>, ApiError> {
    Ok(Json(files::chmod(&state, &caller, &name, req).await?))
}

pub(super) async fn chown(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Chown>,
) -> Result<Json<FileEntry>, ApiError> {
    Ok(Json(files::chown(&state, &caller, &name, req).await?))
}
