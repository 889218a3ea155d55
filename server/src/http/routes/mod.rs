//! The API's table: every method and path, on `wire::client::path`'s
//! templates, and the handler in the resource's file that answers it;
//! `json` holds the extractors that turn malformed input into the API's
//! JSON errors.
//!
//! Every route is added through [`Routes`], which also records its method
//! and path, so a test can hold the table against the checked-in OpenAPI
//! document (`server/openapi.json`) in both directions.

mod admin;
mod answer;
mod auth;
mod checkpoints;
mod classes;
mod control;
mod docs;
mod events;
mod exec;
mod fs;
mod fs_watch;
mod health;
mod json;
mod metrics;
mod orgs;
mod policy;
mod port_proxy;
mod ports;
mod services;
mod socket;
mod sprites;
mod templates;
mod tokens;
mod url_auth;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use sprites_wire::client::path;

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
}

fn all() -> Routes {
    sprite_routes(server_routes(Routes::new()))
}

/// The server's own: health, accounts, organizations, administration.
fn server_routes(routes: Routes) -> Routes {
    routes
        .get("/healthz", health::health)
        .get("/v1/host", health::host)
        .get("/metrics", metrics::metrics)
        .get("/v1/openapi.json", docs::openapi)
        .post(path::SIGN_UP, auth::signup)
        .post(path::SIGN_IN, auth::signin)
        .post(path::SIGN_OUT, auth::signout)
        .get(path::ME, auth::me)
        .get(path::SESSION, auth::session_state)
        .post(path::SWITCH_ORGANIZATION, auth::switch_org)
        .get(path::INVITATION_CHECK, auth::invitation)
        .get(path::INVITATIONS, admin::invitations)
        .post(path::INVITATIONS, admin::invite)
        .delete(path::INVITATION, admin::withdraw)
        .get(path::USERS, admin::users)
        .get(path::HOSTS, admin::hosts)
        .post(path::HOST_DRAIN, admin::drain)
        .post(path::HOST_OPEN, admin::open)
        .post(path::SPRITE_MOVE, admin::move_sprite)
        .post(path::USER_DISABLE, admin::disable)
        .post(path::USER_ENABLE, admin::enable)
        .get(path::TOKENS, tokens::list)
        .post(path::TOKENS, tokens::create)
        .delete(path::TOKEN, tokens::revoke)
        .get(path::ORGANIZATIONS, orgs::list)
        .post(path::ORGANIZATIONS, orgs::create)
        .get(path::ORGANIZATION, orgs::show)
        .post(path::JOIN_CODE, orgs::new_code)
        .put(path::LIMITS, orgs::set_limits)
        .get(path::CLASS_NETWORK_POLICY, policy::class_network)
        .put(path::CLASS_NETWORK_POLICY, policy::set_class_network)
        .post(path::JOIN, orgs::join)
        .get(path::MEMBERS, orgs::members)
        .post(path::MEMBERS, orgs::set_member)
        .delete(path::MEMBER, orgs::remove_member)
}

/// Sprites and what is in them, templates and classes' assignments.
fn sprite_routes(routes: Routes) -> Routes {
    routes
        .get(path::SPRITES, sprites::list)
        .post(path::SPRITES, sprites::create)
        .get(path::SPRITE, sprites::show)
        .put(path::SPRITE, sprites::update)
        .delete(path::SPRITE, sprites::destroy)
        .post(path::FORK, sprites::fork)
        .post(path::SLEEP, sprites::sleep)
        .post(path::WAKE, sprites::wake)
        .post(path::RESTART, sprites::restart)
        .post(path::UPGRADE, sprites::upgrade)
        .get(path::CHECK, sprites::check)
        .get(path::NETWORK_POLICY, policy::network)
        .post(path::NETWORK_POLICY, policy::set_network)
        .get(path::RESOURCES_POLICY, policy::resources)
        .post(path::RESOURCES_POLICY, policy::set_resources)
        .delete(path::RESOURCES_POLICY, policy::clear_resources)
        .get(path::PRIVILEGES_POLICY, policy::privileges)
        .post(path::PRIVILEGES_POLICY, policy::set_privileges)
        .delete(path::PRIVILEGES_POLICY, policy::clear_privileges)
        .get(path::KEEP_AWAKE, sprites::list_keep_awake)
        .post(path::KEEP_AWAKE, sprites::add_keep_awake)
        .delete(path::KEEP_AWAKE_TASK, sprites::remove_keep_awake)
        .get(path::EXEC, exec::exec_or_list)
        .post(path::EXEC, exec::exec_http)
        .get(path::EXEC_ATTACH, exec::attach)
        .post(path::EXEC_KILL, exec::kill)
        .post(path::CHECKPOINT, checkpoints::create)
        .get(path::CHECKPOINTS, checkpoints::list)
        .get(path::CHECKPOINT_ONE, checkpoints::show)
        .delete(path::CHECKPOINT_ONE, checkpoints::remove)
        .post(path::RESTORE, checkpoints::restore)
        .get(path::DIFF, checkpoints::diff)
        .get(path::FS_LIST, fs::list)
        .get(path::FS_READ, fs::read)
        .get(path::FS_READ_AT, fs::read_at_checkpoint)
        .add(
            axum::http::Method::PUT,
            path::FS_WRITE,
            axum::routing::put(fs::write).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .delete(path::FS_DELETE, fs::remove)
        .post(path::FS_MKDIR, fs::mkdir)
        .post(path::FS_RENAME, fs::rename)
        .post(path::FS_COPY, fs::copy)
        .post(path::FS_CHMOD, fs::chmod)
        .post(path::FS_CHOWN, fs::chown)
        .get(path::FS_WATCH, fs_watch::watch)
        .get(path::PORTS_WATCH, ports::watch)
        .get(path::CONTROL, control::open)
        .get(path::EVENTS, events::stream)
        .get(path::USAGE, events::usage_all)
        .get(path::SPRITE_USAGE, events::usage)
        .get("/v1/url-auth", url_auth::hand_off)
        .get(path::PROXY, port_proxy::open)
        .get(path::SERVICES, services::list)
        .post(path::SERVICE_SIGNAL, services::signal)
        .get(path::SERVICE, services::show)
        .put(path::SERVICE, services::put)
        .delete(path::SERVICE, services::delete)
        .post(path::SERVICE_START, services::start)
        .post(path::SERVICE_STOP, services::stop)
        .post(path::SERVICE_RESTART, services::restart)
        .get(path::SERVICE_LOGS, services::logs)
        .get(path::TEMPLATES, templates::list)
        .post(path::TEMPLATES, templates::save)
        .get(path::TEMPLATE, templates::show)
        .delete(path::TEMPLATE, templates::remove)
        .get(path::TEMPLATE_PICTURE, templates::picture)
        .add(
            axum::http::Method::POST,
            path::IMAGES,
            axum::routing::post(templates::import)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .get(path::ASSIGNMENTS, classes::list)
        .post(path::ASSIGNMENTS, classes::create)
        .get(path::ASSIGNMENT, classes::show)
        .delete(path::ASSIGNMENT, classes::remove)
        .post(path::ASSIGNMENT_START, classes::start)
        .post(path::ASSIGNMENT_RESET, classes::reset)
        .post(path::ASSIGNMENT_COLLECT, classes::collect)
        .get(path::ASSIGNMENT_COLLECTIONS, classes::collections)
        .get(path::SPRITE_MEMBERS, classes::members)
        .post(path::SPRITE_MEMBERS, classes::add_member)
        .delete(path::SPRITE_MEMBER, classes::remove_member)
}

/// Any path under `/v1` that names no endpoint.
pub async fn unknown(uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}

pub fn router() -> Router<AppState> {
    all()
        .router
        .layer(axum::middleware::map_response(crate::error::json_refusal))
}

/// Every (method, path) the API answers.
pub fn table() -> Vec<(Method, &'static str)> {
    all().table
}
