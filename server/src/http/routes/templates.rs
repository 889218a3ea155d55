//! `/v1/templates`: the gallery and the templates people saved or
//! imported; `/v1/images`: import a root file system as a template.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::TryStreamExt as _;
use sprites_wire::api::{SaveTemplate, Template, TemplateList};

use super::answer::{made, Answer, Cx, Done, Made};
use super::json::{Body, Query};
use crate::domain::templates::{self, ImportParams, Importer};
use crate::error::ApiError;
use crate::AppState;

/// The largest root file system an import may unpack.
pub const MAX_IMPORT_BYTES: u64 = 8 << 30;

pub(super) async fn list(cx: Cx) -> Answer<TemplateList> {
    Ok(Json(templates::list(&cx.state, &cx.caller).await?))
}

pub(super) async fn show(cx: Cx, Path(name): Path<String>) -> Answer<Template> {
    Ok(Json(templates::get(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn save(cx: Cx, Body(req): Body<SaveTemplate>) -> Made<Template> {
    Ok(made(templates::save(&cx.state, &cx.caller, req).await?))
}

pub(super) async fn remove(cx: Cx, Path(name): Path<String>) -> Done {
    templates::remove(&cx.state, &cx.caller, &name).await?;
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
    cx: Cx,
    Query(params): Query<ImportParams>,
    body: axum::body::Body,
) -> Made<Template> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let t = templates::import(
        &cx.state,
        Importer::Member(&cx.caller),
        params,
        Box::new(reader),
        MAX_IMPORT_BYTES,
    )
    .await?;
    Ok(made(t))
}
