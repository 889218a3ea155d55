//! Sprite URLs: every sprite answers at `<sprite>-<org>.<base domain>` on
//! the server's own port, and requests there go to port 8080 inside it, or
//! to the port of the service that declares itself its HTTP service.
//!
//! 1. The `Host` header decides first: the app's own host goes on to the
//!    API and the web app; a sprite's host is proxied, by [`forward`] for
//!    a plain HTTP/1.1 request, else by [`SpriteHosts`] through hyper.
//! 2. A private sprite (`url_settings.auth = "sprite"`) admits a bearer
//!    token of its organization, or the cookie of its own host that the
//!    hand-off sets: a browser without one is sent to the app's origin
//!    (`/v1/url-auth`), which checks the session there and sends it back
//!    with a one-minute ticket, which becomes a cookie for that one host.
//!    The dashboard's cookie is host-only, so a browser never sends it to a
//!    sprite.
//! 3. The proxy removes its own credentials (the `Authorization` header,
//!    its cookies) and hop-by-hop headers, adds `X-Forwarded-For`,
//!    `X-Forwarded-Proto` and `Forwarded` (the `Host` header passes as the
//!    client sent it, so no `X-Forwarded-Host` repeats it), wakes the
//!    sprite if it sleeps, and sends the request through a connection made
//!    inside the sprite's network namespace. Bodies stream both ways; an
//!    `Upgrade` (WebSocket) becomes a spliced connection.
//! 4. Nothing listening yet is a friendly page that retries by itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sprites_wire::SpriteName;
use vmhost::Connection;

use crate::domain::caller::Caller;
use crate::error::ApiError;
use crate::{client_addr_of, AppState};

pub mod forward;

/// The port a sprite's web app listens on.
pub const APP_PORT: u16 = 8080;
/// Cookie of a sprite's host that admits a member's browser.
pub const AUTH_COOKIE: &str = "__sprite_auth";
/// Path on a sprite's host where the hand-off's ticket arrives.
pub const AUTH_PATH: &str = "/__sprite_auth";
/// How long a hand-off ticket and the cookie made from it are good for.
const TICKET_LIFE: Duration = Duration::from_secs(60);
const COOKIE_LIFE: Duration = Duration::from_secs(12 * 3600);
/// The longest a request waits for a sleeping sprite to wake.
const WAKE_LIMIT: Duration = Duration::from_secs(30);
/// After a wake, how long a request waits for the app to listen again.
const APP_START_LIMIT: Duration = Duration::from_secs(10);
/// Idle connections kept per sprite.
const IDLE_PER_SPRITE: usize = 16;

/// A sprite as its URL reaches it.
#[derive(Clone, Debug)]
pub struct Route {
    pub sprite_id: String,
    pub host: SpriteName,
    pub org_id: String,
    pub name: String,
    pub org_slug: String,
    pub public: bool,
    /// Private, and only for the organization's owners and admins.
    pub admins_only: bool,
}

/// URL labels (`<sprite>-<org>`) to their sprites.
pub type Routes = crate::domain::cache::GenCache<String, Arc<Route>>;

/// The label of a sprite host (`web-alice` of `web-alice.localhost:8080`),
/// when `headers` name one under the base domain.
pub fn sprite_label(base_domain: &str, headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let label = host.strip_suffix(base_domain)?.strip_suffix('.')?;
    (!label.is_empty() && !label.contains('.')).then(|| label.to_string())
}

/// What a route is made of in the database.
#[derive(sqlx::FromRow)]
struct RouteRow {
    id: String,
    #[sqlx(try_from = "String")]
    host_name: SpriteName,
    org_id: String,
    url_auth: String,
    url_private_access: String,
}

/// The sprite a URL label names. Both sprite names and organization slugs
/// may hold hyphens, so each split is tried from the left; creation refuses
/// a name whose label another sprite already answers to.
pub async fn resolve(state: &AppState, label: &str) -> Result<Option<Arc<Route>>, ApiError> {
    if let Some(route) = state.sprite_routes.get(label) {
        return Ok(Some(route));
    }
    let generation = state.sprite_routes.generation();
    for (i, _) in label.match_indices('-') {
        let (name, slug) = (&label[..i], &label[i + 1..]);
        if SpriteName::parse(name).is_err() || SpriteName::parse(slug).is_err() {
            continue;
        }
        let row = sqlx::query_as::<_, RouteRow>(
            "SELECT s.id AS id, s.host_name AS host_name, s.org_id AS org_id, s.url_auth AS url_auth, \
             s.url_private_access AS url_private_access FROM sprites s JOIN organizations o ON o.id = s.org_id \
             WHERE o.slug = $1 AND s.name = $2",
        )
        .bind(slug)
        .bind(name)
        .fetch_optional(state.db.pool())
        .await?;
        let Some(row) = row else { continue };
        let route = Arc::new(Route {
            sprite_id: row.id,
            host: row.host_name,
            org_id: row.org_id,
            name: name.to_string(),
            org_slug: slug.to_string(),
            public: row.url_auth == "public",
            admins_only: row.url_private_access == "admins",
        });
        state
            .sprite_routes
            .put(label.to_string(), route.clone(), generation);
        return Ok(Some(route));
    }
    Ok(None)
}

/// In front of everything: requests to a sprite's host are proxied, the
/// rest go on to the API and the web app. A plain tower layer rather than
/// axum middleware, since a sprite's every request passes here: no boxed
/// `Next`, no clone of the whole state per request.
#[derive(Clone)]
pub struct SpriteHostsLayer(Arc<AppState>);

impl SpriteHostsLayer {
    pub fn new(state: AppState) -> SpriteHostsLayer {
        SpriteHostsLayer(Arc::new(state))
    }
}

impl<S> tower::Layer<S> for SpriteHostsLayer {
    type Service = SpriteHosts<S>;

    fn layer(&self, inner: S) -> SpriteHosts<S> {
        SpriteHosts {
            state: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct SpriteHosts<S> {
    state: Arc<AppState>,
    inner: S,
}

type Proxied = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

impl<S> tower::Service<Request> for SpriteHosts<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::Either<S::Future, Proxied>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let Some(label) = sprite_label(&self.state.urls.base_domain, req.headers()) else {
            return futures_util::future::Either::Left(self.inner.call(req));
        };
        let state = self.state.clone();
        futures_util::future::Either::Right(Box::pin(async move {
            Ok(match proxy(&state, &label, req).await {
                Ok(res) => res,
                Err(e) => page_for(e),
            })
        }))
    }
}

/// Why a sprite URL did not reach the sprite.
enum Refusal {
    NoSuchSprite,
    /// A browser that should go through the hand-off first.
    SignIn(String),
    Unauthorized,
    NotListening(String, u16),
    Api(ApiError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        Refusal::Api(e)
    }
}

impl From<vmhost::Error> for Refusal {
    fn from(e: vmhost::Error) -> Refusal {
        Refusal::Api(e.into())
    }
}

fn page_for(refusal: Refusal) -> Response {
    match refusal {
        Refusal::NoSuchSprite => page(
            StatusCode::NOT_FOUND,
            "No such sprite",
            "Nothing answers at this address. Check the sprite's name and organization.",
            false,
        ),
        Refusal::SignIn(to) => (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response(),
        Refusal::Unauthorized => {
            let mut res = page(
                StatusCode::UNAUTHORIZED,
                "This sprite is private",
                "Sign in as a member of its organization, or send an API token as \
                 <code>Authorization: Bearer</code>.",
                false,
            );
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            res
        }
        Refusal::NotListening(name, port) => {
            let mut res = page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Waiting for the app",
                &format!(
                    "<b>{}</b> is awake, but nothing listens on port {port} inside it yet. \
                     Start a server there, for example <code>python3 -m http.server {port}</code>; \
                     this page tries again by itself.",
                    html_escape(&name)
                ),
                true,
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            res
        }
        Refusal::Api(e) => {
            let status = e.status();
            page(
                status,
                "The sprite could not be reached",
                &html_escape(&e.public_message()),
                status.is_server_error(),
            )
        }
    }
}

/// A small HTML page in the product's words; with `retry`, it reloads
/// itself every two seconds.
fn page(status: StatusCode, title: &str, body: &str, retry: bool) -> Response {
    let refresh = if retry {
        r#"<meta http-equiv="refresh" content="2">"#
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">{refresh}<title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:15vh auto;padding:0 1em;color:#222}}\
         h1{{font-size:1.4em}}code{{background:#f3f3f3;padding:0 .3em;border-radius:3px}}</style></head>\
         <body><h1>{title}</h1><p>{body}</p></body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// The page for an address no sprite (of the caller's) answers to.
pub fn no_such_sprite_page() -> Response {
    page_for(Refusal::NoSuchSprite)
}

/// The page for a browser that does not keep a private sprite's cookie.
pub fn cookie_refused_page(url: &str) -> Response {
    let url = html_escape(url);
    page(
        StatusCode::FORBIDDEN,
        "Open the sprite in its own tab",
        &format!(
            "This browser does not keep the sign-in of a private sprite shown inside \
             another page (it blocks cookies of other sites here). \
             <a href=\"{url}\" target=\"_blank\" rel=\"noopener\">Open it in a new tab</a>, \
             or make the sprite public in its settings."
        ),
        false,
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn proxy(state: &AppState, label: &str, mut req: Request) -> Result<Response, Refusal> {
    let route = resolve(state, label).await?.ok_or(Refusal::NoSuchSprite)?;
    let client = client_addr_of(req.extensions());
    if req.uri().path() == AUTH_PATH {
        return Ok(accept_ticket(state, &route, &req));
    }
    if !route.public {
        let (parts, body) = req.into_parts();
        authorize(state, &route, &parts).await?;
        req = Request::from_parts(parts, body);
    }

    // In flight until the response body ends (or the upgraded connection
    // closes): the sprite does not fall asleep under its own request.
    let busy = state.activity.busy(&route.host).await;
    let woke = wake(state, &route.host, &route.org_id).await?;
    let host_header = req.headers().get(header::HOST).cloned();
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let forwarding = Forwarding::new(client, &state.urls.scheme, host_header.as_ref());
    forwarded_headers(&mut parts.headers, &forwarding, upgrade);
    // An absolute-form target (`GET http://host/path`) goes upstream as
    // origin-form; the usual origin-form one is kept as it is.
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        parts.uri = path.parse().expect("a path is a URI");
    }
    parts.version = axum::http::Version::HTTP_11;
    let upstream_req = Request::from_parts(parts, body);

    let mut sender = connect(state, &route, woke, !upgrade).await?;
    let mut res = match sender.send_request(upstream_req).await {
        Ok(res) => res,
        Err(e) => {
            tracing::debug!(sprite = %route.name, error = %e, "proxied request failed");
            return Err(Refusal::Api(ApiError::Host(vmhost::Error::Io {
                context: "the sprite's app closed the connection".into(),
                source: std::io::Error::other(e),
            })));
        }
    };
    if !upgrade {
        state.upstreams.put(&route.host, sender);
    }

    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut res);
        if let Some(client_upgrade) = client_upgrade {
            tokio::spawn(async move {
                let _busy = busy;
                let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await)
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(
                    &mut TokioIo::new(client),
                    &mut TokioIo::new(upstream),
                )
                .await;
            });
        }
        let (parts, _) = res.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = res.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    let body = http_body_util::BodyExt::map_frame(body, move |frame| {
        let _ = &busy;
        frame
    });
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Wakes the sprite if it sleeps (and its organization, `org_id`, may run
/// one more); whether it had to.
async fn wake(state: &AppState, host: &SpriteName, org_id: &str) -> Result<bool, Refusal> {
    if state.host.phase(host).await? == vmhost::Phase::Running {
        return Ok(false);
    }
    crate::domain::limits::may_run(state, org_id).await?;
    // The wake goes on past the limit, on its own: a disk coming back from
    // the object store may take longer, and the next request finds it
    // further along instead of starting over.
    let (sprites, name) = (state.host.clone(), host.clone());
    let waking = tokio::spawn(async move { sprites.wake(&name).await });
    match tokio::time::timeout(WAKE_LIMIT, waking).await {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) => {
            return Err(Refusal::Api(ApiError::Internal(format!(
                "waking the sprite failed: {e}"
            ))))
        }
        Err(_) => {
            return Err(Refusal::Api(ApiError::Internal(
                "the sprite is still waking (its disk may be coming back from the object store): try again in a moment".into(),
            )))
        }
    };
    Ok(true)
}

/// A connection to the sprite's app: an idle one when `reuse` allows,
/// else a new one.
async fn connect(
    state: &AppState,
    route: &Route,
    woke: bool,
    reuse: bool,
) -> Result<SendRequest<Body>, Refusal> {
    if reuse {
        if let Some(sender) = state.upstreams.take(&route.host) {
            return Ok(sender);
        }
    }
    let stream = open(state, route, woke).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| {
            ApiError::Host(vmhost::Error::Io {
                context: "cannot speak HTTP to the sprite's app".into(),
                source: std::io::Error::other(e),
            })
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "connection to a sprite's app ended");
        }
    });
    Ok(sender)
}

/// A new connection to the sprite's app, made inside the sprite. Right
/// after a wake, or while the service that serves the app has only just
/// started (a new sprite from a template, a restore), the app may not
/// listen yet, so a refused connection is tried again for a while: the
/// visitor waits for the page rather than get "nothing listens".
async fn open(state: &AppState, route: &Route, woke: bool) -> Result<Connection, Refusal> {
    let app = app(state, &route.host).await;
    let wait = woke || app.starting;
    let deadline = tokio::time::Instant::now() + APP_START_LIMIT;
    loop {
        match state.host.connect(&route.host, "localhost", app.port).await {
            Ok(stream) => return Ok(stream),
            Err(vmhost::Error::PortClosed(_)) if wait && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(vmhost::Error::PortClosed(_)) => {
                return Err(Refusal::NotListening(route.name.clone(), app.port))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The sprite's web app as its services declare it.
struct App {
    port: u16,
    /// The service that serves it started within [`APP_START_LIMIT`].
    starting: bool,
}

/// The port of the sprite's web app: that of the service that declares an
/// HTTP port, else [`APP_PORT`]; and whether that service is starting.
async fn app(state: &AppState, host: &SpriteName) -> App {
    let services = state.host.services(host).await.unwrap_or_default();
    let Some(service) = services.iter().find(|s| s.spec.http_port.is_some()) else {
        return App {
            port: APP_PORT,
            starting: false,
        };
    };
    let now = vmhost::now_ms();
    let limit = APP_START_LIMIT.as_millis() as u64;
    let starting = match service.state.status.as_str() {
        "starting" => true,
        "running" => service
            .state
            .started_at
            .is_some_and(|t| now.saturating_sub(t) < limit),
        _ => false,
    };
    App {
        port: service.spec.http_port.unwrap_or(APP_PORT),
        starting,
    }
}

/// Idle HTTP/1.1 connections to sprites' apps, for keep-alive: those of
/// hyper's client (for connections the app serves) and bare ones (for
/// [`forward`]).
#[derive(Clone, Default)]
pub struct Upstreams(Arc<Mutex<Idle>>);

#[derive(Default)]
struct Idle {
    senders: HashMap<SpriteName, Vec<SendRequest<Body>>>,
    streams: HashMap<SpriteName, Vec<Connection>>,
}

impl Upstreams {
    /// The idle connection used last that is ready for a request; busy
    /// ones stay for later, closed ones go. Last in, first out: one client
    /// at a time keeps to one connection, so the app answers on the thread
    /// that just did (handing requests round several idle connections cost
    /// a threaded app ~70 us each, a third of a small request).
    fn take(&self, host: &SpriteName) -> Option<SendRequest<Body>> {
        let mut idle = self.0.lock().unwrap();
        let senders = idle.senders.get_mut(host)?;
        senders.retain(|s| !s.is_closed());
        let i = senders.iter().rposition(|s| s.is_ready())?;
        Some(senders.remove(i))
    }

    /// Keeps a connection whose response is under way; it is ready again
    /// once that response's body has been read.
    fn put(&self, host: &SpriteName, sender: SendRequest<Body>) {
        let mut idle = self.0.lock().unwrap();
        let senders = idle.senders.entry(host.clone()).or_default();
        senders.retain(|s| !s.is_closed());
        if senders.len() < IDLE_PER_SPRITE {
            senders.push(sender);
        }
    }

    /// The bare connection used last that the app has not closed since
    /// (last in, first out, as [`Upstreams::take`]).
    fn take_stream(&self, host: &SpriteName) -> Option<Connection> {
        let mut idle = self.0.lock().unwrap();
        let streams = idle.streams.get_mut(host)?;
        while let Some(stream) = streams.pop() {
            if stream.is_reusable() {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps a bare connection that is between requests.
    fn put_stream(&self, host: &SpriteName, stream: Connection) {
        let mut idle = self.0.lock().unwrap();
        let streams = idle.streams.entry(host.clone()).or_default();
        if streams.len() < IDLE_PER_SPRITE {
            streams.push(stream);
        }
    }

    /// Drops every connection to `host` (it slept cold, or is gone).
    pub fn forget(&self, host: &SpriteName) {
        let mut idle = self.0.lock().unwrap();
        idle.senders.remove(host);
        idle.streams.remove(host);
    }
}

const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What a client may claim about earlier hops; only this hop's count.
const CLIENT_CLAIMS: [HeaderName; 5] = [
    FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    HeaderName::from_static("x-forwarded-host"),
    HeaderName::from_static("x-real-ip"),
];

/// Removes the headers that belong to one connection, not the request;
/// for an upgrade, `Connection: upgrade` and `Upgrade` must pass. Every
/// request passes here, so the usual case (no `Connection` header naming
/// others) allocates nothing.
fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = items(headers, header::CONNECTION, ',')
            .filter_map(|n| HeaderName::try_from(n).ok())
            .collect();
        for name in named {
            if !(upgrade && name == header::UPGRADE) {
                headers.remove(name);
            }
        }
    }
    for name in &HOP_BY_HOP {
        if !(upgrade && (name == header::UPGRADE || name == header::CONNECTION)) {
            headers.remove(name);
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// The forwarding headers of this hop for one client and `Host`: made
/// once per client connection and host by [`forward`].
#[derive(Clone)]
struct Forwarding {
    host: Option<HeaderValue>,
    proto: HeaderValue,
    /// `X-Forwarded-For` and `Forwarded`, when the client's address is known.
    client: Option<(HeaderValue, HeaderValue)>,
}

impl Forwarding {
    fn new(client: Option<IpAddr>, scheme: &str, host: Option<&HeaderValue>) -> Forwarding {
        let proto = match scheme {
            "https" => HeaderValue::from_static("https"),
            _ => HeaderValue::from_static("http"),
        };
        let client = client.map(|ip| {
            let addr = ip.to_string();
            let h = host.and_then(|h| h.to_str().ok()).unwrap_or("");
            let forwarded = match ip {
                IpAddr::V4(_) => format!("for={addr};proto={scheme};host=\"{h}\""),
                IpAddr::V6(_) => format!("for=\"[{addr}]\";proto={scheme};host=\"{h}\""),
            };
            let forwarded = HeaderValue::from_str(&forwarded)
                .unwrap_or_else(|_| HeaderValue::from_static("for=unknown"));
            let addr = HeaderValue::from_str(&addr).expect("an address is a header value");
            (addr, forwarded)
        });
        Forwarding {
            host: host.cloned(),
            proto,
            client,
        }
    }
}

/// The request as the sprite's app sees it: none of the proxy's
/// credentials, none of the client's claims about forwarding, and the
/// forwarding headers of this hop.
fn forwarded_headers(headers: &mut HeaderMap, forwarding: &Forwarding, upgrade: bool) {
    strip_hop_by_hop(headers, upgrade);
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::PROXY_AUTHORIZATION);
    if headers.contains_key(header::COOKIE) {
        let cookies: Vec<String> = items(headers, header::COOKIE, ';')
            .filter(|c| {
                let name = c.split('=').next().unwrap_or("");
                !c.is_empty() && name != AUTH_COOKIE && name != crate::http::session::COOKIE
            })
            .map(str::to_string)
            .collect();
        headers.remove(header::COOKIE);
        if !cookies.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&cookies.join("; ")) {
                headers.insert(header::COOKIE, v);
            }
        }
    }
    for name in &CLIENT_CLAIMS {
        headers.remove(name);
    }
    headers.insert(X_FORWARDED_PROTO, forwarding.proto.clone());
    if let Some((addr, forwarded)) = &forwarding.client {
        headers.insert(FORWARDED, forwarded.clone());
        headers.insert(X_FORWARDED_FOR, addr.clone());
    }
}

/// Admits a bearer token of the sprite's organization, or the hand-off
/// cookie of its host for a member. A browser with neither is sent to
/// sign in; anything else is refused.
/// Whether `caller` (of the sprite's organization) may open its private
/// URL: one who may use the sprite, and an owner or admin when it says so.
async fn may_open(state: &AppState, route: &Route, caller: &Caller) -> Result<bool, ApiError> {
    if !crate::domain::access::may_use(state, caller, &route.sprite_id).await? {
        return Ok(false);
    }
    if !route.admins_only {
        return Ok(true);
    }
    let role = crate::domain::orgs::role_of(&state.db, &caller.user_id, &route.org_id).await?;
    Ok(matches!(role.as_deref(), Some("owner" | "admin")))
}

async fn authorize(
    state: &AppState,
    route: &Route,
    req: &axum::http::request::Parts,
) -> Result<(), Refusal> {
    let headers = &req.headers;
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .ok_or(Refusal::Unauthorized)?;
        return match crate::domain::accounts::caller_for_token(&state.db, token.trim()).await? {
            Some(c) if c.org_id == route.org_id && may_open(state, route, &c).await? => Ok(()),
            _ => Err(Refusal::Unauthorized),
        };
    }
    if let Some(user) = cookie(headers, AUTH_COOKIE).and_then(|c| cookie_user(state, route, &c)) {
        if let Some(c) =
            crate::domain::accounts::caller_for_user(&state.db, &user, &route.org_id).await?
        {
            if may_open(state, route, &c).await? {
                return Ok(());
            }
        }
    }
    let browser = req.method == Method::GET
        && headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if !browser {
        return Err(Refusal::Unauthorized);
    }
    let next = req
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let to = format!(
        "{}/v1/url-auth?sprite={}&org={}&next={}",
        state.urls.app_url(),
        route.name,
        route.org_slug,
        form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
    );
    Err(Refusal::SignIn(to))
}

/// The items of every `name` header, split at `sep` and trimmed.
fn items(headers: &HeaderMap, name: HeaderName, sep: char) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(move |v| v.split(sep))
        .map(str::trim)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    items(headers, header::COOKIE, ';')
        .filter_map(|c| c.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

fn now_secs() -> u64 {
    crate::db::now_ms().max(0) as u64 / 1000
}

/// The user a hand-off cookie admits, if it is this sprite's and current.
fn cookie_user(state: &AppState, route: &Route, value: &str) -> Option<String> {
    let f = state.signing.verify("sprite-cookie", value)?;
    let [sprite, user, until] = <[String; 3]>::try_from(f).ok()?;
    (sprite == route.sprite_id && until.parse::<u64>().ok()? > now_secs()).then_some(user)
}

/// A ticket for `user` to enter `sprite_id`'s URL, made by the app origin.
pub fn ticket(state: &AppState, sprite_id: &str, user_id: &str) -> String {
    let until = (now_secs() + TICKET_LIFE.as_secs()).to_string();
    state
        .signing
        .sign("sprite-ticket", &[sprite_id, user_id, &until])
}

/// `next` if it is a path on the same host (not `//elsewhere`), else `/`.
pub fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/') && !next.starts_with("//") && !next.contains(['\\', '\r', '\n']);
    if ok {
        next
    } else {
        "/"
    }
}

/// Where a sprite's cookie may go. The web app shows the sprite in a frame,
/// where a browser sends only `SameSite=None` cookies, and those must be
/// `Secure`: over TLS, and on `localhost` names, which browsers count as
/// secure. `Partitioned` keeps the framed cookie to the app's pages. Over
/// plain HTTP on another domain, a frame cannot keep it (the preview then
/// says to open a tab).
fn cookie_scope(state: &AppState) -> &'static str {
    let localhost = state.urls.base_domain == "localhost";
    if state.settings.secure_cookies || localhost {
        "SameSite=None; Secure; Partitioned"
    } else {
        "SameSite=Lax"
    }
}

/// `/__sprite_auth?ticket=...&next=...` on the sprite's host: turns a valid
/// ticket into this host's cookie and goes on to `next`.
fn accept_ticket(state: &AppState, route: &Route, req: &Request) -> Response {
    let query = req.uri().query().unwrap_or("");
    let mut ticket = None;
    let mut next = "/".to_string();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "ticket" => ticket = Some(v.into_owned()),
            "next" => next = v.into_owned(),
            _ => {}
        }
    }
    let user = ticket
        .and_then(|t| state.signing.verify("sprite-ticket", &t))
        .and_then(|f| <[String; 3]>::try_from(f).ok())
        .filter(|[sprite, _, until]| {
            *sprite == route.sprite_id && until.parse::<u64>().is_ok_and(|u| u > now_secs())
        })
        .map(|[_, user, _]| user);
    let Some(user) = user else {
        return page_for(Refusal::Unauthorized);
    };
    let until = (now_secs() + COOKIE_LIFE.as_secs()).to_string();
    let value = state
        .signing
        .sign("sprite-cookie", &[&route.sprite_id, &user, &until]);
    let cookie = format!(
        "{AUTH_COOKIE}={value}; Path=/; HttpOnly; Max-Age={}; {}",
        COOKIE_LIFE.as_secs(),
        cookie_scope(state)
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, local_path(&next).to_string()),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
        m
    }

    #[test]
    fn sprite_hosts_are_recognised_under_the_base_domain_only() {
        let label = |h: &str| sprite_label("localhost", &host(h));
        assert_eq!(
            label("web-alice.localhost:8080").as_deref(),
            Some("web-alice")
        );
        assert_eq!(label("Web-Alice.LOCALHOST").as_deref(), Some("web-alice"));
        assert_eq!(label("web-alice.localhost.").as_deref(), Some("web-alice"));
        assert_eq!(label("localhost:8080"), None);
        assert_eq!(label("a.b.localhost"), None);
        assert_eq!(label("web-alice.example.com"), None);
        assert_eq!(label("evillocalhost"), None);
        assert_eq!(
            sprite_label("sprites.example.com", &host("x-y.sprites.example.com")).as_deref(),
            Some("x-y")
        );
    }

    #[test]
    fn only_local_paths_are_followed_after_the_hand_off() {
        assert_eq!(local_path("/app?x=1"), "/app?x=1");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
    }

    #[test]
    fn the_app_never_sees_the_proxys_credentials_or_forged_forwarding() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sprt_x"),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __sprite_auth=secret; sprites_session=s; b=2"),
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        let host = HeaderValue::from_static("web-alice.localhost:8080");
        let forwarding = Forwarding::new(Some("10.1.2.3".parse().unwrap()), "http", Some(&host));
        forwarded_headers(&mut h, &forwarding, false);
        assert!(h.get(header::AUTHORIZATION).is_none());
        assert_eq!(h[header::COOKIE], "a=1; b=2");
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(h.get("x-forwarded-host").is_none(), "Host itself passes");
        assert_eq!(
            h["forwarded"],
            "for=10.1.2.3;proto=http;host=\"web-alice.localhost:8080\""
        );
        assert!(h.get("x-private").is_none());
        assert!(h.get(header::CONNECTION).is_none());
    }
}
