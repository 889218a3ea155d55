//! The sprites server. It only translates: HTTP in, one `vmhost::Host`
//! call, HTTP out. `app` builds the router, `serve` runs it until shutdown;
//! `main` reads the configuration, binds and wires.

pub mod error;
pub mod routes;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tower_http::services::ServeDir;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub host: Arc<vmhost::Host>,
}

/// The whole HTTP surface: API routes first, then the web app's files.
pub fn app(state: AppState, public_dir: PathBuf) -> Router {
    routes::router()
        .with_state(state)
        .fallback_service(ServeDir::new(public_dir))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves until `shutdown` completes. Sprites are not touched on the way
/// out: they belong to the host, not to this process, and keep running.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
