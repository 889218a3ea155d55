//! `/v1/auth`: sign up, sign in, sign out, and who am I, for the web app.
//! Signing in replaces the session id (no fixation) and issues a fresh
//! CSRF token, which `me` and the sign-in answer return.

use axum::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use sprites_wire::accounts::{InvitationCheck, SignIn, SignUp};
use sprites_wire::orgs::{Profile, SessionState, SwitchOrganization};
use tower_sessions::Session;

use super::answer::{made, Answer, Done, Made};
use super::json::Body;
use crate::domain::accounts;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::http::auth::session_error;
use crate::http::session::{CSRF, ORG_ID, USER_ID};
use crate::AppState;

/// Starts a signed-in session for `user_id` and answers like `me`.
async fn start(state: &AppState, session: &Session, user_id: &str) -> Result<Profile, ApiError> {
    let org_id = accounts::personal_org(&state.db, user_id).await?;
    session.cycle_id().await.map_err(session_error)?;
    session
        .insert(USER_ID, user_id)
        .await
        .map_err(session_error)?;
    session
        .insert(ORG_ID, &org_id)
        .await
        .map_err(session_error)?;
    let csrf = crate::db::new_id();
    session.insert(CSRF, &csrf).await.map_err(session_error)?;
    let caller = accounts::caller_for_user(&state.db, user_id, &org_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let mut profile = accounts::profile(&state.db, &caller).await?;
    profile.csrf_token = Some(csrf);
    Ok(profile)
}

pub(super) async fn signup(
    State(state): State<AppState>,
    session: Session,
    Body(req): Body<SignUp>,
) -> Made<Profile> {
    let admission = if state.settings.open_signup {
        accounts::Admission::Open
    } else {
        accounts::Admission::ByInvitation
    };
    let user = accounts::sign_up(&state.db, &req, admission).await?;
    Ok(made(start(&state, &session, &user.id).await?))
}

/// The client's address, when known (requests through the server's own
/// listener; not those a test router gets directly).
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl axum::extract::FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<ClientIp, std::convert::Infallible> {
        Ok(ClientIp(crate::client_addr(parts)))
    }
}

pub(super) async fn signin(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Body(req): Body<SignIn>,
) -> Answer<Profile> {
    let key = req.login.trim().to_lowercase();
    let address = ip.map(|ip| ip.to_string()).unwrap_or_default();
    let waits = [
        state.throttle.wait(&key),
        state.address_throttle.wait(&address),
    ];
    if let Some(secs) = waits.into_iter().flatten().max() {
        return Err(ApiError::TooManyRequests(secs));
    }
    let found = accounts::find_login(&state.db, &key).await?;
    // Verify against a real hash even for unknown accounts, so timing does
    // not tell which accounts exist.
    let hash = match &found {
        Some(login) => login.password_hash.clone(),
        None => unknown_user_hash().to_string(),
    };
    let password = req.password.clone();
    // Deliberately slow: on the blocking pool.
    let ok = tokio::task::spawn_blocking(move || accounts::verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(format!("the password check stopped: {e}")))?;
    match found {
        // Only a person who knows the password learns it is disabled.
        Some(login) if ok && login.disabled_at.is_some() => Err(ApiError::Forbidden(
            "this account is disabled: ask the server's admin".into(),
        )),
        Some(login) if ok => {
            state.throttle.succeeded(&key);
            Ok(Json(start(&state, &session, &login.id).await?))
        }
        _ => {
            state.throttle.failed(&key);
            state.address_throttle.failed(&address);
            Err(ApiError::Unauthorized)
        }
    }
}

/// An argon2id hash of a random password nobody knows, made once.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| accounts::hash_password(&crate::db::new_id()).expect("hashing works"))
}

pub(super) async fn signout(session: Session) -> Done {
    session.flush().await.map_err(session_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn me(
    State(state): State<AppState>,
    session: Session,
    caller: Caller,
) -> Answer<Profile> {
    Ok(Json(session_profile(&state, &session, &caller).await?))
}

/// The caller's profile with the session's CSRF token, as a browser reads it.
async fn session_profile(
    state: &AppState,
    session: &Session,
    caller: &Caller,
) -> Result<Profile, ApiError> {
    let mut profile = accounts::profile(&state.db, caller).await?;
    profile.csrf_token = session.get::<String>(CSRF).await.map_err(session_error)?;
    Ok(profile)
}

/// What the web app asks first: who is signed in (`profile`, null for
/// nobody, where `me` would be a 401) and whether anyone may sign up.
pub(super) async fn session_state(
    State(state): State<AppState>,
    session: Session,
    caller: Result<Caller, ApiError>,
) -> Answer<SessionState> {
    let profile = match caller {
        Ok(caller) => Some(session_profile(&state, &session, &caller).await?),
        Err(ApiError::Unauthorized) => None,
        Err(e) => return Err(e),
    };
    let signup_open = state.settings.open_signup || !accounts::has_users(&state.db).await?;
    Ok(Json(SessionState {
        profile,
        signup_open,
    }))
}

/// What the sign-up page shows of an invitation link before it is used.
pub(super) async fn invitation(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Answer<InvitationCheck> {
    Ok(Json(crate::domain::admin::check(&state.db, &token).await?))
}

/// Makes the session act in another organization the user belongs to.
pub(super) async fn switch_org(
    State(state): State<AppState>,
    session: Session,
    caller: Caller,
    Body(req): Body<SwitchOrganization>,
) -> Answer<Profile> {
    let (org_id, _) = crate::domain::orgs::role_in(&state.db, &caller.user_id, &req.slug).await?;
    if session
        .get::<String>(USER_ID)
        .await
        .map_err(session_error)?
        .is_none()
    {
        return Err(ApiError::Invalid(
            "a token acts in its own organization; mint one for another with POST /v1/tokens"
                .into(),
        ));
    }
    session
        .insert(ORG_ID, &org_id)
        .await
        .map_err(session_error)?;
    let now = accounts::caller_for_user(&state.db, &caller.user_id, &org_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(Json(session_profile(&state, &session, &now).await?))
}
