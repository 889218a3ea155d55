//! `/v1/sprites/{name}/policy/network` and a class's
//! `/v1/organizations/{slug}/policy/network`: which names sprites may reach;
//! `/v1/sprites/{name}/policy/resources`: what a sprite may use;
//! `/v1/sprites/{name}/policy/privileges`: what of the kernel it may ask for.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::policy::{NetworkPolicy, PrivilegesPolicy, ResourcesPolicy};

use super::answer::{Answer, Cx, Done};
use super::json::Body;
use crate::domain::policy;

pub(super) async fn network(cx: Cx, Path(name): Path<String>) -> Answer<NetworkPolicy> {
    Ok(Json(policy::network(&cx.state, &cx.caller, &name).await?))
}

/// 204, as the SDKs expect.
pub(super) async fn set_network(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<NetworkPolicy>,
) -> Done {
    policy::set_network(&cx.state, &cx.caller, &name, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn resources(cx: Cx, Path(name): Path<String>) -> Answer<ResourcesPolicy> {
    Ok(Json(policy::resources(&cx.state, &cx.caller, &name).await?))
}

/// 204, as the SDKs expect.
pub(super) async fn set_resources(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<ResourcesPolicy>,
) -> Done {
    policy::set_resources(&cx.state, &cx.caller, &name, Some(req)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn clear_resources(cx: Cx, Path(name): Path<String>) -> Done {
    policy::set_resources(&cx.state, &cx.caller, &name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn privileges(cx: Cx, Path(name): Path<String>) -> Answer<PrivilegesPolicy> {
    Ok(Json(
        policy::privileges(&cx.state, &cx.caller, &name).await?,
    ))
}

/// 204 once in force: a running sprite has restarted onto it.
pub(super) async fn set_privileges(
    cx: Cx,
    Path(name): Path<String>,
    Body(req): Body<PrivilegesPolicy>,
) -> Done {
    policy::set_privileges(&cx.state, &cx.caller, &name, Some(req)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn clear_privileges(cx: Cx, Path(name): Path<String>) -> Done {
    policy::set_privileges(&cx.state, &cx.caller, &name, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn class_network(cx: Cx, Path(slug): Path<String>) -> Answer<NetworkPolicy> {
    Ok(Json(policy::class(&cx.state, &cx.caller, &slug).await?))
}

pub(super) async fn set_class_network(
    cx: Cx,
    Path(slug): Path<String>,
    Body(req): Body<NetworkPolicy>,
) -> Answer<NetworkPolicy> {
    Ok(Json(
        policy::set_class(&cx.state, &cx.caller, &slug, req).await?,
    ))
}
