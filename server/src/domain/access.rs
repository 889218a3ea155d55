//! Which sprite a caller means, and whether they may use it: a name in
//! the caller's organization (and, for a class's student, among the
//! sprites they own or were added to) to its row and its host sprite, with
//! the cache the hot paths (an exec, a sprite's URL) read first. Sprites,
//! templates, classes and the URL proxy all look sprites up here.

use sprites_wire::SpriteName;

use crate::db::Row;
use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// A sprite's row.
#[derive(sqlx::FromRow)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) host_name: String,
    pub(crate) url_auth: String,
    /// `org_users` or `admins`: who may open its private URL.
    pub(crate) url_private_access: String,
    /// Kept as a JSON array of strings.
    #[sqlx(try_from = "String")]
    pub(crate) labels: Labels,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    /// Seconds; `None` for the server's default, 0 for never.
    #[sqlx(rename = "warm_after_secs")]
    pub(crate) warm_after: Option<i64>,
    #[sqlx(rename = "cold_after_secs")]
    pub(crate) cold_after: Option<i64>,
    /// Who made it (`None` for sprites made before owners were kept).
    pub(crate) owner_id: Option<String>,
    /// Brought back from a lost host: that host, the checkpoint and when
    /// it was shipped, and when it came back (ms since the Unix epoch).
    #[sqlx(default)]
    pub(crate) resumed_from_host: Option<String>,
    #[sqlx(default)]
    pub(crate) resumed_checkpoint: Option<String>,
    #[sqlx(default)]
    pub(crate) resumed_shipped_at: Option<i64>,
    #[sqlx(default)]
    pub(crate) resumed_at: Option<i64>,
}

/// A sprite's labels, read from their JSON column (unreadable ones are
/// none, as before they were kept).
pub(crate) struct Labels(pub(crate) Vec<String>);

impl From<String> for Labels {
    fn from(json: String) -> Labels {
        Labels(serde_json::from_str(&json).unwrap_or_default())
    }
}

pub(crate) fn record(row: &Row) -> Result<Record, ApiError> {
    Ok(sqlx::FromRow::from_row(row)?)
}

pub(crate) fn host_name(r: &Record) -> Result<SpriteName, ApiError> {
    SpriteName::parse(&r.host_name)
        .map_err(|_| ApiError::Internal(format!("bad host name {}", r.host_name)))
}

/// The host's sprite behind the caller's sprite `name`, woken if it sleeps
/// (anything that needs a sprite's processes wakes it).
pub async fn running(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<SpriteName, ApiError> {
    let host = host_sprite(state, caller, name).await?;
    if state.host.get(&host).await?.phase != vmhost::Phase::Running {
        crate::domain::limits::may_run(state, &caller.org_id).await?;
        state.host.wake(&host).await?;
    }
    Ok(host)
}

/// The host's sprite behind the caller's sprite `name`, in whatever phase.
pub async fn host_sprite(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<SpriteName, ApiError> {
    let key = (
        caller.org_id.clone(),
        viewer(caller).to_string(),
        name.to_string(),
    );
    let host = match state.host_names.get(&key) {
        Some(host) => host,
        None => {
            let generation = state.host_names.generation();
            let host = host_name(&find(state, caller, name).await?)?;
            state.host_names.put(key, host.clone(), generation);
            host
        }
    };
    // Every API call about a sprite counts as its activity.
    state.activity.touch(&host);
    Ok(host)
}

/// (organization, name) to host name, for the hot path (an exec) to skip
/// the sprites query. A row's host name never changes while it exists, so
/// only deletions invalidate it.
/// Keyed by organization, [`viewer`] and name: a student's view is theirs.
pub type HostNames = crate::domain::cache::GenCache<(String, String, String), SpriteName>;

/// SQL that keeps the sprites a class's student may see (those they own or
/// were added to) when parameter `$n` is their user id, and every sprite
/// when it is empty (see [`viewer`]).
pub fn visible(n: usize) -> String {
    format!(
        "(${n} = '' OR owner_id = ${n} OR id IN (SELECT sprite_id FROM sprite_members WHERE user_id = ${n}))"
    )
}

/// The parameter of [`visible`] for the caller.
pub fn viewer(caller: &Caller) -> &str {
    if caller.student {
        &caller.user_id
    } else {
        ""
    }
}

/// Whether `caller`, of the sprite's organization, may use the sprite
/// `sprite_id` (a class's student: only their own or shared ones).
pub async fn may_use(state: &AppState, caller: &Caller, sprite_id: &str) -> Result<bool, ApiError> {
    if !caller.student {
        return Ok(true);
    }
    let row = sqlx::query(&format!(
        "SELECT id FROM sprites WHERE id = $1 AND {}",
        visible(2)
    ))
    .bind(sprite_id)
    .bind(&caller.user_id)
    .fetch_optional(state.db.pool())
    .await?;
    Ok(row.is_some())
}

/// The id and the owner (a user id) of the caller's sprite `name`.
pub async fn identity(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<(String, Option<String>), ApiError> {
    let r = find(state, caller, name).await?;
    Ok((r.id, r.owner_id))
}

/// Whether the caller sees a sprite named `name` (without counting as its
/// activity, as every other call about it does).
pub async fn sees(state: &AppState, caller: &Caller, name: &str) -> Result<bool, ApiError> {
    match find(state, caller, name).await {
        Ok(_) => Ok(true),
        Err(ApiError::NotFound(_) | ApiError::Invalid(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

pub(crate) async fn find(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Record, ApiError> {
    let name =
        SpriteName::parse(name).map_err(|e| ApiError::Invalid(format!("sprite name: {e}")))?;
    let row = sqlx::query(&format!(
        "SELECT * FROM sprites WHERE org_id = $1 AND name = $2 AND {}",
        visible(3)
    ))
    .bind(&caller.org_id)
    .bind(name.as_str())
    .bind(viewer(caller))
    .fetch_optional(state.db.pool())
    .await?;
    // Another organization's sprite is as absent as one that never existed.
    row.as_ref()
        .map(record)
        .transpose()?
        .ok_or_else(|| ApiError::NotFound(format!("sprite {name}")))
}

/// A sprite row went or changed: cached lookups of names and URLs may be
/// wrong now.
/// Forgets the cached views of sprites after a change of who sees what.
pub fn forget_views(state: &AppState) {
    forget(state);
}

pub(crate) fn forget(state: &AppState) {
    state.host_names.invalidate();
    state.sprite_routes.invalidate();
}
