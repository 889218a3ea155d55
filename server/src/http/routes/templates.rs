//! `/v1/templates`: the gallery and the templates people saved or
//! imported; `/v1/images`: import a root file system as a template.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt as _;
use sprites_wire::api::{SaveTemplate, Template, TemplateList};

use super::json::{Body, Query};
use crate::domain::caller::Caller;
use crate::domain::templates::{self, ImportParams, Importer};
use crate::error::ApiError;
use crate::AppState;

/// The largest root file system an import may unpack.
pub const MAX_IMPORT_BYTES: u64 = 8 << 30;

pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TemplateList>, ApiError> {
    Ok(Json(templates::list(&state, &caller).await?))
}

pub(super) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Template>, ApiError> {
    Ok(Json(templates::get(&state, &caller, &name).await?))
}

pub(super) async fn save(
    State(state): State<AppState>,
    caller: Caller,
    Body(req): Body<SaveTemplate>,
) -> Result<(StatusCode, Json<Template>), ApiError> {
    let t = templates::save(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(t)))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    templates::remove(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A gallery template's picture. Pictures come with the server, but an
/// SVG is a document: it may not run scripts or load anything.
pub(super) async fn picture(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    match state.settings.templates.picture(&name) {
        Some(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'",
                ),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            svg,
        )
            .into_response(),
        None => ApiError::NotFound(format!("picture of template {name}")).into_response(),
    }
}

/// The request body is the archive, streamed to the import as it arrives.
pub(super) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ImportParams>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Template>), ApiError> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let t = templates::import(
        &state,
        Importer::Member(&caller),
        params,
        Box::new(reader),
        MAX_IMPORT_BYTES,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(t)))
}
