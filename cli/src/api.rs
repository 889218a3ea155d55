//! The API client: sends the calls of `sprites_wire::client` and reads
//! their answers as their types; errors in the server's words.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sprites_wire::api::{ErrorBody, SpriteEvent};
use sprites_wire::client::{self, Call};

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// The answer's body when the server does not speak JSON.
fn not_json(e: serde_json::Error) -> anyhow::Error {
    anyhow::anyhow!("the server's answer is not what was expected: {e}")
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    fn request(&self, method: &str, path: &str) -> anyhow::Result<reqwest::RequestBuilder> {
        let method =
            Method::from_bytes(method.to_uppercase().as_bytes()).context("not an HTTP method")?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        req.send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))
    }

    /// Sends `call` and answers the response when it is a success.
    async fn start<A>(&self, call: &Call<A>) -> anyhow::Result<reqwest::Response> {
        let mut req = self.request(call.method.as_str(), &call.path)?;
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        Self::answer(self.send(req).await?).await
    }

    /// The status and body of any answer (for `sprite api`).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, String)> {
        let mut req = self.request(method, path)?;
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = self.send(req).await?;
        let status = res.status();
        Ok((status, res.text().await?))
    }

    /// The response when it is a success, else an error in the server's words.
    async fn answer(res: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await?;
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or(text);
        match status {
            StatusCode::UNAUTHORIZED => anyhow::bail!("{message} (run `sprite login`)"),
            _ => anyhow::bail!("{message}"),
        }
    }

    fn json(text: &str) -> anyhow::Result<Value> {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).context("the server answered something that is not JSON")
    }

    /// The answer to `call` as JSON, as the server sent it (for `--json`).
    pub async fn value<A>(&self, call: &Call<A>) -> anyhow::Result<Value> {
        Self::json(&self.start(call).await?.text().await?)
    }

    /// The answer to `call`, read as its type.
    pub async fn run<A: DeserializeOwned>(&self, call: &Call<A>) -> anyhow::Result<A> {
        let text = self.start(call).await?.text().await?;
        call.read(&text).map_err(not_json)
    }

    /// `call` with a streamed body (an archive); its answer as JSON.
    pub async fn upload<A>(&self, call: &Call<A>, body: reqwest::Body) -> anyhow::Result<Value> {
        let req = self
            .request(call.method.as_str(), &call.path)?
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(body);
        let res = Self::answer(self.send(req).await?).await?;
        Self::json(&res.text().await?)
    }

    /// A call answered with NDJSON lines: each handed to `on_line` as it
    /// arrives (as sent and as its type); all of them at the end.
    pub async fn lines<L: DeserializeOwned>(
        &self,
        call: &Call<L>,
        mut on_line: impl FnMut(&Value, &L),
    ) -> anyhow::Result<Vec<L>> {
        let mut res = self.start(call).await?;
        let mut lines = Vec::new();
        let mut buf = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v: Value = serde_json::from_slice(&line)
                    .context("the server sent a progress line that is not JSON")?;
                let typed = call.read_value(v.clone()).map_err(not_json)?;
                on_line(&v, &typed);
                lines.push(typed);
            }
        }
        Ok(lines)
    }

    /// The organization's events, each `data:` handed to `on_event` as sent
    /// and as its type, until the server ends the stream.
    pub async fn events(
        &self,
        mut on_event: impl FnMut(&Value, &SpriteEvent),
    ) -> anyhow::Result<()> {
        let req = self.request("GET", client::path::EVENTS)?;
        let mut res = Self::answer(self.send(req).await?).await?;
        let mut buf = String::new();
        while let Some(chunk) = res.chunk().await? {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(v) = serde_json::from_str::<Value>(&data) {
                    if let Ok(e) = serde_json::from_value::<SpriteEvent>(v.clone()) {
                        on_event(&v, &e);
                    }
                }
            }
        }
        Ok(())
    }
}
