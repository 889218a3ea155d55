//! `/v1/sprites/{name}/fs/*`: a sprite's files, in the shapes of the
//! Sprites SDKs' filesystem API. Paths are absolute inside the sprite, or
//! relative to `workingDir`; every one is confined to the sprite's root by
//! `vmhost::fs`. Files work in every phase: a sleeping sprite stays asleep.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sprites_wire::client::path;
use sprites_wire::fs::{Chmod, Chown, FileEntry, Listing, Mkdir, Move};
use vmhost::fs::{Entry, Files, Kind};

use super::json::{Body, Query};
use super::Routes;
use crate::domain::access;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// The largest file read or written in one request.
const MAX_FILE: u64 = 64 << 20;

pub fn routes() -> Routes {
    Routes::new()
        .get(path::FS_LIST, list)
        .get(path::FS_READ, read)
        .get(path::FS_READ_AT, read_at_checkpoint)
        .add(
            axum::http::Method::PUT,
            path::FS_WRITE,
            axum::routing::put(write)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_FILE as usize)),
        )
        .delete(path::FS_DELETE, remove)
        .post(path::FS_MKDIR, mkdir)
        .post(path::FS_RENAME, rename)
        .post(path::FS_COPY, copy)
        .post(path::FS_CHMOD, chmod)
        .post(path::FS_CHOWN, chown)
}

/// `path` made absolute against `workingDir` (default `/`).
fn resolve(path: &str, working_dir: Option<&str>) -> Result<String, ApiError> {
    if path.is_empty() {
        return Err(ApiError::Invalid("path: give a path".into()));
    }
    if path.starts_with('/') {
        return Ok(path.to_string());
    }
    let base = working_dir.filter(|w| !w.is_empty()).unwrap_or("/");
    Ok(format!("{}/{path}", base.trim_end_matches('/')))
}

fn mode_of(text: &str) -> Result<u32, ApiError> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| ApiError::Invalid(format!("mode {text:?}: octal, like 0644")))
}

fn entry(e: &Entry) -> FileEntry {
    FileEntry {
        name: e.name.clone(),
        path: e.path.clone(),
        size: e.size,
        mode: format!("{:04o}", e.mode),
        mod_time: crate::db::iso_secs(e.modified.max(0) as u64),
        is_dir: e.kind == Kind::Dir,
        kind: e.kind,
        uid: e.uid,
        gid: e.gid,
        link_target: e.link_target.clone(),
    }
}

async fn files(state: &AppState, caller: &Caller, name: &str) -> Result<Files, ApiError> {
    let host_name = access::host_sprite(state, caller, name).await?;
    Ok(state.host.sprite_files(&host_name).await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PathQuery {
    path: String,
    working_dir: Option<String>,
    recursive: Option<String>,
    mode: Option<String>,
    mkdir_parents: Option<String>,
}

fn flag(v: &Option<String>, default: bool) -> bool {
    v.as_deref().map_or(default, |v| v == "true" || v == "1")
}

/// A directory's entries, or the one entry of a file.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Json<Listing>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&q.path, q.working_dir.as_deref())?;
    let (me, entries) = fs.list_or_stat(&path).await?;
    Ok(Json(Listing {
        path: me.path,
        is_dir: me.kind == Kind::Dir,
        entries: entries.iter().map(entry).collect(),
    }))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<Response, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&q.path, q.working_dir.as_deref())?;
    let data = fs.read(&path, MAX_FILE).await?;
    Ok(([("content-type", "application/octet-stream")], data).into_response())
}

/// A file's bytes as they were at a checkpoint (the history view's diff).
async fn read_at_checkpoint(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Query(q): Query<PathQuery>,
) -> Result<Response, ApiError> {
    let host_name = access::host_sprite(&state, &caller, &name).await?;
    let id = super::checkpoints::checkpoint_id(&id)?;
    let fs = state.host.checkpoint_files(&host_name, id)?;
    let path = resolve(&q.path, q.working_dir.as_deref())?;
    let data = fs.read(&path, MAX_FILE).await?;
    Ok(([("content-type", "application/octet-stream")], data).into_response())
}

async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
    data: Bytes,
) -> Result<Json<FileEntry>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&q.path, q.working_dir.as_deref())?;
    let mode = q.mode.as_deref().map(mode_of).transpose()?;
    let parents = flag(&q.mkdir_parents, true);
    let e = fs.write(&path, data, mode, parents).await?;
    state
        .events
        .file_written(&caller.org_id, &name, &path, &caller.handle);
    Ok(Json(entry(&e)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PathQuery>,
) -> Result<StatusCode, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&q.path, q.working_dir.as_deref())?;
    let recursive = flag(&q.recursive, false);
    fs.remove(&path, recursive).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn mkdir(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Mkdir>,
) -> Result<Json<FileEntry>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&req.path, req.working_dir.as_deref())?;
    let e = fs.mkdir(&path, req.parents).await?;
    Ok(Json(entry(&e)))
}

async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Move>,
) -> Result<Json<FileEntry>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let from = resolve(&req.source, req.working_dir.as_deref())?;
    let to = resolve(&req.dest, req.working_dir.as_deref())?;
    let e = fs.rename(&from, &to).await?;
    Ok(Json(entry(&e)))
}

async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Move>,
) -> Result<Json<FileEntry>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let from = resolve(&req.source, req.working_dir.as_deref())?;
    let to = resolve(&req.dest, req.working_dir.as_deref())?;
    let recursive = req.recursive.unwrap_or(true);
    let e = fs.copy(&from, &to, recursive).await?;
    Ok(Json(entry(&e)))
}

async fn chmod(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Chmod>,
) -> Result<Json<FileEntry>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&req.path, req.working_dir.as_deref())?;
    let mode = mode_of(&req.mode)?;
    let e = fs.chmod(&path, mode, req.recursive).await?;
    Ok(Json(entry(&e)))
}

async fn chown(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<Chown>,
) -> Result<Json<FileEntry>, ApiError> {
    let fs = files(&state, &caller, &name).await?;
    let path = resolve(&req.path, req.working_dir.as_deref())?;
    let e = fs.chown(&path, req.uid, req.gid, req.recursive).await?;
    Ok(Json(entry(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_working_directory() {
        assert_eq!(resolve("/etc/hosts", Some("/root")).unwrap(), "/etc/hosts");
        assert_eq!(
            resolve("notes.txt", Some("/root/")).unwrap(),
            "/root/notes.txt"
        );
        assert_eq!(resolve("notes.txt", None).unwrap(), "/notes.txt");
        assert!(resolve("", None).is_err());
        assert_eq!(mode_of("0755").unwrap(), 0o755);
        assert_eq!(mode_of("644").unwrap(), 0o644);
        assert!(mode_of("rwx").is_err());
        assert!(mode_of("77777").is_err());
    }
}
