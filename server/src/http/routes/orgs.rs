//! `/v1/organizations`: the caller's organizations, team organizations,
//! classes (join code, per-student limits, `/v1/join`) and their members.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::orgs::{
    Join, JoinCode, Limits, Member, MemberList, NewOrganization, Organization, OrganizationList,
};

use super::answer::{made, Answer, Cx, Done, Made};
use super::json::Body;
use crate::domain::orgs;

pub(super) async fn show(cx: Cx, Path(slug): Path<String>) -> Answer<Organization> {
    Ok(Json(orgs::get(&cx.state.db, &cx.caller, &slug).await?))
}

pub(super) async fn new_code(cx: Cx, Path(slug): Path<String>) -> Answer<JoinCode> {
    Ok(Json(orgs::new_code(&cx.state.db, &cx.caller, &slug).await?))
}

pub(super) async fn set_limits(
    cx: Cx,
    Path(slug): Path<String>,
    Body(req): Body<Limits>,
) -> Answer<Organization> {
    Ok(Json(
        orgs::set_limits(&cx.state.db, &cx.caller, &slug, req).await?,
    ))
}

pub(super) async fn join(cx: Cx, Body(req): Body<Join>) -> Answer<Organization> {
    Ok(Json(orgs::join(&cx.state.db, &cx.caller, &req.code).await?))
}

pub(super) async fn list(cx: Cx) -> Answer<OrganizationList> {
    Ok(Json(orgs::list(&cx.state.db, &cx.caller).await?))
}

pub(super) async fn create(cx: Cx, Body(req): Body<NewOrganization>) -> Made<Organization> {
    Ok(made(
        orgs::create_kind(&cx.state.db, &cx.caller, &req.slug, &req.name, req.class).await?,
    ))
}

pub(super) async fn members(cx: Cx, Path(slug): Path<String>) -> Answer<MemberList> {
    Ok(Json(orgs::members(&cx.state.db, &cx.caller, &slug).await?))
}

pub(super) async fn set_member(
    cx: Cx,
    Path(slug): Path<String>,
    Body(req): Body<Member>,
) -> Answer<Member> {
    Ok(Json(
        orgs::set_member(&cx.state.db, &cx.caller, &slug, &req.handle, &req.role).await?,
    ))
}

pub(super) async fn remove_member(cx: Cx, Path((slug, handle)): Path<(String, String)>) -> Done {
    orgs::remove_member(&cx.state.db, &cx.caller, &slug, &handle).await?;
    Ok(StatusCode::NO_CONTENT)
}
