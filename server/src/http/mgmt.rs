//! Each sprite's management socket: `/.sprite/run/api.sock` inside it (a
//! directory of the host's, mounted read-only), which the server serves for
//! that one sprite. The socket is the credential: whatever connects acts
//! for its sprite, in a subset of the API with the sprite's name implied,
//!
//! ```text
//! GET  /v1/info                     the sprite (GET /v1/sprites/{name})
//! GET  /v1/usage
//! GET  /v1/checkpoints, /v1/checkpoints/{id};  POST /v1/checkpoints
//! *    /v1/services...              as /v1/sprites/{name}/services...
//! *    /v1/keep-awake...            as /v1/sprites/{name}/keep-awake...
//! ```
//!
//! served by the API's own handlers. Restores, deletes and the rest stay
//! with the owner's credentials. `sprite-env` (sprite-init under another
//! name) is the command that speaks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use sprites_wire::SpriteName;
use tokio::task::JoinHandle;

use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::AppState;

/// Set on requests that came through a sprite's management socket: the
/// caller is the sprite's organization, acting for that sprite.
#[derive(Clone, Debug)]
pub struct SpriteItself(pub Caller);

/// The listeners of the sprites' management sockets.
#[derive(Clone, Default)]
pub struct Sockets(Arc<Mutex<HashMap<SpriteName, Slot>>>);

/// One sprite's socket: being bound, or served by a task.
enum Slot {
    Binding,
    Serving(JoinHandle<()>),
}

impl Sockets {
    /// Takes `host`'s slot for a bind, unless its socket is being bound
    /// or served already: whether it took it.
    fn reserve(&self, host: &SpriteName) -> bool {
        let mut slots = self.0.lock().unwrap();
        if let Some(Slot::Binding) = slots.get(host) {
            return false;
        }
        if let Some(Slot::Serving(task)) = slots.get(host) {
            if !task.is_finished() {
                return false;
            }
        }
        slots.insert(host.clone(), Slot::Binding);
        true
    }

    /// Puts `task` in `host`'s slot; if the sprite was forgotten while its
    /// socket was bound, the task stops instead.
    fn serve(&self, host: &SpriteName, task: JoinHandle<()>) {
        let mut slots = self.0.lock().unwrap();
        match slots.get(host) {
            Some(Slot::Binding) => {
                slots.insert(host.clone(), Slot::Serving(task));
            }
            _ => task.abort(),
        }
    }

    /// Gives up `host`'s slot after a failed bind.
    fn release(&self, host: &SpriteName) {
        let mut slots = self.0.lock().unwrap();
        if let Some(Slot::Binding) = slots.get(host) {
            slots.remove(host);
        }
    }

    /// Stops serving `host`'s socket (the sprite is gone).
    pub fn forget(&self, host: &SpriteName) {
        if let Some(Slot::Serving(task)) = self.0.lock().unwrap().remove(host) {
            task.abort();
        }
    }
}

/// Serves the management socket of sprite `name` (host name `host`) of
/// organization `org`, unless it is served already.
async fn ensure(state: &AppState, host: &SpriteName, name: &str, org_id: &str, org_slug: &str) {
    if !state.mgmt.reserve(host) {
        return;
    }
    let listener = match state.host.listen_mgmt(host).await {
        Ok(l) => l,
        Err(e) => {
            state.mgmt.release(host);
            tracing::warn!(sprite = %host, error = %e, "cannot serve the management socket");
            return;
        }
    };
    let caller = Caller {
        user_id: format!("sprite:{host}"),
        handle: "sprite".into(),
        org_id: org_id.to_string(),
        org_slug: org_slug.to_string(),
        student: false,
    };
    let app = router(state.clone(), caller, name.to_string());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(Incoming(listener), app).await {
            tracing::warn!(error = %e, "a management socket stopped");
        }
    });
    state.mgmt.serve(host, task);
}

/// A sprite's management socket, as axum serves it.
struct Incoming(vmhost::MgmtListener);

impl axum::serve::Listener for Incoming {
    type Io = vmhost::MgmtConnection;
    type Addr = ();

    async fn accept(&mut self) -> (Self::Io, ()) {
        loop {
            match self.0.accept().await {
                Ok(connection) => return (connection, ()),
                // Out of descriptors, say: the next try may do.
                Err(e) => {
                    tracing::warn!(error = %e, "a management socket cannot accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves every sprite's socket now, and each new or restarted sprite's
/// when the host reports it running; stops serving destroyed ones.
pub fn spawn_watcher(state: AppState) {
    let mut events = state.host.subscribe();
    tokio::spawn(async move {
        if let Err(e) = serve_all(&state).await {
            tracing::warn!(error = %e, "cannot serve the management sockets");
        }
        loop {
            let e = match events.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let _ = serve_all(&state).await;
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            match e.phase {
                vmhost::Phase::Destroyed => state.mgmt.forget(&e.sprite),
                vmhost::Phase::Running => {
                    if let Err(err) = serve_one(&state, &e.sprite).await {
                        tracing::warn!(sprite = %e.sprite, error = %err, "cannot serve the management socket");
                    }
                }
                _ => {}
            }
        }
    });
}

/// Sprites with what their management socket needs to know of them.
const SPRITES: &str = "SELECT s.host_name AS host_name, s.name AS name, s.org_id AS org_id, \
     o.slug AS slug FROM sprites s JOIN organizations o ON o.id = s.org_id";

/// A sprite as its management socket knows it.
#[derive(sqlx::FromRow)]
struct SpriteRow {
    host_name: String,
    name: String,
    org_id: String,
    slug: String,
}

async fn serve_one(state: &AppState, host: &SpriteName) -> Result<(), ApiError> {
    let row = sqlx::query_as::<_, SpriteRow>(&format!("{SPRITES} WHERE s.host_name = $1"))
        .bind(host.as_str())
        .fetch_optional(state.db.pool())
        .await?;
    match row {
        Some(row) => serve_row(state, &row).await,
        None => Ok(()),
    }
}

/// Serves every existing sprite's socket (at start).
pub async fn serve_all(state: &AppState) -> Result<(), ApiError> {
    let rows = sqlx::query_as::<_, SpriteRow>(SPRITES)
        .fetch_all(state.db.pool())
        .await?;
    for row in &rows {
        serve_row(state, row).await?;
    }
    Ok(())
}

/// Serves the socket of the sprite of `row`, if the host has it.
async fn serve_row(state: &AppState, row: &SpriteRow) -> Result<(), ApiError> {
    let Ok(host) = SpriteName::parse(&row.host_name) else {
        return Ok(());
    };
    if state.host.get(&host).await.is_ok() {
        ensure(state, &host, &row.name, &row.org_id, &row.slug).await;
    }
    Ok(())
}

fn router(state: AppState, caller: Caller, name: String) -> Router {
    let api = crate::http::routes::router().with_state(state);
    Router::new()
        .fallback_service(api)
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let caller = caller.clone();
                let name = name.clone();
                async move {
                    let Some(uri) = api_path(req.method(), req.uri(), &name) else {
                        return ApiError::Forbidden(format!(
                            "{} {} is not available from inside the sprite; see GET /v1/info, \
                         /v1/checkpoints, /v1/services, /v1/keep-awake",
                            req.method(),
                            req.uri().path()
                        ))
                        .into_response();
                    };
                    let (mut parts, body) = req.into_parts();
                    parts.uri = uri;
                    parts.extensions.insert(SpriteItself(caller));
                    next.run(Request::from_parts(parts, body)).await
                }
            },
        ))
}

/// The API path a management request stands for, if it is allowed.
fn api_path(method: &Method, uri: &Uri, name: &str) -> Option<Uri> {
    let path = uri.path();
    let rest = path.strip_prefix("/v1")?;
    let base = format!("/v1/sprites/{name}");
    let mapped = match (method, rest) {
        (&Method::GET, "/info") => base,
        (&Method::GET, "/usage") => format!("{base}/usage"),
        (&Method::GET, "/checkpoints") => format!("{base}/checkpoints"),
        (&Method::POST, "/checkpoints") => format!("{base}/checkpoint"),
        (&Method::GET, r)
            if r.starts_with("/checkpoints/")
                && r[13..].chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            format!("{base}{r}")
        }
        (_, r) if r == "/services" || r.starts_with("/services/") => format!("{base}{r}"),
        (_, r) if r == "/keep-awake" || r.starts_with("/keep-awake/") => format!("{base}{r}"),
        _ => return None,
    };
    let with_query = match uri.query() {
        Some(q) => format!("{mapped}?{q}"),
        None => mapped,
    };
    with_query.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(method: Method, path: &str) -> Option<String> {
        api_path(&method, &path.parse().unwrap(), "web").map(|u| u.to_string())
    }

    #[test]
    fn inside_paths_map_to_the_sprites_own_routes_only() {
        assert_eq!(
            map(Method::GET, "/v1/info").as_deref(),
            Some("/v1/sprites/web")
        );
        assert_eq!(
            map(Method::POST, "/v1/checkpoints").as_deref(),
            Some("/v1/sprites/web/checkpoint")
        );
        assert_eq!(
            map(Method::GET, "/v1/checkpoints/v3").as_deref(),
            Some("/v1/sprites/web/checkpoints/v3")
        );
        assert_eq!(
            map(Method::PUT, "/v1/services/db?duration=2s").as_deref(),
            Some("/v1/sprites/web/services/db?duration=2s")
        );
        assert_eq!(
            map(Method::DELETE, "/v1/keep-awake/k1").as_deref(),
            Some("/v1/sprites/web/keep-awake/k1")
        );
        // Restores, deletes, other sprites and the rest of the API: no.
        assert_eq!(map(Method::POST, "/v1/checkpoints/v1/restore"), None);
        assert_eq!(map(Method::DELETE, "/v1/checkpoints/v1"), None);
        assert_eq!(map(Method::GET, "/v1/sprites"), None);
        assert_eq!(map(Method::DELETE, "/v1/info"), None);
        assert_eq!(map(Method::GET, "/v1/servicesx"), None);
        assert_eq!(map(Method::GET, "/v1/tokens"), None);
    }
}
