//! `/v1/url-auth`: the app origin's half of the private sprite URL
//! hand-off (see `proxy`). A signed-in member arrives here from a sprite's
//! host and goes back with a one-minute ticket for that host alone.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::json::Query;
use crate::domain::accounts::caller_for_user;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::http::proxy;
use crate::AppState;

#[derive(Deserialize)]
pub(super) struct HandOff {
    sprite: String,
    org: String,
    #[serde(default)]
    next: Option<String>,
}

pub(super) async fn hand_off(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    caller: Result<Caller, ApiError>,
    Query(q): Query<HandOff>,
) -> Result<Response, ApiError> {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    match hand_off_to(&state, caller, q).await {
        // A person following a link gets a page, not JSON.
        Err(ApiError::NotFound(_)) if browser => Ok(proxy::no_such_sprite_page()),
        other => other,
    }
}

async fn hand_off_to(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    q: HandOff,
) -> Result<Response, ApiError> {
    let next = proxy::local_path(q.next.as_deref().unwrap_or("/")).to_string();
    let Ok(caller) = caller else {
        // Not signed in here: the web app signs in, then comes back.
        let back = format!(
            "/v1/url-auth?sprite={}&org={}&next={}",
            enc(&q.sprite),
            enc(&q.org),
            enc(&next)
        );
        let to = format!("/?next={}", enc(&back));
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response());
    };
    let not_found = || ApiError::NotFound(format!("sprite {}", q.sprite));
    let route = proxy::resolve(state, &sprites_wire::url_label(&q.sprite, &q.org))
        .await?
        .filter(|r| r.name == q.sprite && r.org_slug == q.org)
        .ok_or_else(not_found)?;
    // A sprite of an organization the user is not in does not exist for
    // them, nor another student's sprite for a class's student.
    let member = caller_for_user(&state.db, &caller.user_id, &route.org_id)
        .await?
        .ok_or_else(not_found)?;
    if !crate::domain::access::may_use(state, &member, &route.sprite_id).await? {
        return Err(not_found());
    }
    // The same member back for the same sprite again and again within
    // seconds: the browser does not keep the sprite's cookie (a frame in a
    // browser that blocks cookies of other sites). Say so instead of a
    // redirect loop.
    let key = format!("{}/{}", caller.user_id, route.sprite_id);
    if state.hand_offs.wait(&key).is_some() {
        let url = format!(
            "{}{}",
            state.urls.sprite_url(&route.name, &route.org_slug),
            next
        );
        return Ok(proxy::cookie_refused_page(&url));
    }
    state.hand_offs.failed(&key);
    let ticket = proxy::ticket(state, &route.sprite_id, &caller.user_id);
    let to = format!(
        "{}{}?ticket={}&next={}",
        state.urls.sprite_url(&route.name, &route.org_slug),
        proxy::AUTH_PATH,
        enc(&ticket),
        enc(&next)
    );
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, to),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
