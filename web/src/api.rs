//! The server's REST API, as the web app calls it: same origin, the
//! session cookie, and the session's CSRF token on every change. Errors
//! come back in words a person can act on.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sprites_wire::api::{ErrorBody, Progress};
use sprites_wire::client::Call;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static CSRF: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Remembers the session's CSRF token (from sign-in or `/v1/auth/me`).
pub fn set_csrf(token: &str) {
    CSRF.with(|c| *c.borrow_mut() = token.to_string());
}

fn csrf() -> String {
    CSRF.with(|c| c.borrow().clone())
}

/// A failed call: the HTTP status (0 when the server could not be reached)
/// and what to tell the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ApiError {
    fn network() -> ApiError {
        ApiError {
            status: 0,
            message: "The server cannot be reached. Check your connection; \
                      this page tries again when you retry."
                .into(),
        }
    }

    /// The sentence shown for `status`, given the server's own message.
    pub fn from_status(status: u16, server: &str) -> ApiError {
        let message = match status {
            401 => "You are signed out. Sign in again to go on.".to_string(),
            403 => format!("That is not allowed: {server}"),
            404 => format!("Not found: {server}"),
            409 => format!("That conflicts with what is there now: {server}"),
            413 => "That is too large to send.".to_string(),
            429 => format!("Too many attempts; wait a moment. {server}"),
            507 => "The sprite's disk is full: delete some files or checkpoints.".to_string(),
            s if s >= 500 => format!("Something went wrong on the server: {server}"),
            _ => server.to_string(),
        };
        ApiError { status, message }
    }
}

pub type Result<T> = std::result::Result<T, ApiError>;

/// A request body.
pub enum Body<'a> {
    None,
    Json(Value),
    Bytes(&'a [u8]),
}

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

/// Sends `method path` and returns the response when its status is 2xx.
pub async fn call(method: &str, path: &str, body: Body<'_>) -> Result<web_sys::Response> {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().map_err(|_| ApiError::network())?;
    if !matches!(method, "GET" | "HEAD") {
        let _ = headers.set("X-CSRF-Token", &csrf());
    }
    match body {
        Body::None => {}
        Body::Json(v) => {
            let _ = headers.set("Content-Type", "application/json");
            init.set_body(&JsValue::from_str(&v.to_string()));
        }
        Body::Bytes(b) => {
            let _ = headers.set("Content-Type", "application/octet-stream");
            let array = js_sys::Uint8Array::from(b);
            init.set_body(&array.into());
        }
    }
    init.set_headers(&headers);
    let promise = window().fetch_with_str_and_init(path, &init);
    let res: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|_| ApiError::network())?
        .unchecked_into();
    if res.ok() {
        return Ok(res);
    }
    let status = res.status();
    let text = text_of(&res).await.unwrap_or_default();
    let server = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.message)
        .unwrap_or(text);
    Err(ApiError::from_status(status, server.trim()))
}

async fn text_of(res: &web_sys::Response) -> Result<String> {
    let promise = res.text().map_err(|_| ApiError::network())?;
    let text = JsFuture::from(promise)
        .await
        .map_err(|_| ApiError::network())?;
    Ok(text.as_string().unwrap_or_default())
}

/// The bytes of a response's body.
pub async fn bytes_of(res: &web_sys::Response) -> Result<Vec<u8>> {
    let promise = res.array_buffer().map_err(|_| ApiError::network())?;
    let buf = JsFuture::from(promise)
        .await
        .map_err(|_| ApiError::network())?;
    Ok(js_sys::Uint8Array::new(&buf).to_vec())
}

/// Sends one of the API's calls (`sprites_wire::client`) and reads its
/// answer as its type.
pub async fn run<A: DeserializeOwned>(call: Call<A>) -> Result<A> {
    let body = match &call.body {
        Some(v) => Body::Json(v.clone()),
        None => Body::None,
    };
    let res = self::call(call.method.as_str(), &call.path, body).await?;
    let text = text_of(&res).await?;
    call.read(&text).map_err(unexpected)
}

/// Sends one of the API's calls; its answer does not matter beyond success.
pub async fn done<A>(call: Call<A>) -> Result<()> {
    let body = call.body.clone().map_or(Body::None, Body::Json);
    self::call(call.method.as_str(), &call.path, body)
        .await
        .map(|_| ())
}

fn unexpected(e: serde_json::Error) -> ApiError {
    ApiError {
        status: 200,
        message: format!("The server answered in an unexpected way ({e})."),
    }
}

/// The raw bytes a GET answers (a file, a log).
pub async fn get_bytes(path: &str) -> Result<Vec<u8>> {
    let res = call("GET", path, Body::None).await?;
    bytes_of(&res).await
}

/// A call answered with NDJSON progress (checkpoint, restore, a signal):
/// the lines, or the first `error` line as an error.
pub async fn progress(call: Call<Progress>) -> Result<Vec<Progress>> {
    let body = call.body.clone().map_or(Body::None, Body::Json);
    let res = self::call(call.method.as_str(), &call.path, body).await?;
    let text = text_of(&res).await?;
    let lines: Vec<Progress> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| call.read(l).ok())
        .collect();
    for line in &lines {
        if let Progress::Error { error } = line {
            return Err(ApiError::from_status(500, error));
        }
    }
    Ok(lines)
}

/// A path component or query value, percent-encoded.
/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: i32) {
    let wait = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(wait).await;
}

pub fn enc(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}

pub use sprites_wire::orgs::{Organization, Profile, SessionState, Token};

pub use sprites_wire::api::{ChangeKind, Checkpoint, CheckpointDiff, EntryKind, PathChange};

pub use sprites_wire::fs::{FileEntry, Listing};

pub use sprites_wire::api::{ExecSession as Session, ExecSessionList as SessionList};

pub use sprites_wire::services::Service;

pub use sprites_wire::human_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_speak_to_people() {
        assert!(ApiError::from_status(507, "ENOSPC")
            .message
            .contains("disk is full"));
        assert!(ApiError::from_status(401, "").message.contains("Sign in"));
        assert_eq!(
            ApiError::from_status(400, "name: too long").message,
            "name: too long"
        );
    }
}
