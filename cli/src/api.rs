//! The API client: JSON in and out, errors in the server's words.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request, whatever the answer's status.
    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let method =
            Method::from_bytes(method.to_uppercase().as_bytes()).context("not an HTTP method")?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))
    }

    /// The status and body of any answer (for `sprite api`).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(StatusCode, String)> {
        let res = self.request(method, path, body).await?;
        let status = res.status();
        Ok((status, res.text().await?))
    }

    /// Sends a request; a non-success answer is an error in the server's
    /// words.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let res = self.request(method, path, body).await?;
        Self::answer(res).await
    }

    /// The response when it is a success, else an error in the server's words.
    async fn answer(res: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await?;
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        match status {
            StatusCode::UNAUTHORIZED => anyhow::bail!("{message} (run `sprite login`)"),
            _ => anyhow::bail!("{message}"),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<String> {
        Ok(self.send(method, path, body).await?.text().await?)
    }

    fn json(text: &str) -> anyhow::Result<Value> {
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).context("the server answered something that is not JSON")
    }

    /// POSTs a streamed body (an archive); the JSON answer.
    pub async fn upload(&self, path: &str, body: reqwest::Body) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let text = Self::answer(res).await?.text().await?;
        Self::json(&text)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Self::json(&self.call("GET", path, None).await?)
    }

    pub async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Self::json(&self.call("POST", path, Some(body)).await?)
    }

    pub async fn put(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        Self::json(&self.call("PUT", path, Some(body)).await?)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        Self::json(&self.call("DELETE", path, None).await?)
    }

    /// A POST answered with NDJSON progress lines, each handed to
    /// `on_line` as it arrives; all of them at the end.
    pub async fn ndjson(
        &self,
        path: &str,
        body: Value,
        on_line: impl FnMut(&Value),
    ) -> anyhow::Result<Vec<Value>> {
        self.send_ndjson("POST", path, Some(body), on_line).await
    }

    /// Any request answered with NDJSON lines, each handed to `on_line` as
    /// it arrives; all of them at the end.
    pub async fn send_ndjson(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        mut on_line: impl FnMut(&Value),
    ) -> anyhow::Result<Vec<Value>> {
        let mut res = self.send(method, path, body).await?;
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
                on_line(&v);
                lines.push(v);
            }
        }
        Ok(lines)
    }

    /// Server-sent events from `path`, each `data:` parsed as JSON and
    /// handed to `on_event`, until the server ends the stream.
    pub async fn events(&self, path: &str, mut on_event: impl FnMut(&Value)) -> anyhow::Result<()> {
        let mut res = self.send("GET", path, None).await?;
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
                    on_event(&v);
                }
            }
        }
        Ok(())
    }
}
