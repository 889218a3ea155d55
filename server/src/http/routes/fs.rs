//! `/v1/sprites/{name}/fs/*`: a sprite's files (see `domain::files`).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sprites_wire::fs::{Chmod, Chown, FileEntry, Listing, Mkdir, Move};

use super::answer::{Answer, Cx, Done};
use super::json::{Body, Query};
use crate::domain::files::{self, Place};
use crate::error::ApiError;

/// The query of the calls that name a path.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PathQuery {
    path: String,
    working_dir: Option<String>,
    recursive: Option<String>,
    /// A glob the listed entries' paths (below the listed folder) match.
    pattern: Option<String>,
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
    v.as_deref().map_or(default, super::json::is_true)
}

/// A file's bytes as they are read.
fn bytes((file, size): (vmhost::fs::Reader, u64)) -> Response {
    (
        [
            ("content-type", "application/octet-stream".to_string()),
            ("content-length", size.to_string()),
        ],
        axum::body::Body::from_stream(files::chunks((file, size))),
    )
        .into_response()
}

pub(super) async fn list(
    cx: Cx,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Answer<Listing> {
    let what = files::Listed {
        recursive: flag(&q.recursive, false),
        pattern: q.pattern.as_deref(),
    };
    let at = q.place(&name);
    Ok(Json(files::list(&cx.state, &cx.caller, at, what).await?))
}

pub(super) async fn read(
    cx: Cx,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Response, ApiError> {
    Ok(bytes(
        files::read(&cx.state, &cx.caller, q.place(&name), None).await?,
    ))
}

pub(super) async fn read_at_checkpoint(
    cx: Cx,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> Result<Response, ApiError> {
    let file = files::read(&cx.state, &cx.caller, q.place(&name), Some(&id)).await?;
    Ok(bytes(file))
}

pub(super) async fn write(
    cx: Cx,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
    body: axum::body::Body,
) -> Answer<FileEntry> {
    let how = (q.mode.as_deref(), flag(&q.mkdir_parents, true));
    let data = body.into_data_stream();
    Ok(Json(
        files::write(&cx.state, &cx.caller, q.place(&name), how, data).await?,
    ))
}

pub(super) async fn remove(cx: Cx, Path(name): Path<String>, Query(q): Query<PathQuery>) -> Done {
    let recursive = flag(&q.recursive, false);
    files::remove(&cx.state, &cx.caller, q.place(&name), recursive).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn mkdir(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<Mkdir>,
) -> Answer<FileEntry> {
    Ok(Json(files::mkdir(&cx.state, &cx.caller, &name, req).await?))
}

pub(super) async fn rename(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<Move>,
) -> Answer<FileEntry> {
    Ok(Json(
        files::rename_or_copy(&cx.state, &cx.caller, &name, req, false).await?,
    ))
}

pub(super) async fn copy(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<Move>,
) -> Answer<FileEntry> {
    Ok(Json(
        files::rename_or_copy(&cx.state, &cx.caller, &name, req, true).await?,
    ))
}

pub(super) async fn chmod(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<Chmod>,
) -> Answer<FileEntry> {
    Ok(Json(files::chmod(&cx.state, &cx.caller, &name, req).await?))
}

pub(super) async fn chown(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<Chown>,
) -> Answer<FileEntry> {
    Ok(Json(files::chown(&cx.state, &cx.caller, &name, req).await?))
}
