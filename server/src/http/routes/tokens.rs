//! `/v1/tokens`: the caller's API tokens in their organization. A new
//! token is shown once, in the answer that creates it.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::orgs::{MintedToken, NewToken, TokenList};

use super::answer::{made, Answer, Cx, Done, Made};
use super::json::Body;
use crate::domain::accounts;
use crate::error::ApiError;

pub(super) async fn list(cx: Cx) -> Answer<TokenList> {
    Ok(Json(accounts::list_tokens(&cx.state.db, &cx.caller).await?))
}

pub(super) async fn create(cx: Cx, Body(req): Body<NewToken>) -> Made<MintedToken> {
    Ok(made(
        accounts::mint_token(&cx.state.db, &cx.caller, &req).await?,
    ))
}

pub(super) async fn revoke(cx: Cx, Path(id): Path<String>) -> Done {
    if accounts::revoke_token(&cx.state.db, &cx.caller, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("token {id}")))
    }
}
