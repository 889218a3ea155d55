//! A class's assignments (`/v1/organizations/{slug}/assignments`) and the
//! people a sprite is shared with (`/v1/sprites/{name}/members`).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::classes::{
    Assignment, AssignmentList, Collect, Collection, CollectionList, NewAssignment,
    NewSpriteMember, Reset, ResetDone, SpriteMembers, Started,
};

use super::answer::{made, Answer, Cx, Done, Made};
use super::json::Body;
use crate::domain::classes;

pub(super) async fn list(cx: Cx, Path(slug): Path<String>) -> Answer<AssignmentList> {
    Ok(Json(classes::list(&cx.state, &cx.caller, &slug).await?))
}

pub(super) async fn create(
    cx: Cx,
    Path(slug): Path<String>,
    Body(req): Body<NewAssignment>,
) -> Made<Assignment> {
    Ok(made(
        classes::create(&cx.state, &cx.caller, &slug, req).await?,
    ))
}

pub(super) async fn show(cx: Cx, Path((slug, name)): Path<(String, String)>) -> Answer<Assignment> {
    Ok(Json(
        classes::get(&cx.state, &cx.caller, &slug, &name).await?,
    ))
}

pub(super) async fn remove(cx: Cx, Path((slug, name)): Path<(String, String)>) -> Done {
    classes::remove(&cx.state, &cx.caller, &slug, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn start(cx: Cx, Path((slug, name)): Path<(String, String)>) -> Answer<Started> {
    Ok(Json(
        classes::start(&cx.state, &cx.caller, &slug, &name).await?,
    ))
}

pub(super) async fn reset(
    cx: Cx,
    Path((slug, name)): Path<(String, String)>,
    Body(req): Body<Reset>,
) -> Answer<ResetDone> {
    Ok(Json(
        classes::reset(&cx.state, &cx.caller, &slug, &name, &req.student).await?,
    ))
}

pub(super) async fn collect(
    cx: Cx,
    Path((slug, name)): Path<(String, String)>,
    Body(req): Body<Collect>,
) -> Made<Collection> {
    Ok(made(
        classes::collect(&cx.state, &cx.caller, &slug, &name, &req.label).await?,
    ))
}

pub(super) async fn collections(
    cx: Cx,
    Path((slug, name)): Path<(String, String)>,
) -> Answer<CollectionList> {
    Ok(Json(
        classes::collections(&cx.state, &cx.caller, &slug, &name).await?,
    ))
}

pub(super) async fn members(cx: Cx, Path(name): Path<String>) -> Answer<SpriteMembers> {
    Ok(Json(classes::members(&cx.state, &cx.caller, &name).await?))
}

pub(super) async fn add_member(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<NewSpriteMember>,
) -> Answer<SpriteMembers> {
    Ok(Json(
        classes::add_member(&cx.state, &cx.caller, &name, &req.handle).await?,
    ))
}

pub(super) async fn remove_member(cx: Cx, Path((name, handle)): Path<(String, String)>) -> Done {
    classes::remove_member(&cx.state, &cx.caller, &name, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}
