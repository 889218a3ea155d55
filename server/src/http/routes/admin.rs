//! `/v1/admin`: invitations and the server's accounts, for its admins.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::accounts::{Invitation, InvitationList, NewInvitation, UserList, UserSummary};
use sprites_wire::api::{ClusterHost, DrainReport, HostList, MoveSprite, SpriteMoved};

use super::answer::{made, Answer, Done, Made};
use super::json::{Body, OptionalBody};
use crate::domain::{admin, hosts};
use crate::http::auth::Admin;
use crate::AppState;

pub(super) async fn invitations(State(state): State<AppState>, _: Admin) -> Answer<InvitationList> {
    Ok(Json(admin::invitations(&state.db).await?))
}

pub(super) async fn invite(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Body(req): Body<NewInvitation>,
) -> Made<Invitation> {
    Ok(made(admin::invite(&state.db, &caller, &req).await?))
}

pub(super) async fn withdraw(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Done {
    admin::withdraw(&state.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn users(State(state): State<AppState>, _: Admin) -> Answer<UserList> {
    Ok(Json(admin::users(&state.db).await?))
}

pub(super) async fn hosts(State(state): State<AppState>, _: Admin) -> Answer<HostList> {
    Ok(Json(
        hosts::list(&state.db, state.settings.host_timeout()).await?,
    ))
}

pub(super) async fn drain(
    State(state): State<AppState>,
    _: Admin,
    Path(host): Path<String>,
) -> Answer<DrainReport> {
    Ok(Json(hosts::drain(&state, &host).await?))
}

pub(super) async fn open(
    State(state): State<AppState>,
    _: Admin,
    Path(host): Path<String>,
) -> Answer<ClusterHost> {
    Ok(Json(hosts::open(&state, &host).await?))
}

pub(super) async fn move_sprite(
    State(state): State<AppState>,
    _: Admin,
    Path((org, name)): Path<(String, String)>,
    OptionalBody(req): OptionalBody<MoveSprite>,
) -> Answer<SpriteMoved> {
    Ok(Json(hosts::move_sprite(&state, &org, &name, &req).await?))
}

pub(super) async fn disable(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(handle): Path<String>,
) -> Answer<UserSummary> {
    Ok(Json(
        admin::set_disabled(&state.db, &caller, &handle, true).await?,
    ))
}

pub(super) async fn enable(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(handle): Path<String>,
) -> Answer<UserSummary> {
    Ok(Json(
        admin::set_disabled(&state.db, &caller, &handle, false).await?,
    ))
}
