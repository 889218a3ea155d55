//! One file per resource, each giving its [`Routes`]; `json` holds the
//! extractors that turn malformed input into the API's JSON errors.
//!
//! Every route is added through [`Routes`], which also records its method
//! and path, so a test can hold the table against the checked-in OpenAPI
//! document (`server/openapi.json`) in both directions.

mod admin;
mod auth;
mod checkpoints;
mod classes;
mod docs;
mod events;
mod exec;
mod fs;
mod fs_watch;
mod health;
mod json;
mod metrics;
mod orgs;
mod port_proxy;
mod services;
mod sprites;
mod templates;
mod tokens;
mod url_auth;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use crate::AppState;

/// Routes and the table of what they answer.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<(Method, &'static str)>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Answers `method` at `path` with `handler`.
    fn add(
        mut self,
        method: Method,
        path: &'static str,
        handler: MethodRouter<AppState>,
    ) -> Routes {
        self.router = self.router.route(path, handler);
        self.table.push((method, path));
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add(Method::GET, path, axum::routing::get(h))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add(Method::POST, path, axum::routing::post(h))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add(Method::PUT, path, axum::routing::put(h))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add(Method::DELETE, path, axum::routing::delete(h))
    }

    fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }
}

fn all() -> Routes {
    Routes::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(docs::routes())
        .merge(auth::routes())
        .merge(admin::routes())
        .merge(tokens::routes())
        .merge(orgs::routes())
        .merge(sprites::routes())
        .merge(exec::routes())
        .merge(checkpoints::routes())
        .merge(fs::routes())
        .merge(fs_watch::routes())
        .merge(events::routes())
        .merge(url_auth::routes())
        .merge(port_proxy::routes())
        .merge(services::routes())
        .merge(templates::routes())
        .merge(classes::routes())
}

/// Any path under `/v1` that names no endpoint.
pub async fn unknown(uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}

pub fn router() -> Router<AppState> {
    all().router
}

/// Every (method, path) the API answers.
pub fn table() -> Vec<(Method, &'static str)> {
    all().table
}
